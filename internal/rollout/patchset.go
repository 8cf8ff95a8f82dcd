package rollout

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/policy"
)

// Target is what a patch set is frozen for: hosts of one distribution
// release and native architecture see the same repositories, so they get
// the same versions.
type Target struct {
	Distro  string `json:"distro"`  // os-release ID: debian, ubuntu
	Release string `json:"release"` // VERSION_ID: 12, 24.04
	Arch    string `json:"arch"`    // native dpkg architecture: amd64
}

func (t Target) String() string { return t.Distro + " " + t.Release + " " + t.Arch }

func (t Target) compare(u Target) int {
	return cmp.Or(cmp.Compare(t.Distro, u.Distro), cmp.Compare(t.Release, u.Release), cmp.Compare(t.Arch, u.Arch))
}

// Candidate is one update missing on one host, with the host's baseline
// decision on it (policy.Set.Decide).
type Candidate struct {
	Package  string         `json:"package"`
	Arch     string         `json:"arch"`    // amd64, i386, all
	Version  string         `json:"version"` // the candidate version
	Released time.Time      `json:"released,omitzero"`
	Verdict  policy.Verdict `json:"verdict"`
}

// HostUpdates is the input of Freeze for one host.
type HostUpdates struct {
	Host       string      `json:"host"`
	Target     Target      `json:"target"`
	Candidates []Candidate `json:"candidates"`
}

// PatchSet is a frozen list of exact versions per target. Every ring of
// a rollout installs from the same set, so production receives what the
// test ring ran and never a version published in between.
type PatchSet struct {
	FrozenAt time.Time   `json:"frozen_at"`
	MinAge   Duration    `json:"min_age"`
	Targets  []TargetSet `json:"targets"`
	// Left are the candidates not taken, with why.
	Left []Left `json:"left,omitempty"`
	// Hash is the SHA-256 of the targets and pins (see Hash).
	Hash string `json:"hash"`
}

// TargetSet is the pins of one target, sorted by package then arch.
type TargetSet struct {
	Target Target      `json:"target"`
	Pins   []apply.Pin `json:"pins"`
}

// Left is a candidate Freeze did not put in the set.
type Left struct {
	Target Target    `json:"target"`
	Pin    apply.Pin `json:"pin"`
	Reason string    `json:"reason"`
}

// Freeze builds the patch set from every host's candidates: per target and
// (package, arch), the highest candidate version that some host's baseline
// approved and that was released at least minAge before now. A candidate
// with an unknown release date is left out (its age cannot be known), as
// is one no host approved, and a lower approved version of the same
// package (superseded). Hosts with an invalid pin are an error.
func Freeze(hosts []HostUpdates, minAge time.Duration, now time.Time) (PatchSet, error) {
	type key struct {
		t         Target
		pkg, arch string
	}
	best := map[key]apply.Pin{}
	// seen[k][version] is why that version was not eligible, "" if it was.
	seen := map[key]map[string]string{}
	for _, h := range hosts {
		for _, c := range h.Candidates {
			p := apply.Pin{Package: c.Package, Arch: c.Arch, Version: c.Version}
			if err := p.Validate(); err != nil {
				return PatchSet{}, fmt.Errorf("host %s: %w", h.Host, err)
			}
			k := key{h.Target, c.Package, c.Arch}
			if seen[k] == nil {
				seen[k] = map[string]string{}
			}
			reason := ""
			switch {
			case c.Verdict != policy.Approved:
				reason = "not approved (" + string(c.Verdict) + ")"
			case c.Released.IsZero():
				reason = "release date unknown"
			case now.Sub(c.Released) < minAge:
				reason = fmt.Sprintf("released %s, younger than %s", c.Released.UTC().Format(time.DateOnly), minAge)
			}
			if r, ok := seen[k][c.Version]; !ok || (r != "" && reason < r) {
				seen[k][c.Version] = reason
			}
			if reason != "" {
				continue
			}
			if b, ok := best[k]; !ok || deb.CompareValid(c.Version, b.Version) > 0 {
				best[k] = p
			}
		}
	}
	s := PatchSet{FrozenAt: now.UTC(), MinAge: Duration(minAge)}
	byTarget := map[Target][]apply.Pin{}
	for k, p := range best {
		byTarget[k.t] = append(byTarget[k.t], p)
	}
	for t, pins := range byTarget {
		slices.SortFunc(pins, comparePins)
		s.Targets = append(s.Targets, TargetSet{Target: t, Pins: pins})
	}
	slices.SortFunc(s.Targets, func(a, b TargetSet) int { return a.Target.compare(b.Target) })
	for k, vs := range seen {
		b, inSet := best[k]
		for v, reason := range vs {
			switch {
			case inSet && b.Version == v:
				continue
			case reason == "":
				reason = "superseded by " + b.Version
			case inSet:
				reason += "; the set has " + b.Version
			}
			s.Left = append(s.Left, Left{Target: k.t, Pin: apply.Pin{Package: k.pkg, Arch: k.arch, Version: v}, Reason: reason})
		}
	}
	slices.SortFunc(s.Left, func(a, b Left) int {
		return cmp.Or(a.Target.compare(b.Target), comparePins(a.Pin, b.Pin), deb.CompareValid(a.Pin.Version, b.Pin.Version))
	})
	s.Hash = s.ComputeHash()
	return s, nil
}

