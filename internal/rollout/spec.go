package rollout

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/policy"
)

// Selector picks hosts by labels with the semantics of policy.Selector
// (Kubernetes label selectors), in a JSON form of its own.
type Selector struct {
	All              bool                 `json:"all,omitempty"`
	MatchLabels      map[string]string    `json:"match_labels,omitempty"`
	MatchExpressions []policy.Requirement `json:"match_expressions,omitempty"`
}

// Matches reports whether a host with these labels is selected. An empty
// selector selects nothing.
func (s Selector) Matches(labels map[string]string) bool {
	if !s.All && len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		return false
	}
	p := policy.Selector{All: s.All, MatchLabels: s.MatchLabels, MatchExpressions: s.MatchExpressions}
	return p.Matches(labels)
}

// Limit is a number of hosts given as a count or as a percentage of a
// ring's hosts; exactly one of the two is set.
type Limit struct {
	Count   int `json:"count,omitempty"`
	Percent int `json:"percent,omitempty"`
}

func (l Limit) validate(what string, zeroOK bool) error {
	switch {
	case l.Count < 0 || l.Percent < 0:
		return fmt.Errorf("%s: negative", what)
	case l.Count > 0 && l.Percent > 0:
		return fmt.Errorf("%s: give a count or a percent, not both", what)
	case l.Percent > 100:
		return fmt.Errorf("%s: %d%% is above 100%%", what, l.Percent)
	case !zeroOK && l.Count == 0 && l.Percent == 0:
		return fmt.Errorf("%s: must be at least 1 host or 1%%", what)
	}
	return nil
}

// Concurrency is how many of n hosts may be in flight at once: the count
// (at most n), or the percentage of n rounded up and at least 1, so that
// 10% of 5 hosts is 1 and 30% of 10 is 3; a ring always makes progress.
func (l Limit) Concurrency(n int) int {
	if n == 0 {
		return 0
	}
	c := l.Count
	if l.Percent > 0 {
		c = (l.Percent*n + 99) / 100
	}
	return max(1, min(c, n))
}

// Budget is how many of n hosts may fail without halting the rollout: the
// count, or the percentage of n rounded down, so that 10% of 9 hosts is 0
// (the first failure halts) and 10% of 10 is 1. The rollout halts when
// the failures exceed the budget.
func (l Limit) Budget(n int) int {
	if l.Percent > 0 {
		return l.Percent * n / 100
	}
	return l.Count
}

func (l Limit) String() string {
	if l.Percent > 0 {
		return fmt.Sprintf("%d%%", l.Percent)
	}
	return fmt.Sprint(l.Count)
}

// Ring is one stage of a rollout. Hosts belong to the first ring whose
// selector matches their labels.
type Ring struct {
	Name  string   `json:"name"`
	Hosts Selector `json:"hosts"`
	// Concurrency bounds the hosts in flight (installing, waiting for or
	// doing their reboot, rolling back).
	Concurrency Limit `json:"concurrency"`
	// FailureBudget is how many hosts may fail before the rollout halts.
	FailureBudget Limit `json:"failure_budget"`
	// Soak is how long the ring must stay healthy after its last host
	// finished before the next ring starts.
	Soak Duration `json:"soak,omitempty"`
}

// WindowGroup gives the hosts it selects their maintenance windows. A
// host takes the windows of the first group that selects it; a host no
// group selects has no window restriction.
type WindowGroup struct {
	Name    string   `json:"name"`
	Hosts   Selector `json:"hosts"`
	Windows []Window `json:"windows"`
}

// Reboot policies.
const (
	RebootIfRequired = "if-required" // reboot, inside a window, when the agent says it is needed
	RebootNever      = "never"       // report the need, never reboot
)

// Options are the rollout-wide settings.
type Options struct {
	// InstallEstimate is how long an install is expected to take: a host
	// starts only if its window stays open that long. Default 30 minutes.
	InstallEstimate Duration `json:"install_estimate,omitempty"`
	// RebootEstimate, likewise, for a reboot and the health check after
	// it. Default 15 minutes.
	RebootEstimate Duration `json:"reboot_estimate,omitempty"`
	// Reboot is RebootIfRequired (default) or RebootNever.
	Reboot string `json:"reboot,omitempty"`
	// Rollback dispatches a rollback to a host that fails its health
	// check.
	Rollback bool `json:"rollback,omitempty"`
	// JobTimeout marks a host lost when a dispatched job has no result
	// after this long (0: only the server's EventLost does).
	JobTimeout Duration `json:"job_timeout,omitempty"`
}

// Default estimates.
const (
	DefaultInstallEstimate = 30 * time.Minute
	DefaultRebootEstimate  = 15 * time.Minute
)

// Spec describes a rollout: its patch set (by hash), its rings in order
// and the windows of its hosts.
type Spec struct {
	ID      string        `json:"id"`
	SetHash string        `json:"set_hash"`
	Rings   []Ring        `json:"rings"`
	Groups  []WindowGroup `json:"window_groups,omitempty"`
	Options Options       `json:"options"`
}

