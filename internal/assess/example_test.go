package assess_test

import (
	"fmt"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
)

func ExampleRank() {
	day := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	cvss := func(v string) []assess.CVSS { c, _ := assess.ParseCVSS(v); return []assess.CVSS{c} }
	findings := []assess.Finding{
		{Package: "openssh-server", Classification: assess.Security, CVEs: []assess.CVE{{ID: "CVE-2025-1002",
			CVSS: cvss("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), EPSS: &assess.EPSS{Probability: 0.001, Percentile: 0.3}}}},
		{Package: "libxml2", Classification: assess.Security, CVEs: []assess.CVE{{ID: "CVE-2025-1001",
			CVSS: cvss("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N"), EPSS: &assess.EPSS{Probability: 0.02, Percentile: 0.88},
			KEV: &assess.KEV{DateAdded: day("2025-08-25"), DueDate: day("2025-09-15")}}}},
		{Package: "tzdata", Classification: assess.Other},
	}
	host, _ := assess.HostFromLabels("web-1", map[string]string{"criticality": "critical", "exposure": "internet-facing"})
	for _, it := range assess.Rank(findings, &host, day("2025-10-01")) {
		fmt.Printf("%6.2f %-15s %s\n", it.Risk.Score, it.Finding.Package, it.Risk)
	}
	// Output:
	// 114.95 libxml2         CVE-2025-1001: KEV since 2025-08-25 (due 2025-09-15, overdue), EPSS 0.02 (88th pct), CVSS 2.5 low, host critical, internet-facing
	//  11.76 openssh-server  CVE-2025-1002: EPSS 0.001 (30th pct), CVSS 9.8 critical, host critical, internet-facing
	//   0.00 tzdata          no known CVE
}
