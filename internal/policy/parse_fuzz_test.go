package policy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
)

// FuzzParse feeds arbitrary bytes to the policy parser: it must not
// panic, every error line must name the file, and a baseline it accepts
// must give one of the three verdicts on any finding.
func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob(filepath.Join("..", "..", "docs", "policies", "*.yaml"))
	for _, n := range examples {
		if b, err := os.ReadFile(n); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"", "---\n", "name: t\nhosts: {all: true}\n",
		"name: t\nhosts: &h {all: true}\nrules:\n  - name: s\n    hosts: *h\n",
		"name: t\nhosts: {all: true}\nhold:\n  - package: bash\n    until: 2026-01-01\n",
		"name: t\nhosts: {match_expressions: [{key: a, operator: NotIn, values: [b]}]}\nrules:\n  - {name: a, min_severity: low, kev: true, packages: ['*']}\n",
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)
	findings := []assess.Finding{
		{Package: "bash", Source: "bash", Candidate: "5.2.15-2+b8", Classification: assess.Security, Released: now.AddDate(0, 0, -3),
			CVEs: []assess.CVE{{ID: "CVE-2024-3094", KEV: &assess.KEV{}, CVSS: []assess.CVSS{{Version: "3.1", Score: 10, Severity: assess.SeverityCritical}}}}},
		{Package: "tzdata", Classification: assess.Other},
	}
	labels := map[string]string{"a": "c", "env": "prod", "role": "web"}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse("f.yaml", data)
		if err != nil {
			checkErrorLines(t, "f.yaml", err)
			return
		}
		for i := range findings {
			switch d := b.Decide(&findings[i], labels, now); d.Verdict {
			case Approved, Pending, Declined:
			default:
				t.Fatalf("verdict %q", d.Verdict)
			}
		}
	})
}
