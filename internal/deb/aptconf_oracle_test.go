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
