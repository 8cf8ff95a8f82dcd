package advisory

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchloop/patchloop/internal/deb"
)

// addSeeds adds the files matching pattern as seeds.
func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzParseOSV(f *testing.F) {
	addSeeds(f, "testdata/osv/*/*.json")
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"*"}]}],"versions":["1"]}]}`))
	m := Matcher{Comparators: func(string) (Comparator, bool) { return deb.CompareValid, true }}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseOSV(data)
		if err != nil {
			return
		}
		// What was accepted survives a round trip.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, err := ParseOSV(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		r.CVEs()
		for i := range r.Affected {
			a := &r.Affected[i]
			for _, rg := range a.Ranges {
				for _, e := range rg.Events {
					if _, err := m.Includes(a, e.Version); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	})
}

func FuzzParseKEV(f *testing.F) {
	addSeeds(f, "testdata/kev/*.json")
	f.Add([]byte(`{"catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","count":1,"vulnerabilities":[{"cveID":"CVE-2025-0001"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKEV("kev.json", data)
		if err != nil {
			return
		}
		if len(k.Vulnerabilities)+k.Bad != k.Count {
			t.Fatalf("%d entries + %d bad != count %d", len(k.Vulnerabilities), k.Bad, k.Count)
		}
		for i := range k.Vulnerabilities {
			e := &k.Vulnerabilities[i]
			if got, ok := k.Lookup(e.CVEID); !ok || got != e || !IsCVE(e.CVEID) {
				t.Fatalf("entry %d %q not found by Lookup", i, e.CVEID)
			}
		}
	})
}

func FuzzParseEPSSLine(f *testing.F) {
	for _, s := range []string{"CVE-2023-7346;0.001400000;0.038600000", "CVE-1999-0001,0.00383,0.73075",
		"CVE-2021-1000000;1;1e-5", "CVE-2024-0001,0x1p-2,.5", "CVE-2024-00001,0,0"} {
		sep := byte(',')
		if bytes.IndexByte([]byte(s), ';') >= 0 {
			sep = ';'
		}
		f.Add([]byte(s), sep)
	}
	f.Fuzz(func(t *testing.T, line []byte, sep byte) {
		key, s, err := ParseEPSSLine(line, sep)
		if err != nil {
			return
		}
		for _, v := range []float64{s.EPSS, s.Percentile} {
			if math.IsNaN(v) || v < 0 || v > 1 {
				t.Fatalf("%q: score %v out of [0, 1]", line, v)
			}
		}
		id, _, _ := bytes.Cut(line, []byte{sep})
		if !IsCVE(string(id)) {
			t.Fatalf("%q: accepted ID %q is not a CVE ID", line, id)
		}
		if k, ok := cveKey(id); !ok || k != key {
			t.Fatalf("%q: key %x, cveKey says %x %v", line, key, k, ok)
		}
	})
}

func FuzzParseEPSS(f *testing.F) {
	addSeeds(f, "testdata/epss/*.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEPSS("epss.csv", bytes.NewReader(data))
		if err != nil {
			return
		}
		if e.Len()+e.Bad != e.Lines {
			t.Fatalf("%d scored + %d bad != %d lines", e.Len(), e.Bad, e.Lines)
		}
	})
}

func FuzzParseDebianList(f *testing.F) {
	addSeeds(f, "testdata/debian/*")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseDebianList("list", bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, a := range l.Advisories {
			if !validDebianID(a.ID) || a.Line < 1 {
				t.Fatalf("advisory %+v", a)
			}
			for _, c := range a.CVEs {
				if !IsCVE(c) {
					t.Fatalf("%s: CVE %q", a.ID, c)
				}
			}
			for _, fx := range a.Fixes {
				if (fx.Version == "") == (fx.Status == "") || fx.Release == "" || fx.Package == "" {
					t.Fatalf("%s: fix %+v", a.ID, fx)
				}
				if fx.Version != "" && deb.ValidVersion(fx.Version) != nil {
					t.Fatalf("%s: fix %+v", a.ID, fx)
				}
			}
		}
	})
}

func FuzzCompareSemver(f *testing.F) {
	f.Add("1.0.0-alpha.1", "1.0.0-alpha.beta")
	f.Add("1.0.0+b", "1.0.0-rc.1")
	f.Add("1.0", "v1.0.0")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareSemver(a, b), CompareSemver(b, a)
		if ab != -ba || CompareSemver(a, a) != 0 {
			t.Fatalf("CompareSemver(%q, %q) = %d, reversed %d", a, b, ab, ba)
		}
		if ab == 0 && ValidSemver(a) != ValidSemver(b) {
			t.Fatalf("%q and %q equal but only one valid", a, b)
		}
	})
}
