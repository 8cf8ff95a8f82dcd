// Package policy owns patch baselines: YAML files that decide, for each
// finding on a host, whether the update is approved, pending or declined,
// and which rule decided it.
//
// A baseline applies to the hosts its selector matches. Within it the
// order of evaluation is fixed (docs/assess.md): explicit exclude and
// decline entries, then holds, then explicit approvals, then the rules in
// file order (the first matching rule decides), then the default, pending.
//
// It is pure: Parse reads bytes the caller read, Decide takes the clock
// as an argument.
package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
)

// Verdict is the outcome of a decision.
type Verdict string

// The three verdicts.
const (
	Approved Verdict = "approved"
	Pending  Verdict = "pending"
	Declined Verdict = "declined"
)

// Baseline is one policy file.
type Baseline struct {
	File, Name, Description string
	Hosts                   Selector
	Exclude, Hold           []Entry
	Decline, Approve        []Entry
	Rules                   []Rule
	Line                    int
}

// Entry is one item of an explicit list. Exactly one of Package, Source
// and CVE is set.
type Entry struct {
	Package string // glob on the binary package name
	Source  string // glob on the source package name
	// Version, when set, limits the entry to one version: the candidate's
	// for Package, the source version for Source.
	Version string
	CVE     string // upper case, e.g. CVE-2024-6387
	Reason  string
	// Until ends a hold after that day (UTC); zero holds until removed.
	Until time.Time
	Line  int
}

// Action is what a matching rule does.
type Action string

// Rule actions.
const (
	ActionApprove Action = "approve"
	ActionDecline Action = "decline"
)

// Rule is one ordered rule. Its conditions are and-ed; an unset condition
// matches everything.
type Rule struct {
	Name           string
	Classification []assess.Classification
	// MinSeverity requires a CVE whose best CVSS rating is at least this
	// (SeverityNone: no condition).
	MinSeverity assess.Severity
	KEV         bool      // requires a CVE listed in KEV
	Packages    []string  // globs on the binary package name
	Hosts       *Selector // nil: every host of the baseline
	Action      Action
	// ApproveAfterDays approves an update this many days after its
	// release (AWS Patch Manager's ApproveAfterDays); 0 approves at once.
	ApproveAfterDays int
	Line             int
}

// Decision is a verdict with the rule that gave it.
type Decision struct {
	Verdict  Verdict `json:"verdict"`
	Baseline string  `json:"baseline,omitempty"`
	// Rule locates the deciding rule: "exclude[0]", "decline[2]",
	// "hold[0]", "approve[1]", "rules[3]", or "default".
	Rule   string `json:"rule"`
	Name   string `json:"name,omitempty"` // the rule's name, for rules[i]
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason"`
	// ApproveAt is when a pending age rule will approve the update.
	ApproveAt time.Time `json:"approve_at,omitzero"`
}

func (d Decision) String() string {
	s := string(d.Verdict) + " by " + d.Rule
	if d.Name != "" {
		s += " " + d.Name
	}
	switch {
	case d.File != "" && d.Line > 0:
		s += fmt.Sprintf(" (%s:%d)", d.File, d.Line)
	case d.File != "":
		s += " (" + d.File + ")"
	}
	return s + ": " + d.Reason
}

// Decide gives the verdict of baseline b on finding f for a host with
// the given labels at time now. The caller has already chosen b for the
// host (Set.Decide does both).
func (b *Baseline) Decide(f *assess.Finding, labels map[string]string, now time.Time) Decision {
	if i, e := match(b.Exclude, f); e != nil {
		return b.decision(Declined, "exclude", i, e.Line, e.what()+" is excluded"+because(e.Reason))
	}
	if i, e := match(b.Decline, f); e != nil {
		return b.decision(Declined, "decline", i, e.Line, "declined: "+e.what()+because(e.Reason))
	}
	for i := range b.Hold {
		e := &b.Hold[i]
		if e.matches(f) && (e.Until.IsZero() || !day(now).After(e.Until)) {
			r := "on hold: " + e.what()
			if !e.Until.IsZero() {
				r += " until " + e.Until.Format(dateLayout)
			}
			return b.decision(Pending, "hold", i, e.Line, r+because(e.Reason))
		}
	}
	if i, e := match(b.Approve, f); e != nil {
		return b.decision(Approved, "approve", i, e.Line, "explicitly approved: "+e.what()+because(e.Reason))
	}
	for i := range b.Rules {
		if r := &b.Rules[i]; r.matches(f, labels) {
			return b.ruleDecision(i, r, f, now)
		}
	}
	return Decision{Verdict: Pending, Baseline: b.Name, Rule: "default", File: b.File, Reason: "no rule matched"}
}

