package rpmassess

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/rpm"
)

const alma9 = "AlmaLinux:9"

// loadTestdata loads testdata/osv: six real AlmaLinux 9 errata cut to
// their open-vm-tools, open-vm-tools-desktop and postgresql entries.
func loadTestdata(t *testing.T) *advisory.OSVSet {
	t.Helper()
	s, err := advisory.LoadOSVDir(os.DirFS("testdata/osv"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 6 || s.Bad != 0 {
		t.Fatalf("testdata/osv: %d records, %d bad (%v), want 6, 0", len(s.Records), s.Bad, s.First)
	}
	return s
}

// pkg builds an installed package; evr is "[epoch:]version-release".
func pkg(t *testing.T, name, evr, arch, srpm string) rpm.Package {
	t.Helper()
	e, err := rpm.ParseEVR(evr)
	if err != nil {
		t.Fatal(err)
	}
	p := rpm.Package{Name: name, Version: e.Version, Release: e.Release, Arch: arch, SourceRPM: srpm}
	if e.Epoch != "" {
		for _, c := range e.Epoch {
			p.Epoch = p.Epoch*10 + int(c-'0')
		}
	}
	return p
}

func date(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestFindingsTestdata checks the rules of the package on real errata,
// one case each, with the answers worked out by hand from the records.
func TestFindingsTestdata(t *testing.T) {
	s := loadTestdata(t)
	const pgModule = "16.14-1.module_el9.8.0+266+1e661e97"
	tests := []struct {
		name, evr, srpm string
		want            *assess.Finding // nil: not affected
	}{
		// Only a bug-fix erratum affects it: dnf upgrade-minimal's choice.
		{"open-vm-tools", "12.5.0-1.el9_6.2", "open-vm-tools-12.5.0-1.el9_6.2.src.rpm", &assess.Finding{
			Candidate: "13.0.0-1.el9_7.1", Source: "open-vm-tools", SourceVersion: "13.0.0-1.el9_7.1",
			Classification: assess.Bugfix, Released: date("2025-11-11"), Advisories: []string{"ALBA-2025:20841"}}},
		// A security fix below the bug fix: the security candidate, and the
		// bug fix above it is not listed.
		{"open-vm-tools-desktop", "12.5.0-1.el9.alma.1", "open-vm-tools-12.5.0-1.el9.alma.1.src.rpm", &assess.Finding{
			Candidate: "12.5.0-1.el9_6.2", Source: "open-vm-tools", SourceVersion: "12.5.0-1.el9_6.2",
			Classification: assess.Security, Released: date("2025-10-07"), Advisories: []string{"ALSA-2025:17428"},
			CVEs: []assess.CVE{{ID: "CVE-2025-41244"}}}},
		// Two security errata: the higher fix fixes both, released with the later.
		{"open-vm-tools", "12.2.5-3.el9_3.2.alma.1", "", &assess.Finding{
			Candidate: "12.5.0-1.el9_6.2", Classification: assess.Security, Released: date("2025-10-07"),
			Advisories: []string{"ALSA-2025:A002", "ALSA-2025:17428"},
			CVEs:       []assess.CVE{{ID: "CVE-2025-22247"}, {ID: "CVE-2025-41244"}}}},
		{"open-vm-tools", "13.0.0-1.el9_7.1", "", nil},
		// Not modular: the postgresql:16 stream's erratum does not apply,
		// though its range from 0 includes 13.23 by the OSV schema alone.
		{"postgresql", "13.23-1.el9_7", "postgresql-13.23-1.el9_7.src.rpm", &assess.Finding{
			Candidate: "13.23-3.el9_8", Source: "postgresql", SourceVersion: "13.23-3.el9_8",
			Classification: assess.Security, Released: date("2026-06-22"),
			Advisories: []string{"ALSA-2026:3730", "ALSA-2026:27741"},
			CVEs: []assess.CVE{{ID: "CVE-2026-2006"}, {ID: "CVE-2026-2004"}, {ID: "CVE-2026-2005"},
				{ID: "CVE-2026-6475"}, {ID: "CVE-2026-6477"}, {ID: "CVE-2026-6478"}, {ID: "CVE-2026-6473"}}}},
		{"postgresql", "13.23-3.el9_8", "", nil},
		// Modular: only the module stream's erratum applies.
		{"postgresql", "16.13-1.module_el9.7.0+213+65e1da69", "", &assess.Finding{
			Candidate: pgModule, Classification: assess.Security, Released: date("2026-06-16"),
			Advisories: []string{"ALSA-2026:26203"},
			CVEs: []assess.CVE{{ID: "CVE-2026-6475"}, {ID: "CVE-2026-6477"}, {ID: "CVE-2026-6478"},
				{ID: "CVE-2026-6473"}}}},
		{"postgresql", pgModule, "", nil},
		// A source rpm with another version-release: no source version.
		{"postgresql", "13.23-3.el9_7", "postgresql-13.23-9.el9_7.src.rpm", &assess.Finding{
			Candidate: "13.23-3.el9_8", Source: "postgresql", Classification: assess.Security,
			Released: date("2026-06-22"), Advisories: []string{"ALSA-2026:27741"},
			CVEs: []assess.CVE{{ID: "CVE-2026-6475"}, {ID: "CVE-2026-6477"}, {ID: "CVE-2026-6478"},
				{ID: "CVE-2026-6473"}}}},
		{"patchloop-probe", "1.0-1.el9", "", nil},
	}
	a := New(s)
	var all []rpm.Package
	for _, tt := range tests {
		p := pkg(t, tt.name, tt.evr, "x86_64", tt.srpm)
		all = append(all, p)
		got, err := a.Findings(alma9, []rpm.Package{p})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if tt.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: %+v, want no finding", p, got)
			}
			continue
		}
		w := *tt.want
		w.Package, w.Arch, w.Installed = tt.name, "x86_64", tt.evr
		if len(got) != 1 || !equalFinding(got[0], w) {
			t.Errorf("%s:\n got %+v\nwant %+v", p, got, w)
		}
	}
	if a.Evaluated() != len(tests) {
		t.Errorf("evaluated %d versions, want %d", a.Evaluated(), len(tests))
	}
	// The same packages again: answered from the memo, the same findings.
	first, err := a.Findings(alma9, all)
	if err != nil {
		t.Fatal(err)
	}
	if a.Evaluated() != len(tests) {
		t.Errorf("after a second pass: evaluated %d versions, want %d", a.Evaluated(), len(tests))
	}
	// Findings are copies: changing one's fields (not its shared,
	// read-only slices) does not change what the next host gets.
	for i := range first {
		first[i].Candidate, first[i].CVEs, first[i].Advisories = "changed", nil, nil
	}
	again, err := Findings(all, alma9, s)
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.Findings(alma9, all)
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, "memo after callers changed their copies", findingLines(second), findingLines(again))
	// The oracle agrees on these too.
	sameLines(t, "testdata/osv", findingLines(again), oracle(t, alma9, "testdata/osv", all))
}

