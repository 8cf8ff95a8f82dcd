package assess

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustCVSS(v string) []CVSS {
	c, err := ParseCVSS(v)
	if err != nil {
		panic(err)
	}
	return []CVSS{c}
}

const (
	v98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"                    // 9.8 critical
	v88 = "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"                    // 8.8 high
	v75 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"                    // 7.5 high
	v25 = "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N"                    // 2.5 low
	v40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" // 9.3 critical
)

var now = date("2025-10-01")

// realistic is a host's worth of findings; the comments give each score
// on a medium-criticality host without exposure.
func realistic() []Finding {
	return []Finding{
		{Package: "base-files", Arch: "amd64", Candidate: "12.4+deb12u12", Classification: Other}, // 0
		{Package: "openssh-server", Arch: "amd64", Candidate: "1:9.2p1-2+deb12u7", Classification: Security,
			CVEs: []CVE{{ID: "CVE-2025-1002", CVSS: mustCVSS(v98), EPSS: &EPSS{Probability: 0.001, Percentile: 0.30}}}}, // 9.8×0.4 = 3.92
		{Package: "libxml2", Arch: "amd64", Candidate: "2.9.14+dfsg-1.3~deb12u3", Classification: Security,
			CVEs: []CVE{{ID: "CVE-2025-1001", CVSS: mustCVSS(v25), EPSS: &EPSS{Probability: 0.02, Percentile: 0.88},
				KEV: &KEV{DateAdded: date("2025-08-25"), DueDate: date("2025-09-15")}}}}, // 100+10+2.5×0.66 = 111.65
		{Package: "apt", Arch: "amd64", Candidate: "2.6.1+deb12u1", Classification: Bugfix}, // 0
		{Package: "nginx", Arch: "amd64", Candidate: "1.22.1-9+deb12u3", Classification: Security,
			CVEs: []CVE{{ID: "CVE-2025-1003", CVSS: mustCVSS(v75), EPSS: &EPSS{Probability: 0.5, Percentile: 0.98}}}}, // 7.5×0.94 = 7.05
		{Package: "libexpat1", Arch: "amd64", Candidate: "2.5.0-1+deb12u2", Classification: Security,
			CVEs: []CVE{{ID: "CVE-2025-1004"}}}, // 5.0×0.6 = 3.0 (both assumed)
		{Package: "curl", Arch: "amd64", Candidate: "7.88.1-10+deb12u14", Classification: Security,
			CVEs: []CVE{{ID: "CVE-2025-1005", CVSS: mustCVSS(v88), EPSS: &EPSS{Probability: 0.3, Percentile: 0.97},
				KEV: &KEV{DateAdded: date("2025-09-25"), DueDate: date("2025-10-16")}}}}, // 100+8.8×0.895 = 107.88
		{Package: "libc-bin", Arch: "amd64", Candidate: "2.36-9+deb12u13", Classification: Security}, // 3.0 (no CVE)
	}
}

func TestRankRealistic(t *testing.T) {
	h := &Host{Name: "web-1"}
	items := Rank(realistic(), h, now)
	want := []struct {
		pkg   string
		score float64
	}{
		{"libxml2", 111.65},           // KEV, overdue, low CVSS: first
		{"curl", 107.88},              // KEV, not yet due
		{"nginx", 7.05},               // 7.5 with EPSS 0.5 beats …
		{"openssh-server", 3.92},      // … 9.8 with EPSS 0.001
		{"libc-bin", 3.0},             // security update, no CVE known: ties with …
		{"libexpat1", 3.0},            // … a CVE with nothing known; by name
		{"apt", 0}, {"base-files", 0}, // no CVE: last, by name
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		got := items[i]
		if got.Finding.Package != w.pkg || math.Abs(got.Risk.Score-w.score) > 0.005 {
			t.Errorf("rank %d: %s %.2f (%s), want %s %.2f", i+1, got.Finding.Package, got.Risk.Score, got.Risk, w.pkg, w.score)
		}
	}
	// Stable: the same findings in another order rank the same.
	rev := realistic()
	slices.Reverse(rev)
	again := Rank(rev, h, now)
	for i := range items {
		if items[i].Finding.Package != again[i].Finding.Package {
			t.Fatalf("order depends on input order at %d: %s vs %s", i, items[i].Finding.Package, again[i].Finding.Package)
		}
	}
}

