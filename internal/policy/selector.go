package policy

import (
	"errors"
	"slices"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
)

// Selector picks hosts by their labels, as Kubernetes label selectors do:
// every match_labels pair and every expression must hold. All matches
// every host and excludes the other fields.
type Selector struct {
	All              bool
	MatchLabels      map[string]string
	MatchExpressions []Requirement
	Line             int
}

// Requirement is one match_expressions item.
type Requirement struct {
	Key      string
	Operator string // In, NotIn, Exists, DoesNotExist
	Values   []string
}

// The requirement operators.
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
)

// Matches reports whether a host with these labels is selected.
func (s *Selector) Matches(labels map[string]string) bool {
	if s.All {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		switch r.Operator {
		case OpIn:
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case OpNotIn:
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpDoesNotExist:
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *Selector) empty() bool {
	return !s.All && len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// Set is the baselines of a fleet, in the order they are tried: the
// first whose selector matches a host is that host's baseline.
type Set struct {
	Baselines []*Baseline
}

// File is one policy file the caller read.
type File struct {
	Name string
	Data []byte
}

// ParseSet parses files in the order given (callers sort by name, so
// 10-production.yaml is tried before 90-default.yaml). Baseline names
// must be unique across the set.
func ParseSet(files []File) (*Set, error) {
	s := &Set{}
	var errs []error
	seen := map[string]*Baseline{}
	for _, f := range files {
		b, err := Parse(f.Name, f.Data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev := seen[b.Name]; prev != nil {
			errs = append(errs, errorf(b.File, b.Line, "baseline name %q already used by %s:%d", b.Name, prev.File, prev.Line))
			continue
		}
		seen[b.Name] = b
		s.Baselines = append(s.Baselines, b)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// For returns the baseline of a host, or nil when none selects it.
func (s *Set) For(labels map[string]string) *Baseline {
	for _, b := range s.Baselines {
		if b.Hosts.Matches(labels) {
			return b
		}
	}
	return nil
}

// Decide finds the host's baseline and its decision on f; a host no
// baseline selects gets pending.
func (s *Set) Decide(f *assess.Finding, labels map[string]string, now time.Time) Decision {
	b := s.For(labels)
	if b == nil {
		return Decision{Verdict: Pending, Rule: "default", Reason: "no baseline selects this host"}
	}
	return b.Decide(f, labels, now)
}
