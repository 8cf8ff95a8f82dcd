package changelog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

const sample = `hello (2.1-1+deb12u1) bookworm-security; urgency=high

  * Fix CVE-2024-1234 and cve-2024-12345 (Closes: #1).
  * Also CVE-2024-1234 again, CVE-2023-9999.

 -- Jane Doe <jane@example.org>  Tue, 02 Jan 2024 10:00:00 +0100

hello (2.1-1) unstable; urgency=medium

  [ Someone ]
  * New upstream release; fixes CVE-2023-0001.
    Not a CVE: CVE-23-1, CVE-2023-12, CVE-20231-1234.

 -- Jane Doe <jane@example.org>  Mon, 01 Jan 2024 09:00:00 +0000

hello (2.0-1) unstable; urgency=low

  * Initial release.

 -- Jane Doe <jane@example.org>  Sun, 01 Jan 2023 09:00:00 +0000
`

func TestParseSample(t *testing.T) {
	log, err := Parse(strings.NewReader(sample), "sample")
	must(t, err)
	want := &Log{Source: "hello", Entries: []Entry{
		{Version: "2.1-1+deb12u1", Distribution: "bookworm-security", Urgency: "high",
			Date: "Tue, 02 Jan 2024 10:00:00 +0100", CVEs: []string{"CVE-2023-9999", "CVE-2024-1234", "CVE-2024-12345"}, Line: 1},
		{Version: "2.1-1", Distribution: "unstable", Urgency: "medium",
			Date: "Mon, 01 Jan 2024 09:00:00 +0000", CVEs: []string{"CVE-2023-0001"}, Line: 8},
		{Version: "2.0-1", Distribution: "unstable", Urgency: "low", Date: "Sun, 01 Jan 2023 09:00:00 +0000", Line: 16},
	}}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", log, want)
	}
	tm, err := log.Entries[0].Time()
	must(t, err)
	if !tm.Equal(time.Date(2024, 1, 2, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("Time = %v", tm)
	}
}

func TestNewer(t *testing.T) {
	log, err := Parse(strings.NewReader(sample), "sample")
	must(t, err)
	tests := []struct {
		installed string
		versions  []string
		cves      []string
		urgency   string
		complete  bool
	}{
		{"2.1-1+deb12u1", nil, []string{}, "", true},
		{"2.1-1", []string{"2.1-1+deb12u1"}, []string{"CVE-2023-9999", "CVE-2024-1234", "CVE-2024-12345"}, "high", true},
		{"2.0-1+b1", []string{"2.1-1+deb12u1", "2.1-1"}, []string{"CVE-2023-0001", "CVE-2023-9999", "CVE-2024-1234", "CVE-2024-12345"}, "high", true},
		{"2.0-1", []string{"2.1-1+deb12u1", "2.1-1"}, []string{"CVE-2023-0001", "CVE-2023-9999", "CVE-2024-1234", "CVE-2024-12345"}, "high", true},
		{"1.0-1", []string{"2.1-1+deb12u1", "2.1-1", "2.0-1"}, []string{"CVE-2023-0001", "CVE-2023-9999", "CVE-2024-1234", "CVE-2024-12345"}, "high", false},
		{"3:1.0", nil, []string{}, "", true}, // epoch: installed is newer than everything
	}
	for _, tt := range tests {
		for _, via := range []string{"Newer", "ParseNewer"} {
			var c Changes
			if via == "Newer" {
				c, err = log.Newer(tt.installed)
			} else {
				c, err = ParseNewer(strings.NewReader(sample), "sample", tt.installed)
			}
			must(t, err)
			var versions []string
			for _, e := range c.Entries {
				versions = append(versions, e.Version)
			}
			if !reflect.DeepEqual(versions, tt.versions) || !reflect.DeepEqual(c.CVEs, tt.cves) ||
				c.Urgency != tt.urgency || c.Complete != tt.complete {
				t.Errorf("%s(%s) = %v %v %q complete=%v, want %v %v %q %v", via, tt.installed,
					versions, c.CVEs, c.Urgency, c.Complete, tt.versions, tt.cves, tt.urgency, tt.complete)
			}
		}
	}
	if _, err := log.Newer("1.0 bad"); err == nil {
		t.Error("Newer accepted a bad installed version")
	}
}

// TestParseNewerStopsReading checks that ParseNewer does not read past
// the entry at the installed version.
func TestParseNewerStopsReading(t *testing.T) {
	r := io.MultiReader(strings.NewReader(sample), iotest.ErrReader(errors.New("read past the cut")))
	c, err := ParseNewer(r, "sample", "2.1-1")
	must(t, err)
	if len(c.Entries) != 1 || !c.Complete {
		t.Errorf("got %+v", c)
	}
}

