package assess

import (
	"fmt"
	"slices"
	"strings"
)

// Criticality is how much a host matters to its operators.
type Criticality uint8

// Host criticalities; CriticalityUnset weighs like medium.
const (
	CriticalityUnset Criticality = iota
	CriticalityLow
	CriticalityMedium
	CriticalityHigh
	CriticalityCritical
)

var criticalityNames = [...]string{"", "low", "medium", "high", "critical"}

func (c Criticality) String() string {
	if int(c) < len(criticalityNames) {
		return criticalityNames[c]
	}
	return fmt.Sprintf("criticality(%d)", c)
}

// ParseCriticality reads low, medium, high or critical.
func ParseCriticality(s string) (Criticality, error) {
	for i, n := range criticalityNames[1:] {
		if strings.EqualFold(s, n) {
			return Criticality(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown criticality %q (want low, medium, high or critical)", s)
}

// Host labels the risk score reads.
const (
	// LabelCriticality holds low, medium, high or critical.
	LabelCriticality = "criticality"
	// LabelExposure holds a comma-separated list such as "internet-facing".
	LabelExposure = "exposure"
	// InternetFacing is the exposure that raises risk.
	InternetFacing = "internet-facing"
)

// Host is the context a finding is weighed in.
type Host struct {
	Name        string
	Criticality Criticality
	// Exposure lists exposure labels, sorted (e.g. "internet-facing").
	Exposure []string
}

// HostFromLabels reads criticality and exposure from a host's labels. A
// missing criticality label is CriticalityUnset; an unknown value is an
// error naming the host.
func HostFromLabels(name string, labels map[string]string) (Host, error) {
	h := Host{Name: name}
	if v, ok := labels[LabelCriticality]; ok {
		c, err := ParseCriticality(strings.TrimSpace(v))
		if err != nil {
			return h, fmt.Errorf("host %s: label %s: %w", name, LabelCriticality, err)
		}
		h.Criticality = c
	}
	for _, e := range strings.Split(labels[LabelExposure], ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" && !slices.Contains(h.Exposure, e) {
			h.Exposure = append(h.Exposure, e)
		}
	}
	slices.Sort(h.Exposure)
	return h, nil
}

// Exposed reports whether the host carries exposure label e.
func (h *Host) Exposed(e string) bool { return slices.Contains(h.Exposure, e) }
