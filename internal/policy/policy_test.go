package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
)

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// loadExamples parses the example baselines shipped in docs/policies, in
// file-name order, as the server would.
func loadExamples(t testing.TB) *Set {
	t.Helper()
	dir := filepath.Join("..", "..", "docs", "policies")
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no example policies in %s: %v", dir, err)
	}
	slices.Sort(names)
	var files []File
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Name: filepath.Base(n), Data: b})
	}
	s, err := ParseSet(files)
	if err != nil {
		t.Fatalf("example policies: %v", err)
	}
	return s
}

func TestExamplesParse(t *testing.T) {
	s := loadExamples(t)
	var names []string
	for _, b := range s.Baselines {
		names = append(names, b.Name)
	}
	if strings.Join(names, ",") != "production,default" {
		t.Fatalf("baselines %v", names)
	}
	p := s.Baselines[0]
	if len(p.Exclude) != 1 || len(p.Decline) != 2 || len(p.Hold) != 1 || len(p.Approve) != 2 || len(p.Rules) != 6 {
		t.Errorf("production parsed as %+v", p)
	}
	if r := p.Rules[3]; r.Name != "bugfix-canary" || r.ApproveAfterDays != 7 || r.Hosts == nil || r.Line != 47 {
		t.Errorf("rules[3] = %+v", r)
	}
	if h := p.Hold[0]; h.Source != "postgresql-15" || !h.Until.Equal(date("2026-12-01")) {
		t.Errorf("hold[0] = %+v", h)
	}
}

type cveOpt func(*assess.CVE)

func kev(c *assess.CVE) { c.KEV = &assess.KEV{DateAdded: date("2025-09-01")} }

func cvss(v string) cveOpt {
	return func(c *assess.CVE) {
		s, err := assess.ParseCVSS(v)
		if err != nil {
			panic(err)
		}
		c.CVSS = append(c.CVSS, s)
	}
}

func cve(id string, opts ...cveOpt) assess.CVE {
	c := assess.CVE{ID: id}
	for _, o := range opts {
		o(&c)
	}
	return c
}

const (
	critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
	high     = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" // 7.5
)

func TestDecide(t *testing.T) {
	s := loadExamples(t)
	prod := map[string]string{"env": "prod", "role": "web"}
	canary := map[string]string{"env": "prod", "role": "db", "ring": "canary"}
	dev := map[string]string{"env": "dev"}
	now := date("2025-10-01")
	sec := assess.Security
	for _, tc := range []struct {
		name   string
		f      assess.Finding
		labels map[string]string
		now    time.Time
		want   Verdict
		rule   string // Decision.Rule, then " "+Name when set
		reason string // substring of Decision.Reason
		at     string // Decision.ApproveAt
	}{
		{"exclusion beats KEV", assess.Finding{Package: "linux-image-amd64", Classification: sec, CVEs: []assess.CVE{cve("CVE-2025-1000", kev)}},
			prod, now, Declined, "exclude[0]", `package "linux-image-*" is excluded (kernels follow`, ""},
		{"declined version", assess.Finding{Package: "nginx", Candidate: "1.22.1-9+deb12u4", Classification: sec},
			prod, now, Declined, "decline[0]", "version 1.22.1-9+deb12u4", ""},
		{"other version of a declined one follows the rules", assess.Finding{Package: "nginx", Candidate: "1.22.1-9+deb12u5", Classification: sec, Released: date("2025-09-20")},
			prod, now, Approved, "rules[2] security", "released 2025-09-20, approved 7 days later", ""},
		{"declined CVE beats approved CVE", assess.Finding{Package: "xz-utils", Classification: sec, CVEs: []assess.CVE{cve("CVE-2024-3094"), cve("CVE-2025-0001")}},
			prod, now, Declined, "decline[1]", "CVE-2025-0001 (the fix breaks LDAP", ""},
		{"hold by source", assess.Finding{Package: "postgresql-15", Source: "postgresql-15", Classification: assess.Bugfix, Released: date("2025-09-01")},
			prod, now, Pending, "hold[0]", `on hold: source "postgresql-15" until 2026-12-01`, ""},
		{"hold still on its last day", assess.Finding{Package: "libpq5", Source: "postgresql-15", Classification: assess.Bugfix},
			prod, date("2026-12-01").Add(20 * time.Hour), Pending, "hold[0]", "on hold", ""},
		{"hold over: rules decide", assess.Finding{Package: "libpq5", Source: "postgresql-15", Classification: assess.Bugfix, Released: date("2026-11-01")},
			prod, date("2026-12-02"), Approved, "rules[4] bugfix", "bugfix update", ""},
		{"explicit CVE approval", assess.Finding{Package: "liblzma5", Classification: assess.Other, CVEs: []assess.CVE{cve("cve-2024-3094")}},
			prod, now, Approved, "approve[0]", "explicitly approved: CVE-2024-3094", ""},
		{"explicit package approval", assess.Finding{Package: "openssh-server", Classification: assess.Other},
			prod, now, Approved, "approve[1]", "sshd fixes", ""},
		{"KEV approves at once", assess.Finding{Package: "libxml2", Classification: assess.Bugfix, Released: date("2025-10-01"), CVEs: []assess.CVE{cve("CVE-2025-1001", kev)}},
			prod, now, Approved, "rules[0] known-exploited", "known exploited (KEV)", ""},
		{"critical after one day", assess.Finding{Package: "curl", Classification: sec, Released: date("2025-09-30"), CVEs: []assess.CVE{cve("CVE-2025-1002", cvss(critical))}},
			prod, now, Approved, "rules[1] critical-security", "severity critical (at least critical)", ""},
		{"critical released today", assess.Finding{Package: "curl", Classification: sec, Released: date("2025-10-01").Add(9 * time.Hour), CVEs: []assess.CVE{cve("CVE-2025-1002", cvss(critical))}},
			prod, now.Add(18 * time.Hour), Pending, "rules[1] critical-security", "on 2025-10-02", "2025-10-02"},
		{"high waits seven days", assess.Finding{Package: "libssl3", Classification: sec, Released: date("2025-09-28"), CVEs: []assess.CVE{cve("CVE-2025-1003", cvss(high))}},
			prod, now, Pending, "rules[2] security", "released 2025-09-28, approved 7 days later, on 2025-10-05", "2025-10-05"},
		{"release date unknown", assess.Finding{Package: "libssl3", Classification: sec},
			prod, now, Pending, "rules[2] security", "release date unknown", ""},
		{"bugfix on a canary host", assess.Finding{Package: "apt", Classification: assess.Bugfix, Released: date("2025-09-23")},
			canary, now, Approved, "rules[3] bugfix-canary", "bugfix update, host in scope", ""},
		{"bugfix elsewhere waits", assess.Finding{Package: "apt", Classification: assess.Bugfix, Released: date("2025-09-23")},
			prod, now, Pending, "rules[4] bugfix", "on 2025-10-14", "2025-10-14"},
		{"other declined by rule", assess.Finding{Package: "tzdata", Classification: assess.Other},
			prod, now, Declined, "rules[5] no-other", "other update; declined", ""},
		{"other baseline for dev hosts", assess.Finding{Package: "tzdata", Classification: assess.Other, Released: date("2025-08-01")},
			dev, now, Approved, "rules[2] everything-else", "any update", ""},
		{"prod label without a selected role", assess.Finding{Package: "linux-image-amd64", Classification: sec, Released: date("2025-09-01")},
			map[string]string{"env": "prod", "role": "batch"}, now, Approved, "rules[1] security", "security update", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := s.Decide(&tc.f, tc.labels, tc.now)
			rule := d.Rule
			if d.Name != "" {
				rule += " " + d.Name
			}
			if d.Verdict != tc.want || rule != tc.rule || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("got  %s\nwant %s by %s: …%s…", d, tc.want, tc.rule, tc.reason)
			}
			at := ""
			if !d.ApproveAt.IsZero() {
				at = d.ApproveAt.Format(dateLayout)
			}
			if at != tc.at {
				t.Errorf("approve_at %q, want %q", at, tc.at)
			}
			if d.File == "" || d.Line == 0 && d.Rule != "default" {
				t.Errorf("decision does not locate its rule: %+v", d)
			}
		})
	}
}

