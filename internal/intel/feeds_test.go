package intel

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/feeds"
)

func debUpdate(pkg, src, installed, candidate, suite string) Update {
	return Update{Update: detect.Update{Package: pkg, Arch: "amd64", Installed: installed, Candidate: candidate,
		Source: src, SourceVersion: candidate, Suite: suite, Security: strings.HasSuffix(suite, "-security")}}
}

// checkFeedsFacts compares every CVE's KEV and EPSS with the oracles.
func checkFeedsFacts(t *testing.T, f *Finding, kev map[string]string, epss map[string]float64) {
	t.Helper()
	for _, c := range f.CVEs {
		added, inKEV := kev[c.ID]
		switch {
		case inKEV != (c.KEV != nil):
			t.Errorf("%s %s: KEV %v, catalog has it: %v", f.Package, c.ID, c.KEV, inKEV)
		case inKEV && c.KEV.DateAdded.Format(time.DateOnly) != added:
			t.Errorf("%s %s: KEV added %v, catalog %s", f.Package, c.ID, c.KEV.DateAdded, added)
		}
		p, inEPSS := epss[c.ID]
		switch {
		case inEPSS != (c.EPSS != nil):
			t.Errorf("%s %s: EPSS %v, files have it: %v", f.Package, c.ID, c.EPSS, inEPSS)
		case inEPSS && c.EPSS.Probability != p:
			t.Errorf("%s %s: EPSS %v, file %v", f.Package, c.ID, c.EPSS.Probability, p)
		}
	}
}

// TestDebianAdvisories: DSA/DLA matching by release codename and version
// window on real list entries, with KEV and EPSS, against a plain-text
// reading of the same files.
func TestDebianAdvisories(t *testing.T) {
	c := Config{KEV: "testdata/kev-cut.json", EPSS: []string{"testdata/epss-cut.csv"},
		DSA: "testdata/DSA-list-cut", DLA: "testdata/DLA-list-cut"}
	fd, err := loadTestFeeds(t, c)
	must(t, err)
	a := NewAssessor(fd, nil)
	kev, epss := kevOracle(t, c.KEV), epssOracle(t, c.EPSS...)
	for _, tt := range []struct {
		rel Release
		u   Update
	}{
		{bullseye, debUpdate("policykit-1", "policykit-1", "0.105-31", "0.105-31+deb11u1", "bullseye-security")},
		{bullseye, debUpdate("liblog4j2-java", "apache-log4j2", "2.13.3-1", "2.16.0-1~deb11u1", "bullseye-security")},
		{stretch, debUpdate("liblog4j2-java", "apache-log4j2", "2.7-1", "2.12.3-0+deb9u1", "stretch")},
		{bookworm, debUpdate("policykit-1", "policykit-1", "0.105-31", "0.105-31+deb11u1", "bookworm-security")},         // no bookworm lines
		{bullseye, debUpdate("policykit-1", "policykit-1", "0.105-31+deb11u1", "0.105-31+deb11u2", "bullseye-security")}, // already fixed
	} {
		f := a.Finding(tt.rel, tt.u)
		var wantIDs, wantCVEs []string
		for _, list := range []string{c.DSA, c.DLA} {
			ids, cves := debianOracle(t, list, tt.rel.Codename, tt.u.Source, tt.u.Installed, tt.u.Candidate)
			wantIDs, wantCVEs = append(wantIDs, ids...), append(wantCVEs, cves...)
		}
		slices.Sort(wantIDs)
		slices.SortFunc(wantCVEs, compareCVE)
		wantCVEs = slices.Compact(wantCVEs)
		name := tt.rel.Codename + " " + tt.u.Package + " " + tt.u.Installed + "->" + tt.u.Candidate
		if !slices.Equal(f.Advisories, wantIDs) || !slices.Equal(cveIDs(f), wantCVEs) {
			t.Errorf("%s: advisories %v CVEs %v, want %v %v", name, f.Advisories, cveIDs(f), wantIDs, wantCVEs)
		}
		checkFeedsFacts(t, f, kev, epss)
	}
	// The facts the oracle cases rest on, spelled out once: PwnKit is
	// DSA-5059-1 and known exploited.
	f := a.Finding(bullseye, debUpdate("policykit-1", "policykit-1", "0.105-31", "0.105-31+deb11u1", "bullseye-security"))
	if !slices.Equal(f.Advisories, []string{"DSA-5059-1"}) || !f.HasKEV() || f.Evidence["CVE-2021-4034"][0] != "DSA-5059-1" {
		t.Errorf("PwnKit: %v %v %v", f.Advisories, cveIDs(f), f.Evidence)
	}
}

