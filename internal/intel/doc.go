// Package intel turns detected Debian and Ubuntu updates into assessed
// findings: which CVEs each update fixes, what the advisory feeds know
// about each CVE, its risk on a host and the patch baseline's decision.
//
// It joins the pure packages (detect, assess, advisory, policy) to their
// data: feeds loaded with provenance (package feeds) and the changelogs of
// the candidate packages (package changelog). It does no network I/O of its
// own besides Load, which reads the feeds through a feeds.Loader.
//
// # API
//
//	cfg, _ := intel.ConfigFromDir("/srv/feeds")        // or fill Config by hand
//	fs, err := intel.Load(ctx, loader, cfg, offline)    // *Feeds, with Status per source
//	a := intel.NewAssessor(fs, changelogs)              // changelogs: a ChangelogFunc, may be nil
//	f := a.Finding(rel, u)                              // one update, host-independent, memoised
//	items, err := a.Assess(rel, host, labels, updates, set, now) // one host: ranked, decided
//
// A Finding is host-independent: it depends only on the distribution release
// (Release) and the update's (package, arch, installed and installed source
// version, candidate, source, source version, suite). Assessor memoises it per
// distinct such key for its lifetime, so a fleet costs per distinct version,
// not per host, and it is safe for concurrent use. Make a new Assessor when the
// feeds or the changelogs change.
//
// # Where the CVEs of an update come from
//
//  1. The candidate's own changelog: the entries newer than the installed
//     source version (changelog.Log.Newer, as apt-listchanges cuts it) give
//     CVE IDs, the urgency and, from the candidate's entry, the release date.
//  2. Debian's DSA and DLA lists: advisories whose fixed version of the
//     source package in the host's release (by codename) is above the
//     installed source version and at or below the candidate's.
//  3. OSV records of the host's ecosystem ("Debian:12", "Ubuntu:22.04:LTS"):
//     records naming the source package that affect the installed source
//     version and no longer affect the candidate's. CVSS vectors of a
//     record's severity are attached to the record's own CVE aliases only.
//
// Then each CVE gets its CISA KEV entry (date added, due date, ransomware
// use) and its EPSS score. A finding is classified security when its
// candidate is in a security suite or any source names a CVE or advisory for
// it, bugfix when its changelog is known and names none, other otherwise.
// What could not be known (no changelog, an unknown installed source version,
// no OSV ecosystem) is said in Finding.Notes: the CVE list is then a lower
// bound.
package intel