func equalFinding(a, b assess.Finding) bool {
	if !slices.Equal(a.Advisories, b.Advisories) || len(a.CVEs) != len(b.CVEs) || !a.Released.Equal(b.Released) {
		return false
	}
	for i := range a.CVEs {
		if a.CVEs[i].ID != b.CVEs[i].ID || !slices.Equal(a.CVEs[i].CVSS, b.CVEs[i].CVSS) {
			return false
		}
	}
	a.Advisories, b.Advisories, a.CVEs, b.CVEs, a.Released, b.Released = nil, nil, nil, nil, time.Time{}, time.Time{}
	return a.Package == b.Package && a.Arch == b.Arch && a.Installed == b.Installed &&
		a.Candidate == b.Candidate && a.Source == b.Source && a.SourceVersion == b.SourceVersion &&
		a.Classification == b.Classification && a.Suite == b.Suite && a.Urgency == b.Urgency
}

// TestFindingsCVSSAndErrors gives real records severity vectors (the
// AlmaLinux feed has none) and breaks them.
func TestFindingsCVSSAndErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/osv/ALSA-2025:17428.json")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(mod func(*advisory.Record)) *advisory.OSVSet {
		r, err := advisory.ParseOSV(data)
		if err != nil {
			t.Fatal(err)
		}
		mod(r)
		s := &advisory.OSVSet{}
		s.AddRecord(r)
		return s
	}
	const v31 = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"
	p := pkg(t, "open-vm-tools", "12.5.0-1.el9.alma.1", "x86_64", "")

	s := rec(func(r *advisory.Record) {
		r.Severity = []advisory.Severity{{Type: "CVSS_V3", Score: v31}, {Type: "CVSS_V2", Score: "AV:N/AC:L/Au:N/C:P/I:P/A:P"}}
	})
	got, err := Findings([]rpm.Package{p}, alma9, s)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := assess.ParseCVSS(v31)
	if len(got) != 1 || len(got[0].CVEs) != 1 || !slices.Equal(got[0].CVEs[0].CVSS, []assess.CVSS{want}) {
		t.Fatalf("got %+v, want CVE-2025-41244 with the v3.1 vector only", got)
	}
	if want.Score != 7.8 {
		t.Errorf("score %v, want 7.8", want.Score)
	}

	s = rec(func(r *advisory.Record) {
		r.Affected[0].Severity = []advisory.Severity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:X"}}
	})
	_, err = Findings([]rpm.Package{p}, alma9, s)
	if err == nil || !strings.Contains(err.Error(), "ALSA-2025:17428") || !strings.Contains(err.Error(), p.String()) {
		t.Errorf("bad vector: error %v, want one naming the record and the package", err)
	}

	// The same erratum twice (AlmaLinux repeats some across release
	// folders): listed once.
	s = rec(func(*advisory.Record) {})
	r2, _ := advisory.ParseOSV(data)
	s.AddRecord(r2)
	got, err = Findings([]rpm.Package{p}, alma9, s)
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Advisories, []string{"ALSA-2025:17428"}) {
		t.Errorf("duplicate record: %+v, %v", got, err)
	}

	if _, err := Findings([]rpm.Package{p}, "Nowhere:1", s); err == nil {
		t.Error("an ecosystem without a version ordering: no error")
	}
}