// TestDebianAdvisoriesFullList runs the DSA/DLA matching over every
// (release, source) of the real lists with at least two fixed versions,
// from the oldest to the newest fix, against the plain-text oracle, and
// checks KEV and EPSS of every CVE found against the raw feed files.
func TestDebianAdvisoriesFullList(t *testing.T) {
	needShared(t)
	c, err := ConfigFromDir(sharedFeeds)
	must(t, err)
	fd, err := loadTestFeeds(t, c)
	must(t, err)
	a := NewAssessor(fd, nil)
	kev := kevOracle(t, c.KEV)
	epssFiles, err := expandEPSS(c.EPSS)
	must(t, err)
	epss := epssOracle(t, epssFiles...)

	versions := map[debianKey][]string{}
	for _, l := range []*advisory.DebianList{fd.DSA, fd.DLA} {
		for _, adv := range l.Advisories {
			for _, fx := range adv.Fixes {
				if fx.Version != "" && (fx.Release == "bullseye" || fx.Release == "buster") {
					k := debianKey{fx.Release, fx.Package}
					versions[k] = append(versions[k], fx.Version)
				}
			}
		}
	}
	cases, withKEV := 0, 0
	for k, vs := range versions {
		slices.SortFunc(vs, deb.CompareValid)
		if len(vs) < 2 || vs[0] == vs[len(vs)-1] {
			continue
		}
		rel := Release{Distro: "debian", Version: map[string]string{"bullseye": "11", "buster": "10"}[k.release], Codename: k.release}
		u := debUpdate(k.source, k.source, vs[0], vs[len(vs)-1], k.release+"-security")
		f := a.Finding(rel, u)
		var wantIDs, wantCVEs []string
		for _, list := range []string{c.DSA, c.DLA} {
			ids, cves := debianOracle(t, list, k.release, k.source, u.Installed, u.Candidate)
			wantIDs, wantCVEs = append(wantIDs, ids...), append(wantCVEs, cves...)
		}
		slices.Sort(wantIDs)
		slices.SortFunc(wantCVEs, compareCVE)
		wantCVEs = slices.Compact(wantCVEs)
		if !slices.Equal(f.Advisories, wantIDs) || !slices.Equal(cveIDs(f), wantCVEs) {
			t.Errorf("%s %s %s->%s: advisories %v CVEs %d, want %v %d", k.release, k.source, u.Installed, u.Candidate,
				f.Advisories, len(f.CVEs), wantIDs, len(wantCVEs))
		}
		checkFeedsFacts(t, f, kev, epss)
		cases++
		if f.HasKEV() {
			withKEV++
		}
	}
	t.Logf("%d (release, source) windows checked, %d with a KEV CVE", cases, withKEV)
	if cases < 100 || withKEV == 0 {
		t.Errorf("only %d cases, %d with KEV: the full lists did not load as expected", cases, withKEV)
	}
}

