package detect

import (
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
)

// neverPin is apt's priority for "Pin-Priority: never".
const neverPin = -32768

// policy mirrors apt 2.6's pkgPolicy (apt-pkg/policy.cc): a priority per
// package file from the release defaults and "Package: *" pins, then
// per-version priorities from package-specific pins.
type policy struct {
	native   string
	files    []PackageFile
	filePrio []int // priority of each file; the status file is fixed at 100
	pkgPins  []deb.Pin
}

func newPolicy(in Input) *policy {
	p := &policy{native: in.NativeArch, files: in.Files, filePrio: make([]int, len(in.Files))}
	var defaults []deb.Pin
	if in.DefaultRelease != "" {
		defaults = append(defaults, deb.Pin{Type: "release", Data: in.DefaultRelease, Priority: 990})
	}
	for _, pin := range in.Pins {
		if len(pin.Packages) == 0 {
			defaults = append(defaults, pin)
		} else {
			p.pkgPins = append(p.pkgPins, pin)
		}
	}
	p.initDefaults(defaults)
	return p
}

// initDefaults is pkgPolicy::InitDefaults: 500 per file, 100 for
// NotAutomatic+ButAutomaticUpgrades, 1 for NotAutomatic, then the first
// matching default pin fixes a file's priority ("never" always applies).
func (p *policy) initDefaults(defaults []deb.Pin) {
	fixed := make([]bool, len(p.files))
	for i, f := range p.files {
		switch {
		case f.Status, f.NotAutomatic && f.ButAutomaticUpgrades:
			p.filePrio[i] = 100
		case f.NotAutomatic:
			p.filePrio[i] = 1
		default:
			p.filePrio[i] = 500
		}
	}
	for _, pin := range defaults {
		prio := pinPriority(pin)
		for i := range p.files {
			if (!fixed[i] || prio == neverPin) && p.filePrio[i] != neverPin && fileMatch(pin, &p.files[i]) {
				p.filePrio[i] = prio
				fixed[i] = true
			}
		}
	}
}

func pinPriority(pin deb.Pin) int {
	if pin.Never {
		return neverPin
	}
	return pin.Priority
}

func (p *policy) prioOfFile(fi int) int {
	if fi < 0 {
		return 100 // the dpkg status file
	}
	return p.filePrio[fi]
}

// candidate is pkgPolicy::GetCandidateVer: the version with the highest
// priority (the newest among equals), never older than the installed
// version unless its priority is at least 1000.
func (p *policy) candidate(e *entry) (*version, int) {
	verPins := p.versionPins(e)
	var cand *version
	candPrio := -1
	for _, v := range e.versions {
		prio := p.versionPriority(v, verPins[v])
		if prio == 0 || prio <= candPrio {
			continue
		}
		if prio < 1000 && deb.CompareValid(v.str, e.inst.Version) < 0 {
			continue
		}
		cand, candPrio = v, prio
	}
	return cand, candPrio
}

// versionPriority is pkgPolicy::GetPriority(Ver, ConsiderFiles=true).
func (p *policy) versionPriority(v *version, pin *deb.Pin) int {
	if pin != nil {
		prio := pinPriority(*pin)
		if prio == neverPin {
			return neverPin
		}
		for _, fi := range v.files {
			if p.prioOfFile(fi) != neverPin {
				return prio
			}
		}
	}
	best, any := 0, false
	for _, fi := range v.files {
		prio := p.prioOfFile(fi)
		if fi < 0 && !v.installed {
			prio = -1
		}
		if !any || prio > best {
			best, any = prio, true
		}
	}
	return best
}

// versionPins assigns each version the first package-specific pin that
// names the package and matches the version (apt's CreatePin: the first
// pin set on a version wins).
func (p *policy) versionPins(e *entry) map[*version]*deb.Pin {
	var pins map[*version]*deb.Pin
	name, arch := e.inst.Name, keyOf(e.inst.Name, e.inst.Arch, p.native).arch
	for i := range p.pkgPins {
		pin := &p.pkgPins[i]
		for _, spec := range pin.Packages {
			src, ok := p.pinNames(spec, name, arch)
			if !ok {
				continue
			}
			for _, v := range e.versions {
				if pins[v] != nil || (src != "" && !v.fromSource(src)) || !p.versionMatch(pin, v) {
					continue
				}
				if pins == nil {
					pins = map[*version]*deb.Pin{}
				}
				pins[v] = pin
			}
		}
	}
	return pins
}

// pinNames reports whether a "Package:" entry of a pin applies to the
// package (name, arch). For "src:NAME" entries it returns the source name
// the versions must come from.
func (p *policy) pinNames(spec, name, arch string) (src string, ok bool) {
	isSrc := strings.HasPrefix(spec, "src:")
	spec = strings.TrimPrefix(spec, "src:")
	pinArch := p.native
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		spec, pinArch = spec[:i], spec[i+1:]
	}
	if !archMatches(pinArch, arch) {
		return "", false
	}
	if isSrc {
		return spec, true
	}
	if isWildcard(spec) {
		return "", spec != name && deb.ExpressionMatches(spec, name)
	}
	return "", spec == name
}

func isWildcard(s string) bool {
	return (len(s) > 1 && s[0] == '/' && s[len(s)-1] == '/') || strings.ContainsAny(s, "*[?")
}

// archMatches matches a pin's architecture against a package's; "any"
// and shell patterns are accepted as apt's architecture specifications are.
func archMatches(spec, arch string) bool {
	if spec == arch || spec == "any" {
		return true
	}
	return strings.ContainsAny(spec, "*[?") && deb.ExpressionMatches(spec, arch)
}

func (v *version) fromSource(src string) bool { return v.source == src }

// versionMatch is pkgVersionMatch::VersionMatches for one pin.
func (p *policy) versionMatch(pin *deb.Pin, v *version) bool {
	if pin.Type == "version" {
		data := pin.Data
		if data == "" {
			return false
		}
		if strings.HasSuffix(data, "*") {
			if len(v.str) >= len(data)-1 && strings.EqualFold(v.str[:len(data)-1], data[:len(data)-1]) {
				return true
			}
		} else if strings.EqualFold(v.str, data) {
			return true
		}
		return deb.ExpressionMatches(data, v.str)
	}
	for _, fi := range v.files {
		if fi < 0 {
			if fileMatch(*pin, &PackageFile{Status: true}) {
				return true
			}
			continue
		}
		if fileMatch(*pin, &p.files[fi]) {
			return true
		}
	}
	return false
}
