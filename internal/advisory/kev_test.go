package advisory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseKEVCut(t *testing.T) {
	data, err := os.ReadFile("testdata/kev/kev-first5.json")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKEV("kev-first5.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if k.CatalogVersion != "2025.08.25" || k.Count != 5 || len(k.Vulnerabilities) != 5 || k.Bad != 0 {
		t.Fatalf("version %q count %d entries %d bad %d", k.CatalogVersion, k.Count, len(k.Vulnerabilities), k.Bad)
	}
	if !k.DateReleased.Equal(time.Date(2025, 8, 25, 17, 4, 19, 979600000, time.UTC)) {
		t.Errorf("dateReleased = %v", k.DateReleased)
	}
	e, ok := k.Lookup("CVE-2025-48384")
	if !ok || e.VendorProject != "Git" || e.Ransomware() || e.DueDate.Format(time.DateOnly) != "2025-09-15" ||
		len(e.CWEs) == 0 || e.CWEs[0] != "CWE-59" {
		t.Errorf("CVE-2025-48384: %+v, %v", e, ok)
	}
	if _, ok := k.Lookup("CVE-1999-0001"); ok {
		t.Error("Lookup of an absent CVE succeeded")
	}
}

func TestParseKEVBadRecords(t *testing.T) {
	data, err := os.ReadFile("testdata/kev/kev-first5.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	// Break the fourth entry's date and the second entry's type; both
	// are reported with their line, the three others kept.
	s = strings.Replace(s, `"dateAdded": "2025-08-21"`, `"dateAdded": "21/08/2025"`, 1)
	lines := strings.Split(s, "\n")
	fourth := 0
	for i, l := range lines {
		if strings.Contains(l, `"cwes": [`) {
			fourth++
			if fourth == 2 {
				lines[i] = strings.Replace(l, `"cwes": [`, `"cwes": "CWE-1", "x": [`, 1)
			}
		}
	}
	s = strings.Join(lines, "\n")
	k, err := ParseKEV("kev.json", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Vulnerabilities) != 3 || k.Bad != 2 {
		t.Fatalf("entries %d bad %d (%v), want 3, 2", len(k.Vulnerabilities), k.Bad, k.First)
	}
	for _, p := range k.First {
		if p.File != "kev.json" || p.Line < 7 {
			t.Errorf("problem %v: want the file and the entry's line", p)
		}
		t.Log(p)
	}
}

func TestParseKEVFormatChanged(t *testing.T) {
	tests := map[string]string{
		"not an object":             `[]`,
		"no vulnerabilities":        `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":0}`,
		"vulnerabilities an object": `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":0,"vulnerabilities":{}}`,
		"count a string":            `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":"0","vulnerabilities":[]}`,
		"catalogVersion a number":   `{"catalogVersion":1,"dateReleased":"2025-01-01T00:00:00Z","count":0,"vulnerabilities":[]}`,
		"bad dateReleased":          `{"catalogVersion":"1","dateReleased":"2025-01-01","count":0,"vulnerabilities":[]}`,
		"count mismatch":            `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":2,"vulnerabilities":[]}`,
		"truncated":                 `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":0,"vulnerabilities":[`,
		"trailing data":             `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":0,"vulnerabilities":[]} {}`,
		"entry not an object":       `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":1,"vulnerabilities":[1}`,
		"empty":                     ``,
	}
	for name, in := range tests {
		_, err := ParseKEV("kev.json", []byte(in))
		if err == nil || !strings.Contains(err.Error(), "kev.json line ") {
			t.Errorf("%s: err = %v, want an error naming file and line", name, err)
		}
	}
	ok := `{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":0,"vulnerabilities":[],"new":{"a":[1]}}`
	if _, err := ParseKEV("kev.json", []byte(ok)); err != nil {
		t.Errorf("new unknown field: %v", err)
	}
}

// TestParseKEVFeed parses the whole real catalog.
func TestParseKEVFeed(t *testing.T) {
	dir := requireFeeds(t, "kev")
	data, err := os.ReadFile(filepath.Join(dir, "known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	k, err := ParseKEV("known_exploited_vulnerabilities.json", data)
	if err != nil {
		t.Fatal(err)
	}
	ransomware := 0
	for i := range k.Vulnerabilities {
		if k.Vulnerabilities[i].Ransomware() {
			ransomware++
		}
	}
	t.Logf("KEV %s: %d entries (%d ransomware), %d bad, in %v", k.CatalogVersion, len(k.Vulnerabilities), ransomware, k.Bad, time.Since(start))
	if len(k.Vulnerabilities) != 1404 || k.Bad != 0 {
		t.Errorf("entries %d bad %d (%v), want 1404, 0", len(k.Vulnerabilities), k.Bad, k.First)
	}
}
