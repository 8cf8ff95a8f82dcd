package intel

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/changelog"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/detect"
)

// Release names the distribution release a host runs, as os-release gives
// it; advisories are matched for it.
type Release struct {
	Distro   string `json:"distro"`   // ID: "debian", "ubuntu"
	Version  string `json:"version"`  // VERSION_ID: "12", "22.04"
	Codename string `json:"codename"` // VERSION_CODENAME: "bookworm", "jammy"
}

// Ecosystem is the release's OSV ecosystem: "Debian:12", "Ubuntu:22.04:LTS"
// (LTS releases are the even years' .04), "Ubuntu:23.10", "AlmaLinux:9",
// "Rocky Linux:9"; "" when there is none (Debian testing and unstable have
// no VERSION_ID, other distributions).
func (r Release) Ecosystem() string {
	switch strings.ToLower(r.Distro) {
	case "debian":
		if r.Version != "" {
			return "Debian:" + r.Version
		}
	case "ubuntu":
		y, m, ok := strings.Cut(r.Version, ".")
		if !ok {
			return ""
		}
		if n, err := strconv.Atoi(y); err == nil && n%2 == 0 && m == "04" {
			return "Ubuntu:" + r.Version + ":LTS"
		}
		return "Ubuntu:" + r.Version
	case "almalinux", "rocky":
		major, _, _ := strings.Cut(r.Version, ".")
		if major == "" {
			return ""
		}
		return advisory.RPMEcosystem(strings.ToLower(r.Distro), major)
	}
	return ""
}

// Update is a detected update with the one fact about the installed
// package that detect.Update does not carry.
type Update struct {
	detect.Update
	// InstalledSourceVersion is the installed package's source version
	// (dpkg's "Source: name (version)"), the version changelogs and
	// advisories speak of. "" means: the installed version when the
	// candidate's binary and source versions are equal, else unknown.
	InstalledSourceVersion string `json:"installed_source_version,omitempty"`
}

// Updates pairs detected updates with the installed packages' source
// versions from the dpkg inventory.
func Updates(updates []detect.Update, installed []deb.InstalledPackage) []Update {
	src := make(map[[2]string]string, len(installed))
	for _, p := range installed {
		src[[2]string{p.Name, p.Version}] = p.SourceVersion
	}
	out := make([]Update, len(updates))
	for i, u := range updates {
		out[i] = Update{Update: u, InstalledSourceVersion: src[[2]string{u.Package, u.Installed}]}
	}
	return out
}

// installedSource is the source version to cut changelogs and match
// advisories at, or "" when unknown.
func (u *Update) installedSource() string {
	if u.InstalledSourceVersion != "" {
		return u.InstalledSourceVersion
	}
	if u.Candidate == u.SourceVersion {
		return u.Installed
	}
	return ""
}

// ChangelogFunc returns the parsed changelog of a source version. A nil log
// and nil error mean none is known; an error says why it could not be had.
type ChangelogFunc func(changelog.Key) (*changelog.Log, error)

// Changelogs makes a ChangelogFunc of the results of
// changelog.Fetcher.Changelogs.
func Changelogs(results []changelog.Result) ChangelogFunc {
	m := make(map[changelog.Key]changelog.Result, len(results))
	for _, r := range results {
		m[r.Key] = r
	}
	return func(k changelog.Key) (*changelog.Log, error) {
		r, ok := m[k]
		if !ok {
			return nil, nil
		}
		return r.Log, r.Err
	}
}

// Finding is an assessed update: the assess.Finding (CVEs with KEV, EPSS and
// CVSS, advisories, urgency, classification) plus where each CVE came from
// and what could not be known. Findings returned by an Assessor are shared
// between callers: treat them as read-only.
type Finding struct {
	assess.Finding
	// Evidence lists, per CVE ID, the sources naming it: "changelog",
	// a DSA/DLA ID, or an OSV record ID.
	Evidence map[string][]string `json:"evidence,omitempty"`
	// Notes say what could not be known; the CVEs are then a lower bound.
	Notes []string `json:"notes,omitempty"`
}

// Assessor computes findings from loaded feeds and changelogs, remembering
// each distinct one. It is safe for concurrent use.
type Assessor struct {
	feeds     *Feeds
	changelog ChangelogFunc
	matcher   advisory.Matcher

	mu       sync.Mutex
	memo     map[memoKey]*memoEntry
	computed atomic.Int64
}

type memoKey struct {
	rel                                Release
	pkg, arch, installed, installedSrc string
	candidate, source, sourceVersion   string
	suite                              string
	security                           bool
}

type memoEntry struct {
	once sync.Once
	f    Finding
}

