package assess

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Weights of the risk score. docs/assess.md explains each; change them
// there too.
const (
	// kevPoints is added for a KEV-listed CVE. It exceeds the highest
	// score a finding without KEV can reach (10 × 2 × 1.5 = 30), so every
	// known-exploited finding ranks above every other one.
	kevPoints        = 100.0
	overduePoints    = 10.0 // the KEV due date has passed
	ransomwarePoints = 10.0 // known use in ransomware campaigns
	assumedCVSS      = 5.0  // a CVE without a CVSS vector
	assumedEPSS      = 0.01 // a CVE without an EPSS score
	epssFloor        = 0.2  // weight of EPSS ≤ 0.0001
)

const dateLayout = "2006-01-02"

// cveThreat is the host-independent assessment of one CVE.
type cveThreat struct {
	id      string
	points  float64 // CVSS × EPSS weight, 0–10
	bonus   float64 // KEV points: 0, or 100 plus overdue and ransomware
	reasons []string
}

// Threat is the host-independent part of a finding's risk. Compute it
// once per finding (AssessThreat) and weigh it for every host (ForHost).
type Threat struct {
	cves []cveThreat
}

// AssessThreat scores each CVE of f; now decides whether KEV due dates
// have passed. A security update without any CVE counts as one CVE of
// assumed CVSS 5.0 and EPSS 1%; other updates without CVEs score 0.
func AssessThreat(f *Finding, now time.Time) Threat {
	t := Threat{cves: make([]cveThreat, 0, max(len(f.CVEs), 1))}
	for i := range f.CVEs {
		t.cves = append(t.cves, assessCVE(&f.CVEs[i], now))
	}
	if len(t.cves) == 0 && f.Classification == Security {
		t.cves = append(t.cves, cveThreat{
			points:  assumedCVSS * epssWeight(assumedEPSS),
			reasons: []string{"security update without known CVE (CVSS 5.0, EPSS 1% assumed)"},
		})
	}
	return t
}

func assessCVE(c *CVE, now time.Time) cveThreat {
	t := cveThreat{id: c.ID, reasons: make([]string, 0, 4)}
	if k := c.KEV; k != nil {
		t.bonus = kevPoints
		r := "KEV listed"
		if !k.DateAdded.IsZero() {
			r = "KEV since " + k.DateAdded.UTC().Format(dateLayout)
		}
		if !k.DueDate.IsZero() {
			r += " (due " + k.DueDate.UTC().Format(dateLayout)
			if k.Overdue(now) {
				t.bonus += overduePoints
				r += ", overdue"
			}
			r += ")"
		}
		t.reasons = append(t.reasons, r)
		if k.RansomwareUse {
			t.bonus += ransomwarePoints
			t.reasons = append(t.reasons, "known ransomware use")
		}
	}
	p, er := assumedEPSS, "EPSS unknown (1% assumed)"
	if e := c.EPSS; e != nil && !math.IsNaN(e.Probability) {
		p, er = e.Probability, epssReason(e)
	}
	score, cr := assumedCVSS, "CVSS unknown (5.0 assumed)"
	if v, ok := c.BestCVSS(); ok {
		score, cr = v.Score, "CVSS "+strconv.FormatFloat(v.Score, 'f', 1, 64)+" "+v.Severity.String()
	}
	t.points = score * epssWeight(p)
	t.reasons = append(t.reasons, er, cr)
	return t
}

// epssWeight maps an exploitation probability to a weight in [0.2, 1]
// on a log scale: 0.2 at p ≤ 0.0001, then +0.2 per tenfold increase,
// 1.0 at p = 1. EPSS spans orders of magnitude, so a linear weight would
// flatten every CVE below 10% to nearly nothing.
func epssWeight(p float64) float64 {
	if math.IsNaN(p) || p <= 0 {
		return epssFloor
	}
	x := min(max(math.Log10(p)+4, 0), 4)
	return epssFloor + 0.2*x
}