func TestParseRobust(t *testing.T) {
	tests := []struct {
		name, text  string
		versions    []string
		malformed   int
		first       int
		stopped     int
		trimmed     bool
		wantErrLine string // non-empty: Parse must fail naming this
	}{
		{name: "bad heading skipped",
			text:     "pkg (1.0-2) unstable; urgency=low\n\n  * CVE-2020-1111\n\nGARBAGE here\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n",
			versions: []string{"1.0-2"}, malformed: 1, first: 5},
		{name: "bad version salvaged",
			text:     "pkg (1.0-2) unstable; urgency=low\n  * x\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n\npkg (:1) unstable; urgency=low\n  * CVE-2020-2222\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n\npkg (0.9-1) unstable; urgency=low\n  * y\n",
			versions: []string{"1.0-2", "0.9-1"}, malformed: 1, first: 5},
		{name: "bad version only", text: "pkg (1.0-) unstable; urgency=low\n  * CVE-2020-2222\n",
			wantErrLine: "line 1: entry header \"pkg (1.0-) unstable; urgency=low\": version \"1.0-\" has bad syntax: revision number is empty"},
		{name: "no header", text: "just text\n\n", wantErrLine: "no changelog entry found in 2 lines"},
		{name: "empty", text: "", wantErrLine: "no changelog entry found in 0 lines"},
		{name: "text before first header",
			text:     "  * stray\npkg (1) unstable; urgency=low\n  * a\n -- A <a@b>  bad date\n",
			versions: []string{"1"}, malformed: 2, first: 1},
		{name: "emacs trailer stops",
			text:     "pkg (1) unstable; urgency=low\n  * a\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n\nLocal variables:\nmode: debian-changelog\nEnd:\n",
			versions: []string{"1"}, stopped: 5},
		{name: "old format stops",
			text:     "pkg (2) unstable; urgency=low\n  * a\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n\nOld Changelog:\npkg (1) unstable; urgency=low\n",
			versions: []string{"2"}, stopped: 5},
		{name: "comments and trimming",
			text:     "# comment\npkg (2) unstable; urgency=low\n  * a\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n\n# Older entries have been removed from this changelog.\n# To read the complete changelog use `apt changelog pkg`.\n",
			versions: []string{"2"}, trimmed: true},
		{name: "CRLF", text: "pkg (2) unstable; urgency=low\r\n  * CVE-2021-0001\r\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\r\n",
			versions: []string{"2"}},
		{name: "overlong line", text: "pkg (2) unstable; urgency=low\n  " + strings.Repeat("x", maxLine+10) + "\n  * ok\n",
			versions: []string{"2"}, malformed: 1, first: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, err := Parse(strings.NewReader(tt.text), "f")
			if tt.wantErrLine != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrLine) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErrLine)
				}
				return
			}
			must(t, err)
			var versions []string
			for _, e := range log.Entries {
				versions = append(versions, e.Version)
			}
			if !reflect.DeepEqual(versions, tt.versions) || log.Malformed != tt.malformed || log.FirstMalformed != tt.first ||
				log.StoppedAt != tt.stopped || log.Trimmed != tt.trimmed {
				t.Errorf("got versions %v malformed %d first %d stopped %d trimmed %v", versions, log.Malformed,
					log.FirstMalformed, log.StoppedAt, log.Trimmed)
			}
		})
	}
}

func TestAppendCVEs(t *testing.T) {
	tests := map[string][]string{
		"CVE-2021-1234":                      {"CVE-2021-1234"},
		"(CVE-2021-1234,CVE-2021-12345678)":  {"CVE-2021-1234", "CVE-2021-12345678"},
		"debian/patches/cve-2019-0001.patch": {"CVE-2019-0001"},
		"CVE-2021-123 CVE-202-1234 CVE-2021": nil,
		"CCVE-2021-1111":                     {"CVE-2021-1111"},
		"CVE-2021-1111CVE-2021-2222":         {"CVE-2021-1111", "CVE-2021-2222"},
	}
	for in, want := range tests {
		if got := appendCVEs(nil, []byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("appendCVEs(%q) = %v, want %v", in, got, want)
		}
	}
	got := sortCVEs([]string{"CVE-2024-10000", "CVE-2023-5", "CVE-2024-9999", "CVE-2024-9999"})
	if want := []string{"CVE-2023-5", "CVE-2024-9999", "CVE-2024-10000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sortCVEs = %v", got)
	}
}

// realChangelog extracts a changelog from a captured .deb.
func realChangelog(t testing.TB, deb, pkg string) []byte {
	t.Helper()
	f, err := os.Open("testdata/" + deb)
	must(t, err)
	defer f.Close()
	var text []byte
	err = findChangelog(f, deb, pkg, false, func(r io.Reader, _ string) error {
		text, err = io.ReadAll(r)
		return err
	})
	must(t, err)
	return text
}

// TestRealChangelogs checks the parser against dpkg-parsechangelog's view
// of real changelogs (numbers from `dpkg-parsechangelog -l FILE --all`
// and grep, see testdata/README.md).
func TestRealChangelogs(t *testing.T) {
	samba := realChangelog(t, sambaDeb, "samba-ad-dc")
	log, err := Parse(bytes.NewReader(samba), "samba")
	must(t, err)
	if log.Source != "samba" || len(log.Entries) != 91 || log.Malformed != 0 || !log.Trimmed {
		t.Errorf("samba: source %s, %d entries, %d malformed (first at %d), trimmed %v",
			log.Source, len(log.Entries), log.Malformed, log.FirstMalformed, log.Trimmed)
	}
	c, err := log.Newer("2:4.17.11+dfsg-0+deb12u1")
	must(t, err)
	want := []string{"CVE-2023-3961", "CVE-2023-4091", "CVE-2023-4154", "CVE-2023-42669", "CVE-2023-42670"}
	if !reflect.DeepEqual(c.CVEs, want) || len(c.Entries) != 2 || c.Urgency != "medium" || !c.Complete {
		t.Errorf("samba newer than deb12u1 of 4.17.11: %+v", c)
	}

	jq := realChangelog(t, jqDeb, "jq")
	c, err = ParseNewer(bytes.NewReader(jq), "jq", "1.6-2.1+deb12u1")
	must(t, err)
	if len(c.Entries) != 2 || c.Urgency != "high" || len(c.CVEs) != 15 || c.CVEs[0] != "CVE-2026-32316" {
		t.Errorf("jq newer than deb12u1: %d entries, urgency %s, CVEs %v", len(c.Entries), c.Urgency, c.CVEs)
	}
}
