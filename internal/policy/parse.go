package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patchloop/patchloop/internal/assess"
)

// Parse reads one baseline file strictly: unknown fields, wrong types and
// impossible rules are errors, each naming file and line; all that are
// found are returned together (errors.Join).
func Parse(file string, data []byte) (*Baseline, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty policy file", file)
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errorf(file, extra.Line, "more than one YAML document; put each baseline in its own file")
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return nil, fmt.Errorf("%s: empty policy file", file)
	}
	d := &decoder{file: file}
	b := d.baseline(doc.Content[0])
	if len(d.errs) == 0 {
		d.validate(b)
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return b, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): `)

// syntaxError rewrites the YAML library's "yaml: line 3: msg" as
// "file:3: msg", the form of every other error.
func syntaxError(file string, err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s:%s: %s", file, m[1], strings.TrimPrefix(err.Error(), m[0]))
	}
	return fmt.Errorf("%s: %w", file, err)
}

func errorf(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
}

// decoder walks the YAML node tree, collecting errors as it goes.
type decoder struct {
	file string
	errs []error
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, errorf(d.file, n.Line, format, args...))
}

// fields checks that n is a mapping with only known, unique keys and
// returns its values by key.
func (d *decoder) fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	if d.alias(n, what) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s must be a mapping", what)
		return nil
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			d.fail(k, "%s: field names must be plain strings", what)
		case !slices.Contains(known, k.Value):
			d.fail(k, "unknown field %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
		case m[k.Value] != nil:
			d.fail(k, "field %q given twice in %s", k.Value, what)
		default:
			m[k.Value] = v
		}
	}
	return m
}

// alias reports (and rejects) a YAML alias: a policy reads top to bottom.
func (d *decoder) alias(n *yaml.Node, what string) bool {
	if n.Kind == yaml.AliasNode {
		d.fail(n, "%s: YAML aliases (*%s) are not supported", what, n.Value)
		return true
	}
	return false
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if d.alias(n, what) {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (d *decoder) integer(n *yaml.Node, what string) int {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v
		}
	}
	d.fail(n, "%s must be a whole number, not %q", what, n.Value)
	return 0
}

func (d *decoder) boolean(n *yaml.Node, what string) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if v, err := strconv.ParseBool(n.Value); err == nil {
			return v
		}
	}
	d.fail(n, "%s must be true or false, not %q", what, n.Value)
	return false
}

// seq checks that n is a sequence and returns its items.
func (d *decoder) seq(n *yaml.Node, what string) []*yaml.Node {
	if d.alias(n, what) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "%s must be a list", what)
		return nil
	}
	return n.Content
}

func (d *decoder) strs(n *yaml.Node, what string) []string {
	var out []string
	for _, item := range d.seq(n, what) {
		out = append(out, d.str(item, what+" item"))
	}
	return out
}

func (d *decoder) baseline(n *yaml.Node) *Baseline {
	b := &Baseline{File: d.file, Line: n.Line}
	m := d.fields(n, "baseline", "name", "description", "hosts", "exclude", "hold", "decline", "approve", "rules")
	if v := m["name"]; v != nil {
		b.Name = d.str(v, "name")
	} else if m != nil {
		d.fail(n, "name is required")
	}
	if v := m["description"]; v != nil {
		b.Description = d.str(v, "description")
	}
	if v := m["hosts"]; v != nil {
		b.Hosts = d.selector(v, "hosts")
	} else if m != nil {
		d.fail(n, "hosts is required: a selector of the hosts this baseline applies to (all: true for every host)")
	}
	b.Exclude = d.entries(m["exclude"], "exclude")
	b.Hold = d.entries(m["hold"], "hold")
	b.Decline = d.entries(m["decline"], "decline")
	b.Approve = d.entries(m["approve"], "approve")
	if v := m["rules"]; v != nil {
		for i, item := range d.seq(v, "rules") {
			b.Rules = append(b.Rules, d.rule(item, fmt.Sprintf("rules[%d]", i)))
		}
	}
	return b
}

var cveID = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)

func (d *decoder) entries(n *yaml.Node, list string) []Entry {
	if n == nil {
		return nil
	}
	known := []string{"package", "source", "version", "cve", "reason"}
	switch list {
	case "hold":
		known = append(known, "until")
	case "exclude":
		known = slices.DeleteFunc(known, func(s string) bool { return s == "version" })
	}
	var out []Entry
	for i, item := range d.seq(n, list) {
		what := fmt.Sprintf("%s[%d]", list, i)
		m := d.fields(item, what, known...)
		if m == nil {
			continue
		}
		out = append(out, d.entry(item, m, what))
	}
	return out
}

func (d *decoder) entry(n *yaml.Node, m map[string]*yaml.Node, what string) Entry {
	e := Entry{Line: n.Line}
	set := 0
	for _, k := range []string{"package", "source", "cve"} {
		v := m[k]
		if v == nil {
			continue
		}
		set++
		s := d.str(v, what+"."+k)
		switch k {
		case "package":
			e.Package = d.pattern(v, s, what+".package")
		case "source":
			e.Source = d.pattern(v, s, what+".source")
		case "cve":
			if e.CVE = strings.ToUpper(s); !cveID.MatchString(e.CVE) {
				d.fail(v, "%s.cve: %q is not a CVE ID (CVE-YYYY-NNNN)", what, s)
			}
		}
	}
	if set != 1 {
		d.fail(n, "%s needs exactly one of package, source or cve", what)
	}
	if v := m["version"]; v != nil {
		if e.Version = d.str(v, what+".version"); e.CVE != "" || e.Version == "" {
			d.fail(v, "%s.version needs a package or source and a non-empty value", what)
		}
	}
	if v := m["reason"]; v != nil {
		e.Reason = d.str(v, what+".reason")
	}
	if v := m["until"]; v != nil {
		s := d.str(v, what+".until")
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			d.fail(v, "%s.until: %q is not a date like 2026-12-31", what, s)
		}
		e.Until = t
	}
	return e
}

// pattern checks a package-name glob (path.Match syntax).
func (d *decoder) pattern(n *yaml.Node, s, what string) string {
	if s == "" {
		d.fail(n, "%s must not be empty", what)
	} else if _, err := path.Match(s, ""); err != nil {
		d.fail(n, "%s: bad pattern %q: %v", what, s, err)
	}
	return s
}

func (d *decoder) rule(n *yaml.Node, what string) Rule {
	r := Rule{Line: n.Line, Action: ActionApprove}
	m := d.fields(n, what, "name", "classification", "min_severity", "kev", "packages", "hosts", "action", "approve_after_days")
	if m == nil {
		return r
	}
	if v := m["name"]; v != nil {
		r.Name = d.str(v, what+".name")
	}
	if r.Name == "" {
		d.fail(n, "%s: name is required", what)
	}
	if v := m["classification"]; v != nil {
		for _, item := range d.seq(v, what+".classification") {
			c, err := assess.ParseClassification(d.str(item, what+".classification item"))
			if err != nil {
				d.fail(item, "%s: %v", what, err)
			}
			r.Classification = append(r.Classification, c)
		}
	}
	if v := m["min_severity"]; v != nil {
		s, err := assess.ParseSeverity(d.str(v, what+".min_severity"))
		if err != nil {
			d.fail(v, "%s.min_severity: %v", what, err)
		}
		r.MinSeverity = s
	}
	if v := m["kev"]; v != nil {
		if r.KEV = d.boolean(v, what+".kev"); !r.KEV {
			d.fail(v, "%s: kev: false has no effect; leave it out", what)
		}
	}
	if v := m["packages"]; v != nil {
		for _, item := range d.seq(v, what+".packages") {
			r.Packages = append(r.Packages, d.pattern(item, d.str(item, what+".packages item"), what+".packages"))
		}
	}
	if v := m["hosts"]; v != nil {
		s := d.selector(v, what+".hosts")
		r.Hosts = &s
	}
	d.ruleAction(&r, m, what)
	return r
}

func (d *decoder) ruleAction(r *Rule, m map[string]*yaml.Node, what string) {
	if v := m["action"]; v != nil {
		switch a := Action(d.str(v, what+".action")); a {
		case ActionApprove, ActionDecline:
			r.Action = a
		default:
			d.fail(v, "%s.action: unknown action %q (want approve or decline)", what, a)
		}
	}
	if v := m["approve_after_days"]; v != nil {
		r.ApproveAfterDays = d.integer(v, what+".approve_after_days")
		switch {
		case r.ApproveAfterDays < 0:
			d.fail(v, "%s.approve_after_days must be 0 or more, not %d", what, r.ApproveAfterDays)
		case r.Action == ActionDecline:
			d.fail(v, "%s: approve_after_days makes no sense with action: decline", what)
		}
	}
}

func (d *decoder) selector(n *yaml.Node, what string) Selector {
	s := Selector{Line: n.Line}
	m := d.fields(n, what, "all", "match_labels", "match_expressions")
	if m == nil {
		return s
	}
	if v := m["all"]; v != nil {
		s.All = d.boolean(v, what+".all")
	}
	if v := m["match_labels"]; v != nil {
		if v.Kind != yaml.MappingNode {
			d.fail(v, "%s.match_labels must be a mapping of label to value", what)
		}
		for i := 0; v.Kind == yaml.MappingNode && i+1 < len(v.Content); i += 2 {
			k := d.str(v.Content[i], what+".match_labels key")
			if k == "" {
				d.fail(v.Content[i], "%s.match_labels: empty label name", what)
			}
			if s.MatchLabels == nil {
				s.MatchLabels = map[string]string{}
			}
			s.MatchLabels[k] = d.str(v.Content[i+1], what+".match_labels."+k)
		}
	}
	if v := m["match_expressions"]; v != nil {
		for i, item := range d.seq(v, what+".match_expressions") {
			s.MatchExpressions = append(s.MatchExpressions, d.requirement(item, fmt.Sprintf("%s.match_expressions[%d]", what, i)))
		}
	}
	switch {
	case s.empty():
		d.fail(n, "%s: empty selector; give match_labels, match_expressions, or all: true", what)
	case s.All && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0):
		d.fail(n, "%s: all: true cannot be combined with match_labels or match_expressions", what)
	}
	return s
}

func (d *decoder) requirement(n *yaml.Node, what string) Requirement {
	var r Requirement
	m := d.fields(n, what, "key", "operator", "values")
	if m == nil {
		return r
	}
	if v := m["key"]; v != nil {
		r.Key = d.str(v, what+".key")
	}
	if r.Key == "" {
		d.fail(n, "%s: key is required", what)
	}
	if v := m["operator"]; v != nil {
		r.Operator = d.str(v, what+".operator")
	}
	if v := m["values"]; v != nil {
		r.Values = d.strs(v, what+".values")
	}
	switch r.Operator {
	case OpIn, OpNotIn:
		if len(r.Values) == 0 {
			d.fail(n, "%s: operator %s needs values", what, r.Operator)
		}
	case OpExists, OpDoesNotExist:
		if len(r.Values) > 0 {
			d.fail(n, "%s: operator %s takes no values", what, r.Operator)
		}
	default:
		d.fail(n, "%s: unknown operator %q (want In, NotIn, Exists or DoesNotExist)", what, r.Operator)
	}
	return r
}
