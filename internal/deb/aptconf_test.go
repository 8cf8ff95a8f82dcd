package deb

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// aptOracle returns the path of an apt tool used as a differential oracle,
// skipping the test when it is missing (failing under
// PATCHLOOP_REQUIRE_ORACLES=1, as CI runs).
func aptOracle(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
			t.Fatalf("%s not found", tool)
		}
		t.Skipf("%s not found: the apt oracle needs a Debian system", tool)
	}
	return p
}

// aptEnv is the environment for apt's tools: no inherited APT_CONFIG.
func aptEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APT_CONFIG=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// isolatedAptConfig writes an APT_CONFIG file that keeps apt-config away
// from the system's apt.conf.d and apt.conf (plus extra lines).
func isolatedAptConfig(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "isolate.conf")
	body := "Dir::Etc::parts \"/dev/null\";\nDir::Etc::main \"/dev/null\";\n" + extra
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type confKV struct{ key, value string }

// aptConfigDump runs `apt-config dump` and returns its items in order.
func aptConfigDump(t *testing.T, env []string, args ...string) ([]confKV, error) {
	t.Helper()
	args = append([]string{"-o", "APT::Config::Dump::Format=%F %V%n"}, args...)
	cmd := exec.Command(aptOracle(t, "apt-config"), append(args, "dump")...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var items []confKV
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, _ := strings.Cut(line, " ")
		items = append(items, confKV{unquoteApt(t, k), unquoteApt(t, v)})
	}
	return items, nil
}

// unquoteApt reverses apt's QuoteString (%xx).
func unquoteApt(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				t.Fatalf("bad quoting in %q", s)
			}
			b.WriteByte(byte(n))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func confItems(c *AptConfig) []confKV {
	var items []confKV
	c.walk(func(it *aptItem) { items = append(items, confKV{it.fullTag(), it.value}) })
	return items
}

// missingFromSubsequence reports the first item of sub (except those
// under the keys in skip) that does not appear, in order, in full.
// apt-config itself rewrites Acquire::Languages, APT::Architectures and
// APT::Compressor before dumping, so those are always skipped.
func missingFromSubsequence(sub, full []confKV, skip ...string) (confKV, bool) {
	skip = append(skip, "Acquire::Languages", "APT::Architectures", "APT::Compressor")
	skipped := func(key string) bool {
		for _, s := range skip {
			if aptEqualFold(key, s) || len(key) >= len(s)+2 && aptEqualFold(key[:len(s)+2], s+"::") {
				return true
			}
		}
		return false
	}
	j := 0
	for _, it := range sub {
		if skipped(it.key) {
			continue
		}
		for j < len(full) && full[j] != it {
			j++
		}
		if j == len(full) {
			return it, true
		}
		j++
	}
	return confKV{}, false
}