// Host is a host taking part in a rollout: its labels (which pick its
// ring and windows) and its pins (PatchSet.HostPins).
type Host struct {
	ID     string            `json:"id"`
	Labels map[string]string `json:"labels,omitempty"`
	Pins   []apply.Pin       `json:"pins"`
}

func (s *Spec) validate() error {
	var errs []error
	if s.ID == "" {
		errs = append(errs, errors.New("rollout without an id"))
	}
	if len(s.Rings) == 0 {
		errs = append(errs, errors.New("rollout without rings"))
	}
	names := map[string]bool{}
	for i, r := range s.Rings {
		if r.Name == "" || names[r.Name] {
			errs = append(errs, fmt.Errorf("rings[%d]: missing or repeated name %q", i, r.Name))
		}
		names[r.Name] = true
		if err := r.Concurrency.validate("ring "+r.Name+" concurrency", false); err != nil {
			errs = append(errs, err)
		}
		if err := r.FailureBudget.validate("ring "+r.Name+" failure budget", true); err != nil {
			errs = append(errs, err)
		}
		if r.Soak < 0 {
			errs = append(errs, fmt.Errorf("ring %s: negative soak", r.Name))
		}
	}
	switch s.Options.Reboot {
	case "", RebootIfRequired, RebootNever:
	default:
		errs = append(errs, fmt.Errorf("reboot policy %q: want %s or %s", s.Options.Reboot, RebootIfRequired, RebootNever))
	}
	if s.Options.InstallEstimate < 0 || s.Options.RebootEstimate < 0 || s.Options.JobTimeout < 0 {
		errs = append(errs, errors.New("negative estimate or timeout"))
	}
	// A group whose windows are all shorter than an estimate would never
	// start (or reboot) its hosts: the rollout would stall without a word.
	for _, g := range s.Groups {
		longest := time.Duration(0)
		for _, w := range g.Windows {
			longest = max(longest, w.duration)
		}
		if need := max(time.Duration(s.Options.InstallEstimate), time.Duration(s.Options.RebootEstimate)); longest < need {
			errs = append(errs, fmt.Errorf("window group %s: no window is as long as the install or reboot estimate (%s)", g.Name, need))
		}
	}
	return errors.Join(errs...)
}

// New plans a rollout: each host goes to the first ring that selects it
// (hosts no ring selects are listed in State.Unassigned) and gets the
// windows of the first window group that selects it. The rollout waits
// for an EventStart.
func New(spec Spec, hosts []Host, now time.Time) (State, error) {
	if spec.Options.InstallEstimate == 0 {
		spec.Options.InstallEstimate = Duration(DefaultInstallEstimate)
	}
	if spec.Options.RebootEstimate == 0 {
		spec.Options.RebootEstimate = Duration(DefaultRebootEstimate)
	}
	if spec.Options.Reboot == "" {
		spec.Options.Reboot = RebootIfRequired
	}
	if err := spec.validate(); err != nil {
		return State{}, err
	}
	s := State{Spec: spec, Status: StatusCreated, Created: now.UTC(), Commands: map[string]bool{}}
	for _, r := range spec.Rings {
		s.Rings = append(s.Rings, RingState{Name: r.Name})
	}
	seen := map[string]bool{}
	valid := map[*apply.Pin]int{} // lists checked, by first element and length (hosts share lists)
	for _, h := range hosts {
		if h.ID == "" || seen[h.ID] {
			return State{}, fmt.Errorf("missing or repeated host id %q", h.ID)
		}
		seen[h.ID] = true
		if len(h.Pins) > 0 && valid[&h.Pins[0]] != len(h.Pins) {
			for _, p := range h.Pins {
				if err := p.Validate(); err != nil {
					return State{}, fmt.Errorf("host %s: %w", h.ID, err)
				}
			}
			valid[&h.Pins[0]] = len(h.Pins)
		}
		ring := slices.IndexFunc(spec.Rings, func(r Ring) bool { return r.Hosts.Matches(h.Labels) })
		if ring < 0 {
			s.Unassigned = append(s.Unassigned, h.ID)
			continue
		}
		group := slices.IndexFunc(spec.Groups, func(g WindowGroup) bool { return g.Hosts.Matches(h.Labels) })
		hs := &HostState{ID: h.ID, Ring: ring, Group: group, Pins: h.Pins, Phase: PhasePending}
		if len(h.Pins) == 0 {
			hs.Phase, hs.Note = PhaseSkipped, "nothing to install"
		}
		s.Hosts = append(s.Hosts, hs)
	}
	slices.SortFunc(s.Hosts, func(a, b *HostState) int { return cmp.Or(cmp.Compare(a.Ring, b.Ring), cmp.Compare(a.ID, b.ID)) })
	slices.Sort(s.Unassigned)
	for i := range s.Rings {
		s.Rings[i].Hosts = countRing(s.Hosts, i)
	}
	s.audit(now, "engine", "created", "", "", fmt.Sprintf("%d hosts in %d rings, %d unassigned, patch set %s", len(s.Hosts), len(s.Rings), len(s.Unassigned), short(spec.SetHash)))
	return s, nil
}

func countRing(hosts []*HostState, ring int) int {
	n := 0
	for i := range hosts {
		if hosts[i].Ring == ring {
			n++
		}
	}
	return n
}