// NewAssessor makes an Assessor. Either argument may be nil: without feeds
// the CVEs come from changelogs only, without changelogs from feeds only.
func NewAssessor(f *Feeds, changelogs ChangelogFunc) *Assessor {
	if f == nil {
		f = &Feeds{}
	}
	f.index()
	return &Assessor{feeds: f, changelog: changelogs, memo: map[memoKey]*memoEntry{}}
}

// Computed reports how many distinct findings have been computed (memo
// misses), for tests and metrics.
func (a *Assessor) Computed() int64 { return a.computed.Load() }

// Finding returns the assessed finding of u on a host running rel,
// computing it once per distinct key.
func (a *Assessor) Finding(rel Release, u Update) *Finding {
	k := memoKey{rel: rel, pkg: u.Package, arch: u.Arch, installed: u.Installed,
		installedSrc: u.installedSource(), candidate: u.Candidate, source: u.Source,
		sourceVersion: u.SourceVersion, suite: u.Suite, security: u.Security}
	a.mu.Lock()
	e := a.memo[k]
	if e == nil {
		e = &memoEntry{}
		a.memo[k] = e
	}
	a.mu.Unlock()
	e.once.Do(func() {
		a.computed.Add(1)
		e.f = a.compute(rel, u)
	})
	return &e.f
}

// collector gathers the CVEs of one finding from all sources.
type collector struct {
	f    *Finding
	cvss map[string][]assess.CVSS
	adv  map[string]bool
}

func (c *collector) add(cve, source string) {
	if !advisory.IsCVE(cve) {
		return
	}
	if !slices.Contains(c.f.Evidence[cve], source) {
		c.f.Evidence[cve] = append(c.f.Evidence[cve], source)
	}
}

func (c *collector) advisory(id string) { c.adv[id] = true }

func (c *collector) note(format string, args ...any) {
	c.f.Notes = append(c.f.Notes, fmt.Sprintf(format, args...))
}

func (a *Assessor) compute(rel Release, u Update) Finding {
	f := Finding{Finding: assess.FromUpdate(u.Update), Evidence: map[string][]string{}}
	c := &collector{f: &f, cvss: map[string][]assess.CVSS{}, adv: map[string]bool{}}
	inst := u.installedSource()
	if inst == "" {
		c.note("installed source version unknown (binary %s, source %s %s): changelog and advisories not matched",
			u.Installed, u.Source, u.SourceVersion)
	}
	known := a.fromChangelog(c, u, inst)
	if inst != "" {
		a.fromDebian(c, rel, u, inst)
		a.fromOSV(c, rel, u, inst)
	}
	a.enrich(c)
	switch {
	case f.Classification == assess.Security:
	case len(f.CVEs) > 0 || len(f.Advisories) > 0:
		f.Classification = assess.Security
	case known:
		f.Classification = assess.Bugfix
	}
	if len(f.Evidence) == 0 {
		f.Evidence = nil
	}
	return f
}

// fromChangelog adds the CVEs of the changelog entries newer than inst, and
// reports whether the changelog was read.
func (a *Assessor) fromChangelog(c *collector, u Update, inst string) bool {
	if a.changelog == nil {
		return false
	}
	key := changelog.Key{Source: u.Source, Version: u.SourceVersion}
	log, err := a.changelog(key)
	switch {
	case err != nil:
		c.note("changelog: %v", err)
		return false
	case log == nil:
		c.note("changelog of %s not read", key)
		return false
	case inst == "":
		return false
	}
	ch, err := log.Newer(inst)
	if err != nil {
		c.note("changelog of %s: %v", key, err)
		return false
	}
	for _, id := range ch.CVEs {
		c.add(id, "changelog")
	}
	c.f.Urgency = ch.Urgency
	if len(ch.Entries) > 0 && ch.Entries[0].Version == u.SourceVersion {
		if t, err := ch.Entries[0].Time(); err == nil {
			c.f.Released = t.UTC()
		}
	}
	if !ch.Complete {
		c.note("changelog of %s ends before the installed %s: older changes may be missing", key, inst)
	}
	return true
}

// fromDebian adds the DSA and DLA advisories that fix the source package in
// the host's release above inst and at or below the candidate.
func (a *Assessor) fromDebian(c *collector, rel Release, u Update, inst string) {
	if !strings.EqualFold(rel.Distro, "debian") || (a.feeds.DSA == nil && a.feeds.DLA == nil) {
		return
	}
	if rel.Codename == "" {
		c.note("no release codename for Debian %s: DSA/DLA advisories not matched", rel.Version)
		return
	}
	for _, fix := range a.feeds.debianFixes[debianKey{rel.Codename, u.Source}] {
		if deb.CompareValid(fix.version, inst) <= 0 || deb.CompareValid(fix.version, u.SourceVersion) > 0 {
			continue
		}
		c.advisory(fix.adv.ID)
		for _, id := range fix.adv.CVEs {
			c.add(id, fix.adv.ID)
		}
	}
}