func epssReason(e *EPSS) string {
	var p string
	if e.Probability >= 0.01 {
		p = strconv.FormatFloat(e.Probability, 'f', 2, 64)
	} else {
		p = strconv.FormatFloat(e.Probability, 'g', 2, 64)
	}
	if e.Percentile <= 0 || math.IsNaN(e.Percentile) {
		return "EPSS " + p
	}
	pct := min(int(math.Floor(e.Percentile*100)), 100)
	return "EPSS " + p + " (" + ordinal(pct) + " pct)"
}

func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

// hostFactor is the multiplier of a host's criticality and exposure,
// with a reason for each part that is not neutral.
func hostFactor(h *Host) (float64, []string) {
	f, rs := 1.0, []string(nil)
	switch h.Criticality {
	case CriticalityLow:
		f, rs = 0.5, append(rs, "host low")
	case CriticalityHigh:
		f, rs = 1.5, append(rs, "host high")
	case CriticalityCritical:
		f, rs = 2.0, append(rs, "host critical")
	}
	if h.Exposed(InternetFacing) {
		f *= 1.5
		rs = append(rs, InternetFacing)
	}
	return f, rs
}

// Risk is a finding's score on one host, with the CVE that set it and
// the factors that moved it, strongest first.
type Risk struct {
	Score   float64  `json:"score"`
	CVE     string   `json:"cve,omitempty"`
	Reasons []string `json:"reasons"`
}

// String prints the risk as people read it in a ranking, e.g.
// "CVE-2024-3094: KEV since 2024-04-01 (due 2024-04-22, overdue), EPSS
// 0.86 (99th pct), CVSS 10.0 critical, host critical, internet-facing".
func (r Risk) String() string {
	s := strings.Join(r.Reasons, ", ")
	if r.CVE != "" {
		s = r.CVE + ": " + s
	}
	return s
}

// ForHost weighs the threat on host h: for each CVE, its KEV points plus
// its CVSS×EPSS points times the host factor; the finding's risk is its
// highest-scoring CVE's (ties: the lowest CVE ID), rounded to 0.01.
func (t Threat) ForHost(h *Host) Risk {
	if len(t.cves) == 0 {
		return Risk{Reasons: []string{"no known CVE"}}
	}
	factor, hostReasons := hostFactor(h)
	best, bestVal := -1, 0.0
	for i := range t.cves {
		c := &t.cves[i]
		v := c.bonus + c.points*factor
		if best < 0 || v > bestVal || (v == bestVal && c.id < t.cves[best].id) {
			best, bestVal = i, v
		}
	}
	c := &t.cves[best]
	reasons := make([]string, 0, len(c.reasons)+len(hostReasons))
	reasons = append(append(reasons, c.reasons...), hostReasons...)
	return Risk{Score: math.Round(bestVal*100) / 100, CVE: c.id, Reasons: reasons}
}

// Item is one finding on one host with its risk: a line of a ranking.
type Item struct {
	Host    string   `json:"host,omitempty"`
	Finding *Finding `json:"finding"`
	Risk    Risk     `json:"risk"`
}

// Sort orders items by risk, highest first; ties by package, arch, host,
// then candidate version, so the same input always gives the same order.
func Sort(items []Item) {
	slices.SortFunc(items, func(a, b Item) int {
		if c := cmp.Compare(b.Risk.Score, a.Risk.Score); c != 0 {
			return c
		}
		if c := strings.Compare(a.Finding.Package, b.Finding.Package); c != 0 {
			return c
		}
		if c := strings.Compare(a.Finding.Arch, b.Finding.Arch); c != 0 {
			return c
		}
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return strings.Compare(a.Finding.Candidate, b.Finding.Candidate)
	})
}

// Rank assesses the findings of one host at time now and returns them
// ranked. The items point into findings.
func Rank(findings []Finding, h *Host, now time.Time) []Item {
	items := make([]Item, len(findings))
	for i := range findings {
		f := &findings[i]
		items[i] = Item{Host: h.Name, Finding: f, Risk: AssessThreat(f, now).ForHost(h)}
	}
	Sort(items)
	return items
}