func TestEcosystem(t *testing.T) {
	tests := []struct {
		id, version, want string
	}{
		{"almalinux", "9.4", "AlmaLinux:9"},
		{"almalinux", "10.0", "AlmaLinux:10"},
		{"almalinux", "8", "AlmaLinux:8"},
		{"rocky", "9.5", "Rocky Linux:9"},
		{"rhel", "9.4", ""},
		{"almalinux", "", ""},
		{"almalinux", "nine", ""},
	}
	for _, tt := range tests {
		got, err := Ecosystem(rpm.OSRelease{ID: tt.id, VersionID: tt.version, Path: "ROOT/etc/os-release"})
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("%s %s: %q, %v; want %q", tt.id, tt.version, got, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "ROOT/etc/os-release") {
			t.Errorf("%s %s: error %v does not name the file", tt.id, tt.version, err)
		}
	}
}

// TestDetectBuiltRoot builds a root with the real rpmbuild and rpm
// (testdata/mkroot.sh) and checks Detect against the oracle over the
// whole AlmaLinux 9 feed, and against what the errata say.
func TestDetectBuiltRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping rpmbuild runs in -short mode")
	}
	for _, tool := range []string{"rpm", "rpmbuild"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed (apt-get install rpm)", tool)
		}
	}
	s := feedOrSkip(t)
	root := t.TempDir()
	out, err := exec.Command("bash", filepath.Join("testdata", "mkroot.sh"), root).Output()
	if err != nil {
		t.Fatalf("mkroot.sh: %v\n%s", err, stderrOf(err))
	}
	res, err := New(s).Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ecosystem != alma9 || res.OS != "AlmaLinux 9.8" || res.Installed != 10 {
		t.Errorf("ecosystem %q, OS %q, %d packages; want AlmaLinux:9, AlmaLinux 9.8, 10", res.Ecosystem, res.OS, res.Installed)
	}
	// What rpm listed is what we read.
	pkgs, err := rpm.ReadDB(res.DB)
	if err != nil {
		t.Fatal(err)
	}
	qa := qaLines(pkgs)
	slices.Sort(qa)
	sameLines(t, "rpm -qa", qa, splitLines(out))

	got := findingLines(res.Findings)
	sameLines(t, "built root", got, oracle(t, alma9, feedDir, pkgs))
	t.Logf("built root: %d packages, %d findings, oracle agrees on all", len(pkgs), len(got))

	byName := map[string]assess.Finding{}
	for _, f := range res.Findings {
		byName[f.Package] = f
	}
	for _, name := range []string{"vim-minimal", "less", "patchloop-probe"} {
		if f, ok := byName[name]; ok {
			t.Errorf("%s: finding %+v, want none", name, f)
		}
	}
	checks := []struct {
		name, candidate string
		cls             assess.Classification
		has, hasNot     string
	}{
		{"openssl-libs", "1:3.5.5-4.el9_8", assess.Security, "ALSA-2026:1473", "ALSA-2025:21255"},
		{"sudo", "1.9.17p2-3.el9_8", assess.Security, "ALSA-2025:9978", "ALSA-2024:0811"},
		{"python3-setuptools", "53.0.0-13.el9_6.1", assess.Security, "ALSA-2025:10407", "ALSA-2024:5534"},
		{"open-vm-tools", "13.0.0-1.el9_7.1", assess.Bugfix, "ALBA-2025:20841", "ALSA-2025:17428"},
		{"open-vm-tools-desktop", "12.5.0-1.el9_6.2", assess.Security, "ALSA-2025:17428", "ALBA-2025:20841"},
		{"kernel-core", "5.14.0-687.39.1.el9_8", assess.Security, "ALBA-2026:39332", "ALSA-2026:38491"},
		{"postgresql", "13.23-5.el9_8", assess.Security, "ALSA-2026:52395", "ALSA-2026:26203"},
	}
	for _, c := range checks {
		f, ok := byName[c.name]
		if !ok {
			t.Errorf("%s: no finding", c.name)
			continue
		}
		if f.Candidate != c.candidate || f.Classification != c.cls ||
			!slices.Contains(f.Advisories, c.has) || slices.Contains(f.Advisories, c.hasNot) {
			t.Errorf("%s: candidate %s %s, advisories %v; want %s %s with %s, without %s",
				c.name, f.Candidate, f.Classification, f.Advisories, c.candidate, c.cls, c.has, c.hasNot)
		}
	}
	if f := byName["python3-setuptools"]; f.Arch != "noarch" || f.Source != "python-setuptools" {
		t.Errorf("python3-setuptools: arch %q source %q, want noarch python-setuptools", f.Arch, f.Source)
	}
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

