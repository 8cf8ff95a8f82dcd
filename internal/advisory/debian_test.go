package advisory

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseListFile(t *testing.T, path string) *DebianList {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := ParseDebianList(filepath.Base(path), f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParseDebianListHead(t *testing.T) {
	l := parseListFile(t, "testdata/debian/DSA-list-head60")
	if l.Bad != 0 || len(l.Advisories) < 15 {
		t.Fatalf("%d advisories, %d bad: %v", len(l.Advisories), l.Bad, l.First)
	}
	a := l.Advisories[0]
	if a.ID != "DSA-5380-1" || !a.Date.Equal(time.Date(2023, 3, 29, 0, 0, 0, 0, time.UTC)) ||
		!slices.Equal(a.Packages, []string{"xorg-server"}) || a.Description != "security update" ||
		!slices.Equal(a.CVEs, []string{"CVE-2023-1393"}) || a.Line != 1 {
		t.Errorf("first advisory: %+v", a)
	}
	if v, ok := a.FixedIn("bullseye", "xorg-server"); !ok || v != "2:1.20.11-1+deb11u6" {
		t.Errorf("FixedIn(bullseye, xorg-server) = %q, %v", v, ok)
	}
	if _, ok := a.FixedIn("buster", "xorg-server"); ok {
		t.Error("FixedIn(buster) found a version")
	}
	for _, a := range l.Advisories {
		if a.ID == "DSA-5356-2" && (len(a.CVEs) != 0 || len(a.Fixes) != 1) {
			t.Errorf("DSA-5356-2 (regression update, no CVEs): %+v", a)
		}
	}

	dla := parseListFile(t, "testdata/debian/DLA-list-head40")
	if dla.Bad != 0 || dla.Advisories[0].ID != "DLA-3380-1" || len(dla.Advisories[0].CVEs) != 11 {
		t.Errorf("DLA: %d bad, first %+v", dla.Bad, dla.Advisories[0])
	}
}

func TestParseDebianListEdges(t *testing.T) {
	l := parseListFile(t, "testdata/debian/DSA-list-edge")
	if l.Bad != 0 {
		t.Fatalf("%d bad: %v", l.Bad, l.First)
	}
	byID := map[string]DebianAdvisory{}
	for _, a := range l.Advisories {
		byID[a.ID] = a
	}
	eol := byID["DSA-4205-1"]
	if eol.Packages != nil || eol.Description != "jessie end-of-life" || len(eol.Notes) != 1 {
		t.Errorf("DSA-4205-1: %+v", eol)
	}
	curl := byID["DSA-2798-1"]
	if v, _ := curl.FixedIn("wheezy", "curl"); v != "7.26.0-1+wheezy5" {
		t.Errorf("DSA-2798-1 wheezy curl (two spaces) = %q", v)
	}
	oo := byID["DSA-2275-1"].Fixes
	if len(oo) != 2 || oo[1] != (DebianFix{Release: "lenny", Package: "openoffice.org", Status: "not-affected", Note: "Vulnerable code not present"}) {
		t.Errorf("DSA-2275-1 fixes: %+v", oo)
	}
	if p := byID["DSA-1895-2"].Packages; !slices.Equal(p, []string{"opensaml2", "shibboleth-sp2"}) {
		t.Errorf("DSA-1895-2 packages: %q", p)
	}
	if p := byID["DSA-1545-1"].Packages; !slices.Equal(p, []string{"rsync"}) {
		t.Errorf("DSA-1545-1 packages: %q", p)
	}
	if n := len(byID["DSA-1396-1"].CVEs); n != 9 {
		t.Errorf("DSA-1396-1: %d CVEs, want 9", n)
	}
	if c := byID["DSA-964-1"].CVEs; !slices.Equal(c, []string{"CVE-2006-0467"}) {
		t.Errorf("DSA-964-1 CVEs: %v", c)
	}
	aw := byID["DSA-892-1"].Fixes[0]
	if aw.Version != "6.4-1sarge1" || aw.Note != "bug #322591; bug #334833; bug #336137; medium" {
		t.Errorf("DSA-892-1: %+v", aw)
	}
	if a := byID["DSA-141"]; a.Date.Year() != 2002 || len(a.Fixes) != 1 {
		t.Errorf("DSA-141: %+v", a)
	}
}

func TestParseDebianListBadLines(t *testing.T) {
	in := "\t{CVE-2023-0001}\n" + // 1: before any advisory
		"[29 Mar 2023] DSA-5380-1 xorg-server - security update\n" +
		"\t{CVE-2023-1393 OOPS-1}\n" + // 3: not a CVE; the good one is kept
		"\t[bullseye] - xorg-server\n" + // 4: no version
		"\t[bullseye] - xorg-server 1.0-\n" + // 5: bad version
		"\tsomething else\n" + // 6
		"[31 Feb 2023] DSA-5379-1 dino-im - security update\n" + // 7: no such date
		"\t{CVE-2023-28686}\n" + // goes with the bad header
		"[27 Mar 2023] RHSA-5379-1 dino-im - security update\n" + // 9: not a DSA/DLA
		"garbage\n" + // 10
		"[25 Mar 2023] DSA-5378-1 xen - security update\n" +
		"\t[bullseye] - xen 4.14.5+94-ge49571868d-1\n"
	l, err := ParseDebianList("list", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, p := range l.First {
		lines = append(lines, p.Line)
	}
	if !slices.Equal(lines, []int{1, 3, 4, 5, 6, 7, 9, 10}) || l.Bad != 8 {
		t.Errorf("bad lines %v (%d): %v", lines, l.Bad, l.First)
	}
	if len(l.Advisories) != 2 || !slices.Equal(l.Advisories[0].CVEs, []string{"CVE-2023-1393"}) ||
		l.Advisories[1].ID != "DSA-5378-1" || len(l.Advisories[1].Fixes) != 1 {
		t.Errorf("advisories: %+v", l.Advisories)
	}
}

// TestParseDebianListFeed parses the tracker's whole DSA and DLA lists.
func TestParseDebianListFeed(t *testing.T) {
	dir := requireFeeds(t, "debian-tracker-dsa-dla/data")
	for _, tt := range []struct {
		list            string
		advisories, bad int
	}{{"DSA", 5406, 0}, {"DLA", 3534, 0}} {
		start := time.Now()
		l := parseListFile(t, filepath.Join(dir, tt.list, "list"))
		cves, fixes := 0, 0
		for _, a := range l.Advisories {
			cves += len(a.CVEs)
			fixes += len(a.Fixes)
		}
		t.Logf("%s list: %d advisories, %d CVE references, %d release lines, %d bad, in %v",
			tt.list, len(l.Advisories), cves, fixes, l.Bad, time.Since(start))
		for _, p := range l.First {
			t.Log(p)
		}
		if len(l.Advisories) != tt.advisories || l.Bad != tt.bad {
			t.Errorf("%s: %d advisories, %d bad; want %d, %d", tt.list, len(l.Advisories), l.Bad, tt.advisories, tt.bad)
		}
	}
}