func TestRankOrderPairs(t *testing.T) {
	kevLow := Finding{Package: "a-kev-low", Classification: Security, CVEs: []CVE{{ID: "CVE-1", CVSS: mustCVSS(v25),
		EPSS: &EPSS{Probability: 0.0001}, KEV: &KEV{DateAdded: date("2025-09-01")}}}}
	hot98 := Finding{Package: "b-hot-9.8", Classification: Security, CVEs: []CVE{{ID: "CVE-2", CVSS: mustCVSS(v98),
		EPSS: &EPSS{Probability: 0.97}}}}
	cold98 := Finding{Package: "c-cold-9.8", Classification: Security, CVEs: []CVE{{ID: "CVE-3", CVSS: mustCVSS(v98),
		EPSS: &EPSS{Probability: 0.001}}}}
	low, worst := &Host{Name: "lab", Criticality: CriticalityLow},
		&Host{Name: "edge", Criticality: CriticalityCritical, Exposure: []string{InternetFacing}}
	for _, tc := range []struct {
		name           string
		hi, lo         Finding
		hiHost, loHost *Host
	}{
		{"KEV with low CVSS beats non-KEV 9.8 with EPSS 0.001", kevLow, cold98, &Host{}, &Host{}},
		// The tier holds even at the extremes of host weight.
		{"KEV on a low host beats non-KEV 9.8, EPSS 0.97, on a critical internet-facing host", kevLow, hot98, low, worst},
		{"EPSS 0.97 beats EPSS 0.001 at equal CVSS", hot98, cold98, &Host{}, &Host{}},
		{"critical internet-facing host beats low host for the same finding", cold98, cold98, worst, low},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hi := AssessThreat(&tc.hi, now).ForHost(tc.hiHost)
			lo := AssessThreat(&tc.lo, now).ForHost(tc.loHost)
			if hi.Score <= lo.Score {
				t.Errorf("%.2f (%s) should outrank %.2f (%s)", hi.Score, hi, lo.Score, lo)
			}
		})
	}
}

func TestRiskString(t *testing.T) {
	f := Finding{Package: "libssh-4", Classification: Security, CVEs: []CVE{
		{ID: "CVE-2025-2000", CVSS: mustCVSS(v75), EPSS: &EPSS{Probability: 0.003, Percentile: 0.7}},
		{ID: "CVE-2025-2001", CVSS: mustCVSS(v98), EPSS: &EPSS{Probability: 0.94, Percentile: 0.9993},
			KEV: &KEV{DateAdded: date("2025-08-25"), DueDate: date("2025-09-15"), RansomwareUse: true}},
	}}
	h := &Host{Criticality: CriticalityCritical, Exposure: []string{"dmz", InternetFacing}}
	r := AssessThreat(&f, now).ForHost(h)
	want := "CVE-2025-2001: KEV since 2025-08-25 (due 2025-09-15, overdue), known ransomware use, " +
		"EPSS 0.94 (99th pct), CVSS 9.8 critical, host critical, internet-facing"
	if r.String() != want {
		t.Errorf("got  %s\nwant %s", r, want)
	}
}

// TestReasonsNameEveryFactor changes one factor at a time and checks that
// the score moved and that the reasons name the factor.
func TestReasonsNameEveryFactor(t *testing.T) {
	base := func() (Finding, Host) {
		return Finding{Package: "p", Classification: Security, CVEs: []CVE{{ID: "CVE-2025-3000",
			CVSS: mustCVSS(v75), EPSS: &EPSS{Probability: 0.02, Percentile: 0.8}}}}, Host{}
	}
	f0, h0 := base()
	r0 := AssessThreat(&f0, now).ForHost(&h0)
	for _, tc := range []struct {
		name   string
		change func(*Finding, *Host)
		reason string
	}{
		{"KEV", func(f *Finding, _ *Host) { f.CVEs[0].KEV = &KEV{DateAdded: date("2025-09-01")} }, "KEV since 2025-09-01"},
		{"overdue", func(f *Finding, _ *Host) {
			f.CVEs[0].KEV = &KEV{DateAdded: date("2025-09-01"), DueDate: date("2025-09-22")}
		}, "overdue"},
		{"ransomware", func(f *Finding, _ *Host) { f.CVEs[0].KEV = &KEV{DateAdded: date("2025-09-01"), RansomwareUse: true} }, "ransomware"},
		{"EPSS", func(f *Finding, _ *Host) { f.CVEs[0].EPSS = &EPSS{Probability: 0.5, Percentile: 0.98} }, "EPSS 0.50 (98th pct)"},
		{"EPSS unknown", func(f *Finding, _ *Host) { f.CVEs[0].EPSS = nil }, "EPSS unknown"},
		{"CVSS", func(f *Finding, _ *Host) { f.CVEs[0].CVSS = mustCVSS(v40) }, "CVSS 9.3 critical"},
		{"CVSS unknown", func(f *Finding, _ *Host) { f.CVEs[0].CVSS = nil }, "CVSS unknown"},
		{"host critical", func(_ *Finding, h *Host) { h.Criticality = CriticalityCritical }, "host critical"},
		{"host high", func(_ *Finding, h *Host) { h.Criticality = CriticalityHigh }, "host high"},
		{"host low", func(_ *Finding, h *Host) { h.Criticality = CriticalityLow }, "host low"},
		{"internet-facing", func(_ *Finding, h *Host) { h.Exposure = []string{InternetFacing} }, "internet-facing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, h := base()
			tc.change(&f, &h)
			r := AssessThreat(&f, now).ForHost(&h)
			if r.Score == r0.Score {
				t.Errorf("score did not change (%.2f)", r.Score)
			}
			if !strings.Contains(r.String(), tc.reason) {
				t.Errorf("reasons %q do not mention %q", r, tc.reason)
			}
		})
	}
	// Neutral factors are not mentioned: a medium host, other exposures,
	// a due date still ahead.
	f, h := base()
	f.CVEs[0].KEV = &KEV{DateAdded: date("2025-09-25"), DueDate: date("2025-10-01")}
	h.Criticality, h.Exposure = CriticalityMedium, []string{"dmz"}
	r := AssessThreat(&f, now).ForHost(&h)
	for _, s := range []string{"host", "dmz", "overdue", "ransomware"} {
		if strings.Contains(r.String(), s) {
			t.Errorf("neutral factor %q mentioned: %s", s, r)
		}
	}
}

