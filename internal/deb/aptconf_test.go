package deb

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type confKV struct{ key, value string }

func confItems(c *AptConfig) []confKV {
	var items []confKV
	c.walk(func(it *aptItem) { items = append(items, confKV{it.fullTag(), it.value}) })
	return items
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
		c := &AptConfig{Root: "/nonexistent/patchloop-fuzz"} // includes fail, never escape
		if err := ParseAptConf(strings.NewReader(in), "fuzz.conf", c); err != nil {
			return
		}
		var b strings.Builder
		_ = c.Dump(&b)
		c.Architectures("amd64", nil)
		c.FindFile("Dir::Etc::sourcelist", "")
	})
}
