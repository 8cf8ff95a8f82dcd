// Package rpmassess finds, for the packages installed on an RPM-based
// system, the advisories (AlmaLinux ALSA/ALBA/ALEA errata in OSV form, or
// any RPM ecosystem's OSV records) that affect their installed versions,
// and turns them into findings of package assess: one per affected
// package, with the update that fixes them, its advisories and CVEs.
//
// OSV records of RPM distributions name binary packages (openssl-libs,
// not openssl) without an architecture, and give each fix as an ECOSYSTEM
// range "introduced 0, fixed EVR" ordered as rpm orders versions. A
// package is affected by a record when the record's entry for its name
// includes its installed [epoch:]version-release, exactly as
// advisory.Matcher evaluates the OSV schema, and a fixed version in the
// same kind of build applies: AlmaLinux starts every module stream's range
// at 0, so by the schema alone the non-modular postgresql 13.23-2.el9_7
// would be "fixed" by the postgresql:16 stream's 16.14-1.module_el9.8.0
// build, which dnf never installs in its place. A range whose fixed
// version is a module build (".module_" in its release) applies only to
// an installed module build and the other ranges only to the others. Two
// streams of one module are not told apart (that needs the rpmdb's
// MODULARITYLABEL, not read).
//
// The candidate is what "dnf upgrade-minimal --security" installs (dnf5:
// "upgrade --minimal --security"): the lowest version that fixes every
// security advisory affecting the installed version, that is the highest
// of their fixed versions — a version the errata name, so one the
// repository carries. A package with only bug-fix or enhancement
// advisories gets the lowest version fixing all of them ("dnf
// upgrade-minimal"). The newest version in the repository, which plain
// "dnf upgrade" would take, needs repository metadata and is not known
// here. The finding lists every affecting advisory the candidate fixes
// (bug fixes shipped at or below a security candidate included), the
// CVEs they name, and the candidate's publication date.
//
// An Assessor remembers its result per distinct (ecosystem, package,
// arch, version), so assessing a fleet costs per distinct installed
// package version, not per host; it is safe for concurrent use.
package rpmassess

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/rpm"
)

// Assessor assesses installed RPM packages against one set of OSV
// records. The set must not change while the Assessor is in use.
type Assessor struct {
	osv     *advisory.OSVSet
	matcher advisory.Matcher

	mu   sync.RWMutex
	memo map[key]*entry

	cves sync.Map // *advisory.Record -> []string, its Record.CVEs()
}

// key is one distinct installed package version in one ecosystem. The
// source rpm is part of it only because the finding names the source;
// one build has one.
type key struct {
	ecosystem, name, arch, version, release, sourceRPM string
	epoch                                              int
}

// entry is the memoised result for one key; once makes concurrent
// callers wait for the first evaluation instead of repeating it.
type entry struct {
	once sync.Once
	f    *assess.Finding // nil when no advisory affects the version
	err  error
}

// New returns an Assessor over the records of osv.
func New(osv *advisory.OSVSet) *Assessor {
	return &Assessor{osv: osv, memo: make(map[key]*entry)}
}

// Findings assesses installed against osv once, without keeping the
// results: New(osv).Findings(ecosystem, installed).
func Findings(installed []rpm.Package, ecosystem string, osv *advisory.OSVSet) ([]assess.Finding, error) {
	return New(osv).Findings(ecosystem, installed)
}

// Findings returns one finding per installed package that some advisory
// of the ecosystem (e.g. "AlmaLinux:9", see Ecosystem) affects, in the
// order of installed. A finding is host-independent: its slices
// (Advisories, CVEs and their CVSS) are shared with every other host at
// the same version and must be treated as read-only; a caller that fills
// in KEV or EPSS facts clones CVEs first (slices.Clone), which a kernel
// finding naming thousands of CVEs makes worth doing once per finding,
// not per host. An error names the package and the record that could not
// be evaluated.
func (a *Assessor) Findings(ecosystem string, installed []rpm.Package) ([]assess.Finding, error) {
	shared, err := a.AppendShared(nil, ecosystem, installed)
	if err != nil {
		return nil, err
	}
	out := make([]assess.Finding, len(shared))
	for i, f := range shared {
		out[i] = *f
	}
	return out, nil
}

// AppendShared is Findings for fleets: it appends to dst pointers to the
// Assessor's own findings, shared by every host at the same versions and
// read-only, so that a host costs a lookup per package and no copy.
func (a *Assessor) AppendShared(dst []*assess.Finding, ecosystem string, installed []rpm.Package) ([]*assess.Finding, error) {
	if _, ok := advisory.ComparatorFor(ecosystem); !ok {
		return dst, fmt.Errorf("assess rpm packages: no version ordering for ecosystem %q", ecosystem)
	}
	for i := range installed {
		e := a.lookup(ecosystem, &installed[i])
		if e.err != nil {
			return dst, e.err
		}
		if e.f != nil {
			dst = append(dst, e.f)
		}
	}
	return dst, nil
}

// Evaluated returns how many distinct package versions the Assessor has
// evaluated: its memo's size.
func (a *Assessor) Evaluated() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.memo)
}

