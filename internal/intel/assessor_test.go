package intel

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/changelog"
	"github.com/patchloop/patchloop/internal/detect"
)

var (
	bookworm = Release{Distro: "debian", Version: "12", Codename: "bookworm"}
	bullseye = Release{Distro: "debian", Version: "11", Codename: "bullseye"}
	stretch  = Release{Distro: "debian", Version: "9", Codename: "stretch"}
	jammy    = Release{Distro: "ubuntu", Version: "22.04", Codename: "jammy"}
)

func TestReleaseEcosystem(t *testing.T) {
	for _, tt := range []struct {
		r    Release
		want string
	}{
		{bookworm, "Debian:12"},
		{jammy, "Ubuntu:22.04:LTS"},
		{Release{Distro: "ubuntu", Version: "23.10"}, "Ubuntu:23.10"},
		{Release{Distro: "ubuntu", Version: "23.04"}, "Ubuntu:23.04"},
		{Release{Distro: "debian", Codename: "trixie"}, ""}, // testing: no VERSION_ID
		{Release{Distro: "fedora", Version: "40"}, ""},
	} {
		if got := tt.r.Ecosystem(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}

// logs serves real changelogs by key and counts the lookups.
type logs struct {
	m     map[changelog.Key]*changelog.Log
	calls atomic.Int64
}

func (l *logs) get(k changelog.Key) (*changelog.Log, error) {
	l.calls.Add(1)
	if lg, ok := l.m[k]; ok {
		return lg, nil
	}
	return nil, fmt.Errorf("%s: not captured", k)
}

func jqUpdate() Update {
	return Update{Update: detect.Update{Package: "jq", Arch: "amd64", Installed: "1.6-2.1+deb12u1",
		Candidate: "1.6-2.1+deb12u3", Source: "jq", SourceVersion: "1.6-2.1+deb12u3",
		Suite: "bookworm-security", Security: true}}
}

func realLogs(t *testing.T) *logs {
	return &logs{m: map[changelog.Key]*changelog.Log{
		{Source: "jq", Version: "1.6-2.1+deb12u3"}:             realLog(t, "jq_1.6-2.1+deb12u3_amd64.deb", "jq"),
		{Source: "samba", Version: "2:4.17.12+dfsg-0+deb12u2"}: realLog(t, "samba-ad-dc_4.17.12+dfsg-0+deb12u2_all.deb", "samba-ad-dc"),
	}}
}

// TestFindingFromChangelog: the CVEs and urgency of a real candidate's
// changelog, cut at the installed version, equal dpkg-parsechangelog's.
func TestFindingFromChangelog(t *testing.T) {
	l := realLogs(t)
	a := NewAssessor(nil, l.get)
	f := a.Finding(bookworm, jqUpdate())
	wantCVEs, wantUrgency := dpkgSince(t, "jq_1.6-2.1+deb12u3_amd64.deb", "jq", "1.6-2.1+deb12u1")
	if got := cveIDs(f); !slices.Equal(got, wantCVEs) || len(got) != 15 {
		t.Errorf("CVEs %v\nwant (dpkg-parsechangelog) %v, 15 of them (testdata README)", got, wantCVEs)
	}
	if f.Urgency != wantUrgency {
		t.Errorf("urgency %q, dpkg-parsechangelog %q", f.Urgency, wantUrgency)
	}
	if want := time.Date(2026, 10, 16, 18, 54, 26, 0, time.UTC); !f.Released.Equal(want) {
		t.Errorf("released %v, want the deb12u3 entry's date %v", f.Released, want)
	}
	if f.Classification != assess.Security || len(f.Notes) != 0 || f.Evidence["CVE-2026-32316"][0] != "changelog" {
		t.Errorf("classification %s, notes %v, evidence %v", f.Classification, f.Notes, f.Evidence)
	}
	// From deb12u2 only the deb12u3 entry is newer: one CVE.
	u := jqUpdate()
	u.Installed = "1.6-2.1+deb12u2"
	wantCVEs, _ = dpkgSince(t, "jq_1.6-2.1+deb12u3_amd64.deb", "jq", "1.6-2.1+deb12u2")
	if got := cveIDs(a.Finding(bookworm, u)); !slices.Equal(got, wantCVEs) {
		t.Errorf("from deb12u2: %v, want %v", got, wantCVEs)
	}
}

// TestFindingBinaryVersionDiffers: python3-ldb-dev's version is not its
// source's; the changelog must be cut at the installed source version, and
// without it nothing is guessed.
func TestFindingBinaryVersionDiffers(t *testing.T) {
	l := realLogs(t)
	a := NewAssessor(nil, l.get)
	u := Update{Update: detect.Update{Package: "python3-ldb-dev", Arch: "amd64",
		Installed: "2:2.6.2+samba4.17.11+dfsg-0+deb12u1", Candidate: "2:2.6.2+samba4.17.12+dfsg-0+deb12u2",
		Source: "samba", SourceVersion: "2:4.17.12+dfsg-0+deb12u2", Suite: "bookworm-updates"},
		InstalledSourceVersion: "2:4.17.11+dfsg-0+deb12u1"}
	f := a.Finding(bookworm, u)
	wantCVEs, wantUrgency := dpkgSince(t, "samba-ad-dc_4.17.12+dfsg-0+deb12u2_all.deb", "samba-ad-dc", u.InstalledSourceVersion)
	if got := cveIDs(f); !slices.Equal(got, wantCVEs) || f.Urgency != wantUrgency {
		t.Errorf("CVEs %v urgency %q, want %v %q", got, f.Urgency, wantCVEs, wantUrgency)
	}
	wantClass := assess.Bugfix
	if len(wantCVEs) > 0 {
		wantClass = assess.Security
	}
	if f.Classification != wantClass {
		t.Errorf("classification %s, want %s", f.Classification, wantClass)
	}

	u.InstalledSourceVersion = ""
	f = a.Finding(bookworm, u)
	if len(f.CVEs) != 0 || len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "installed source version unknown") {
		t.Errorf("without the installed source version: CVEs %v notes %v", cveIDs(f), f.Notes)
	}
	if f.Classification != assess.Other {
		t.Errorf("classification %s, want other (nothing known)", f.Classification)
	}
}

// TestFindingChangelogMissing: a failed lookup is a note, never a guess.
func TestFindingChangelogMissing(t *testing.T) {
	a := NewAssessor(nil, func(k changelog.Key) (*changelog.Log, error) {
		return nil, errors.New("GET http://127.0.0.1/x.deb: 404 Not Found")
	})
	f := a.Finding(bookworm, jqUpdate())
	if len(f.CVEs) != 0 || len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "404 Not Found") {
		t.Errorf("CVEs %v notes %v", cveIDs(f), f.Notes)
	}
	if f.Classification != assess.Security { // from the security suite
		t.Errorf("classification %s", f.Classification)
	}
}

