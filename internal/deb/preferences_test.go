package deb

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestParsePreferences(t *testing.T) {
	in := `# comment
Explanation: pin foo
Package: foo bar
  baz
Pin: version 1.2*
Pin-Priority: 1001

Package: *
Pin: release o=Debian,
 a=stable
Pin-Priority: never

Package: src:linux /^linux-image/ nginx:amd64
Pin: origin "deb.example.org"
Pin-Priority: -10

Package: nopin
Pin-Priority: 5

Package: *
Pin: version 1.0
Pin-Priority: 100

Package: weird
Pin: Bogus data
Pin-Priority: 100

Package: lead
Pin: RELEASE   n=bookworm
Pin-Priority: 500abc

Package: clamp
Pin: release a=x
Pin-Priority: -32768
`
	var warnings []string
	got, err := ParsePreferencesWarn(strings.NewReader(in), "prefs", func(m string) { warnings = append(warnings, m) })
	if err != nil {
		t.Fatal(err)
	}
	want := []Pin{
		{Packages: []string{"foo", "bar", "baz"}, Type: "version", Data: "1.2*", Priority: 1001, File: "prefs", Line: 2},
		{Type: "release", Data: "o=Debian,\n a=stable", Priority: NeverPinPriority, Never: true, File: "prefs", Line: 8},
		{Packages: []string{"src:linux", "/^linux-image/", "nginx:amd64"}, Type: "origin", Data: `"deb.example.org"`,
			Priority: -10, File: "prefs", Line: 13},
		{Packages: []string{"lead"}, Type: "release", Data: "n=bookworm", Priority: 500, File: "prefs", Line: 28},
		{Packages: []string{"clamp"}, Type: "release", Data: "a=x", Priority: -32767, File: "prefs", Line: 32},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	wantWarn := []string{"prefs:20: did not understand pin type version", "prefs:24: did not understand pin type Bogus"}
	if !reflect.DeepEqual(warnings, wantWarn) {
		t.Errorf("warnings %q, want %q", warnings, wantWarn)
	}
}

func TestParsePreferencesErrors(t *testing.T) {
	for _, rec := range []string{
		"Pin: release a=x\nPin-Priority: 5",                    // no Package
		"Package: foo\nPin: release a=x\nPin-Priority: never",  // never for a named package
		"Package: foo\nPin: release a=x\nPin-Priority: 0",      // zero
		"Package: foo\nPin: release a=x",                       // no priority
		"Package: foo\nPin: release a=x\nPin-Priority: abc",    // not a number
		"Package: foo\nPin: release a=x\nPin-Priority: 32768",  // out of range
		"Package: foo\nPin: release a=x\nPin-Priority: -32769", // out of range
		"Package: foo\nPin: release a=x\nPin-Priority: 9999999999999",
		"no colon\nPackage: foo\nPin: release a=x\nPin-Priority: 5", // joined into one odd field: no Package
	} {
		_, err := ParsePreferences(strings.NewReader("\n"+rec+"\n"), "prefs")
		if err == nil || !strings.HasPrefix(err.Error(), "prefs:2:") {
			t.Errorf("%q: err = %v, want prefs:2: ...", rec, err)
		}
	}
}

func TestLoadPreferencesTestdata(t *testing.T) {
	got, err := LoadPreferences("testdata/aptconf", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata/aptconf", "etc/apt/preferences.d")
	want := []Pin{
		{Packages: []string{"nodejs"}, Type: "origin", Data: "deb.nodesource.com", Priority: 600, File: filepath.Join(dir, "nodejs"), Line: 1},
		{Packages: []string{"nsolid"}, Type: "origin", Data: "deb.nodesource.com", Priority: 600, File: filepath.Join(dir, "nsolid"), Line: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadPreferencesFileSelection(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/apt/preferences.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := func(name string) string { return "Package: " + name + "\nPin: release a=x\nPin-Priority: 5\n" }
	files := map[string]string{
		filepath.Join(root, "etc/apt/preferences"): rec("main"),
		filepath.Join(d, "b.pref"):                 rec("b"), filepath.Join(d, "a"): rec("a"),
		filepath.Join(d, "c.txt"): rec("bad"), filepath.Join(d, "d.pref.save"): rec("bad"),
		filepath.Join(d, "e.pref~"): rec("bad"), filepath.Join(d, "f.list"): rec("bad"),
	}
	for path, body := range files {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var notices []string
	conf := aptDefaultConfig()
	conf.Warn = func(m string) { notices = append(notices, m) }
	got, err := LoadPreferences(root, conf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Packages...)
	}
	if want := []string{"main", "a", "b"}; !reflect.DeepEqual(names, want) {
		t.Errorf("read %q, want %q", names, want)
	}
	if len(notices) != 2 {
		t.Errorf("notices for c.txt and f.list only: %q", notices)
	}
}

// prefWorld is a dpkg status file of three installed packages that
// apt-cache policy reads with no sources, so that "Pinned packages:" shows
// which package pins apt applied.
var prefWorld = []struct{ name, arch, version string }{
	{"foo", "amd64", "1.0-1"}, {"bar-baz", "all", "2.0"}, {"qux", "amd64", "3.0~rc1"},
}

func writePrefWorld(t *testing.T, dir string) (status string) {
	var b strings.Builder
	for _, p := range prefWorld {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: misc\n"+
			"Installed-Size: 1\nMaintainer: x <x@example.org>\nArchitecture: %s\nVersion: %s\nDescription: x\n\n",
			p.name, p.arch, p.version)
	}
	status = filepath.Join(dir, "status")
	if err := os.WriteFile(status, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "lists"), 0o755); err != nil {
		t.Fatal(err)
	}
	return status
}

// aptPinned runs apt-cache policy on the world with prefs as the only
// preferences file: the "Pinned packages" lines, the number of warnings,
// and whether apt failed.
func aptPinned(t *testing.T, dir, prefs string) (lines []string, warnings int, failed bool) {
	t.Helper()
	cmd := exec.Command(aptOracle(t, "apt-cache"), "policy",
		"-o", "Dir::Etc::preferences="+prefs, "-o", "Dir::Etc::preferencesparts=/dev/null",
		"-o", "Dir::State::lists="+filepath.Join(dir, "lists"), "-o", "Dir::State::status="+filepath.Join(dir, "status"),
		"-o", "Dir::Etc::sourcelist=/dev/null", "-o", "Dir::Etc::sourceparts=/dev/null", "-o", "Dir::Cache::pkgcache=",
		"-o", "Dir::Cache::srcpkgcache=", "-o", "APT::Architecture=amd64", "-o", "APT::Architectures::=amd64")
	cmd.Env = aptEnv("APT_CONFIG=" + isolatedAptConfig(t, ""))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	pinned := false
	for _, l := range strings.Split(string(out), "\n") {
		if pinned && strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
		pinned = pinned || l == "Pinned packages:"
	}
	sort.Strings(lines)
	return lines, strings.Count(stderr.String(), "W: "), err != nil
}

// pinnedAsApt applies package pins the way apt's CreatePin does for the
// world's versions (all in the status file, whose archive is "now"): pins
// in order, the first one matching a version sets its priority.
func pinnedAsApt(pins []Pin) []string {
	prio := map[string]int{}
	for _, pin := range pins {
		for _, spec := range pin.Packages {
			for _, p := range prefWorld {
				if _, done := prio[p.name]; !done && pinNameMatches(spec, p.name) && pinVersionMatches(pin, p.version) {
					prio[p.name] = pin.Priority
				}
			}
		}
	}
	var lines []string
	for name, n := range prio {
		for _, p := range prefWorld {
			if p.name == name {
				lines = append(lines, fmt.Sprintf("%s -> %s with priority %d", name, p.version, n))
			}
		}
	}
	sort.Strings(lines)
	return lines
}

func pinNameMatches(spec, name string) bool {
	spec = strings.TrimPrefix(spec, "src:") // sources are named as their packages here
	if (len(spec) > 1 && spec[0] == '/' && spec[len(spec)-1] == '/') || strings.ContainsAny(spec, "*[?") {
		return spec != name && ExpressionMatches(spec, name)
	}
	return spec == name
}

func pinVersionMatches(pin Pin, version string) bool {
	switch pin.Type {
	case "version":
		v, prefix := aptCutStar(pin.Data)
		if len(version) >= len(v) && (prefix || len(version) == len(v)) && aptEqualFold(version[:len(v)], v) {
			return true
		}
		return ExpressionMatches(v, version)
	case "release": // the status file has no Release: archive and component are "now"
		m := ParseReleaseMatch(pin.Data)
		if m.Origin != "" || m.Label != "" || m.Version != "" || m.Codename != "" || m.Architecture != "" {
			return false
		}
		for _, pat := range []string{m.Archive, m.Release, m.Component} {
			if pat != "" && !ExpressionMatches(pat, "now") {
				return false
			}
		}
		return true
	}
	return false
}

var prefNames = []string{"foo", "bar-baz", "qux", "nope", "fo*", "FOO", "/^ba/", "/QUX/", "?oo", "src:foo",
	"[bq]*", "*", "src:qu*", "f\\oo"}
var prefPins = []string{"version 1.0-1", "version 1.0*", "version 1*", "version 2.0", "version /^3\\.0/",
	"version 3.0~*", "version *", "release a=now", "release now", "release *", "release o=Debian", "release n=now",
	"release c=now", "release a=stable", "origin \"\"", "origin x", "bogus x", "Release A=NOW", "VERSION 1.0-1",
	"release a=n?w", "release a=/^no/", "version"}
var (
	prefPriorities    = []string{"500", "1001", "-1", "990abc", "32767", "-32768", "+8", "100", "600", "-2"}
	prefBadPriorities = []string{"never", "0", "", "32768", "x"}
)

func randomPreferences(rng *rand.Rand) string {
	var b strings.Builder
	for n := rng.Intn(4); n >= 0; n-- {
		names := prefNames[rng.Intn(len(prefNames))]
		if rng.Intn(3) == 0 {
			names += " " + prefNames[rng.Intn(len(prefNames))]
		}
		if rng.Intn(20) != 0 {
			fmt.Fprintf(&b, "Package: %s\n", names)
		}
		if rng.Intn(10) != 0 {
			fmt.Fprintf(&b, "Pin: %s\n", prefPins[rng.Intn(len(prefPins))])
		}
		p := prefPriorities[rng.Intn(len(prefPriorities))]
		if rng.Intn(10) == 0 {
			p = prefBadPriorities[rng.Intn(len(prefBadPriorities))]
		}
		if p != "" {
			fmt.Fprintf(&b, "Pin-Priority: %s\n", p)
		}
		if rng.Intn(5) == 0 {
			b.WriteString("# comment\nExplanation: x\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestPreferencesAgainstAptCache checks random preferences files against
// apt-cache policy: the same files rejected, the same number of warnings,
// and the same package pins applied to the installed versions.
func TestPreferencesAgainstAptCache(t *testing.T) {
	aptOracle(t, "apt-cache")
	dir := t.TempDir()
	writePrefWorld(t, dir)
	n := 200
	if testing.Short() {
		n = 20
	}
	rng := rand.New(rand.NewSource(5))
	rejected, pinned := 0, 0
	for i := 0; i < n; i++ {
		body := randomPreferences(rng)
		path := filepath.Join(dir, "prefs"+strconv.Itoa(i))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		wantLines, wantWarn, aptFailed := aptPinned(t, dir, path)
		var warns int
		pins, err := ParsePreferencesWarn(strings.NewReader(body), path, func(string) { warns++ })
		switch {
		case (err != nil) != aptFailed:
			t.Errorf("%q: apt failed %v, our error %v", body, aptFailed, err)
		case warns != wantWarn && err == nil:
			t.Errorf("%q: %d warnings, apt printed %d", body, warns, wantWarn)
		case err == nil && !reflect.DeepEqual(pinnedAsApt(pins), wantLines):
			t.Errorf("%q:\n got %q\nwant %q", body, pinnedAsApt(pins), wantLines)
		}
		if aptFailed {
			rejected++
		}
		pinned += len(wantLines)
	}
	t.Logf("%d files (%d rejected by both), %d applied pins agree with apt-cache policy", n, rejected, pinned)
}

func FuzzParsePreferences(f *testing.F) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		f.Add(randomPreferences(rng))
	}
	f.Add("Package: *\nPin: release a=stable\nPin-Priority: never\n")
	f.Fuzz(func(t *testing.T, in string) {
		pins, err := ParsePreferencesWarn(strings.NewReader(in), "fuzz", func(string) {})
		if err != nil {
			return
		}
		for _, p := range pins {
			if p.Priority == 0 || p.Priority < -32768 || p.Priority > 32767 || p.Never != (p.Priority == NeverPinPriority) {
				t.Fatalf("bad priority in %+v", p)
			}
			if p.Type == "release" {
				ParseReleaseMatch(p.Data)
			}
			for _, name := range p.Packages {
				ExpressionMatches(name, "foo")
			}
		}
	})
}
