package advisory

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/deb"
)

// ev builds events from "kind:version" strings, for tables.
func ev(specs ...string) []Event {
	kinds := map[string]EventKind{"i": Introduced, "f": Fixed, "la": LastAffected, "l": Limit}
	out := make([]Event, len(specs))
	for i, s := range specs {
		k, v, _ := strings.Cut(s, ":")
		out[i] = Event{Kind: kinds[k], Version: v}
	}
	return out
}

// TestRangeIncludesSpec runs the examples of the OSV schema's "Examples"
// section, and the corner cases of its evaluation pseudo-code.
func TestRangeIncludesSpec(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		events   []Event
		affected []string
		not      []string
	}{
		{"unfixed: every version", RangeSemver, ev("i:0"),
			[]string{"0.0.0", "1.0.0", "99.0.0-rc.1"}, nil},
		{"fixed: everything before 1.0.2", RangeSemver, ev("i:0", "f:1.0.2"),
			[]string{"0.0.1", "1.0.1", "1.0.2-rc.1"}, []string{"1.0.2", "1.0.3", "2.0.0"}},
		{"multiple ranges [1.0.0,1.0.2) [3.0.0,3.2.5)", RangeSemver, ev("i:1.0.0", "f:1.0.2", "i:3.0.0", "f:3.2.5"),
			[]string{"1.0.0", "1.0.1", "3.0.0", "3.2.4"}, []string{"0.9.0", "1.0.2", "2.5.0", "3.2.5", "4.0.0"}},
		{"same ranges, events unsorted", RangeSemver, ev("f:3.2.5", "i:3.0.0", "f:1.0.2", "i:1.0.0"),
			[]string{"1.0.0", "1.0.1", "3.0.0", "3.2.4"}, []string{"0.9.0", "1.0.2", "2.5.0", "3.2.5"}},
		{"last_affected 2.1.214 is inclusive", RangeSemver, ev("i:0", "la:2.1.214"),
			[]string{"1.0.0", "2.1.213", "2.1.214"}, []string{"2.1.215", "3.0.0"}},
		{"fixed 2.1.214 is exclusive", RangeSemver, ev("i:0", "f:2.1.214"),
			[]string{"2.1.213"}, []string{"2.1.214", "2.1.215"}},
		{"limit bounds the range", RangeSemver, ev("i:1.0.0", "l:2.0.0"),
			[]string{"1.0.0", "1.9.9"}, []string{"0.9.9", "2.0.0", "2.1.0"}},
		{"several limits: below any one", RangeSemver, ev("i:1.0.0", "l:1.5.0", "l:3.0.0"),
			[]string{"1.0.0", "2.0.0"}, []string{"3.0.0", "0.1.0"}},
		{"limit * is infinity", RangeSemver, ev("i:1.0.0", "l:*"),
			[]string{"1.0.0", "999.0.0"}, []string{"0.1.0"}},
		{"introduced 0 is below dpkg's lowest", RangeEcosystem, ev("i:0", "f:1.0-1"),
			[]string{"0~", "~~", "0.9-1"}, []string{"1.0-1", "1:0.1-1"}},
		{"introduced after fixed", RangeEcosystem, ev("i:0", "f:1.0-1", "i:2.0-1"),
			[]string{"0.5", "2.0-1", "3.0"}, []string{"1.0-1", "1.5"}},
		{"dpkg epochs and tildes", RangeEcosystem, ev("i:1:1.0", "f:1:1.2~rc1"),
			[]string{"1:1.0", "1:1.1", "1:1.2~beta"}, []string{"1.5", "1:1.2~rc1", "1:1.2", "2:0"}},
		{"no introduced: nothing", RangeEcosystem, ev("f:1.0"), nil, []string{"0.1", "1.0", "2.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := Range{Type: tt.typ, Events: tt.events}
			cmp := Comparator(CompareSemver)
			if tt.typ == RangeEcosystem {
				cmp = deb.CompareValid
			}
			for _, v := range tt.affected {
				if !rg.Includes(v, cmp) {
					t.Errorf("%s not included, want included", v)
				}
			}
			for _, v := range tt.not {
				if rg.Includes(v, cmp) {
					t.Errorf("%s included, want not", v)
				}
			}
		})
	}
}