// TestMemo: many hosts with the same updates cost one computation per
// distinct update, also when they ask at the same time.
func TestMemo(t *testing.T) {
	l := realLogs(t)
	fd, err := loadTestFeeds(t, Config{KEV: "testdata/kev-cut.json", DSA: "testdata/DSA-list-cut"})
	must(t, err)
	a := NewAssessor(fd, l.get)
	ups := []Update{jqUpdate(),
		{Update: detect.Update{Package: "policykit-1", Arch: "amd64", Installed: "0.105-31", Candidate: "0.105-31+deb11u1",
			Source: "policykit-1", SourceVersion: "0.105-31+deb11u1", Suite: "bullseye-security", Security: true}},
		{Update: detect.Update{Package: "libjq1", Arch: "amd64", Installed: "1.6-2.1+deb12u1", Candidate: "1.6-2.1+deb12u3",
			Source: "jq", SourceVersion: "1.6-2.1+deb12u3", Suite: "bookworm-security", Security: true}},
	}
	const hosts = 300
	var wg sync.WaitGroup
	results := make([][]Item, hosts)
	errs := make([]error, hosts)
	for h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			labels := map[string]string{"criticality": []string{"low", "medium", "high", "critical"}[h%4]}
			results[h], errs[h] = a.Assess(bookworm, fmt.Sprintf("host-%d", h), labels, ups, nil, time.Now())
		}()
	}
	wg.Wait()
	for h := range hosts {
		if errs[h] != nil || len(results[h]) != len(ups) {
			t.Fatalf("host %d: %v, %d items", h, errs[h], len(results[h]))
		}
	}
	if got := a.Computed(); got != int64(len(ups)) {
		t.Errorf("computed %d findings for %d hosts × %d updates, want %d", got, hosts, len(ups), len(ups))
	}
	if got := l.calls.Load(); got != int64(len(ups)) {
		t.Errorf("%d changelog lookups, want %d", got, len(ups))
	}
	// The same finding object is shared; risk differs per host.
	if results[0][0].Finding != results[1][0].Finding || results[0][0].Risk.Score == results[3][0].Risk.Score {
		t.Errorf("host 0 and 1 share findings (%p %p); host 0 (low) and 3 (critical) risk %v %v",
			results[0][0].Finding, results[1][0].Finding, results[0][0].Risk.Score, results[3][0].Risk.Score)
	}
	// Another installed version or release is another finding.
	u := jqUpdate()
	u.Installed = "1.6-2.1+deb12u2"
	a.Finding(bookworm, u)
	a.Finding(bullseye, jqUpdate())
	if got := a.Computed(); got != int64(len(ups))+2 {
		t.Errorf("computed %d, want %d", got, len(ups)+2)
	}
}