// fromOSV adds the OSV records of the host's ecosystem that affect the
// installed source version and not the candidate's.
func (a *Assessor) fromOSV(c *collector, rel Release, u Update, inst string) {
	if len(a.feeds.OSV) == 0 {
		return
	}
	eco := rel.Ecosystem()
	if eco == "" {
		c.note("no OSV ecosystem for %s %s: OSV records not matched", rel.Distro, rel.Version)
		return
	}
	for _, set := range a.feeds.OSV {
		for _, r := range set.ForPackage(eco, u.Source) {
			before, err := a.matcher.Affects(r, eco, u.Source, inst)
			if err != nil {
				c.note("OSV %s: %v", r.ID, err)
				continue
			}
			if !before {
				continue
			}
			after, err := a.matcher.Affects(r, eco, u.Source, u.SourceVersion)
			if err != nil {
				c.note("OSV %s: %v", r.ID, err)
				continue
			}
			if after {
				continue // not fixed by this candidate
			}
			if advisory.CVEOf(r.ID) == "" {
				c.advisory(r.ID)
			}
			for _, id := range r.CVEs() {
				c.add(id, r.ID)
			}
			vectors := osvVectors(r, eco, u.Source)
			for _, id := range r.AliasCVEs() {
				c.cvss[id] = appendCVSS(c.cvss[id], vectors...)
			}
		}
	}
}

// osvVectors returns the CVSS vectors of a record's severity and of its
// affected entries for the package; vectors that do not parse are skipped.
func osvVectors(r *advisory.Record, eco, pkg string) []assess.CVSS {
	sev := slices.Clone(r.Severity)
	for _, af := range r.Affected {
		if af.Package.Ecosystem == eco && af.Package.Name == pkg {
			sev = append(sev, af.Severity...)
		}
	}
	var out []assess.CVSS
	for _, s := range sev {
		if s.Type != "CVSS_V3" && s.Type != "CVSS_V4" {
			continue
		}
		if v, err := assess.ParseCVSS(s.Score); err == nil {
			out = appendCVSS(out, v)
		}
	}
	return out
}

func appendCVSS(list []assess.CVSS, vs ...assess.CVSS) []assess.CVSS {
	for _, v := range vs {
		if !slices.ContainsFunc(list, func(x assess.CVSS) bool { return x.Vector == v.Vector }) {
			list = append(list, v)
		}
	}
	return list
}

// enrich turns the collected evidence into the finding's CVEs, ordered by
// year then number, each with its CVSS, KEV and EPSS.
func (a *Assessor) enrich(c *collector) {
	ids := make([]string, 0, len(c.f.Evidence))
	for id := range c.f.Evidence {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareCVE)
	for _, id := range ids {
		cve := assess.CVE{ID: id, CVSS: c.cvss[id]}
		a.feeds.threat(&cve)
		c.f.CVEs = append(c.f.CVEs, cve)
	}
	for id := range c.adv {
		c.f.Advisories = append(c.f.Advisories, id)
	}
	slices.Sort(c.f.Advisories)
}

// threat fills in the CVE's KEV entry and EPSS score from the feeds.
func (f *Feeds) threat(cve *assess.CVE) {
	if f == nil {
		return
	}
	if k := f.KEV; k != nil {
		if e, ok := k.Lookup(cve.ID); ok {
			cve.KEV = &assess.KEV{DateAdded: e.DateAdded, DueDate: e.DueDate, RansomwareUse: e.Ransomware()}
		}
	}
	for _, e := range f.EPSS {
		if s, ok := e.Lookup(cve.ID); ok {
			cve.EPSS = &assess.EPSS{Probability: s.EPSS, Percentile: s.Percentile, Date: e.ScoreDate}
			break
		}
	}
}

// Threats returns a copy of cves with each CVE's KEV entry and EPSS score
// filled in from the feeds (for findings made elsewhere, e.g. package
// rpmassess); f may be nil.
func (f *Feeds) Threats(cves []assess.CVE) []assess.CVE {
	out := slices.Clone(cves)
	for i := range out {
		out[i].KEV, out[i].EPSS = nil, nil
		f.threat(&out[i])
	}
	return out
}

// compareCVE orders CVE IDs by year, then number.
func compareCVE(a, b string) int {
	ya, na, _ := strings.Cut(strings.TrimPrefix(a, "CVE-"), "-")
	yb, nb, _ := strings.Cut(strings.TrimPrefix(b, "CVE-"), "-")
	if ya != yb {
		return strings.Compare(ya, yb)
	}
	if len(na) != len(nb) {
		return len(na) - len(nb)
	}
	return strings.Compare(na, nb)
}