func TestDecideDefaults(t *testing.T) {
	b, err := Parse("empty.yaml", []byte("name: only-holds\nhosts: {match_labels: {env: prod}}\nhold:\n  - package: bash\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := b.Decide(&assess.Finding{Package: "zsh", Classification: assess.Security}, nil, date("2025-10-01"))
	if d.Verdict != Pending || d.Rule != "default" || d.Reason != "no rule matched" || d.Baseline != "only-holds" {
		t.Errorf("got %+v", d)
	}
	s := &Set{Baselines: []*Baseline{b}}
	d = s.Decide(&assess.Finding{Package: "zsh"}, map[string]string{"env": "dev"}, date("2025-10-01"))
	if d.Verdict != Pending || d.Rule != "default" || !strings.Contains(d.Reason, "no baseline") {
		t.Errorf("host without baseline: %+v", d)
	}
}

func TestSelector(t *testing.T) {
	s := Selector{MatchLabels: map[string]string{"env": "prod"}, MatchExpressions: []Requirement{
		{Key: "role", Operator: OpIn, Values: []string{"web", "db"}},
		{Key: "ring", Operator: OpNotIn, Values: []string{"canary"}},
		{Key: "team", Operator: OpExists},
		{Key: "retired", Operator: OpDoesNotExist},
	}}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"env": "prod", "role": "web", "team": "a"}, true},
		{map[string]string{"env": "prod", "role": "db", "team": "a", "ring": "late"}, true},
		{map[string]string{"env": "prod", "role": "db", "team": "a", "ring": "canary"}, false},
		{map[string]string{"env": "prod", "role": "mail", "team": "a"}, false},
		{map[string]string{"env": "prod", "role": "web"}, false},
		{map[string]string{"env": "prod", "role": "web", "team": "a", "retired": ""}, false},
		{map[string]string{"env": "dev", "role": "web", "team": "a"}, false},
		{nil, false},
	} {
		if got := s.Matches(tc.labels); got != tc.want {
			t.Errorf("Matches(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if !(&Selector{All: true}).Matches(nil) {
		t.Error("all: true should match a host without labels")
	}
}

func TestParseSetDuplicateNames(t *testing.T) {
	y := []byte("name: prod\nhosts: {all: true}\n")
	_, err := ParseSet([]File{{"a.yaml", y}, {"b.yaml", y}})
	if err == nil || !strings.Contains(err.Error(), `b.yaml:1: baseline name "prod" already used by a.yaml:1`) {
		t.Errorf("got %v", err)
	}
}