func comparePins(a, b apply.Pin) int {
	return cmp.Or(cmp.Compare(a.Package, b.Package), cmp.Compare(a.Arch, b.Arch))
}

// ComputeHash is the SHA-256 of the set's content: one line per pin,
// "distro release arch\tpackage\tpin-arch\tversion\n", targets and pins in
// their sorted order. FrozenAt and Left are not part of it: two freezes
// that chose the same versions have the same hash.
func (s *PatchSet) ComputeHash() string {
	h := sha256.New()
	for _, ts := range s.Targets {
		for _, p := range ts.Pins {
			fmt.Fprintf(h, "%s %s %s\t%s\t%s\t%s\n", ts.Target.Distro, ts.Target.Release, ts.Target.Arch, p.Package, p.Arch, p.Version)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks that the set's hash matches its content, e.g. after it
// was read back from storage.
func (s *PatchSet) Verify() error {
	if got := s.ComputeHash(); got != s.Hash {
		return fmt.Errorf("patch set hash %s does not match its content (%s)", s.Hash, got)
	}
	return nil
}

// For returns the pins of a target (nil when the set has none).
func (s *PatchSet) For(t Target) []apply.Pin {
	i, ok := slices.BinarySearchFunc(s.Targets, t, func(ts TargetSet, t Target) int { return ts.Target.compare(t) })
	if !ok {
		return nil
	}
	return s.Targets[i].Pins
}

// Installed is one package version on a host (from its dpkg status).
type Installed struct {
	Package string `json:"package"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
}

// FromStatus converts dpkg status records to Installed, keeping those
// dpkg counts as the current version.
func FromStatus(pkgs []deb.InstalledPackage) []Installed {
	var out []Installed
	for i := range pkgs {
		if pkgs[i].Current() {
			out = append(out, Installed{Package: pkgs[i].Name, Arch: pkgs[i].Arch, Version: pkgs[i].Version})
		}
	}
	return out
}

// HostPins is the part of the set that applies to one host: the target's
// pins for packages the host has installed, in the same architecture, at
// a lower version. Packages the host lacks are not installed by a patch
// set (apt pulls in new dependencies itself), and a host already at or
// above the set's version gets nothing for that package (never a
// downgrade). skip, when not nil, drops further pins — the server passes
// the host's own baseline decisions there, so that a package its baseline
// declines is not installed even though another ring approved it.
//
// The agent should call HostPins again with its dpkg status just before
// installing: the host may have changed since the rollout was planned.
func (s *PatchSet) HostPins(t Target, installed []Installed, skip func(apply.Pin) bool) []apply.Pin {
	have := map[[2]string]string{}
	for _, p := range installed {
		have[[2]string{p.Package, p.Arch}] = p.Version
	}
	var out []apply.Pin
	for _, p := range s.For(t) {
		v, ok := have[[2]string{p.Package, p.Arch}]
		if !ok || deb.CompareValid(v, p.Version) >= 0 {
			continue
		}
		if skip != nil && skip(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// String lists the set, one pin per line, for logs and reports.
func (s PatchSet) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "patch set %s frozen %s (min age %s)\n", short(s.Hash), s.FrozenAt.Format(time.RFC3339), time.Duration(s.MinAge))
	for _, ts := range s.Targets {
		for _, p := range ts.Pins {
			fmt.Fprintf(&b, "  %s\t%s\n", ts.Target, p)
		}
	}
	return b.String()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
