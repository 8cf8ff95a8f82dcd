package advisory

import (
	"fmt"
	"slices"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/rpm"
)

// Comparator orders two versions of one ecosystem, returning -1, 0 or 1 as
// a is lower than, equal to or higher than b. It must order all strings,
// bad versions included, consistently enough to sort by (deb.CompareValid
// and rpm.CompareEVR do).
type Comparator func(a, b string) int

// ComparatorFor returns the version ordering of ECOSYSTEM ranges in an OSV
// ecosystem such as "Debian:12" or "AlmaLinux:9" (the part before the
// first ':' decides), and false for ecosystems without one here.
//
//   - Debian, Ubuntu: dpkg's ordering (deb.CompareValid).
//   - AlmaLinux, Rocky Linux, Red Hat, SUSE, openSUSE: RPM's ordering of
//     "[epoch:]version[-release]" (rpm.CompareEVR); a missing epoch is 0,
//     so versions must be given with their epoch, as the rpmdb has them.
func ComparatorFor(ecosystem string) (Comparator, bool) {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "Debian", "Ubuntu":
		return deb.CompareValid, true
	case "AlmaLinux", "Rocky Linux", "Rocky", "Red Hat", "SUSE", "openSUSE":
		return rpm.CompareEVR, true
	}
	return nil, false
}

// NoComparatorError reports an ECOSYSTEM range in an ecosystem whose
// version ordering is not known, so the range cannot be evaluated.
type NoComparatorError struct{ Ecosystem string }

func (e *NoComparatorError) Error() string {
	return fmt.Sprintf("no version ordering for ecosystem %q", e.Ecosystem)
}

// Matcher evaluates OSV records for package versions, as the OSV schema's
// evaluation pseudo-code does (IsVulnerable).
type Matcher struct {
	// Comparators picks the ordering of ECOSYSTEM ranges by ecosystem;
	// nil means ComparatorFor. SEMVER ranges always use CompareSemver.
	Comparators func(ecosystem string) (Comparator, bool)
}

// Affects reports whether version of package name in ecosystem is
// affected by r: some affected entry names exactly that package and lists
// the version or has a range that includes it. Withdrawn records affect
// nothing.
func (m Matcher) Affects(r *Record, ecosystem, name, version string) (bool, error) {
	if r.IsWithdrawn() {
		return false, nil
	}
	for i := range r.Affected {
		a := &r.Affected[i]
		if a.Package.Ecosystem != ecosystem || a.Package.Name != name {
			continue
		}
		ok, err := m.Includes(a, version)
		if err != nil {
			return false, fmt.Errorf("%s: %w", r.ID, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// Includes reports whether version is listed in a.Versions or lies in one
// of a.Ranges. GIT ranges need the repository's commit graph and are not
// evaluated here (the schema asks GIT records to list versions too);
// ranges of unknown types are skipped. An ECOSYSTEM range in an ecosystem
// without a comparator is a *NoComparatorError, unless the version was
// already found in Versions.
func (m Matcher) Includes(a *Affected, version string) (bool, error) {
	if slices.Contains(a.Versions, version) {
		return true, nil
	}
	for i := range a.Ranges {
		rg := &a.Ranges[i]
		var cmp Comparator
		switch rg.Type {
		case RangeSemver:
			cmp = CompareSemver
		case RangeEcosystem:
			var ok bool
			cmp, ok = m.comparator(a.Package.Ecosystem)
			if !ok {
				return false, &NoComparatorError{Ecosystem: a.Package.Ecosystem}
			}
		default:
			continue
		}
		if rg.Includes(version, cmp) {
			return true, nil
		}
	}
	return false, nil
}

func (m Matcher) comparator(ecosystem string) (Comparator, bool) {
	if m.Comparators != nil {
		return m.Comparators(ecosystem)
	}
	return ComparatorFor(ecosystem)
}

// Includes reports whether v lies in the range under the ordering cmp,
// following the schema's IncludedInRanges for one range: v must be below
// some limit (an implicit "*" if there is none), then the events, sorted,
// are walked: v at or above an introduced makes it vulnerable, at or above
// a fixed or above a last_affected makes it not.
func (rg *Range) Includes(v string, cmp Comparator) bool {
	if !rg.beforeLimits(v, cmp) {
		return false
	}
	events := rg.Events
	order := func(a, b Event) int { return compareEvents(cmp, a, b) }
	if !slices.IsSortedFunc(events, order) {
		events = slices.Clone(events)
		slices.SortStableFunc(events, order)
	}
	vulnerable := false
	for _, e := range events {
		switch {
		case e.Kind == Introduced && (isZero(e) || cmp(v, e.Version) >= 0):
			vulnerable = true
		case e.Kind == Fixed && cmp(v, e.Version) >= 0:
			vulnerable = false
		case e.Kind == LastAffected && cmp(v, e.Version) > 0:
			vulnerable = false
		}
	}
	return vulnerable
}

// beforeLimits is the schema's BeforeLimits.
func (rg *Range) beforeLimits(v string, cmp Comparator) bool {
	limited := false
	for _, e := range rg.Events {
		if e.Kind != Limit {
			continue
		}
		limited = true
		if isInfinity(e) || cmp(v, e.Version) < 0 {
			return true
		}
	}
	return !limited
}

// compareEvents orders events by version: introduced "0" before every
// version, a limit containing "*" after every version.
func compareEvents(cmp Comparator, a, b Event) int {
	ra, rb := eventRank(a), eventRank(b)
	if ra != rb || ra != 0 {
		return ra - rb
	}
	return cmp(a.Version, b.Version)
}

func eventRank(e Event) int {
	switch {
	case isZero(e):
		return -1
	case isInfinity(e):
		return 1
	}
	return 0
}

// isZero reports the special introduced "0", which sorts before any
// version.
func isZero(e Event) bool { return e.Kind == Introduced && e.Version == "0" }

// isInfinity reports a limit standing for infinity.
func isInfinity(e Event) bool { return e.Kind == Limit && strings.Contains(e.Version, "*") }