func TestMatcherAffects(t *testing.T) {
	r := &Record{ID: "TEST-1", Affected: []Affected{
		{Package: Package{Ecosystem: "Debian:12", Name: "curl"},
			Ranges: []Range{{Type: RangeEcosystem, Events: ev("i:0", "f:7.88.1-10+deb12u5")}}},
		{Package: Package{Ecosystem: "Debian:12", Name: "curl"},
			Versions: []string{"8.0.0-1"}},
		{Package: Package{Ecosystem: "npm", Name: "left-pad"},
			Ranges:   []Range{{Type: RangeSemver, Events: ev("i:1.0.0", "f:1.3.0")}},
			Versions: []string{"0.0.1"}},
		{Package: Package{Ecosystem: "Go", Name: "example.com/m"},
			Ranges: []Range{{Type: RangeGit, Repo: "https://example.com/m", Events: ev("i:abc", "f:def")}}},
	}}
	var m Matcher
	tests := []struct {
		eco, name, version string
		want               bool
	}{
		{"Debian:12", "curl", "7.88.1-10+deb12u4", true},
		{"Debian:12", "curl", "7.88.1-10+deb12u5", false},
		{"Debian:12", "curl", "8.0.0-1", true}, // listed in versions[] of the second entry
		{"Debian:11", "curl", "7.0-1", false},  // another release is another ecosystem
		{"Debian:12", "libcurl4", "7.0-1", false},
		{"npm", "left-pad", "1.2.9", true},
		{"npm", "left-pad", "0.0.1", true},
		{"npm", "left-pad", "0.0.2", false},
		{"Go", "example.com/m", "abc", false}, // GIT ranges are not evaluated
	}
	for _, tt := range tests {
		got, err := m.Affects(r, tt.eco, tt.name, tt.version)
		if err != nil || got != tt.want {
			t.Errorf("Affects(%s %s %s) = %v, %v; want %v", tt.eco, tt.name, tt.version, got, err, tt.want)
		}
	}

	now := r.Modified
	withdrawn := *r
	withdrawn.Withdrawn = &now
	if got, _ := m.Affects(&withdrawn, "Debian:12", "curl", "1.0-1"); got {
		t.Error("withdrawn record affects a version")
	}
}

func TestMatcherNoComparator(t *testing.T) {
	r := &Record{ID: "TEST-2", Affected: []Affected{{
		Package:  Package{Ecosystem: "Alpine:v3.18", Name: "musl"},
		Ranges:   []Range{{Type: RangeEcosystem, Events: ev("i:0", "f:1.2.4-r1")}},
		Versions: []string{"1.2.3-r0"},
	}}}
	var m Matcher
	if ok, err := m.Affects(r, "Alpine:v3.18", "musl", "1.2.3-r0"); !ok || err != nil {
		t.Errorf("listed version: got %v, %v; want true, nil", ok, err)
	}
	_, err := m.Affects(r, "Alpine:v3.18", "musl", "1.2.4-r0")
	var nc *NoComparatorError
	if !errors.As(err, &nc) || nc.Ecosystem != "Alpine:v3.18" {
		t.Errorf("unlisted version: err = %v, want *NoComparatorError", err)
	}
	// A Matcher can bring its own ordering.
	m.Comparators = func(string) (Comparator, bool) { return strings.Compare, true }
	if ok, err := m.Affects(r, "Alpine:v3.18", "musl", "1.2.4-r0"); !ok || err != nil {
		t.Errorf("with a comparator: got %v, %v; want true, nil", ok, err)
	}
}

func TestEventJSON(t *testing.T) {
	var e Event
	if err := json.Unmarshal([]byte(`{"last_affected":"1.2"}`), &e); err != nil || e != (Event{LastAffected, "1.2"}) {
		t.Fatalf("got %+v, %v", e, err)
	}
	b, err := json.Marshal(e)
	if err != nil || string(b) != `{"last_affected":"1.2"}` {
		t.Errorf("marshal: %s, %v", b, err)
	}
	for _, bad := range []string{`{"introduced":"0","fixed":"1"}`, `{}`, `{"fixed":1}`, `[]`, `{"future":"x"}`} {
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseOSVInvalid(t *testing.T) {
	tests := map[string]string{
		"not JSON":              `{"id":`,
		"no id":                 `{"modified":"2024-01-01T00:00:00Z"}`,
		"affected not an array": `{"id":"X-1","affected":{}}`,
		"bad modified":          `{"id":"X-1","modified":"yesterday"}`,
		"no introduced":         `{"id":"X-1","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0.0"}]}]}]}`,
		"fixed and last_affected": `{"id":"X-1","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER",
			"events":[{"introduced":"0"},{"fixed":"1.0.0"},{"last_affected":"1.1.0"}]}]}]}`,
		"range without type": `{"id":"X-1","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"events":[{"introduced":"0"}]}]}]}`,
	}
	for name, in := range tests {
		if _, err := ParseOSV([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCVEs(t *testing.T) {
	r := &Record{ID: "UBUNTU-CVE-2021-3782", Aliases: []string{"GHSA-xxxx", "CVE-2021-3782"},
		Upstream: []string{"CVE-2020-1", "CVE-2020-12345"}, Related: []string{"USN-1-1", "CVE-2022-0001"}}
	if got, want := r.AliasCVEs(), []string{"CVE-2021-3782"}; !slices.Equal(got, want) {
		t.Errorf("AliasCVEs = %v, want %v", got, want)
	}
	if got, want := r.CVEs(), []string{"CVE-2021-3782", "CVE-2020-12345", "CVE-2022-0001"}; !slices.Equal(got, want) {
		t.Errorf("CVEs = %v, want %v", got, want)
	}
}

func readRecord(t *testing.T, path string) *Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseOSV(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}
