package apply

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
)

// Kind is what a change does to a package.
type Kind string

const (
	Upgrade   Kind = "upgrade"
	Downgrade Kind = "downgrade"
	New       Kind = "new"       // installed, not there before
	Reinstall Kind = "reinstall" // same version again
	Remove    Kind = "remove"    // Remv, or Purg with --purge
	Configure Kind = "configure" // only configured (it was unpacked)
)

// Change is one package apt would change.
type Change struct {
	Package string `json:"package"`
	// Arch is the architecture of the version installed (from apt's
	// "[amd64]"/"[all]"), or for removals the name's qualifier or, filled
	// in by Plan, the installed record's.
	Arch   string `json:"arch,omitempty"`
	Before string `json:"before,omitempty"` // "" for new packages
	After  string `json:"after,omitempty"`  // "" for removals
	Kind   Kind   `json:"kind"`
	// Releases is apt's description of where After comes from, e.g.
	// "Debian:12.8/stable, Debian-Security:12/stable-security".
	Releases string `json:"releases,omitempty"`
	// Requested is set when the change was asked for, not pulled in.
	Requested bool `json:"requested,omitempty"`
	// Held is set when the package is on hold (apt-mark hold).
	Held bool `json:"held,omitempty"`
}

// Simulation is what `apt-get -s` printed, parsed.
type Simulation struct {
	Changes []Change
	// HeldChanged lists the packages under apt's "The following held
	// packages will be changed" header.
	HeldChanged []string
	// Errors are apt's "E:" lines.
	Errors []string
}

// ParseSimulation parses the output of `apt-get -s install|remove|upgrade`
// run with LC_ALL=C. Inst lines give upgrades, downgrades, reinstalls and
// new packages, Remv and Purg lines removals, and Conf lines without an
// Inst packages that are only configured. Other lines are ignored, except
// the held-packages header and "E:" lines. A malformed action line is an
// error naming its line number.
func ParseSimulation(r io.Reader) (Simulation, error) {
	var sim Simulation
	byName := map[string]int{} // name[:arch] as printed → index in Changes
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	inHeld := false
	for sc.Scan() {
		n++
		line := sc.Text()
		if inHeld {
			if strings.HasPrefix(line, "  ") {
				sim.HeldChanged = append(sim.HeldChanged, strings.Fields(line)...)
				continue
			}
			inHeld = false
		}
		verb, rest, _ := strings.Cut(line, " ")
		switch {
		case line == "The following held packages will be changed:":
			inHeld = true
		case strings.HasPrefix(line, "E: "):
			sim.Errors = append(sim.Errors, strings.TrimPrefix(line, "E: "))
		case verb == "Inst" || verb == "Conf" || verb == "Remv" || verb == "Purg":
			c, err := parseAction(verb, rest)
			if err != nil {
				return sim, fmt.Errorf("apt simulation line %d %q: %w", n, line, err)
			}
			key := c.Package + ":" + c.Arch
			_, seen := byName[key]
			switch {
			case verb == "Conf" && seen:
				// Configures what an Inst line unpacked.
				continue
			case seen:
				return sim, fmt.Errorf("apt simulation line %d: %s changed twice", n, key)
			}
			byName[key] = len(sim.Changes)
			sim.Changes = append(sim.Changes, c)
		}
	}
	if err := sc.Err(); err != nil {
		return sim, fmt.Errorf("read apt simulation: %w", err)
	}
	return sim, nil
}

// parseAction parses what follows Inst, Conf, Remv or Purg:
//
//	Inst NAME[:ARCH] [BEFORE] (AFTER RELEASES [ARCH]) [BROKEN]
//	Conf NAME[:ARCH] (AFTER RELEASES [ARCH])
//	Remv NAME[:ARCH] [BEFORE]
func parseAction(verb, s string) (Change, error) {
	name, s, _ := strings.Cut(s, " ")
	var c Change
	c.Package, c.Arch, _ = strings.Cut(name, ":")
	if !pkgName.MatchString(c.Package) {
		return c, fmt.Errorf("bad package name %q", name)
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return c, fmt.Errorf("unclosed [")
		}
		c.Before = s[1:end]
		s = strings.TrimPrefix(s[end+1:], " ")
	}
	if verb == "Remv" || verb == "Purg" {
		if c.Before == "" {
			return c, fmt.Errorf("removal without a version")
		}
		c.Kind = Remove
		return c, nil
	}
	if !strings.HasPrefix(s, "(") {
		return c, fmt.Errorf("no (version release [arch])")
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return c, fmt.Errorf("unclosed (")
	}
	inner := s[1:end]
	after, inner, _ := strings.Cut(inner, " ")
	c.After = after
	if open := strings.LastIndexByte(inner, '['); open >= 0 && strings.HasSuffix(inner, "]") {
		c.Arch = inner[open+1 : len(inner)-1]
		inner = inner[:open]
	}
	c.Releases = strings.TrimSpace(inner)
	if err := deb.ValidVersion(c.After); err != nil {
		return c, err
	}
	switch {
	case verb == "Conf":
		c.Kind = Configure
	case c.Before == "":
		c.Kind = New
	default:
		if err := deb.ValidVersion(c.Before); err != nil {
			return c, err
		}
		switch d := deb.CompareValid(c.After, c.Before); {
		case d > 0:
			c.Kind = Upgrade
		case d < 0:
			c.Kind = Downgrade
		default:
			c.Kind = Reinstall
		}
	}
	return c, nil
}
