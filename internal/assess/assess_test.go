package assess

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/detect"
)

func TestHostFromLabels(t *testing.T) {
	h, err := HostFromLabels("web-1", map[string]string{"criticality": "High", "exposure": "internet-facing, dmz,internet-facing", "env": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Criticality != CriticalityHigh || strings.Join(h.Exposure, ",") != "dmz,internet-facing" || !h.Exposed(InternetFacing) {
		t.Errorf("got %+v", h)
	}
	h, err = HostFromLabels("db-1", nil)
	if err != nil || h.Criticality != CriticalityUnset || len(h.Exposure) != 0 {
		t.Errorf("no labels: %+v, %v", h, err)
	}
	_, err = HostFromLabels("db-2", map[string]string{"criticality": "vital"})
	if err == nil || !strings.Contains(err.Error(), "db-2") || !strings.Contains(err.Error(), "vital") {
		t.Errorf("bad criticality: %v", err)
	}
}

func TestFromUpdate(t *testing.T) {
	u := detect.Update{Package: "libssl3", Arch: "amd64", Installed: "3.0.17-1~deb12u2", Candidate: "3.0.18-1~deb12u1",
		Source: "openssl", SourceVersion: "3.0.18-1~deb12u1", Suite: "bookworm-security", Security: true}
	f := FromUpdate(u)
	if f.Classification != Security || f.Source != "openssl" || f.Suite != "bookworm-security" || f.Candidate != u.Candidate {
		t.Errorf("got %+v", f)
	}
	u.Security = false
	if FromUpdate(u).Classification != Other {
		t.Error("non-security update should be other")
	}
}

func TestFindingHelpers(t *testing.T) {
	f := Finding{CVEs: []CVE{
		{ID: "CVE-2025-0001", CVSS: mustCVSS(v75)},
		{ID: "cve-2025-0002", CVSS: mustCVSS(v98), KEV: &KEV{}},
		{ID: "CVE-2025-0003"},
	}}
	if !f.HasKEV() || f.MaxSeverity() != SeverityCritical || !f.HasCVE("CVE-2025-0002") || f.HasCVE("CVE-2025-0004") {
		t.Errorf("helpers wrong on %+v", f)
	}
	if (&Finding{}).HasKEV() || (&Finding{}).MaxSeverity() != SeverityNone {
		t.Error("empty finding")
	}
	if _, err := ParseClassification("feature"); err == nil {
		t.Error("ParseClassification(feature): want error")
	}
}

func TestFindingJSON(t *testing.T) {
	f := Finding{Package: "curl", Classification: Security, CVEs: []CVE{{ID: "CVE-2025-1005", CVSS: mustCVSS(v88),
		KEV: &KEV{DateAdded: date("2025-09-25")}, EPSS: &EPSS{Probability: 0.3, Percentile: 0.97}}}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"severity":"high"`, `"date_added":"2025-09-25T00:00:00Z"`, `"classification":"security"`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s: %s", want, s)
		}
	}
	for _, absent := range []string{`"released"`, `"due_date"`, `"ransomware_use"`} {
		if strings.Contains(s, absent) {
			t.Errorf("JSON has zero field %s: %s", absent, s)
		}
	}
}