// TestFixtureAgainstOracle assesses the committed AlmaLinux 9 rpmdb
// fixture of package rpm against the whole feed.
func TestFixtureAgainstOracle(t *testing.T) {
	s := feedOrSkip(t)
	pkgs, err := rpm.ReadInstalled("../rpm/testdata/alma9")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Findings(pkgs, alma9, s)
	if err != nil {
		t.Fatal(err)
	}
	got := findingLines(fs)
	// Every fixture package is at a version the feed names as fixed; all
	// but bash (5.1.8-6.el9_1, from ALSA-2023:0340, the feed's only bash
	// erratum) were superseded by later errata. gpg-pubkey is in none.
	affected := map[string]bool{}
	for _, f := range fs {
		affected[f.Package] = true
	}
	for _, p := range pkgs {
		if want := p.Name != "bash" && p.Name != "gpg-pubkey"; affected[p.Name] != want {
			t.Errorf("%s: affected %v, want %v", p, affected[p.Name], want)
		}
	}
	sameLines(t, "alma9 fixture", got, oracle(t, alma9, feedDir, pkgs))
	t.Logf("alma9 fixture: %d packages, %d findings, oracle agrees on all", len(pkgs), len(got))
}

// TestFeedVersionsAgainstOracle assesses the packages of the feed at the
// versions the feed names as fixed (every third (name, version) pair; each
// a real build, most affected by later errata), and compares with the
// oracle.
func TestFeedVersionsAgainstOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the whole-feed oracle run in -short mode")
	}
	s := feedOrSkip(t)
	pkgs := feedVersions(t, s, 3)
	fs, err := Findings(pkgs, alma9, s)
	if err != nil {
		t.Fatal(err)
	}
	got := findingLines(fs)
	sameLines(t, "feed versions", got, oracle(t, alma9, feedDir, pkgs))
	t.Logf("feed versions: %d package versions, %d findings, oracle agrees on all", len(pkgs), len(got))
	if len(got) < len(pkgs)/2 {
		t.Errorf("only %d of %d superseded versions affected", len(got), len(pkgs))
	}
}

