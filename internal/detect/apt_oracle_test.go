package detect

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/deb"
)

// TestPolicyAgainstApt generates many small worlds (an installed set, a
// few suites with different Release flags, random pins, sometimes a
// default release and a foreign architecture), lets the real apt compute
// `apt list --upgradable` for each (in an isolated -o Dir= tree with local
// file: repositories), and requires detect.Updates to return the same
// entries, including which are security updates.
func TestPolicyAgainstApt(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
			t.Fatal("apt-get not found")
		}
		t.Skip("apt-get not found: the apt oracle needs a Debian system")
	}
	n := 200
	if testing.Short() {
		n = 20
	}
	for i := 0; i < n; i++ {
		w := genWorld(rand.New(rand.NewSource(int64(i))))
		dir := t.TempDir()
		want := w.runApt(t, dir)
		got := w.runDetect(t, dir)
		if d := diffEntries(want, got); d != "" {
			t.Fatalf("world %d differs from apt:\n%s\npreferences:\n%s\ndefault release %q", i, d, w.prefs, w.defaultRelease)
		}
	}
}

type suite struct {
	name, codename, label    string
	notAuto, butAutoUpgrades bool
	pkgs                     []pkgVer
}

type pkgVer struct{ name, arch, version, source string }

type world struct {
	archs          []string
	installed      []deb.InstalledPackage
	suites         []suite
	prefs          string
	defaultRelease string
}

var versionPool = []string{"0.9-1", "1.0-1", "1.0-1+deb12u1", "1.0-1~bpo12+1", "1.0-2", "1.1-1", "1.1~rc1-1", "1:0.8-1", "2.0-1"}

func genWorld(r *rand.Rand) *world {
	w := &world{archs: []string{"amd64"}}
	if r.Intn(3) == 0 {
		w.archs = append(w.archs, "i386")
	}
	w.suites = []suite{
		{name: "stable", codename: "bookworm", label: "Debian"},
		{name: "stable-security", codename: "bookworm-security", label: "Debian-Security"},
		{name: "stable-backports", codename: "bookworm-backports", label: "Debian Backports", notAuto: true, butAutoUpgrades: true},
		{name: "experimental", codename: "rc-buggy", label: "Debian", notAuto: true},
	}
	for p := 0; p < 14; p++ {
		name := fmt.Sprintf("pkg%d", p)
		arch := "amd64"
		switch {
		case p%5 == 4:
			arch = "all"
		case p%7 == 6 && len(w.archs) > 1:
			arch = "i386"
		}
		source := name
		if p%3 == 0 {
			source = fmt.Sprintf("src%d", p%2)
		}
		inst := versionPool[r.Intn(len(versionPool))]
		want := "install"
		if r.Intn(8) == 0 {
			want = "hold"
		}
		w.installed = append(w.installed, deb.InstalledPackage{Name: name, Arch: arch, Version: inst, Source: source,
			SourceVersion: inst, Want: want, Flag: "ok", State: "installed"})
		for s := range w.suites {
			if r.Intn(2) == 0 {
				w.suites[s].pkgs = append(w.suites[s].pkgs, pkgVer{name, arch, versionPool[r.Intn(len(versionPool))], source})
			}
		}
	}
	w.prefs = genPrefs(r, w)
	if r.Intn(4) == 0 {
		w.defaultRelease = []string{"bookworm", "stable-backports", "experimental", "stable-security"}[r.Intn(4)]
	}
	return w
}

func genPrefs(r *rand.Rand, w *world) string {
	prios := []string{"-1", "1", "50", "100", "101", "499", "500", "501", "600", "990", "1001", "never"}
	var b strings.Builder
	for i := r.Intn(5); i > 0; i-- {
		pkg := fmt.Sprintf("pkg%d", r.Intn(14))
		prio := prios[r.Intn(len(prios))]
		var pkgLine, pin string
		switch r.Intn(7) {
		case 0:
			pkgLine = "*"
			pin = "release a=" + w.suites[r.Intn(len(w.suites))].name
		case 1:
			pkgLine = "*"
			pin = "release l=Debian-Security"
		case 2:
			pkgLine, pin = pkg, "version "+versionPool[r.Intn(len(versionPool))]
		case 3:
			pkgLine, pin = pkg, "version 1.0*"
		case 4:
			pkgLine, pin = "pkg1* "+pkg, "release n="+w.suites[r.Intn(len(w.suites))].codename
		case 5:
			pkgLine, pin = "/^pkg[0-3]$/", "release o=Debian,a=stable"
		case 6:
			pkgLine, pin = "src:src1", "version 1.1*"
		}
		if prio == "never" && pkgLine != "*" {
			prio = "-10"
		}
		fmt.Fprintf(&b, "Package: %s\nPin: %s\nPin-Priority: %s\n\n", pkgLine, pin, prio)
	}
	return b.String()
}

