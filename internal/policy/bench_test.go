package policy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
)

// benchFindings makes n findings shaped like a large Debian host's: 60%
// security, 30% bugfix, 10% other; up to three CVEs each with CVSS and
// EPSS; 2% of CVEs known exploited; released within the last 60 days.
func benchFindings(tb testing.TB, n int, now time.Time) []assess.Finding {
	var vectors []assess.CVSS
	for _, v := range []string{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
		"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
	} {
		c, err := assess.ParseCVSS(v)
		if err != nil {
			tb.Fatal(err)
		}
		vectors = append(vectors, c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	classes := []assess.Classification{assess.Security, assess.Security, assess.Security, assess.Security, assess.Security, assess.Security,
		assess.Bugfix, assess.Bugfix, assess.Bugfix, assess.Other}
	out := make([]assess.Finding, n)
	for i := range out {
		f := assess.Finding{
			Package: fmt.Sprintf("pkg%05d", r.IntN(n)), Arch: "amd64", Source: fmt.Sprintf("src%04d", r.IntN(n/4+1)),
			Installed: "1.0-1", Candidate: "1.0-1+deb12u1", SourceVersion: "1.0-1+deb12u1",
			Classification: classes[r.IntN(len(classes))], Released: now.AddDate(0, 0, -r.IntN(60)),
		}
		for j := range r.IntN(4) {
			c := assess.CVE{ID: fmt.Sprintf("CVE-2025-%05d", i*4+j), CVSS: []assess.CVSS{vectors[r.IntN(len(vectors))]},
				EPSS: &assess.EPSS{Probability: r.Float64() * r.Float64() * r.Float64(), Percentile: r.Float64()}}
			if r.IntN(50) == 0 {
				c.KEV = &assess.KEV{DateAdded: now.AddDate(0, 0, -30), DueDate: now.AddDate(0, 0, r.IntN(30)-15)}
			}
			f.CVEs = append(f.CVEs, c)
		}
		out[i] = f
	}
	return out
}

// BenchmarkRankAndDecide10k ranks 10,000 findings on one host and decides
// each with the production example baseline.
func BenchmarkRankAndDecide10k(b *testing.B) {
	s := loadExamples(b)
	now := time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)
	findings := benchFindings(b, 10000, now)
	labels := map[string]string{"env": "prod", "role": "web", "criticality": "high", "exposure": "internet-facing"}
	host, err := assess.HostFromLabels("web-1", labels)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rank", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			assess.Rank(findings, &host, now)
		}
	})
	b.Run("decide", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range findings {
				s.Decide(&findings[i], labels, now)
			}
		}
	})
	b.Run("both", func(b *testing.B) {
		b.ReportAllocs()
		approved := 0
		for b.Loop() {
			approved = 0
			for _, it := range assess.Rank(findings, &host, now) {
				if s.Decide(it.Finding, labels, now).Verdict == Approved {
					approved++
				}
			}
		}
		b.ReportMetric(float64(approved), "approved")
	})
}
