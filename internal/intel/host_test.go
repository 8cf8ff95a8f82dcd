package intel

import (
	"strings"
	"testing"
	"time"
)

// TestAssessHost: one host's updates ranked and decided by the example
// baselines of docs/policies, with real changelogs and feed cuts.
func TestAssessHost(t *testing.T) {
	fd, err := loadTestFeeds(t, Config{KEV: "testdata/kev-cut.json", EPSS: []string{"testdata/epss-cut.csv"},
		DSA: "testdata/DSA-list-cut"})
	must(t, err)
	set, err := ReadPolicies("../../docs/policies")
	must(t, err)
	a := NewAssessor(fd, realLogs(t).get)
	ups := []Update{
		jqUpdate(),
		debUpdate("policykit-1", "policykit-1", "0.105-31", "0.105-31+deb11u1", "bullseye-security"),
		debUpdate("linux-image-amd64", "linux-signed-amd64", "5.10.205-2", "5.10.209-2", "bullseye-security"),
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	prod := map[string]string{"env": "prod", "role": "web", "criticality": "critical", "exposure": "internet-facing"}
	items, err := a.Assess(bullseye, "web-1", prod, ups, set, now)
	must(t, err)
	got := map[string]string{}
	for _, it := range items {
		got[it.Update.Package] = string(it.Decision.Verdict) + " " + it.Decision.Rule
	}
	want := map[string]string{
		"policykit-1":       "approved rules[0]", // KEV (CVE-2021-4034 via DSA-5059-1)
		"jq":                "approved rules[2]", // security, released 2026-10-16 + 7 days
		"linux-image-amd64": "declined exclude[0]",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	if items[0].Update.Package != "policykit-1" || items[0].Risk.Score < 100 || items[0].Risk.CVE != "CVE-2021-4034" {
		t.Errorf("first item %s risk %+v, want policykit-1 above 100 for KEV", items[0].Update.Package, items[0].Risk)
	}
	if !strings.Contains(items[0].Risk.String(), "host critical") || !strings.Contains(items[0].Risk.String(), "internet-facing") {
		t.Errorf("reasons %v", items[0].Risk.Reasons)
	}
	// Another host, the default baseline; no set means no decisions.
	items, err = a.Assess(bullseye, "dev-1", nil, ups, set, now)
	must(t, err)
	for _, it := range items {
		if it.Decision.Baseline != "default" {
			t.Errorf("dev-1 %s: baseline %q", it.Update.Package, it.Decision.Baseline)
		}
	}
	items, err = a.Assess(bullseye, "dev-1", nil, ups, nil, now)
	must(t, err)
	if items[0].Decision != nil {
		t.Errorf("decision without a policy set: %v", items[0].Decision)
	}
	if _, err := a.Assess(bullseye, "dev-2", map[string]string{"criticality": "extreme"}, ups, nil, now); err == nil ||
		!strings.Contains(err.Error(), "dev-2") {
		t.Errorf("bad label: %v", err)
	}
	if a.Computed() != int64(len(ups)) {
		t.Errorf("computed %d findings for 3 assessments of %d updates", a.Computed(), len(ups))
	}
}

func TestReadPolicies(t *testing.T) {
	set, err := ReadPolicies("../../docs/policies/90-default.yaml")
	must(t, err)
	if len(set.Baselines) != 1 {
		t.Errorf("%d baselines", len(set.Baselines))
	}
	if _, err := ReadPolicies(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Errorf("empty dir: %v", err)
	}
}
