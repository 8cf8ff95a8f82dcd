package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
)

// InstallPlan is what installing a set of pins would change, as apt simulates it.
type InstallPlan struct {
	// Set is what was simulated: the pins asked for, less the held ones.
	Set []Pin `json:"set"`
	// Held are the pins left out because their package is on hold.
	Held []Pin `json:"held,omitempty"`
	// AtOrAbove are the pins left out because the package is already
	// at that version or a later one (it changed since the set was
	// frozen, e.g. upgraded by hand): installing them would be a
	// downgrade, or nothing. Only when downgrades are not allowed.
	AtOrAbove []Pin `json:"at_or_above,omitempty"`
	// Changes are apt's Inst, Remv and lone Conf lines, in apt's order.
	Changes []Change `json:"changes"`
	// Removes is set when a change is a removal: callers should refuse
	// such a plan unless removals were allowed.
	Removes bool `json:"removes,omitempty"`
	// Downgrades is set when a change installs an older version.
	Downgrades bool `json:"downgrades,omitempty"`
	// ChangesHeld names held packages the plan would change anyway (as a
	// dependency); Install refuses such a plan.
	ChangesHeld []string `json:"changes_held,omitempty"`
	// Output is apt's output, bounded.
	Output string `json:"output,omitempty"`
}

// Previous lists the installed versions the plan replaces or removes.
func (p InstallPlan) Previous() []Pin {
	var out []Pin
	for _, c := range p.Changes {
		if c.Before != "" && c.Kind != Reinstall {
			out = append(out, Pin{Package: c.Package, Arch: c.Arch, Version: c.Before})
		}
	}
	return out
}

// Added lists the packages the plan installs that were not there.
func (p InstallPlan) Added() []Pin {
	var out []Pin
	for _, c := range p.Changes {
		if c.Kind == New {
			out = append(out, Pin{Package: c.Package, Arch: c.Arch, Version: c.After})
		}
	}
	return out
}

// Plan simulates installing exactly set on the system at root ("/" for
// this machine) with `apt-get -s install`, and returns what apt would do.
// Pins of held packages are left out and listed in InstallPlan.Held. apt's own
// refusal (unknown version, unsatisfiable dependencies) is an error
// carrying its "E:" lines.
func Plan(ctx context.Context, root string, set []Pin) (InstallPlan, error) {
	r, err := newRunner(root)
	if err != nil {
		return InstallPlan{}, err
	}
	return plan(ctx, r, set, nil, false)
}

// plan simulates installing set; targets, when given, are what apt-get
// is given instead of the pins (the .deb files of a rollback).
func plan(ctx context.Context, r runner, set []Pin, targets map[Pin]string, allowDowngrades bool) (InstallPlan, error) {
	if err := validateSet(set); err != nil {
		return InstallPlan{}, err
	}
	st, err := readStatus(ctx, r)
	if err != nil {
		return InstallPlan{}, err
	}
	var p InstallPlan
	for _, pin := range set {
		ip := st.find(pin.Package, pin.Arch)
		switch {
		case ip != nil && ip.Held():
			p.Held = append(p.Held, pin)
		case !allowDowngrades && ip != nil && ip.Current() && deb.CompareValid(ip.Version, pin.Version) >= 0:
			p.AtOrAbove = append(p.AtOrAbove, pin)
		default:
			p.Set = append(p.Set, pin)
		}
	}
	if len(p.Set) == 0 {
		return p, nil
	}
	args := []string{"apt-get", "-s", "-q", "install"}
	if allowDowngrades {
		args = append(args, "--allow-downgrades")
	}
	args = append(args, aptTargets(p.Set, targets)...)
	var out bytes.Buffer
	cmd := r.command(ctx, "", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	p.Output = tailString(out.String(), 64<<10)
	sim, err := ParseSimulation(bytes.NewReader(out.Bytes()))
	if err != nil {
		return p, err
	}
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return p, fmt.Errorf("apt-get -s install: %w", runErr)
	}
	if runErr != nil || len(sim.Errors) > 0 {
		msg := strings.Join(sim.Errors, "; ")
		if msg == "" {
			msg = strings.TrimSpace(tailString(p.Output, 500))
		}
		return p, fmt.Errorf("apt-get -s install %s: %s", joinPins(p.Set), msg)
	}
	requested := map[string]bool{}
	for _, pin := range p.Set {
		requested[pin.Package+":"+st.arch(pin.Arch)] = true
		requested[pin.Package+":all"] = true
	}
	for _, c := range sim.Changes {
		if c.Arch == "" {
			if ip := st.find(c.Package, ""); ip != nil {
				c.Arch = ip.Arch
			}
		}
		c.Requested = requested[c.Package+":"+c.Arch]
		if ip := st.find(c.Package, c.Arch); ip != nil && ip.Held() && ip.Current() {
			c.Held = true
			p.ChangesHeld = append(p.ChangesHeld, c.Package)
		}
		switch c.Kind {
		case Remove:
			p.Removes = true
		case Downgrade:
			p.Downgrades = true
		}
		p.Changes = append(p.Changes, c)
	}
	return p, nil
}

// aptTargets are the arguments naming set to apt-get: name[:arch]=version,
// or the .deb file targets gives for it.
func aptTargets(set []Pin, targets map[Pin]string) []string {
	out := make([]string, 0, len(set))
	for _, pin := range set {
		if f, ok := targets[pin]; ok {
			out = append(out, f)
		} else {
			out = append(out, pin.String())
		}
	}
	return out
}

func joinPins(set []Pin) string {
	s := make([]string, len(set))
	for i, p := range set {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

// status is the dpkg status database with the native architecture.
type status struct {
	native string
	pkgs   map[string][]deb.InstalledPackage // by name
}

func readStatus(ctx context.Context, r runner) (*status, error) {
	native, err := r.output(ctx, "dpkg", "--print-architecture")
	if err != nil {
		return nil, err
	}
	pkgs, err := deb.ReadStatus(r.root)
	if err != nil {
		return nil, err
	}
	st := &status{native: strings.TrimSpace(native), pkgs: map[string][]deb.InstalledPackage{}}
	for _, p := range pkgs {
		st.pkgs[p.Name] = append(st.pkgs[p.Name], p)
	}
	return st, nil
}

// arch is arch, or the native architecture for "".
func (s *status) arch(arch string) string {
	if arch == "" {
		return s.native
	}
	return arch
}

// find returns the record of name for arch ("" for native; an "all"
// record matches any), nil if none.
func (s *status) find(name, arch string) *deb.InstalledPackage {
	arch = s.arch(arch)
	for i, p := range s.pkgs[name] {
		if p.Arch == arch || p.Arch == "all" || arch == "all" {
			return &s.pkgs[name][i]
		}
	}
	return nil
}
