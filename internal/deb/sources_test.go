package deb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestParseSourcesList(t *testing.T) {
	in := `# a comment
deb http://deb.debian.org/debian bookworm main contrib   # trailing comment
deb-src [arch=amd64,i386 signed-by=/usr/share/keyrings/k.gpg trusted=yes] http://x.org/d stable main
deb [ arch+=armhf arch-=i386 lang=de ] "http://x.org/a b" sid main
deb [arch=amd64] http://x.org/flat ./
	deb [signed-by=0123456789abcdef0123456789abcdef01234567!,/k.gpg] http://x.org/e sid main
deb [check-valid-until=no#x] http://x.org/h sid main
`
	got, err := ParseSourcesList(strings.NewReader(in), "s.list")
	if err != nil {
		t.Fatal(err)
	}
	want := []SourceEntry{
		{Types: []string{"deb"}, URIs: []string{"http://deb.debian.org/debian"}, Suites: []string{"bookworm"},
			Components: []string{"main", "contrib"}, Enabled: true, Options: map[string]string{}, File: "s.list", Line: 2},
		{Types: []string{"deb-src"}, URIs: []string{"http://x.org/d"}, Suites: []string{"stable"},
			Components: []string{"main"}, Architectures: []string{"amd64", "i386"},
			SignedBy: []string{"/usr/share/keyrings/k.gpg"}, Trusted: true, Enabled: true,
			Options: map[string]string{"arch": "amd64,i386", "signed-by": "/usr/share/keyrings/k.gpg", "trusted": "yes"},
			File:    "s.list", Line: 3},
		{Types: []string{"deb"}, URIs: []string{"http://x.org/a b"}, Suites: []string{"sid"}, Components: []string{"main"},
			Enabled: true, Options: map[string]string{"arch+": "armhf", "arch-": "i386", "lang": "de"}, File: "s.list", Line: 4},
		{Types: []string{"deb"}, URIs: []string{"http://x.org/flat"}, Suites: []string{"./"}, Architectures: []string{"amd64"},
			Enabled: true, Flat: true, Options: map[string]string{"arch": "amd64"}, File: "s.list", Line: 5},
		{Types: []string{"deb"}, URIs: []string{"http://x.org/e"}, Suites: []string{"sid"}, Components: []string{"main"},
			SignedBy: []string{"0123456789ABCDEF0123456789ABCDEF01234567!", "/k.gpg"}, Enabled: true,
			Options: map[string]string{"signed-by": "0123456789abcdef0123456789abcdef01234567!,/k.gpg"}, File: "s.list", Line: 6},
		{Types: []string{"deb"}, URIs: []string{"http://x.org/h"}, Suites: []string{"sid"}, Components: []string{"main"},
			Enabled: true, Options: map[string]string{"check-valid-until": "no#x"}, File: "s.list", Line: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	all := []string{"amd64", "i386"}
	if a := got[2].ArchitecturesFor(all); !reflect.DeepEqual(a, []string{"amd64", "armhf"}) {
		t.Errorf("ArchitecturesFor(arch+/arch-) = %q", a)
	}
	if a := got[1].ArchitecturesFor([]string{"s390x"}); !reflect.DeepEqual(a, []string{"amd64", "i386"}) {
		t.Errorf("ArchitecturesFor(arch=) = %q", a)
	}
}

func TestParseSourcesListErrors(t *testing.T) {
	for _, line := range []string{
		"deb",                                     // no URI
		"deb http://x.org/d",                      // no suite
		"deb http://x.org/d sid",                  // no component
		"deb http://x.org/d ./ main",              // flat with component
		"rpm http://x.org/d sid main",             // unknown type
		"deb [arch] http://x.org/d sid main",      // option without =
		"deb [=x] http://x.org/d sid main",        // option without key
		"deb [ab=] http://x.org/d sid main",       // option without value
		"deb [arch=amd64 http://x.org/d sid main", // unterminated options
		"deb nocolon sid main",                    // URI without ':'
		"deb [signed-by=ABCD] http://x.org/d sid main",
		"\vdeb http://x.org/d sid main",
	} {
		_, err := ParseSourcesList(strings.NewReader("\n"+line+"\n"), "s.list")
		if err == nil || !strings.HasPrefix(err.Error(), "s.list:2:") {
			t.Errorf("%q: err = %v, want s.list:2: ...", line, err)
		}
	}
}

const testArmoredKey = `Types: deb
URIs: https://x.org/repo
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGN0
   AAAA
 -----END PGP PUBLIC KEY BLOCK-----
`

func TestParseDeb822Sources(t *testing.T) {
	in := `# leading comment
Types: deb deb-src
URIs: http://a.org/debian
  http://b.org/debian
Suites: bookworm
# a comment inside the stanza
 bookworm-updates
Components: main
Architectures: amd64 i386
Architectures-Remove: i386
Trusted: yes
Check-Valid-Until: no
X-Repolib-Name: ignored

Types: deb
Enabled: no
URIs: http://c.org/debian
Suites: sid

` + testArmoredKey + `
Types: deb
URIs: http://d.org/flat
Suites: ./ sub/
`
	got, err := ParseDeb822Sources(strings.NewReader(in), "x.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d entries: %+v", len(got), got)
	}
	e := got[0]
	if !reflect.DeepEqual(e.Types, []string{"deb", "deb-src"}) || !reflect.DeepEqual(e.URIs, []string{"http://a.org/debian", "http://b.org/debian"}) ||
		!reflect.DeepEqual(e.Suites, []string{"bookworm", "bookworm-updates"}) || !reflect.DeepEqual(e.Architectures, []string{"amd64", "i386"}) ||
		!e.Trusted || !e.Enabled || e.Line != 2 || e.Options["check-valid-until"] != "no" || e.Options["arch-"] != "i386" {
		t.Errorf("stanza 1: %+v", e)
	}
	if got[1].Enabled || got[1].Line != 15 {
		t.Errorf("stanza 2 must be disabled (and is not checked for Components): %+v", got[1])
	}
	key := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGN0\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"
	if !reflect.DeepEqual(got[2].SignedBy, []string{key}) || got[2].Line != 20 {
		t.Errorf("inline key: %q (line %d)", got[2].SignedBy, got[2].Line)
	}
	if !got[3].Flat || got[3].Components != nil {
		t.Errorf("flat stanza: %+v", got[3])
	}
}

func TestParseDeb822SourcesErrors(t *testing.T) {
	for _, in := range []string{
		"URIs: http://x.org\nSuites: sid\nComponents: main\n",             // no Types
		"Types: rpm\nURIs: http://x.org\nSuites: sid\nComponents: main\n", // unknown type
		"Types: deb\nSuites: sid\nComponents: main\n",                     // no URIs
		"Types: deb\nURIs: http://x.org\nComponents: main\n",              // no Suites
		"Types: deb\nURIs: http://x.org\nSuites: sid\n",                   // no Components
		"Types: deb\nURIs: http://x.org\nSuites: ./\nComponents: main\n",  // flat with components
		"Types: deb\nURIs: x.org\nSuites: sid\nComponents: main\n",        // URI without ':'
		"Types: deb\nURIs: http://x.org\nSuites: sid\nComponents: main\nSigned-By: nope\n",
		"no colon here\n",
	} {
		_, err := ParseDeb822Sources(strings.NewReader("\n\n"+in), "x.sources")
		if err == nil || !strings.HasPrefix(err.Error(), "x.sources:3:") {
			t.Errorf("%q: err = %v, want x.sources:3: ...", in, err)
		}
	}
}

// TestDeb822BlankLines: only an empty line ends a stanza; a line of spaces
// continues the previous field, so the second "Types" overrides the first
// within one stanza, as in apt.
func TestDeb822BlankLines(t *testing.T) {
	in := "Types: deb\nURIs: http://a.org\nSuites: s1\nComponents: main\n  \nTypes: deb-src\nURIs: http://b.org\n\r\n\n"
	got, err := ParseDeb822Sources(strings.NewReader(in), "x.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0].Types, []string{"deb-src"}) || got[0].URIs[0] != "http://b.org" {
		t.Errorf("got %+v", got)
	}
}

func TestLoadSourcesTestdata(t *testing.T) {
	var notices []string
	conf := aptDefaultConfig()
	conf.Warn = func(msg string) { notices = append(notices, msg) }
	got, err := LoadSources("testdata/aptconf", conf)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata/aptconf", "etc/apt/sources.list.d/debian.sources")
	want := []SourceEntry{
		{Types: []string{"deb"}, URIs: []string{"http://deb.debian.org/debian"}, Suites: []string{"bookworm", "bookworm-updates"},
			Components: []string{"main"}, SignedBy: []string{"/usr/share/keyrings/debian-archive-keyring.gpg"}, Enabled: true,
			Options: map[string]string{"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}, File: file, Line: 1},
		{Types: []string{"deb"}, URIs: []string{"http://deb.debian.org/debian-security"}, Suites: []string{"bookworm-security"},
			Components: []string{"main"}, SignedBy: []string{"/usr/share/keyrings/debian-archive-keyring.gpg"}, Enabled: true,
			Options: map[string]string{"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}, File: file, Line: 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if len(notices) != 2 || !strings.Contains(notices[0], "google-cloud-sdk.list.disabled-by-farm") {
		t.Errorf("notices: %q", notices)
	}
}

func TestLoadSourcesFileSelection(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/apt/sources.list.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	line := func(n string) string { return "deb http://x.org/" + n + " sid main\n" }
	files := map[string]string{
		"b.list": line("b"), "a.list": line("a"), "c.sources": "Types: deb\nURIs: http://x.org/c\nSuites: sid\nComponents: main\n",
		"d.list.save": line("bad"), "e": line("bad"), "f.list.disabled": line("bad"), "g h.list": line("bad"),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte(line("main")), 0o644); err != nil {
		t.Fatal(err)
	}
	var notices []string
	conf := aptDefaultConfig()
	conf.Warn = func(msg string) { notices = append(notices, msg) }
	got, err := LoadSources(root, conf)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, e := range got {
		uris = append(uris, e.URIs...)
	}
	if want := []string{"http://x.org/main", "http://x.org/a", "http://x.org/b", "http://x.org/c"}; !reflect.DeepEqual(uris, want) {
		t.Errorf("read %q, want %q", uris, want)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "'e'") {
		t.Errorf("notices (only 'e' is not silently ignored): %q", notices)
	}
}

// indexTargets expands entries into apt-get indextargets lines
// "ENTRY|TYPE|REPO_URI|RELEASE|COMPONENT|ARCH|IDENTIFIER" for the Packages
// and Sources targets (architecture "all" left out).
func indexTargets(entries []SourceEntry, archs []string) []string {
	var out []string
	count := map[string]int{}
	for _, e := range entries {
		count[e.File]++
		where := fmt.Sprintf("%s:%d", e.File, e.Line)
		if strings.HasSuffix(e.File, ".sources") {
			where = fmt.Sprintf("%s:%d", e.File, count[e.File])
		}
		if !e.Enabled {
			continue
		}
		for _, typ := range e.Types {
			for _, uri := range e.URIs {
				if !strings.HasSuffix(uri, "/") {
					uri += "/"
				}
				for _, suite := range e.Suites {
					out = append(out, targetLines(where, typ, uri, suite, e.Components, e.ArchitecturesFor(archs))...)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func targetLines(where, typ, uri, suite string, comps, archs []string) []string {
	if len(comps) == 0 {
		comps = []string{"$(COMPONENT)"}
		archs = []string{"$(ARCHITECTURE)"}
	}
	var out []string
	for _, c := range comps {
		if typ == "deb-src" {
			out = append(out, strings.Join([]string{where, typ, uri, suite, c, "$(ARCHITECTURE)", "Sources"}, "|"))
			continue
		}
		for _, a := range archs {
			if a != "all" {
				out = append(out, strings.Join([]string{where, typ, uri, suite, c, a, "Packages"}, "|"))
			}
		}
	}
	return out
}

// aptIndexTargets runs apt-get indextargets with the given options.
func aptIndexTargets(t *testing.T, opts ...string) ([]string, error) {
	t.Helper()
	args := append([]string{"indextargets", "--no-release-info", "--format",
		"$(SOURCESENTRY)|$(TARGET_OF)|$(REPO_URI)|$(RELEASE)|$(COMPONENT)|$(ARCHITECTURE)|$(IDENTIFIER)"}, opts...)
	cmd := exec.Command(aptOracle(t, "apt-get"), args...)
	cmd.Env = aptEnv()
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "|")
		if len(f) == 7 && (f[6] == "Packages" || f[6] == "Sources") && f[5] != "all" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines, nil
}

func systemArchitectures(t *testing.T, conf *AptConfig) []string {
	out, err := exec.Command(aptOracle(t, "dpkg"), "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ReadDpkgArch("/")
	if err != nil {
		t.Fatal(err)
	}
	return conf.Architectures(strings.TrimSpace(string(out)), foreign)
}

// TestLoadSourcesAgainstApt compares this machine's sources with the index
// targets apt derives from them.
func TestLoadSourcesAgainstApt(t *testing.T) {
	aptOracle(t, "apt-get")
	conf, err := LoadAptConfig("/")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := LoadSources("/", conf)
	if err != nil {
		t.Fatal(err)
	}
	want, err := aptIndexTargets(t)
	if err != nil {
		t.Fatalf("apt-get indextargets: %v", err)
	}
	if got := indexTargets(entries, systemArchitectures(t, conf)); !reflect.DeepEqual(got, want) {
		t.Errorf("targets differ:\n got %q\nwant %q", got, want)
	}
}

// sourcesCases are sources files read both by us and by apt-get (as its
// only source list); apt must reject exactly those we reject.
var sourcesCases = []struct{ name, body string }{
	{"opts.list", "deb [arch=amd64,i386 lang=none] http://x.org/d stable main contrib\n" +
		"deb-src [ signed-by=/k.gpg ] http://x.org/d stable main # c\n" +
		"deb [arch+=armhf arch-=i386] http://x.org/e sid main\n" +
		"deb [arch+=armhf,arch-=i386] http://x.org/e2 sid main\n" +
		"deb [arch=amd64 ]http://x.org/f sid main\n" +
		"deb \"http://x.org/q q\" sid main\n" +
		"deb http://x.org/flat ./\n" +
		"deb http://x.org/flat2 sub/dir/\n"},
	{"flat.sources", "Types: deb\nURIs: http://x.org/flat\nSuites: ./ sub/\n"},
	{"multi.sources", "# c\nTypes: deb deb-src\nURIs: http://x.org/a\n  http://x.org/b\nSuites: s1\n# inner\n s2\n" +
		"Components: main c2\nArchitectures: amd64 arm64\n\nTypes: deb\nEnabled: no\nURIs: http://x.org/z\nSuites: z\n\n" +
		"Types: deb\nURIs: http://x.org/c\nSuites: s3\nComponents: main\nArchitectures-Add: s390x\n" +
		"Enabled: yes\n\n\n\nTypes: deb\nURIs: http://x.org/d\nSuites: s4\nComponents: m\n"},
	{"key.sources", testArmoredKey},
	{"spaces.sources", "Types: deb\nURIs: http://x.org/a\nSuites: s1\nComponents: main\n   \nTypes: deb-src\n"},
	{"cr.sources", "Types: deb\r\nURIs: http://x.org/a\r\nSuites: s1\r\nComponents: main\r\n\r\nTypes: deb\r\nURIs: http://x.org/b\r\nSuites: s2\r\nComponents: c\r\n"},
	{"enabled.sources", "Types: deb\nURIs: http://x.org/a\nSuites: s1\nComponents: main\nEnabled: maybe\n"},
	{"emptytypes.sources", "Types:\nURIs: http://x.org/a\n"},
	{"notype.list", "deb\n"},
	{"nocomp.list", "deb http://x.org/a sid\n"},
	{"flatcomp.list", "deb http://x.org/a ./ main\n"},
	{"badopt.list", "deb [arch] http://x.org/a sid main\n"},
	{"badfpr.list", "deb [signed-by=0123] http://x.org/a sid main\n"},
	{"unknown.list", "deb-foo http://x.org/a sid main\n"},
	{"nouri.sources", "Types: deb\nSuites: s\nComponents: main\n"},
	{"flatcomp.sources", "Types: deb\nURIs: http://x.org/a\nSuites: ./\nComponents: main\n"},
	{"badtype.sources", "Types: deb rpm\nURIs: http://x.org/a\nSuites: s\nComponents: main\n"},
	{"nocolon.sources", "Types: deb\nURIs x.org/a\n"},
	{"junk.sources", "Types: deb\nURIs: http://x.org/a\nSuites: s\nComponents: main\njunk\nArchitectures: arm64\n"},
	{"junkuri.sources", "Types: deb\njunk\nURIs: http://x.org/a\nSuites: s\nComponents: main\n"},
	{"nospace.list", "deb [arch=amd64]http://x.org/f sid main\n"},
	{"commentopt.list", "deb [arch=amd64 #x] http://x.org/f sid main # y\n"},
	{"quoted.list", "deb [\"arch=amd64\"] \"http://x.org/f\" \"sid\" \"ma\"in %41\n"},
}

func TestSourcesAgainstAptGet(t *testing.T) {
	aptOracle(t, "apt-get")
	conf, err := LoadAptConfig("/")
	if err != nil {
		t.Fatal(err)
	}
	archs := systemArchitectures(t, conf)
	dir := t.TempDir()
	targets, rejected := 0, 0
	for i, c := range sourcesCases {
		path := filepath.Join(dir, strconv.Itoa(i)+c.name)
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		want, aptErr := aptIndexTargets(t, "-o", "Dir::Etc::sourcelist="+path, "-o", "Dir::Etc::sourceparts=/dev/null")
		entries, ourErr := ReadSourcesFile(path)
		if (aptErr != nil) != (ourErr != nil) {
			t.Errorf("%s: apt error %v, our error %v", c.name, aptErr, ourErr)
			continue
		}
		if aptErr != nil {
			rejected++
			continue
		}
		if got := indexTargets(entries, archs); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, want)
		}
		targets += len(want)
	}
	if targets < 40 {
		t.Errorf("only %d targets compared: is apt-get reading the test files?", targets)
	}
	t.Logf("%d index targets and %d rejected files agree with apt-get", targets, rejected)
}

func FuzzParseDeb822Sources(f *testing.F) {
	for _, c := range sourcesCases {
		f.Add(c.body)
	}
	f.Add(testArmoredKey)
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := ParseDeb822Sources(strings.NewReader(in), "fuzz.sources")
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Enabled && len(e.Types) > 0 && (len(e.URIs) == 0 || len(e.Suites) == 0) {
				t.Fatalf("accepted an enabled stanza without URIs or Suites: %+v", e)
			}
			e.ArchitecturesFor([]string{"amd64"})
		}
		_, _ = ParseSourcesList(strings.NewReader(in), "fuzz.list")
	})
}