// writeTree writes the dpkg status, the file: repositories and apt's config under dir.
func (w *world) writeTree(t *testing.T, dir string) {
	t.Helper()
	var status strings.Builder
	for _, p := range w.installed {
		fmt.Fprintf(&status, "Package: %s\nStatus: %s ok installed\nArchitecture: %s\nSource: %s\nVersion: %s\nDescription: x\n\n",
			p.Name, p.Want, p.Arch, p.Source, p.Version)
	}
	mustWrite(t, filepath.Join(dir, "var/lib/dpkg/status"), status.String())
	var sources strings.Builder
	for _, s := range w.suites {
		var files strings.Builder
		for _, arch := range w.archs {
			var pk strings.Builder
			for _, p := range s.pkgs {
				if p.arch == arch || (p.arch == "all" && arch == w.archs[0]) {
					fmt.Fprintf(&pk, "Package: %s\nArchitecture: %s\nVersion: %s\nSource: %s\nFilename: pool/%s_%s.deb\nSize: 1\nDescription: x\n\n",
						p.name, p.arch, p.version, p.source, p.name, p.version)
				}
			}
			rel := "main/binary-" + arch + "/Packages"
			mustWrite(t, filepath.Join(dir, "repo/dists", s.name, rel), pk.String())
			fmt.Fprintf(&files, " %x %d %s\n", sha256.Sum256([]byte(pk.String())), pk.Len(), rel)
		}
		release := fmt.Sprintf("Origin: Debian\nLabel: %s\nSuite: %s\nCodename: %s\nVersion: 12\nDate: Sat, 16 May 2026 09:00:00 UTC\nArchitectures: %s\nComponents: main\n",
			s.label, s.name, s.codename, strings.Join(w.archs, " "))
		if s.notAuto {
			release += "NotAutomatic: yes\n"
		}
		if s.butAutoUpgrades {
			release += "ButAutomaticUpgrades: yes\n"
		}
		mustWrite(t, filepath.Join(dir, "repo/dists", s.name, "Release"), release+"SHA256:\n"+files.String())
		fmt.Fprintf(&sources, "deb [trusted=yes] file:%s/repo %s main\n", dir, s.name)
	}
	mustWrite(t, filepath.Join(dir, "etc/apt/sources.list"), sources.String())
	mustWrite(t, filepath.Join(dir, "etc/apt/preferences"), w.prefs)
	for _, d := range []string{"etc/apt/preferences.d", "etc/apt/apt.conf.d", "etc/apt/sources.list.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("Dir %q;\nDir::Etc::Parts %q;\nAPT::Architecture \"amd64\";\nAPT::Architectures { %s };\nAPT::Sandbox::User \"root\";\nDir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\nAcquire::Languages \"none\";\n",
		dir+"/", "apt.conf.d", quoteAll(w.archs))
	if w.defaultRelease != "" {
		conf += fmt.Sprintf("APT::Default-Release %q;\n", w.defaultRelease)
	}
	mustWrite(t, filepath.Join(dir, "apt.conf"), conf)
}

func quoteAll(list []string) string {
	var b strings.Builder
	for _, s := range list {
		fmt.Fprintf(&b, "%q; ", s)
	}
	return b.String()
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *world) runApt(t *testing.T, dir string) []string {
	t.Helper()
	w.writeTree(t, dir)
	env := append(os.Environ(), "APT_CONFIG="+filepath.Join(dir, "apt.conf"), "LC_ALL=C")
	for _, args := range [][]string{{"apt-get", "-q", "update"}, {"apt", "list", "--upgradable"}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if args[0] == "apt" {
			return parseAptLines(t, string(out))
		}
	}
	return nil
}

func parseAptLines(t *testing.T, out string) []string {
	var got []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "Listing..." || strings.HasPrefix(line, "WARNING") {
			continue
		}
		if len(f) != 6 {
			t.Fatalf("unexpected apt list line %q", line)
		}
		nameSuites := strings.SplitN(f[0], "/", 2)
		name, _, _ := strings.Cut(nameSuites[0], ":")
		sec := strings.Contains(nameSuites[1], "-security")
		got = append(got, entry4(name, f[2], strings.TrimSuffix(f[5], "]"), f[1], sec))
	}
	sort.Strings(got)
	return got
}

func entry4(name, arch, inst, cand string, sec bool) string {
	return fmt.Sprintf("%s:%s %s -> %s security=%v", name, arch, inst, cand, sec)
}

func (w *world) runDetect(t *testing.T, dir string) []string {
	t.Helper()
	pins, err := deb.ParsePreferences(strings.NewReader(w.prefs), "preferences")
	if err != nil {
		t.Fatal(err)
	}
	in := Input{NativeArch: "amd64", Installed: w.installed, Pins: pins, DefaultRelease: w.defaultRelease}
	for _, s := range w.suites {
		for _, arch := range w.archs {
			in.Files = append(in.Files, PackageFile{Origin: "Debian", Label: s.label, Archive: s.name, Codename: s.codename,
				Version: "12", Component: "main", Arch: arch, NotAutomatic: s.notAuto, ButAutomaticUpgrades: s.butAutoUpgrades})
			for _, p := range s.pkgs {
				if p.arch == arch || (p.arch == "all" && arch == w.archs[0]) {
					in.Available = append(in.Available, Available{Name: p.name, Arch: p.arch, Version: p.version,
						Source: p.source, SourceVersion: p.version, File: len(in.Files) - 1})
				}
			}
		}
	}
	var got []string
	for _, u := range Updates(in) {
		got = append(got, entry4(u.Package, u.Arch, u.Installed, u.Candidate, u.Security))
	}
	sort.Strings(got)
	return got
}

func diffEntries(want, got []string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, s := range want {
		w[s] = true
	}
	for _, s := range got {
		g[s] = true
	}
	var b strings.Builder
	for _, s := range want {
		if !g[s] {
			fmt.Fprintf(&b, "  only apt:    %s\n", s)
		}
	}
	for _, s := range got {
		if !w[s] {
			fmt.Fprintf(&b, "  only detect: %s\n", s)
		}
	}
	return b.String()
}