// feedVersions returns every (package, fixed version) of the ecosystem in
// the set, each every-th one, as x86_64 packages, sorted.
func feedVersions(tb testing.TB, s *advisory.OSVSet, every int) []rpm.Package {
	tb.Helper()
	seen := map[string]bool{}
	var out []rpm.Package
	n := 0
	for _, r := range s.Records {
		for _, af := range r.Affected {
			if af.Package.Ecosystem != alma9 {
				continue
			}
			for _, rg := range af.Ranges {
				for _, e := range rg.Events {
					k := af.Package.Name + " " + e.Version
					if e.Kind != advisory.Fixed || seen[k] {
						continue
					}
					seen[k] = true
					if n++; n%every != 0 {
						continue
					}
					ev, err := rpm.ParseEVR(e.Version)
					if err != nil {
						tb.Fatalf("%s: %v", r.ID, err)
					}
					p := rpm.Package{Name: af.Package.Name, Version: ev.Version, Release: ev.Release, Arch: "x86_64"}
					for _, c := range ev.Epoch {
						p.Epoch = p.Epoch*10 + int(c-'0')
					}
					out = append(out, p)
				}
			}
		}
	}
	slices.SortFunc(out, rpm.ComparePackages)
	return out
}

// TestConcurrent runs hosts in parallel on one Assessor and compares each
// with a serial run (go test -race checks the memo).
func TestConcurrent(t *testing.T) {
	s := feedOrSkip(t)
	pkgs := feedVersions(t, s, 7)
	const hosts = 16
	want := make([][]string, hosts)
	host := func(h int) []rpm.Package {
		var out []rpm.Package
		for i := h; i < len(pkgs); i += hosts / 2 {
			out = append(out, pkgs[i])
		}
		return out
	}
	for h := range hosts {
		fs, err := Findings(host(h), alma9, s)
		if err != nil {
			t.Fatal(err)
		}
		want[h] = findingLines(fs)
	}
	a := New(s)
	var wg sync.WaitGroup
	got := make([][]string, hosts)
	for h := range hosts {
		wg.Go(func() {
			fs, err := a.Findings(alma9, host(h))
			if err != nil {
				t.Error(err)
			}
			got[h] = findingLines(fs)
		})
	}
	wg.Wait()
	for h := range hosts {
		sameLines(t, "concurrent host", got[h], want[h])
	}
	distinct := map[string]bool{}
	for h := range hosts {
		for _, p := range host(h) {
			distinct[p.String()] = true
		}
	}
	if a.Evaluated() != len(distinct) {
		t.Errorf("evaluated %d, want the %d distinct versions", a.Evaluated(), len(distinct))
	}
}