// TestOSV: an Ubuntu USN and its CVE record, both real, for jammy.
func TestOSV(t *testing.T) {
	fd, err := loadTestFeeds(t, Config{OSV: []string{"testdata/osv-ubuntu"}})
	must(t, err)
	if len(fd.OSV) != 1 || fd.Status[0].Provenance.Records != 2 {
		t.Fatalf("OSV: %+v", fd.Status)
	}
	a := NewAssessor(fd, nil)
	u := debUpdate("libwayland-client0", "wayland", "1.20.0-1", "1.20.0-1ubuntu0.1", "jammy-security")
	f := a.Finding(jammy, u)
	if !slices.Equal(f.Advisories, []string{"USN-5614-1"}) || !slices.Equal(cveIDs(f), []string{"CVE-2021-3782"}) {
		t.Fatalf("advisories %v CVEs %v", f.Advisories, cveIDs(f))
	}
	if ev := f.Evidence["CVE-2021-3782"]; !slices.Equal(ev, []string{"USN-5614-1", "UBUNTU-CVE-2021-3782"}) &&
		!slices.Equal(ev, []string{"UBUNTU-CVE-2021-3782", "USN-5614-1"}) {
		t.Errorf("evidence %v", ev)
	}
	// The CVSS vector is the CVE record's, read here as plain JSON.
	var raw struct {
		Severity []struct{ Type, Score string } `json:"severity"`
	}
	data, err := os.ReadFile("testdata/osv-ubuntu/UBUNTU-CVE-2021-3782.json")
	must(t, err)
	must(t, json.Unmarshal(data, &raw))
	want, err := assess.ParseCVSS(raw.Severity[0].Score)
	must(t, err)
	if got := f.CVEs[0].CVSS; len(got) != 1 || got[0] != want {
		t.Errorf("CVSS %+v, want %+v", got, want)
	}
	// Not fixed by the candidate, not affected before, another release.
	for _, tt := range []struct {
		rel                  Release
		installed, candidate string
	}{
		{jammy, "1.19.0-2build1", "1.20.0-1"},
		{jammy, "1.20.0-1ubuntu0.1", "1.20.0-1ubuntu0.2"},
		{Release{Distro: "ubuntu", Version: "23.10"}, "1.20.0-1", "1.20.0-1ubuntu0.1"},
	} {
		f := a.Finding(tt.rel, debUpdate("libwayland-client0", "wayland", tt.installed, tt.candidate, "jammy-security"))
		if len(f.CVEs) != 0 || len(f.Advisories) != 0 {
			t.Errorf("%s %s->%s: %v %v", tt.rel.Ecosystem(), tt.installed, tt.candidate, f.Advisories, cveIDs(f))
		}
	}
	// Debian testing has no ecosystem: said, not guessed.
	f = a.Finding(Release{Distro: "debian", Codename: "trixie"}, u)
	if len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "no OSV ecosystem") {
		t.Errorf("notes %v", f.Notes)
	}
}

// TestLoadMalformed: a bad record is named with file and line and the
// good ones are used; a changed format fails that feed only, naming it; a
// failed refresh keeps the last good copy in service.
func TestLoadMalformed(t *testing.T) {
	fd, err := loadTestFeeds(t, Config{KEV: "testdata/kev-bad-record.json", EPSS: []string{"testdata/epss-bad-line.csv"}})
	must(t, err)
	kevSt, epssSt := fd.Status[0], fd.Status[1]
	if kevSt.Provenance.Records != 2 || kevSt.Provenance.Bad != 1 || len(kevSt.Problems) != 1 ||
		!strings.Contains(kevSt.Problems[0], "kev-bad-record.json line ") || !strings.Contains(kevSt.Problems[0], "CVE-2021-XYZ") {
		t.Errorf("kev status %+v %+v", kevSt, kevSt.Provenance)
	}
	if epssSt.Provenance.Bad != 1 || len(epssSt.Problems) != 1 || !strings.Contains(epssSt.Problems[0], "epss-bad-line.csv line 3") {
		t.Errorf("epss status %+v %+v", epssSt, epssSt.Provenance)
	}
	if _, ok := fd.KEV.Lookup("CVE-2021-44228"); !ok {
		t.Error("good KEV record not used")
	}
	if _, ok := fd.KEV.Lookup("CVE-2021-4034"); ok {
		t.Error("bad KEV record used")
	}
	if s, ok := fd.EPSS[0].Lookup("CVE-2021-4034"); !ok || s.EPSS != 0.94921 {
		t.Errorf("EPSS of the good line after the bad one: %v %v", s, ok)
	}
	notices := strings.Join(fd.Notices(Config{KEV: "x", EPSS: []string{"x"}, OSV: []string{"x"}, DSA: "x", DLA: "x"}), "\n")
	if !strings.Contains(notices, "feed kev: 1 bad records skipped, first: kev-bad-record.json line") {
		t.Errorf("notices:\n%s", notices)
	}

	fd, err = loadTestFeeds(t, Config{KEV: "testdata/kev-changed-format.json", DSA: "testdata/DSA-list-cut"})
	if err == nil || !strings.Contains(err.Error(), "kev feed testdata/kev-changed-format.json") ||
		!strings.Contains(err.Error(), "vulnerabilities") {
		t.Errorf("changed format: %v", err)
	}
	if fd.KEV != nil || fd.DSA == nil || fd.Status[0].Error == "" || fd.Status[0].Provenance != nil {
		t.Errorf("other feeds must load, the broken one must say why: %+v", fd.Status)
	}

	// Last good copy: a refresh that brings a changed format is refused.
	dir, cache := t.TempDir(), t.TempDir()
	kevPath := filepath.Join(dir, "kev.json")
	copyFile(t, "testdata/kev-cut.json", kevPath)
	l := &feeds.Loader{CacheDir: cache}
	_, err = Load(context.Background(), l, Config{KEV: kevPath}, false)
	must(t, err)
	copyFile(t, "testdata/kev-changed-format.json", kevPath)
	fd, err = Load(context.Background(), l, Config{KEV: kevPath}, false)
	must(t, err)
	if !fd.Status[0].Stale || fd.KEV == nil || len(fd.KEV.Vulnerabilities) != 3 {
		t.Errorf("refresh failure: %+v", fd.Status[0])
	}
	if n := strings.Join(fd.Notices(Config{KEV: "x", EPSS: []string{"x"}, OSV: []string{"x"}, DSA: "x", DLA: "x"}), "\n"); !strings.Contains(n, "feed kev: refresh failed, using the copy of") {
		t.Errorf("notices: %s", n)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, data, 0o644))
}

