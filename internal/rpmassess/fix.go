package rpmassess

import (
	"fmt"
	"slices"
	"strings"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
)

// maxFixSteps bounds the search for a version that leaves a record whose
// ranges overlap (each step moves strictly up, so real data needs one or
// two).
const maxFixSteps = 16

// fixFor returns the lowest version the record's ECOSYSTEM ranges name as
// fixed above v that no range of the record applying to v includes, and
// false when there is none: the ranges holding v end at a last_affected
// event or not at all, or none of them applies to v.
//
// A range applies to v when both are in a module stream or both are not
// (modular): AlmaLinux starts every module stream's range at 0, so by the
// OSV schema alone postgresql 13.23-2.el9_7 is affected by the
// postgresql:16 stream's erratum, yet dnf never moves a package into a
// module stream or out of one. Where several applying ranges hold v, the
// highest of their fixes is needed to leave them all.
func fixFor(r *advisory.Record, ecosystem, name, v string, cmpEVR advisory.Comparator) (string, bool, error) {
	mod := modular(v)
	c := v
	for range maxFixSteps {
		next, holds := "", false
		for i := range r.Affected {
			af := &r.Affected[i]
			if af.Package.Ecosystem != ecosystem || af.Package.Name != name {
				continue
			}
			for j := range af.Ranges {
				rg := &af.Ranges[j]
				if rg.Type != advisory.RangeEcosystem || !applies(rg, mod) || !rg.Includes(c, cmpEVR) {
					continue
				}
				f, ok := nextFixed(rg, c, cmpEVR)
				if !ok {
					return "", false, nil
				}
				holds = true
				if next == "" || cmpEVR(f, next) > 0 {
					next = f
				}
			}
		}
		if !holds {
			return c, c != v, nil
		}
		c = next
	}
	return "", false, fmt.Errorf("%s: no unaffected fixed version of %s above %s within %d steps", r.ID, name, v, maxFixSteps)
}

// modular reports whether an EVR is a module stream's build
// ("16.6-1.module_el9.5.0+127+50ff03a9").
func modular(evr string) bool { return strings.Contains(evr, ".module_") }

// applies reports whether a range is for a module stream exactly when
// mod says the installed version is; a range naming only introduced "0"
// applies to both.
func applies(rg *advisory.Range, mod bool) bool {
	for _, e := range rg.Events {
		if !(e.Kind == advisory.Introduced && e.Version == "0") && e.Kind != advisory.Limit {
			return modular(e.Version) == mod
		}
	}
	return true
}

// nextFixed returns the fixed event that ends the vulnerable interval
// holding v in rg, false when a last_affected event ends it first or
// nothing does.
func nextFixed(rg *advisory.Range, v string, cmpEVR advisory.Comparator) (string, bool) {
	events := slices.Clone(rg.Events)
	slices.SortStableFunc(events, func(x, y advisory.Event) int {
		rx, ry := eventRank(x), eventRank(y)
		if rx != ry || rx != 0 {
			return rx - ry
		}
		return cmpEVR(x.Version, y.Version)
	})
	for _, e := range events {
		switch {
		case e.Kind == advisory.Fixed && cmpEVR(v, e.Version) < 0:
			return e.Version, true
		case e.Kind == advisory.LastAffected && cmpEVR(v, e.Version) <= 0:
			return "", false
		}
	}
	return "", false
}

// eventRank puts introduced "0" before and a "*" limit after every
// version, as the OSV schema sorts events.
func eventRank(e advisory.Event) int {
	switch {
	case e.Kind == advisory.Introduced && e.Version == "0":
		return -1
	case e.Kind == advisory.Limit && strings.Contains(e.Version, "*"):
		return 1
	}
	return 0
}

// appendCVEs adds the CVEs a record names (ids, its Record.CVEs: for
// AlmaLinux, its related list) to cves, without repeating one (index maps the IDs
// already in cves to their position; a kernel finding names thousands),
// each with the CVSS
// vectors of the record's severity and of its entry for the package. A
// CVSS v3 or v4 vector that does not parse is an error naming the record;
// CVSS v2 and non-CVSS scales are not scored and are left out.
func appendCVEs(cves []assess.CVE, index map[string]int, r *advisory.Record, ids []string, ecosystem, name string) ([]assess.CVE, error) {
	var vectors []assess.CVSS
	add := func(sev []advisory.Severity) error {
		for _, s := range sev {
			if s.Type != "CVSS_V3" && s.Type != "CVSS_V4" {
				continue
			}
			c, err := assess.ParseCVSS(s.Score)
			if err != nil {
				return fmt.Errorf("%s: severity %s %q: %w", r.ID, s.Type, s.Score, err)
			}
			if !slices.Contains(vectors, c) {
				vectors = append(vectors, c)
			}
		}
		return nil
	}
	if err := add(r.Severity); err != nil {
		return nil, err
	}
	for i := range r.Affected {
		if af := &r.Affected[i]; af.Package.Ecosystem == ecosystem && af.Package.Name == name {
			if err := add(af.Severity); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range ids {
		i, ok := index[id]
		if !ok {
			index[id] = len(cves)
			cves = append(cves, assess.CVE{ID: id, CVSS: slices.Clip(vectors)})
			continue
		}
		for _, v := range vectors {
			if !slices.Contains(cves[i].CVSS, v) {
				cves[i].CVSS = append(slices.Clip(cves[i].CVSS), v)
			}
		}
	}
	return cves, nil
}
