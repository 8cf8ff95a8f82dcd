package assess

import (
	"fmt"
	"math"
	"strings"

	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"
)

// Severity is the qualitative CVSS rating, ordered so that comparisons
// work: SeverityNone < SeverityLow < … < SeverityCritical.
type Severity uint8

// The CVSS v3.x and v4.0 qualitative severity ratings.
const (
	SeverityNone Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"none", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", s)
}

// ParseSeverity reads a rating name (none, low, medium, high, critical),
// ignoring case.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want none, low, medium, high or critical)", s)
}

// MarshalText writes the rating name, so JSON carries "high", not 3.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a rating name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// SeverityOf maps a score to its rating with the table shared by CVSS
// v3.0, v3.1 and v4.0: 0.0 none, 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9
// high, 9.0–10.0 critical.
func SeverityOf(score float64) Severity {
	switch {
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	case score >= 0.1:
		return SeverityLow
	}
	return SeverityNone
}

// CVSS is one vector with the score computed from it.
type CVSS struct {
	Version string `json:"version"` // "3.0", "3.1" or "4.0"
	Vector  string `json:"vector"`
	// Score is the v3.x base score, or the v4.0 score of the metric groups
	// present in the vector (Nomenclature says which).
	Score    float64  `json:"score"`
	Severity Severity `json:"severity"`
	// Nomenclature is "CVSS-B", "CVSS-BT", "CVSS-BE" or "CVSS-BTE" for
	// v4.0 vectors, empty for v3.x.
	Nomenclature string `json:"nomenclature,omitempty"`
}

// ParseCVSS computes the score of a CVSS v3.0, v3.1 or v4.0 vector
// ("CVSS:3.1/AV:N/…"). Other versions (v2 has no prefix) are an error.
func ParseCVSS(vector string) (CVSS, error) {
	c := CVSS{Vector: vector}
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := cvss40.ParseVector(vector)
		if err != nil {
			return c, fmt.Errorf("cvss vector %q: %w", vector, err)
		}
		c.Version, c.Score, c.Nomenclature = "4.0", v.Score(), v.Nomenclature()
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := cvss31.ParseVector(vector)
		if err != nil {
			return c, fmt.Errorf("cvss vector %q: %w", vector, err)
		}
		c.Version, c.Score = "3.1", v.BaseScore()
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := cvss30.ParseVector(vector)
		if err != nil {
			return c, fmt.Errorf("cvss vector %q: %w", vector, err)
		}
		c.Version, c.Score = "3.0", v.BaseScore()
	default:
		return c, fmt.Errorf("cvss vector %q: unsupported version (want CVSS:3.0, 3.1 or 4.0)", vector)
	}
	// The library rounds to one decimal; remove binary noise such as
	// 7.300000000000001 so scores compare and print as published.
	c.Score = math.Round(c.Score*10) / 10
	c.Severity = SeverityOf(c.Score)
	return c, nil
}

// versionRank orders CVSS versions, newest highest.
func versionRank(v string) int {
	switch v {
	case "4.0":
		return 3
	case "3.1":
		return 2
	case "3.0":
		return 1
	}
	return 0
}
