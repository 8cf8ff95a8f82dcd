// Package detect computes the missing updates of one host from its
// inventory and the verified indexes it can install from, choosing each
// package's candidate exactly as apt's policy does (pin priorities,
// NotAutomatic suites, default release, holds reported, never solved).
//
// It is pure: data in, data out, no I/O. Package scan gathers the inputs
// on an endpoint; the server gathers the same inputs for a fleet.
package detect

import (
	"sort"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
)

// PackageFile is one origin of package versions: a Packages index of one
// suite/component/arch, described by its signed Release, or the dpkg
// status file itself.
type PackageFile struct {
	Origin, Label string
	Archive       string // the Release "Suite" field, e.g. oldstable-security
	Codename      string // e.g. bookworm-security
	Version       string // the Release "Version" field, e.g. 12.12
	Component     string
	Arch          string
	Site          string // host name of the repository URI
	NotAutomatic  bool
	// ButAutomaticUpgrades together with NotAutomatic gives priority 100.
	ButAutomaticUpgrades bool
	// Status marks the dpkg status file (apt's "now" archive).
	Status bool
}

// Security reports whether the file belongs to a security suite
// (Debian's Debian-Security label or *-security suites, Ubuntu's
// *-security pockets, Debian's old "*/updates" security suites).
func (f *PackageFile) Security() bool {
	if f.Status {
		return false
	}
	if f.Label == "Debian-Security" {
		return true
	}
	for _, s := range []string{f.Archive, f.Codename} {
		if strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates") {
			return true
		}
	}
	return false
}

// Available is one package version listed in one index.
type Available struct {
	Name, Arch, Version   string
	Source, SourceVersion string
	File                  int // index into Input.Files
}

// Input is everything detection needs about one host.
type Input struct {
	NativeArch string
	Installed  []deb.InstalledPackage
	Files      []PackageFile
	Available  []Available
	// Pins are the host's apt preferences in file order.
	Pins []deb.Pin
	// DefaultRelease is APT::Default-Release ("" when unset).
	DefaultRelease string
}

// Update is one package whose candidate is newer than the installed version.
type Update struct {
	Package       string   `json:"package"`
	Arch          string   `json:"arch"`
	Installed     string   `json:"installed"`
	Candidate     string   `json:"candidate"`
	Source        string   `json:"source"`
	SourceVersion string   `json:"source_version"`
	Suite         string   `json:"suite"`    // codename of the suite the candidate comes from
	Archives      []string `json:"archives"` // Release "Suite" names, as apt list prints them
	Origin        string   `json:"origin"`
	Security      bool     `json:"security"`
	Held          bool     `json:"held"`
	State         string   `json:"state,omitempty"` // dpkg state when not "installed"
	Priority      int      `json:"pin_priority"`
}

// pkgKey identifies a package as apt does: name and architecture, with
// Architecture: all folded into the native architecture.
type pkgKey struct{ name, arch string }

type version struct {
	str       string
	source    string     // source package name
	rec       *Available // first index record with this version
	files     []int      // indexes into Input.Files; -1 is the status file
	installed bool
}

type entry struct {
	inst     *deb.InstalledPackage
	versions []*version
}

// Updates returns the host's pending updates, sorted by package and arch.
func Updates(in Input) []Update {
	pol := newPolicy(in)
	entries := group(in)
	var out []Update
	for _, e := range entries {
		cand, prio := pol.candidate(e)
		if cand == nil || cand.installed || deb.CompareValid(cand.str, e.inst.Version) <= 0 {
			continue
		}
		out = append(out, makeUpdate(in, e, cand, prio))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		return out[i].Arch < out[j].Arch
	})
	return out
}

func keyOf(name, arch, native string) pkgKey {
	if arch == "all" {
		arch = native
	}
	return pkgKey{name, arch}
}

// group builds one entry per installed package with every version known
// for it, sorted newest first as apt's cache keeps them.
func group(in Input) map[pkgKey]*entry {
	entries := make(map[pkgKey]*entry, len(in.Installed))
	for i := range in.Installed {
		p := &in.Installed[i]
		if !p.Current() {
			continue
		}
		entries[keyOf(p.Name, p.Arch, in.NativeArch)] = &entry{
			inst:     p,
			versions: []*version{{str: p.Version, source: p.Source, files: []int{-1}, installed: true}},
		}
	}
	for i := range in.Available {
		a := &in.Available[i]
		e := entries[keyOf(a.Name, a.Arch, in.NativeArch)]
		if e == nil {
			continue
		}
		v := e.find(a.Version)
		if v == nil {
			v = &version{str: a.Version, source: a.Source}
			e.versions = append(e.versions, v)
		}
		if v.rec == nil {
			v.rec = a
		}
		v.files = append(v.files, a.File)
	}
	for _, e := range entries {
		sort.SliceStable(e.versions, func(i, j int) bool {
			return deb.CompareValid(e.versions[i].str, e.versions[j].str) > 0
		})
	}
	return entries
}

func (e *entry) find(v string) *version {
	for _, x := range e.versions {
		if x.str == v {
			return x
		}
	}
	return nil
}

func makeUpdate(in Input, e *entry, cand *version, prio int) Update {
	u := Update{
		Package:       cand.rec.Name,
		Arch:          cand.rec.Arch,
		Installed:     e.inst.Version,
		Candidate:     cand.str,
		Source:        cand.rec.Source,
		SourceVersion: cand.rec.SourceVersion,
		Held:          e.inst.Held(),
		Priority:      prio,
	}
	if e.inst.State != "installed" {
		u.State = e.inst.State
	}
	seen := map[string]bool{}
	for _, fi := range cand.files {
		if fi < 0 {
			continue
		}
		f := &in.Files[fi]
		if f.Security() && !u.Security {
			u.Security = true
			u.Suite, u.Origin = f.Codename, f.Origin
		}
		if u.Suite == "" {
			u.Suite, u.Origin = f.Codename, f.Origin
		}
		if !seen[f.Archive] {
			seen[f.Archive] = true
			u.Archives = append(u.Archives, f.Archive)
		}
	}
	return u
}