func TestNoCVE(t *testing.T) {
	h := &Host{Criticality: CriticalityCritical}
	r := AssessThreat(&Finding{Package: "tzdata", Classification: Other}, now).ForHost(h)
	if r.Score != 0 || r.String() != "no known CVE" {
		t.Errorf("non-security update without CVE: %.2f %q", r.Score, r)
	}
	r = AssessThreat(&Finding{Package: "libc6", Classification: Security}, now).ForHost(h)
	if r.Score != 6 || !strings.Contains(r.String(), "without known CVE") || r.CVE != "" {
		t.Errorf("security update without CVE: %.2f %q", r.Score, r)
	}
}

func TestEPSSWeight(t *testing.T) {
	for _, tc := range []struct{ p, w float64 }{
		{0, 0.2}, {0.00001, 0.2}, {0.0001, 0.2}, {0.001, 0.4}, {0.01, 0.6}, {0.1, 0.8}, {1, 1}, {2, 1}, {math.NaN(), 0.2},
	} {
		if got := epssWeight(tc.p); math.Abs(got-tc.w) > 1e-9 {
			t.Errorf("epssWeight(%v) = %v, want %v", tc.p, got, tc.w)
		}
	}
}

func TestEPSSReason(t *testing.T) {
	for _, tc := range []struct {
		e    EPSS
		want string
	}{
		{EPSS{Probability: 0.94, Percentile: 0.9993}, "EPSS 0.94 (99th pct)"},
		{EPSS{Probability: 0.00043, Percentile: 0.101}, "EPSS 0.00043 (10th pct)"},
		{EPSS{Probability: 0.05, Percentile: 0.921}, "EPSS 0.05 (92nd pct)"},
		{EPSS{Probability: 0.02, Percentile: 0.815}, "EPSS 0.02 (81st pct)"},
		{EPSS{Probability: 0.02, Percentile: 0.113}, "EPSS 0.02 (11th pct)"},
		{EPSS{Probability: 0.3}, "EPSS 0.30"},
	} {
		if got := epssReason(&tc.e); got != tc.want {
			t.Errorf("epssReason(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestKEVOverdue(t *testing.T) {
	k := &KEV{DateAdded: date("2025-09-01"), DueDate: date("2025-09-22")}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{date("2025-09-21"), false},
		{date("2025-09-22").Add(23 * time.Hour), false}, // the due date itself is in time
		{date("2025-09-23"), true},
	} {
		if got := k.Overdue(tc.now); got != tc.want {
			t.Errorf("Overdue(%s) = %v, want %v", tc.now, got, tc.want)
		}
	}
	if (&KEV{}).Overdue(now) {
		t.Error("a KEV entry without due date is never overdue")
	}
}

func TestSortAcrossHosts(t *testing.T) {
	f := realistic()
	hosts := []*Host{{Name: "db-1", Criticality: CriticalityCritical}, {Name: "web-1", Exposure: []string{InternetFacing}}, {Name: "lab-1", Criticality: CriticalityLow}}
	var items []Item
	for i := range f {
		th := AssessThreat(&f[i], now) // once per finding, weighed per host
		for _, h := range hosts {
			items = append(items, Item{Host: h.Name, Finding: &f[i], Risk: th.ForHost(h)})
		}
	}
	Sort(items)
	// Within the KEV tier the host weighs CVSS×EPSS: curl (8.8, EPSS 0.3)
	// on the critical host passes libxml2 (2.5, overdue) there.
	top := []string{"curl@db-1", "libxml2@db-1", "libxml2@web-1", "curl@web-1", "libxml2@lab-1", "curl@lab-1", "nginx@db-1"}
	for i, w := range top {
		if got := items[i].Finding.Package + "@" + items[i].Host; got != w {
			t.Errorf("rank %d: %s (%.2f), want %s", i+1, got, items[i].Risk.Score, w)
		}
	}
	// Zero-risk ties: by package, then host.
	n := len(items)
	if got := items[n-1].Finding.Package + "@" + items[n-1].Host; got != "base-files@web-1" {
		t.Errorf("last: %s, want base-files@web-1", got)
	}
}