func TestConfigFromDir(t *testing.T) {
	needShared(t)
	c, err := ConfigFromDir(sharedFeeds)
	must(t, err)
	if filepath.Base(c.KEV) != "known_exploited_vulnerabilities.json" || len(c.EPSS) != 1 ||
		!strings.HasSuffix(c.DSA, "DSA/list") || !strings.HasSuffix(c.DLA, "DLA/list") {
		t.Errorf("config %+v", c)
	}
	if abs := c.Absent(); !slices.Equal(abs, []string{KindOSV}) {
		t.Errorf("absent %v, want [osv] (the shared feeds have no osv/)", abs)
	}
	if _, err := ConfigFromDir(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("missing directory accepted")
	}
}

// Two sources with the same file name (OSV's .../Debian/all.zip and
// .../Ubuntu/all.zip) keep separate cached copies: read offline (from
// the cache only), each source gives its own data, never the other's.
func TestSameFileNameSources(t *testing.T) {
	files := map[string]string{
		"/a/scores.csv": "CVE-2021-4034;0.94921;0.99854\n",
		"/b/scores.csv": "CVE-2021-44228;0.94358;0.99961\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	a, b := srv.URL+"/a/scores.csv", srv.URL+"/b/scores.csv"
	l := &feeds.Loader{CacheDir: t.TempDir()}
	for _, offline := range []bool{false, true} {
		for _, tt := range []struct{ url, has, hasNot string }{
			{a, "CVE-2021-4034", "CVE-2021-44228"},
			{b, "CVE-2021-44228", "CVE-2021-4034"},
		} {
			fd, err := Load(context.Background(), l, Config{EPSS: []string{tt.url}}, offline)
			if err != nil || len(fd.EPSS) != 1 {
				t.Fatalf("load %s (offline %v): %v, %d EPSS sets", tt.url, offline, err, len(fd.EPSS))
			}
			if _, ok := fd.EPSS[0].Lookup(tt.has); !ok {
				t.Errorf("%s (offline %v): %s missing", tt.url, offline, tt.has)
			}
			if _, ok := fd.EPSS[0].Lookup(tt.hasNot); ok {
				t.Errorf("%s (offline %v): has the other source's %s", tt.url, offline, tt.hasNot)
			}
			if got := fd.Status[0].Provenance.Source; got != tt.url {
				t.Errorf("%s (offline %v): provenance %s", tt.url, offline, got)
			}
		}
	}
}