func (a *Assessor) lookup(ecosystem string, p *rpm.Package) *entry {
	k := key{ecosystem, p.Name, p.Arch, p.Version, p.Release, p.SourceRPM, p.Epoch}
	a.mu.RLock()
	e := a.memo[k]
	a.mu.RUnlock()
	if e == nil {
		a.mu.Lock()
		if e = a.memo[k]; e == nil {
			e = &entry{}
			a.memo[k] = e
		}
		a.mu.Unlock()
	}
	e.once.Do(func() {
		e.f, e.err = a.evaluate(ecosystem, p)
		if e.err != nil {
			e.err = fmt.Errorf("assess %s (%s): %w", p, ecosystem, e.err)
		}
	})
	return e
}

// hit is one advisory affecting an installed version, with the lowest
// version that leaves it.
type hit struct {
	r   *advisory.Record
	fix string
	cls assess.Classification
}

// evaluate is the uncached assessment of one installed package.
func (a *Assessor) evaluate(ecosystem string, p *rpm.Package) (*assess.Finding, error) {
	cmpEVR, _ := advisory.ComparatorFor(ecosystem)
	installed := p.EVR().String()
	var hits []hit
	seen := map[string]bool{}
	security := false
	for _, r := range a.osv.ForPackage(ecosystem, p.Name) {
		if seen[r.ID] {
			continue // the same erratum loaded twice (AlmaLinux repeats some across releases)
		}
		ok, err := a.matcher.Affects(r, ecosystem, p.Name, installed)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		fix, ok, err := fixFor(r, ecosystem, p.Name, installed, cmpEVR)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // no fixed version in v's stream: nothing dnf could install
		}
		seen[r.ID] = true
		h := hit{r: r, fix: fix, cls: Classify(r)}
		security = security || h.cls == assess.Security
		hits = append(hits, h)
	}
	if len(hits) == 0 {
		return nil, nil
	}
	candidate := ""
	for _, h := range hits {
		if (!security || h.cls == assess.Security) && (candidate == "" || cmpEVR(h.fix, candidate) > 0) {
			candidate = h.fix
		}
	}
	hits = slices.DeleteFunc(hits, func(h hit) bool { return cmpEVR(h.fix, candidate) > 0 })
	slices.SortFunc(hits, func(x, y hit) int {
		return cmp.Or(published(x.r).Compare(published(y.r)), strings.Compare(x.r.ID, y.r.ID))
	})
	f := &assess.Finding{
		Package: p.Name, Arch: p.Arch, Installed: installed, Candidate: candidate,
		Classification: assess.Other,
	}
	f.Source, f.SourceVersion = sourceOf(p, candidate)
	index := map[string]int{}
	for _, h := range hits {
		f.Advisories = append(f.Advisories, h.r.ID)
		if h.cls == assess.Security || (h.cls == assess.Bugfix && f.Classification == assess.Other) {
			f.Classification = h.cls
		}
		if cmpEVR(h.fix, candidate) == 0 && f.Released.IsZero() {
			f.Released = published(h.r) // the first erratum to ship the candidate
		}
		var err error
		if f.CVEs, err = appendCVEs(f.CVEs, index, h.r, a.recordCVEs(h.r), ecosystem, p.Name); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// recordCVEs returns r.CVEs(), computed once per record.
func (a *Assessor) recordCVEs(r *advisory.Record) []string {
	if v, ok := a.cves.Load(r); ok {
		return v.([]string)
	}
	v, _ := a.cves.LoadOrStore(r, r.CVEs())
	return v.([]string)
}

// published returns a record's publication time (zero when it has none).
func published(r *advisory.Record) time.Time {
	if r.Published == nil {
		return time.Time{}
	}
	return r.Published.UTC()
}

// Classify tells the kind of an erratum from its ID, as Red Hat and its
// rebuilds name them: ALSA/RLSA/RHSA security, ALBA/RLBA/RHBA bug fix,
// ALEA/RLEA/RHEA enhancement (other). A record named otherwise is a
// security one when it names a CVE, else other.
func Classify(r *advisory.Record) assess.Classification {
	if prefix, _, ok := strings.Cut(r.ID, "-"); ok && len(prefix) == 4 {
		switch prefix[2:] {
		case "SA":
			return assess.Security
		case "BA":
			return assess.Bugfix
		case "EA":
			return assess.Other
		}
	}
	if len(r.CVEs()) > 0 {
		return assess.Security
	}
	return assess.Other
}

// sourceOf returns the source package's name from the installed package's
// source rpm file name ("openssl-3.0.7-27.el9.src.rpm"), and the
// candidate as its source version when the installed binary has its
// source's version-release (as subpackages normally do), else "".
func sourceOf(p *rpm.Package, candidate string) (name, version string) {
	s, ok := strings.CutSuffix(p.SourceRPM, ".src.rpm")
	if !ok {
		s, ok = strings.CutSuffix(p.SourceRPM, ".nosrc.rpm")
	}
	if !ok {
		return "", ""
	}
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", ""
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return "", ""
	}
	name = s[:j]
	if s[j+1:] == p.Version+"-"+p.Release {
		version = candidate
	}
	return name, version
}
