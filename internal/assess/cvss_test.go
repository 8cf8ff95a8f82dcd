package assess

import (
	"encoding/json"
	"testing"
)

// firstV31Examples are the vectors and base scores of FIRST's "CVSS v3.1:
// Examples" document (https://www.first.org/cvss/v3.1/examples), plus two
// from the v3.0 examples document.
var firstV3Examples = []struct {
	cve, vector string
	score       float64
}{
	{"CVE-2013-1937", "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1},
	{"CVE-2014-9253", "CVSS:3.0/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4},
	{"CVE-2012-0384 (3.0)", "CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8},
	{"CVE-2013-0375", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4},
	{"CVE-2014-3566", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1},
	{"CVE-2012-1516", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9},
	{"CVE-2009-0783", "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L", 4.2},
	{"CVE-2012-0384", "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2},
	{"CVE-2015-1098", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8},
	{"CVE-2014-0160", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5},
	{"CVE-2014-6271", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
	{"CVE-2008-1447", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N", 6.8},
	{"CVE-2014-2005", "CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 6.8},
	{"CVE-2010-0467", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N", 5.8},
	{"CVE-2012-1342", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:N", 5.8},
	{"CVE-2013-6014", "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H", 9.3},
	{"CVE-2011-1265", "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8},
	{"CVE-2014-2019", "CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N", 4.6},
	{"CVE-2015-0970", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8},
	{"CVE-2014-0224", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N", 7.4},
	{"CVE-2012-5376", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 9.6},
	{"CVE-2016-0128", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N", 6.8},
	{"CVE-2016-2118", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.5},
	{"CVE-2019-7551", "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:H", 9.0},
	{"CVE-2017-5942", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1},
	{"CVE-2016-5558", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:L", 8.6},
	{"CVE-2016-5729", "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 8.2},
	{"CVE-2015-2890", "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:N/I:H/A:H", 6.0},
	{"CVE-2018-3652", "CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 7.6},
	{"CVE-2019-0884", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N", 4.2},
}

// firstV40Reference is a sample of FIRST's CVSS v4.0 calculator
// validation set (github.com/FIRSTdotorg/cvss-resources,
// vectorFiles/reference-scores): base-only, threat, environmental and
// supplemental vectors, and the zero-impact case that go-cvss v0.6.2
// scored 2.0 (fixed in v0.6.3).
var firstV40Reference = []struct {
	vector string
	score  float64
}{
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 8.7},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", 8.7},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:A/CR:H/IR:H/AR:H/MSI:S/MSA:S", 10},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:H/IR:H/AR:H/MSI:S/MSA:S", 9.8},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U/CR:H/IR:H/AR:H/MSI:S/MSA:S", 9.5},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:U/CR:H/IR:H/AR:H", 8.1},
	{"CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:U/CR:H/IR:H/AR:H", 7.2},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:U/CR:M/IR:M/AR:M", 6.8},
	{"CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:U/CR:M/IR:M/AR:M", 5.3},
	{"CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:H/SC:L/SI:L/SA:L/E:U/CR:M/IR:H/AR:M", 3},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:L/SI:L/SA:L/E:U/CR:H/IR:H/AR:H", 2.7},
	{"CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:L/VI:L/VA:L/SC:L/SI:L/SA:L/E:U/CR:H/IR:H/AR:H", 1.7},
	{"CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U/CR:H/IR:H/AR:H", 7.7},
	{"CVSS:4.0/AV:A/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:U/CR:H/IR:H/AR:H", 5.2},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:H/VA:H/SC:L/SI:L/SA:L/E:U/CR:H/IR:H/AR:H", 6.9},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:L/VA:H/SC:L/SI:L/SA:L/E:U/CR:M/IR:H/AR:M", 4.8},
	{"CVSS:4.0/AV:L/AC:H/AT:N/PR:H/UI:P/VC:L/VI:L/VA:N/SC:H/SI:L/SA:N/E:P/CR:M/IR:X/AR:H/MAV:P/MAC:X/MAT:X/MPR:H/MUI:A/MVC:X/MVI:X/MVA:X/MSC:X/MSI:L/MSA:L/S:P/AU:N/R:I/V:D/RE:H/U:Clear", 1},
	{"CVSS:4.0/AV:P/AC:H/AT:N/PR:L/UI:P/VC:N/VI:N/VA:L/SC:N/SI:L/SA:N/E:U/CR:M/IR:H/AR:M/MAV:L/MAC:H/MAT:N/MPR:L/MUI:X/MVC:L/MVI:X/MVA:N/MSC:N/MSI:H/MSA:H/S:X/AU:N/R:A/V:X/RE:L/U:X", 0.3},
	{"CVSS:4.0/AV:L/AC:H/AT:P/PR:N/UI:A/VC:H/VI:H/VA:L/SC:N/SI:H/SA:L/E:X/CR:L/IR:H/AR:X/MAV:A/MAC:X/MAT:P/MPR:L/MUI:N/MVC:H/MVI:X/MVA:X/MSC:X/MSI:S/MSA:L/S:P/AU:X/R:I/V:X/RE:H/U:X", 9.3},
	{"CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:H/SC:N/SI:N/SA:H/E:P/CR:X/IR:H/AR:H/MAV:N/MAC:L/MAT:N/MPR:X/MUI:X/MVC:N/MVI:H/MVA:L/MSC:X/MSI:X/MSA:X/S:P/AU:X/R:A/V:X/RE:X/U:Red", 8.7},
	{"CVSS:4.0/AV:N/AC:H/AT:P/PR:N/UI:P/VC:N/VI:N/VA:H/SC:H/SI:L/SA:H/E:X/CR:X/IR:X/AR:M/MAV:N/MAC:L/MAT:N/MPR:N/MUI:X/MVC:H/MVI:H/MVA:H/MSC:N/MSI:L/MSA:S/S:P/AU:Y/R:X/V:X/RE:M/U:X", 9.7},
	{"CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:P/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N/E:P/CR:X/IR:X/AR:X/MAV:A/MAC:L/MAT:N/MPR:L/MUI:A/MVC:L/MVI:X/MVA:H/MSC:L/MSI:X/MSA:X/S:X/AU:N/R:U/V:X/RE:X/U:Clear", 3.3},
	{"CVSS:4.0/AV:N/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N/E:A/CR:H/IR:X/AR:L/MAV:N/MAC:X/MAT:P/MPR:L/MUI:A/MVC:H/MVI:X/MVA:H/MSC:L/MSI:S/MSA:S/S:X/AU:X/R:X/V:X/RE:M/U:Clear", 8.6},
	{"CVSS:4.0/AV:A/AC:H/AT:N/PR:N/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:N/E:U/CR:H/IR:M/AR:H/MAV:A/MAC:H/MAT:X/MPR:X/MUI:X/MVC:L/MVI:H/MVA:X/MSC:H/MSI:L/MSA:X/S:X/AU:X/R:A/V:X/RE:L/U:Red", 3.7},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/E:X/CR:M/IR:X/AR:M/MAV:L/MAC:L/MAT:N/MPR:N/MUI:X/MVC:N/MVI:N/MVA:N/MSC:N/MSI:N/MSA:N/S:X/AU:X/R:U/V:D/RE:X/U:Green", 0},
	{"CVSS:4.0/AV:A/AC:L/AT:P/PR:L/UI:N/VC:N/VI:H/VA:L/SC:N/SI:N/SA:L/E:P/CR:X/IR:L/AR:M/MAV:X/MAC:X/MAT:N/MPR:L/MUI:X/MVC:X/MVI:N/MVA:N/MSC:X/MSI:N/MSA:N/S:P/AU:X/R:A/V:X/RE:M/U:Clear", 0},
}

func TestCVSSv3FIRSTExamples(t *testing.T) {
	for _, tc := range firstV3Examples {
		c, err := ParseCVSS(tc.vector)
		if err != nil {
			t.Errorf("%s: %v", tc.cve, err)
			continue
		}
		if c.Score != tc.score || c.Severity != SeverityOf(tc.score) {
			t.Errorf("%s %s: got %.1f %s, FIRST says %.1f", tc.cve, tc.vector, c.Score, c.Severity, tc.score)
		}
	}
}

func TestCVSSv4FIRSTReference(t *testing.T) {
	for _, tc := range firstV40Reference {
		c, err := ParseCVSS(tc.vector)
		if err != nil {
			t.Errorf("%s: %v", tc.vector, err)
			continue
		}
		if c.Score != tc.score || c.Version != "4.0" {
			t.Errorf("%s: got %.1f (v%s), FIRST says %.1f", tc.vector, c.Score, c.Version, tc.score)
		}
	}
}

func TestCVSSNomenclature(t *testing.T) {
	c, err := ParseCVSS("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U")
	if err != nil {
		t.Fatal(err)
	}
	if c.Nomenclature != "CVSS-BT" {
		t.Errorf("nomenclature %q, want CVSS-BT", c.Nomenclature)
	}
}

func TestParseCVSSErrors(t *testing.T) {
	for _, v := range []string{
		"",
		"AV:N/AC:L/Au:N/C:P/I:P/A:P", // v2: unsupported
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",                                    // missing A
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",                                // bad value
		"CVSS:4.0/AV:L/AC:H/AT:N/PR:54/UI:N/VC:N/VI:L/VA:N/SC:N/SI:H/SA:L",            // from FIRST's invalid set
		"CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:A/VC:H/VI:L/VA:H/SC:L/SI:H/SA:L/MAC:;/MAT:X", // ditto
		"CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
	} {
		if c, err := ParseCVSS(v); err == nil {
			t.Errorf("ParseCVSS(%q) = %+v, want error", v, c)
		}
	}
}

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		score float64
		want  Severity
	}{{0, SeverityNone}, {0.1, SeverityLow}, {3.9, SeverityLow}, {4.0, SeverityMedium}, {6.9, SeverityMedium}, {7.0, SeverityHigh}, {8.9, SeverityHigh}, {9.0, SeverityCritical}, {10, SeverityCritical}} {
		if got := SeverityOf(tc.score); got != tc.want {
			t.Errorf("SeverityOf(%v) = %v, want %v", tc.score, got, tc.want)
		}
	}
	if s, err := ParseSeverity("High"); err != nil || s != SeverityHigh {
		t.Errorf("ParseSeverity(High) = %v, %v", s, err)
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity(severe): want error")
	}
	b, _ := json.Marshal(CVSS{Version: "3.1", Score: 9.8, Severity: SeverityCritical})
	var back CVSS
	if err := json.Unmarshal(b, &back); err != nil || back.Severity != SeverityCritical {
		t.Errorf("JSON round trip of %s: %+v, %v", b, back, err)
	}
}

func TestBestCVSS(t *testing.T) {
	c := CVE{ID: "CVE-2024-0001", CVSS: []CVSS{
		{Version: "3.1", Score: 9.8},
		{Version: "4.0", Score: 8.7},
		{Version: "4.0", Score: 9.3},
		{Version: "3.0", Score: 10},
	}}
	best, ok := c.BestCVSS()
	if !ok || best.Version != "4.0" || best.Score != 9.3 {
		t.Errorf("BestCVSS = %+v, want the highest v4.0", best)
	}
	if _, ok := (&CVE{}).BestCVSS(); ok {
		t.Error("BestCVSS of a CVE without vectors: want false")
	}
}