func TestParseAptConfSyntax(t *testing.T) {
	tests := []struct {
		name, in string
		want     []confKV
	}{
		{"scoped", `A::B "v";`, []confKV{{"A", ""}, {"A::B", "v"}}},
		{"nested", "A { B \"1\"; C { D \"2\"; }; };", []confKV{{"A", ""}, {"A::B", "1"}, {"A::C", ""}, {"A::C::D", "2"}}},
		{"case-insensitive", `a::b "1"; A::B "2"; A::c "3";`, []confKV{{"a", ""}, {"a::b", "2"}, {"a::c", "3"}}},
		{"lists", "L { \"a\"; \"b\"; };\nL:: \"c\";", []confKV{{"L", ""}, {"L::", "a"}, {"L::", "b"}, {"L::", "c"}}},
		{"comments", "// x\nA \"1\"; # y\n/* z\n */ B \"2\"; /* w */ C \"3\";", []confKV{{"A", "1"}, {"B", "2"}, {"C", "3"}}},
		{"markers in quotes", `A "x//y#z/*w*/";`, []confKV{{"A", "x//y#z/*w*/"}}},
		{"unquoted", "A b;\nC 1;", []confKV{{"A", "b"}, {"C", "1"}}},
		{"clear", "A { b \"1\"; c \"2\"; };\n#clear A;\nA::d \"3\";", []confKV{{"A", ""}, {"A::d", "3"}}},
		{"concatenated", `A "x" "y"; B "x"  "y""z";`, []confKV{{"A", "x y"}, {"B", "x yz"}}},
		{"multi-line statement", "A\n\"b\";", []confKV{{"A", "b"}}},
		{"block value", `A "v" { B "x"; };`, []confKV{{"A", "v"}, {"A::B", "x"}}},
		{"empty block", `A { };`, nil},
		{"percent", `A%3aB c%41d;`, []confKV{{"A:B", "cAd"}}},
		{"tab in value", "A \"a\tb\";", []confKV{{"A", "a        b"}}},
		{"crlf", "A \"1\";\r\nB \"2\";\r\n", []confKV{{"A", "1"}, {"B", "2"}}},
		{"triple colon", `A:::B "1";`, []confKV{{"A", ""}, {"A:::B", "1"}}},
		{"bare word", `A { B; };`, []confKV{{"A", ""}, {"A::", "B"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c AptConfig
			if err := ParseAptConf(strings.NewReader(tt.in), "t.conf", &c); err != nil {
				t.Fatal(err)
			}
			if got := confItems(&c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseAptConfErrors(t *testing.T) {
	for _, in := range []string{
		`A "b"`,            // no terminator at end of file
		`{ "x"; };`,        // block without a name
		`A "b" c;`,         // junk after the value
		`A { #clear B; };`, // directive inside a scope
		`#includefoo bar;`, // unknown directive
		`#clear;`,          // clear without argument
		`A "b;`,            // unterminated quote
		`A "a\"b";`,        // backslash does not escape
		`#include "/nonexistent/x";`,
	} {
		var c AptConfig
		err := ParseAptConf(strings.NewReader(in), "t.conf", &c)
		if err == nil || !strings.HasPrefix(err.Error(), "t.conf:1:") {
			t.Errorf("%q: err = %v, want t.conf:1: ...", in, err)
		}
	}
}

func TestAptConfigFind(t *testing.T) {
	var c AptConfig
	in := `T::yes "yes"; T::hex "0x1"; T::two "2"; T::wrap "4294967297"; T::sp " 1"; T::on "On";
T::octal "01"; T::off "disable"; T::empty ""; T::csv "a,b,,c,"; T::Dir "foo"; T::Dir::sub "bar/";
T::Dir::abs "/x//y/./z"; T::Dir::file "baz"; T::big "9999999999999999999999";`
	if err := ParseAptConf(strings.NewReader(in), "t.conf", &c); err != nil {
		t.Fatal(err)
	}
	bools := map[string]bool{"T::yes": true, "T::hex": true, "T::wrap": true, "T::sp": true,
		"T::on": true, "T::octal": true, "T::off": false}
	for k, want := range bools {
		if got := c.FindB(k, !want); got != want {
			t.Errorf("FindB(%s) = %v", k, got)
		}
	}
	if c.FindB("T::two", true) != true || c.FindB("T::two", false) != false || c.FindB("T::empty", true) != true {
		t.Error("FindB must return the default for values that are not booleans")
	}
	if got := c.FindI("T::big", 5); got != -1 {
		t.Errorf("FindI(big) = %d, want -1 (strtol saturates, int truncates)", got)
	}
	if got := c.FindList("T::csv"); !reflect.DeepEqual(got, []string{"a", "b", "", "c"}) {
		t.Errorf("FindList(csv) = %q", got)
	}
	if got := c.Find("t::EMPTY", "def"); got != "def" {
		t.Errorf("Find(empty) = %q", got)
	}
	files := map[string]string{"T::Dir::sub/d": "foo/bar/", "T::Dir::file/f": "foo/baz",
		"T::Dir::abs/f": "/x/y/z", "T::Dir/d": "foo/"}
	for k, want := range files {
		key, kind, _ := strings.Cut(k, "/")
		got := c.FindFile(key, "")
		if kind == "d" {
			got = c.FindDir(key, "")
		}
		if got != want {
			t.Errorf("Find%s(%s) = %q, want %q", strings.ToUpper(kind), key, got, want)
		}
	}
}

// TestAptConfigFindAgainstApt checks FindB/FindI/FindFile/FindDir against
// `apt-config shell`, which prints FindAny(key/b, /i, /f, /d).
func TestAptConfigFindAgainstApt(t *testing.T) {
	aptOracle(t, "apt-config")
	in := "T::a \"yes\"; T::b \"0x1\"; T::c \"2\"; T::d \"4294967297\"; T::e \" 1\"; T::f \"+1\";\n" +
		"T::g \"On\"; T::h \"01\"; T::i \"0x\"; T::j \"9999999999999999999999\"; T::k \"-0\"; T::l \"1x\";\n" +
		"T::Dir \"foo\"; T::Dir::sub \"bar/\"; T::Dir::abs \"/x//y/./z\"; T::Dir::file \"baz\";\n" +
		"T::Dir::dn \"/dev/null/x\"; T::Dir::dot \"./q\"; T::R \"/r\"; T::R::S \"s\"; T::R::S::U \"u\";\n"
	snippet := filepath.Join(t.TempDir(), "snippet.conf")
	if err := os.WriteFile(snippet, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	var c AptConfig
	if err := ParseAptConf(strings.NewReader(in), snippet, &c); err != nil {
		t.Fatal(err)
	}
	queries := []string{"T::a/b", "T::b/b", "T::c/b", "T::d/b", "T::e/b", "T::f/b", "T::g/b", "T::h/b",
		"T::k/b", "T::l/b", "T::i/i", "T::j/i", "T::d/i", "T::l/i", "T::h/i", "T::Dir::sub/d", "T::Dir::file/f",
		"T::Dir::abs/f", "T::Dir/d", "T::Dir::dn/f", "T::Dir::dot/f", "T::R::S::U/f", "T::missing/f"}
	args := []string{"-c", snippet, "shell"}
	for i, q := range queries {
		args = append(args, "V"+strconv.Itoa(i), q)
	}
	cmd := exec.Command("apt-config", args...)
	cmd.Env = aptEnv("APT_CONFIG=" + isolatedAptConfig(t, ""))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apt-config shell: %v", err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		want[k] = strings.Trim(v, "'")
	}
	for i, q := range queries {
		key, kind, _ := strings.Cut(q, "/")
		var got string
		switch kind {
		case "b":
			got = strconv.FormatBool(c.FindB(key, false))
		case "i":
			got = strconv.Itoa(c.FindI(key, 0))
		case "f":
			got = c.FindFile(key, "")
		case "d":
			got = c.FindDir(key, "")
		}
		if w, ok := want["V"+strconv.Itoa(i)]; ok && got != w || !ok && got != "" {
			t.Errorf("%s: got %q, apt-config says %q", q, got, w)
		}
	}
}

// aptConfSnippets are tricky apt.conf inputs; each is read by ParseAptConf
// and by `apt-config -c` and must give the same items (or both an error).
// Top-level names avoid those of apt's built-in defaults.
var aptConfSnippets = []string{
	`Foo::Bar "baz";`,
	"Foo { Bar \"1\"; Baz { Qux \"2\"; }; };",
	`foo::bar "1"; FOO::BAR "2"; Foo::Baz "3";`,
	"Foo { \"a\"; \"b\"; };\nFoo:: \"c\";\nFoo::Bar:: \"d\";",
	"// c\nFoo \"a\"; # c\n/* multi\nline */ Bar \"b\"; /* x */ Baz \"c\";",
	`Foo "a//b#c/*d*/";`,
	"Foo bar;\nBaz 1;",
	"Foo { a \"1\"; b \"2\"; };\n#clear Foo;\nFoo::c \"3\";",
	"#clear Nothing::Here;\nFoo \"1\";",
	`Foo "a" "b"; Foo2 "a"  "b""c";`,
	"Foo\n\"bar\";",
	`A1 "1"; B1 "2"; C1 { D "3"; }; E1 "4";`,
	`Foo "v" { Bar "x"; };`,
	`Foo { };`,
	`Foo%3aBar "x"; Baz a%41b;`,
	`Foo[x y] "1";`,
	"Foo::Bar::Baz \"1\";\nFoo { Bar { Baz \"2\"; }; };",
	`Foo:::Bar "1"; Foo::::Bar "x"; ::Lead "y";`,
	`Foo "";`,
	"Foo \"a\tb\";",
	"Foo \"1\";\r\nBar \"2\";\r\n",
	"Foo \"x\"; }\nBar \"y\";",
	"Foo { Bar { \"x\"; \"y\"; }; };",
	"Foo \"a /* b\";\nBar \"c */ d\";",
	"Foo \"1\"; /* unterminated\n Bar \"2\";",
	"Foo::Bar \"1\" ; \n  Foo::Baz   \"2\"  ;",
	`Foo {Bar "1";Baz "2";};`,
	";;;\nFoo \"1\";;",
	"Foo \"a\"; // comment with \"quote\nBar \"b\";",
	`Foo::Bar;`,
	`Foo { Bar; };`,
	"# include \"x\";\nFoo \"1\";",
	"Foo \"x\" /* c */ ;",
	"Foo /* c */ \"x\";",
	"Foo\t{\n\tBar\t\"1\";\n};",
	"Foo \"1\" // x\n;",
	"Foo \"a\nb\";",
	"Foo { Bar \"1\" };\nBaz \"2\";",
	"Foo::Bar \"x\"; #clear Foo::Bar; Foo::Bar:: \"y\";",
	"Foo { \"a\"; }; #clear Foo::; Foo:: \"b\";",
	"Foo \"x\"; Foo::Bar \"y\"; #clear Foo; Foo \"z\";",
	"Foo::\"Bar Baz\" \"1\";",
	"\"Foo\" \"1\"; \"Foo::Bar\" { \"Baz\" \"2\"; };",
	"Foo \"%41\"; Bar %4;",
	"Foo \u00e9\u00e8 \"\u00fc\";",
	"Foo { Bar { Baz { Qux { Deep \"1\"; }; }; }; };",
	"Foo { Bar \"1\"; };;; }}}\nBaz \"2\";",
	"Foo \"a\" /* \" */ ;",
	"/* a */ /* b */ Foo \"1\"; /**/ Bar \"2\";",
	"Foo \"1\"; /* x // y */ Bar \"2\";",
	"Foo # x\n\"1\";",
	"#clear Foo Bar;",
	"Foo \"1\";\n\n\n",
	"Foo\v\"1\";",
	// errors
	`Foo "bar"`,
	`{ "x"; };`,
	`Foo "a" b;`,
	`Foo { #clear X; };`,
	`#foo bar;`,
	`#clear;`,
	`Foo "bar;`,
	`Foo "a\"b";`,
	`#includefoo "x";`,
	`Foo [x;`,
	"Foo \"1\";\n#include \"/nonexistent/patchloop\";",
}

func TestParseAptConfAgainstAptConfig(t *testing.T) {
	aptOracle(t, "apt-config")
	env := aptEnv("APT_CONFIG=" + isolatedAptConfig(t, ""))
	own := ownItemsFilter(t, env)
	dir := t.TempDir()
	agreed, errs := 0, 0
	for i, snippet := range aptConfSnippets {
		path := filepath.Join(dir, "s"+strconv.Itoa(i)+".conf")
		if err := os.WriteFile(path, []byte(snippet), 0o644); err != nil {
			t.Fatal(err)
		}
		want, aptErr := aptConfigDump(t, env, "-c", path)
		var c AptConfig
		ourErr := ParseAptConf(strings.NewReader(snippet), path, &c)
		if (aptErr != nil) != (ourErr != nil) {
			t.Errorf("snippet %d %q: apt error %v, our error %v", i, snippet, aptErr, ourErr)
			continue
		}
		if aptErr != nil {
			errs++
			continue
		}
		if got := own(confItems(&c)); !reflect.DeepEqual(got, own(want)) {
			t.Errorf("snippet %d %q:\n got %q\nwant %q", i, snippet, got, own(want))
		}
		agreed++
	}
	t.Logf("%d snippets read alike by apt-config, %d rejected by both", agreed, errs)
}

// ownItemsFilter returns a filter dropping the items under the top-level
// tags apt-config has without any file (APT, Dir, CommandLine, ...): the
// snippets use other names.
func ownItemsFilter(t *testing.T, env []string) func([]confKV) []confKV {
	base, err := aptConfigDump(t, env)
	if err != nil {
		t.Fatalf("apt-config dump: %v", err)
	}
	builtin := map[string]bool{}
	top := func(key string) string { return aptLowerString(strings.SplitN(key, "::", 2)[0]) }
	for _, it := range base {
		builtin[top(it.key)] = true
	}
	return func(items []confKV) []confKV {
		var out []confKV
		for _, it := range items {
			if !builtin[top(it.key)] {
				out = append(out, it)
			}
		}
		return out
	}
}

// TestParseAptConfRandomAgainstAptConfig feeds apt-config and ParseAptConf
// the same random token soups (quotes, braces, comments, directives).
func TestParseAptConfRandomAgainstAptConfig(t *testing.T) {
	aptOracle(t, "apt-config")
	tokens := []string{"Foo", "Bar", "qux", "::", ":", `"x"`, `"a b"`, `""`, `"`, "{", "}", ";", ";", " ", " ",
		"\t", "\n", "\n", "//", "#", "/*", "*/", "#clear Foo", "#clear", "%41", "[", "]", "1", "Foo::Bar", "'"}
	n := 300
	if testing.Short() {
		n = 40
	}
	env := aptEnv("APT_CONFIG=" + isolatedAptConfig(t, ""))
	own := ownItemsFilter(t, env)
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < n; i++ {
		var b strings.Builder
		for j := rng.Intn(25); j >= 0; j-- {
			b.WriteString(tokens[rng.Intn(len(tokens))])
		}
		snippet := b.String()
		path := filepath.Join(dir, "r"+strconv.Itoa(i)+".conf")
		if err := os.WriteFile(path, []byte(snippet), 0o644); err != nil {
			t.Fatal(err)
		}
		want, aptErr := aptConfigDump(t, env, "-c", path)
		var c AptConfig
		ourErr := ParseAptConf(strings.NewReader(snippet), path, &c)
		if (aptErr != nil) != (ourErr != nil) {
			t.Errorf("%q: apt error %v, our error %v", snippet, aptErr, ourErr)
			continue
		}
		if aptErr == nil && !reflect.DeepEqual(own(confItems(&c)), own(want)) {
			t.Errorf("%q:\n got %q\nwant %q", snippet, own(confItems(&c)), own(want))
		}
	}
}

func TestParseAptConfInclude(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc/inc.d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/one.conf"), []byte(`Inc::One "1";`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/inc.d/a.conf"), []byte(`Inc::A "a";`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/inc.d/b.txt"), []byte(`Inc::B "b";`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/loop.conf"), []byte(`#include "/etc/loop.conf";`), 0o644))
	c := &AptConfig{Root: dir}
	in := "#include \"/etc/one.conf\";\n#include \"/etc/inc.d/\";\n"
	must(ParseAptConf(strings.NewReader(in), "main.conf", c))
	want := []confKV{{"Inc", ""}, {"Inc::One", "1"}, {"Inc::A", "a"}}
	if got := confItems(c); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	err := ParseAptConf(strings.NewReader(`#include "/etc/loop.conf";`), "main.conf", c)
	if err == nil || !strings.Contains(err.Error(), "too many nested includes") {
		t.Errorf("include loop: %v", err)
	}
}

// TestLoadAptConfigTestdata reads the copy of this machine's apt.conf.d
// (testdata/aptconf) and checks it against what apt-config makes of the
// same files (APT_CONFIG pointing Dir at the copy).
func TestLoadAptConfigTestdata(t *testing.T) {
	root, err := filepath.Abs("testdata/aptconf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadAptConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{"Acquire::Check-Valid-Until": "false", "Dir::Cache::pkgcache": "",
		"acquire::languages": "none", "Dir::Etc::sourceparts": "sources.list.d", "Dir::State::status": "/var/lib/dpkg/status"}
	for k, want := range checks {
		if got := c.Find(k, ""); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if c.FindB("Acquire::Check-Valid-Until", true) || !c.FindB("Acquire::GzipIndexes", false) {
		t.Error("FindB of the docker/farm settings")
	}
	never := []string{"^firmware-linux.*", "^linux-firmware$", "^linux-image-[a-z0-9]*$",
		"^linux-image-[a-z0-9]*-[a-z0-9]*$", "^postgresql.*-15"}
	if got := c.FindList("APT::NeverAutoRemove"); !reflect.DeepEqual(got, never) {
		t.Errorf("APT::NeverAutoRemove = %q", got)
	}
	if got := c.FindFile("Dir::Etc::sourcelist", ""); got != "/etc/apt/sources.list" {
		t.Errorf("FindFile(sourcelist) = %q", got)
	}
	if got := c.FindDir("Dir::State::lists", ""); got != "/var/lib/apt/lists/" {
		t.Errorf("FindDir(lists) = %q", got)
	}

	aptOracle(t, "apt-config")
	p := filepath.Join(t.TempDir(), "dir.conf")
	if err := os.WriteFile(p, []byte("Dir \""+root+"/\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := aptConfigDump(t, aptEnv("APT_CONFIG="+p))
	if err != nil {
		t.Fatalf("apt-config dump: %v", err)
	}
	if it, missing := missingFromSubsequence(confItems(c), want, "Dir", "Dir::State::status"); missing {
		t.Errorf("%s %q is not in apt-config's dump (in that order)", it.key, it.value)
	}
}

// TestLoadAptConfigSystem compares LoadAptConfig("/") with `apt-config
// dump` of this machine: every item we produce must be in apt's dump, in
// the same order (apt adds more: APT::Architecture, compressors, ...).
func TestLoadAptConfigSystem(t *testing.T) {
	aptOracle(t, "apt-config")
	c, err := LoadAptConfig("/")
	if err != nil {
		t.Fatal(err)
	}
	want, err := aptConfigDump(t, aptEnv())
	if err != nil {
		t.Fatalf("apt-config dump: %v", err)
	}
	if it, missing := missingFromSubsequence(confItems(c), want); missing {
		t.Errorf("%s %q is not in apt-config's dump (in that order)", it.key, it.value)
	}
	for _, k := range []string{"Acquire::Check-Valid-Until", "Dir::Cache::pkgcache", "APT::NeverAutoRemove::"} {
		var ours, theirs []string
		for _, it := range confItems(c) {
			if aptEqualFold(it.key, k) {
				ours = append(ours, it.value)
			}
		}
		for _, it := range want {
			if aptEqualFold(it.key, k) {
				theirs = append(theirs, it.value)
			}
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("%s: ours %q, apt-config %q", k, ours, theirs)
		}
	}
}

func TestLoadAptConfigFileSelection(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/apt/apt.conf.d")
	if err := os.MkdirAll(filepath.Join(d, "subdir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"10plain": "Sel::", "20x.conf": "Sel::", "30x.txt": "Bad::", "40x.conf.bak": "Bad::",
		"50x~": "Bad::", ".hidden": "Bad::", "60with space": "Bad::", "70x.": "Bad::",
		"80a:b": "Sel::", "05Upper_case-x": "Sel::",
	}
	for name, key := range files {
		body := key + " \"" + name + "\";\n"
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/apt/apt.conf"), []byte(`Sel:: "apt.conf";`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadAptConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"05Upper_case-x", "10plain", "20x.conf", "80a:b", "apt.conf"}
	if got := c.FindList("Sel"); !reflect.DeepEqual(got, want) {
		t.Errorf("files read: %q, want %q", got, want)
	}
	if c.Exists("Bad") {
		t.Errorf("read a file apt ignores: %q", c.FindList("Bad"))
	}
}

func TestArchitectures(t *testing.T) {
	var c AptConfig
	if got := c.Architectures("amd64", []string{"i386", "amd64", ""}); !reflect.DeepEqual(got, []string{"amd64", "i386"}) {
		t.Errorf("default: %q", got)
	}
	c.Set("APT::Architectures::", "arm64")
	c.Set("APT::Architectures::", "arm64")
	if got := c.Architectures("amd64", []string{"i386"}); !reflect.DeepEqual(got, []string{"amd64", "arm64"}) {
		t.Errorf("APT::Architectures: %q", got)
	}
	c.Set("APT::BarbarianArchitectures::", "arm64")
	if got := c.Architectures("amd64", nil); !reflect.DeepEqual(got, []string{"amd64"}) {
		t.Errorf("barbarian: %q", got)
	}
	root := t.TempDir()
	if got, err := ReadDpkgArch(root); err != nil || got != nil {
		t.Errorf("missing arch file: %q %v", got, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/arch"), []byte("amd64\ni386\n\narmhf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadDpkgArch(root); err != nil || !reflect.DeepEqual(got, []string{"amd64", "i386", "armhf"}) {
		t.Errorf("arch file: %q %v", got, err)
	}
}

func TestAptConfigDumpFormat(t *testing.T) {
	var c AptConfig
	if err := ParseAptConf(strings.NewReader(`A { "x"; }; B%20C "y";`), "t", &c); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	if want := "A \"\";\nA:: \"x\";\nB%20C \"y\";\n"; b.String() != want {
		t.Errorf("Dump = %q, want %q", b.String(), want)
	}
}

func FuzzParseAptConf(f *testing.F) {
	for _, s := range aptConfSnippets {
		f.Add(s)
	}
	for _, name := range []string{"01autoremove", "50appstream", "docker-clean"} {
		data, err := os.ReadFile(filepath.Join("testdata/aptconf/etc/apt/apt.conf.d", name))
		if err == nil {
			f.Add(string(data))
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		c := &AptConfig{Root: t.TempDir()}
		if err := ParseAptConf(strings.NewReader(in), "fuzz.conf", c); err != nil {
			return
		}
		var b strings.Builder
		_ = c.Dump(&b)
		c.Architectures("amd64", nil)
		c.FindFile("Dir::Etc::sourcelist", "")
	})
}
