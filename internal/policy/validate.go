package policy

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// validate checks what a single field cannot: required values, unique
// rule names, rules that can never decide, and entries that contradict
// each other.
func (d *decoder) validate(b *Baseline) {
	at := func(line int) *yaml.Node { return &yaml.Node{Line: line} }
	if strings.TrimSpace(b.Name) == "" {
		d.fail(at(b.Line), "name must not be empty")
	}
	names := map[string]int{}
	catchAll := -1
	for i, r := range b.Rules {
		if prev, ok := names[r.Name]; ok {
			d.fail(at(r.Line), "rules[%d]: name %q already used by the rule at line %d", i, r.Name, prev)
		} else {
			names[r.Name] = r.Line
		}
		if catchAll >= 0 {
			c := b.Rules[catchAll]
			d.fail(at(r.Line), "rules[%d] %q can never match: rule %q (line %d) before it matches every update", i, r.Name, c.Name, c.Line)
		} else if r.matchesEverything() {
			catchAll = i
		}
	}
	d.conflicts(b.Approve, b.Exclude, "approved", "excluded", false)
	d.conflicts(b.Approve, b.Decline, "approved", "declined", true)
}

// matchesEverything reports a rule without conditions.
func (r *Rule) matchesEverything() bool {
	return len(r.Classification) == 0 && r.MinSeverity == 0 && !r.KEV && len(r.Packages) == 0 && r.Hosts == nil
}

// conflicts reports entries of a that name the same package, source or
// CVE as an entry of b. With sameVersion the versions must be equal too
// (approving openssl while declining one version of it is consistent).
func (d *decoder) conflicts(a, b []Entry, aVerb, bVerb string, sameVersion bool) {
	for _, x := range a {
		for _, y := range b {
			if x.Package != y.Package || x.Source != y.Source || x.CVE != y.CVE {
				continue
			}
			if sameVersion && x.Version != y.Version {
				continue
			}
			d.fail(&yaml.Node{Line: x.Line}, "%s is both %s (line %d) and %s (line %d)", x.what(), aVerb, x.Line, bVerb, y.Line)
		}
	}
}
