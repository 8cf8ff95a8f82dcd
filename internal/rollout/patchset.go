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
	Package string `json:"package"`
	Arch    string `json:"arch"`    // amd64, i386, all
	Version string `json:"version"` // the candidate version
	// Source and SourceVersion are the source package the candidate
	// version is built from (detect.Update's fields of the same names);
	// empty when unknown, and the binary is then a group of its own.
	Source        string         `json:"source,omitempty"`
	SourceVersion string         `json:"source_version,omitempty"`
	Released      time.Time      `json:"released,omitzero"`
	Verdict       policy.Verdict `json:"verdict"`
}

// source is the candidate's source version, the zero Source when either
// part is unknown.
func (c *Candidate) source() Source {
	if c.Source == "" || c.SourceVersion == "" {
		return Source{}
	}
	return Source{Name: c.Source, Version: c.SourceVersion}
}

// Source is one version of a source package: the binaries built from it
// go into a patch set, and onto a host, together or not at all.
type Source struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

func (s Source) compare(u Source) int {
	return cmp.Or(cmp.Compare(s.Name, u.Name), cmp.Compare(s.Version, u.Version))
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
	// Sources[i] is the source version Pins[i] is built from, the zero
	// Source when unknown. HostPins keeps or drops the pins of one source
	// version together. Sets frozen before sources were recorded have
	// none: each of their pins is a group of its own. Sources are not
	// part of the hash: they follow from the pinned versions.
	Sources []Source `json:"sources,omitempty"`
}

// source is the source version of Pins[i].
func (ts *TargetSet) source(i int) Source {
	if i < len(ts.Sources) {
		return ts.Sources[i]
	}
	return Source{}
}

// Left is a candidate Freeze did not put in the set.
type Left struct {
	Target Target    `json:"target"`
	Pin    apply.Pin `json:"pin"`
	Reason string    `json:"reason"`
}

// Freeze builds the patch set from every host's candidates: per target and
// (package, arch), the highest eligible candidate version. A version is
// eligible when some host's baseline approved it and it was released at
// least minAge before now (one with an unknown release date is not: its
// age cannot be known), and when every other binary of the same source
// version that some host of the target offered is eligible too: the
// binaries built from one source version go into the set together or not
// at all, so that no host gets openssl at a version whose libssl3 was held
// back. The versions not taken are in Left with why, a lower eligible
// version of the same package as superseded. Hosts with an invalid pin
// are an error.
func Freeze(hosts []HostUpdates, minAge time.Duration, now time.Time) (PatchSet, error) {
	offers, err := collect(hosts, minAge, now)
	if err != nil {
		return PatchSet{}, err
	}
	blockGroups(offers)
	best := map[binary]binary{} // by slot
	for b, o := range offers {
		if o.reason() != "" {
			continue
		}
		if cur, ok := best[b.slot()]; !ok || deb.CompareValid(b.version, cur.version) > 0 {
			best[b.slot()] = b
		}
	}
	s := PatchSet{FrozenAt: now.UTC(), MinAge: Duration(minAge)}
	byTarget := map[Target][]binary{}
	for _, b := range best {
		byTarget[b.t] = append(byTarget[b.t], b)
	}
	for t, bs := range byTarget {
		slices.SortFunc(bs, compareBinaries)
		ts := TargetSet{Target: t}
		known := false
		for _, b := range bs {
			src := offers[b].source()
			ts.Pins, ts.Sources = append(ts.Pins, b.pin()), append(ts.Sources, src)
			known = known || src != Source{}
		}
		if !known {
			ts.Sources = nil
		}
		s.Targets = append(s.Targets, ts)
	}
	slices.SortFunc(s.Targets, func(a, b TargetSet) int { return a.Target.compare(b.Target) })
	for b, o := range offers {
		cur, inSet := best[b.slot()]
		reason := o.reason()
		switch {
		case inSet && cur.version == b.version:
			continue
		case reason == "":
			reason = "superseded by " + cur.version
		case inSet:
			reason += "; the set has " + cur.version
		}
		s.Left = append(s.Left, Left{Target: b.t, Pin: b.pin(), Reason: reason})
	}
	slices.SortFunc(s.Left, func(a, b Left) int {
		return cmp.Or(a.Target.compare(b.Target), comparePins(a.Pin, b.Pin), deb.CompareValid(a.Pin.Version, b.Pin.Version))
	})
	s.Hash = s.ComputeHash()
	return s, nil
}

// binary is one version of one binary package offered to hosts of a
// target; with an empty version, its slot in the target's set.
type binary struct {
	t                  Target
	pkg, arch, version string
}

func (b binary) slot() binary { b.version = ""; return b }

func (b binary) pin() apply.Pin { return apply.Pin{Package: b.pkg, Arch: b.arch, Version: b.version} }

// name is the binary's name as dpkg shows it on the target: with the
// architecture only when that is foreign.
func (b binary) name() string {
	if b.arch == "" || b.arch == "all" || b.arch == b.t.Arch {
		return b.pkg
	}
	return b.pkg + ":" + b.arch
}

