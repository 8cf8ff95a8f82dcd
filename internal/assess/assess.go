// Package assess owns the model of a finding — one missing update with
// the CVEs it fixes and what is known about each (CVSS, CISA KEV, EPSS)
// — and the risk score that ranks findings on a host, with the reasons
// printed beside it.
//
// It is pure: data in, data out, no I/O. Feed parsers (KEV, EPSS, OSV,
// DSA, changelogs) live elsewhere and fill the small input types defined
// here, so this package imports none of them. Policy decisions on
// findings live in package policy.
//
// A Finding is host-independent: the same (package, installed, candidate)
// on a thousand hosts is one Finding, assessed once (Threat) and then
// weighed per host (Threat.ForHost), so assessment costs per distinct
// package version, not per host.
package assess

import (
	"fmt"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/detect"
)

// Classification says what kind of update a finding is.
type Classification string

// The classifications a baseline can select on.
const (
	Security Classification = "security"
	Bugfix   Classification = "bugfix"
	Other    Classification = "other"
)

// ParseClassification accepts security, bugfix or other.
func ParseClassification(s string) (Classification, error) {
	switch c := Classification(s); c {
	case Security, Bugfix, Other:
		return c, nil
	}
	return "", fmt.Errorf("unknown classification %q (want security, bugfix or other)", s)
}

// KEV is a CVE's entry in CISA's Known Exploited Vulnerabilities catalog.
type KEV struct {
	DateAdded time.Time `json:"date_added"`
	// DueDate is the remediation deadline for US federal agencies; zero
	// when the feed gave none.
	DueDate time.Time `json:"due_date,omitzero"`
	// RansomwareUse is the catalog's knownRansomwareCampaignUse "Known".
	RansomwareUse bool `json:"ransomware_use,omitempty"`
}

// Overdue reports whether the due date has passed at now (the due date
// itself is still in time).
func (k *KEV) Overdue(now time.Time) bool {
	return !k.DueDate.IsZero() && day(now).After(day(k.DueDate))
}

// EPSS is a CVE's Exploit Prediction Scoring System score.
type EPSS struct {
	Probability float64   `json:"probability"` // of exploitation in the next 30 days, 0–1
	Percentile  float64   `json:"percentile"`  // rank among all scored CVEs, 0–1
	Date        time.Time `json:"date,omitzero"`
}

// CVE is one vulnerability a finding's candidate fixes, with what the
// feeds know about it. CVSS, KEV and EPSS are absent when unknown.
type CVE struct {
	ID   string `json:"id"`
	CVSS []CVSS `json:"cvss,omitempty"`
	KEV  *KEV   `json:"kev,omitempty"`
	EPSS *EPSS  `json:"epss,omitempty"`
}

// BestCVSS returns the vector the risk score uses: the newest CVSS
// version given, and within it the highest score (sources may disagree).
func (c *CVE) BestCVSS() (CVSS, bool) {
	var best CVSS
	found := false
	for _, v := range c.CVSS {
		r, br := versionRank(v.Version), versionRank(best.Version)
		if !found || r > br || (r == br && v.Score > best.Score) {
			best, found = v, true
		}
	}
	return best, found
}

// Finding is one missing update, independent of the host it is missing on.
type Finding struct {
	Package        string         `json:"package"`
	Arch           string         `json:"arch"`
	Installed      string         `json:"installed"`
	Candidate      string         `json:"candidate"`
	Source         string         `json:"source"`
	SourceVersion  string         `json:"source_version"`
	Classification Classification `json:"classification"`
	Suite          string         `json:"suite"`
	// Released is when the candidate was published (zero when unknown);
	// policy age rules count from it.
	Released time.Time `json:"released,omitzero"`
	// Urgency is the highest Debian changelog urgency among the entries
	// newer than the installed version ("" when unknown).
	Urgency string `json:"urgency,omitempty"`
	// Advisories names the advisories that list this update as a fix
	// (DSA-5678-1, DLA-3600-1, ALSA-2024:1234, an OSV id).
	Advisories []string `json:"advisories,omitempty"`
	CVEs       []CVE    `json:"cves,omitempty"`
}

// FromUpdate starts a Finding from a detected update: security when the
// candidate comes from a security suite, other otherwise (telling bug
// fixes apart needs advisory data the caller adds).
func FromUpdate(u detect.Update) Finding {
	c := Other
	if u.Security {
		c = Security
	}
	return Finding{
		Package: u.Package, Arch: u.Arch, Installed: u.Installed, Candidate: u.Candidate,
		Source: u.Source, SourceVersion: u.SourceVersion, Classification: c, Suite: u.Suite,
	}
}

// HasKEV reports whether any of the finding's CVEs is known exploited.
func (f *Finding) HasKEV() bool {
	for i := range f.CVEs {
		if f.CVEs[i].KEV != nil {
			return true
		}
	}
	return false
}

// MaxSeverity is the highest severity among the CVEs' best vectors
// (SeverityNone when no CVE has one).
func (f *Finding) MaxSeverity() Severity {
	s := SeverityNone
	for i := range f.CVEs {
		if c, ok := f.CVEs[i].BestCVSS(); ok && c.Severity > s {
			s = c.Severity
		}
	}
	return s
}

// HasCVE reports whether the finding fixes the CVE (IDs compare ignoring case).
func (f *Finding) HasCVE(id string) bool {
	for i := range f.CVEs {
		if strings.EqualFold(f.CVEs[i].ID, id) {
			return true
		}
	}
	return false
}

// day truncates t to its UTC calendar day.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