func (b *Baseline) decision(v Verdict, list string, i, line int, reason string) Decision {
	return Decision{Verdict: v, Baseline: b.Name, Rule: fmt.Sprintf("%s[%d]", list, i), File: b.File, Line: line, Reason: reason}
}

func (b *Baseline) ruleDecision(i int, r *Rule, f *assess.Finding, now time.Time) Decision {
	d := b.decision(Pending, "rules", i, r.Line, r.describe(f))
	d.Name = r.Name
	switch {
	case r.Action == ActionDecline:
		d.Verdict, d.Reason = Declined, d.Reason+"; declined"
	case r.ApproveAfterDays == 0:
		d.Verdict = Approved
	case f.Released.IsZero():
		d.Reason += fmt.Sprintf("; approved %d days after release, release date unknown", r.ApproveAfterDays)
	default:
		rel := day(f.Released)
		at := rel.AddDate(0, 0, r.ApproveAfterDays)
		d.Reason += fmt.Sprintf("; released %s, approved %d days later", rel.Format(dateLayout), r.ApproveAfterDays)
		if day(now).Before(at) {
			d.ApproveAt = at
			d.Reason += ", on " + at.Format(dateLayout)
		} else {
			d.Verdict = Approved
		}
	}
	return d
}

// matches reports whether every condition of r holds.
func (r *Rule) matches(f *assess.Finding, labels map[string]string) bool {
	if len(r.Classification) > 0 && !slices.Contains(r.Classification, f.Classification) {
		return false
	}
	if r.MinSeverity > assess.SeverityNone && f.MaxSeverity() < r.MinSeverity {
		return false
	}
	if r.KEV && !f.HasKEV() {
		return false
	}
	if len(r.Packages) > 0 && !anyGlob(r.Packages, f.Package) {
		return false
	}
	return r.Hosts == nil || r.Hosts.Matches(labels)
}

// describe says which conditions of r matched f, for the reason.
func (r *Rule) describe(f *assess.Finding) string {
	var parts []string
	if len(r.Classification) > 0 {
		parts = append(parts, string(f.Classification)+" update")
	}
	if r.MinSeverity > assess.SeverityNone {
		parts = append(parts, fmt.Sprintf("severity %s (at least %s)", f.MaxSeverity(), r.MinSeverity))
	}
	if r.KEV {
		parts = append(parts, "known exploited (KEV)")
	}
	if len(r.Packages) > 0 {
		parts = append(parts, "package "+f.Package)
	}
	if r.Hosts != nil {
		parts = append(parts, "host in scope")
	}
	if len(parts) == 0 {
		parts = append(parts, "any update")
	}
	return "rule " + r.Name + ": " + strings.Join(parts, ", ")
}

func match(list []Entry, f *assess.Finding) (int, *Entry) {
	for i := range list {
		if list[i].matches(f) {
			return i, &list[i]
		}
	}
	return -1, nil
}

func (e *Entry) matches(f *assess.Finding) bool {
	switch {
	case e.CVE != "":
		return f.HasCVE(e.CVE)
	case e.Package != "":
		return glob(e.Package, f.Package) && (e.Version == "" || e.Version == f.Candidate)
	case e.Source != "":
		return glob(e.Source, f.Source) && (e.Version == "" || e.Version == f.SourceVersion)
	}
	return false
}

// what names the entry for reasons and errors.
func (e *Entry) what() string {
	var s string
	switch {
	case e.CVE != "":
		return e.CVE
	case e.Package != "":
		s = fmt.Sprintf("package %q", e.Package)
	default:
		s = fmt.Sprintf("source %q", e.Source)
	}
	if e.Version != "" {
		s += " version " + e.Version
	}
	return s
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// glob matches a validated path.Match pattern.
func glob(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

func anyGlob(patterns []string, name string) bool {
	for _, p := range patterns {
		if glob(p, name) {
			return true
		}
	}
	return false
}

const dateLayout = "2006-01-02"

// day truncates t to its UTC calendar day.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