func compareBinaries(a, b binary) int {
	return cmp.Or(a.t.compare(b.t), comparePins(a.pin(), b.pin()), deb.CompareValid(a.version, b.version), cmp.Compare(a.version, b.version))
}

// offer is what the hosts of a target said about one binary version.
type offer struct {
	own     string   // why the version is not eligible, "" when some host may take it
	clause  string   // own as said of the binary: "is not approved (pending)"
	blocked string   // why its source version is not eligible, "" when it is
	sources []Source // the source versions hosts gave for it, sorted: one, unless they disagree
}

func (o *offer) reason() string { return cmp.Or(o.own, o.blocked) }

// source is the source version the set records for the binary: the first
// when hosts disagree (the binary is held back with each of them anyway).
func (o *offer) source() Source {
	if len(o.sources) == 0 {
		return Source{}
	}
	return o.sources[0]
}

// collect judges every host's candidates: per binary version, the best
// reason any host gave (eligible when one host's is) and its sources.
func collect(hosts []HostUpdates, minAge time.Duration, now time.Time) (map[binary]*offer, error) {
	offers := map[binary]*offer{}
	for _, h := range hosts {
		for i := range h.Candidates {
			c := &h.Candidates[i]
			b := binary{h.Target, c.Package, c.Arch, c.Version}
			reason, clause := eligibility(c, minAge, now)
			o := offers[b]
			if o == nil { // a new binary version: checked once
				if err := b.pin().Validate(); err != nil {
					return nil, fmt.Errorf("host %s: %w", h.Host, err)
				}
				o = &offer{own: reason, clause: clause}
				offers[b] = o
			} else if reason < o.own {
				o.own, o.clause = reason, clause
			}
			if src := c.source(); src != (Source{}) {
				if j, found := slices.BinarySearchFunc(o.sources, src, Source.compare); !found {
					o.sources = slices.Insert(o.sources, j, src)
				}
			}
		}
	}
	return offers, nil
}

// eligibility is why one host's candidate is not eligible, as a reason
// and as a clause about the binary; both empty when it is.
func eligibility(c *Candidate, minAge time.Duration, now time.Time) (reason, clause string) {
	switch {
	case c.Verdict != policy.Approved:
		reason = "not approved (" + string(c.Verdict) + ")"
		return reason, "is " + reason
	case c.Released.IsZero():
		return "release date unknown", "has no known release date"
	case now.Sub(c.Released) < minAge:
		reason = fmt.Sprintf("released %s, younger than %s", c.Released.UTC().Format(time.DateOnly), minAge)
		return reason, "was " + reason
	}
	return "", ""
}

// blockGroups holds back every binary version of a source version that
// has an ineligible binary, naming that binary (the first by name and
// architecture when there are several).
func blockGroups(offers map[binary]*offer) {
	type group struct {
		t   Target
		src Source
	}
	members := map[group][]binary{}
	for b, o := range offers {
		for _, src := range o.sources {
			members[group{b.t, src}] = append(members[group{b.t, src}], b)
		}
	}
	for g, bs := range members {
		slices.SortFunc(bs, compareBinaries)
		i := slices.IndexFunc(bs, func(b binary) bool { return offers[b].own != "" })
		if i < 0 {
			continue
		}
		why := fmt.Sprintf("binary %s of source %s %s %s", bs[i].name(), g.src.Name, g.src.Version, offers[bs[i]].clause)
		for _, b := range bs {
			if o := offers[b]; o.blocked == "" || why < o.blocked {
				o.blocked = why
			}
		}
	}
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
// declines is not installed even though another ring approved it — and
// with each the host's other pins of the same source version, so that
// the host does not get half of one (openssl without its libssl3).
//
// The agent should call HostPins again with its dpkg status just before
// installing: the host may have changed since the rollout was planned.
func (s *PatchSet) HostPins(t Target, installed []Installed, skip func(apply.Pin) bool) []apply.Pin {
	i, ok := slices.BinarySearchFunc(s.Targets, t, func(ts TargetSet, t Target) int { return ts.Target.compare(t) })
	if !ok {
		return nil
	}
	ts := &s.Targets[i]
	have := map[[2]string]string{}
	for _, p := range installed {
		have[[2]string{p.Package, p.Arch}] = p.Version
	}
	var out []apply.Pin
	var srcs []Source
	skipped := map[Source]bool{}
	for i, p := range ts.Pins {
		v, ok := have[[2]string{p.Package, p.Arch}]
		if !ok || deb.CompareValid(v, p.Version) >= 0 {
			continue
		}
		src := ts.source(i)
		if skip != nil && skip(p) {
			if src != (Source{}) {
				skipped[src] = true
			}
			continue
		}
		out, srcs = append(out, p), append(srcs, src)
	}
	if len(skipped) == 0 {
		return out
	}
	var kept []apply.Pin
	for i, p := range out {
		if !skipped[srcs[i]] {
			kept = append(kept, p)
		}
	}
	return kept
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
