package policy

import (
	"strings"
	"testing"
)

const head = "name: t\nhosts: {all: true}\n" // lines 1–2 of most cases

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // each must appear in the error
	}{
		{"empty file", "", []string{"p.yaml: empty policy file"}},
		{"only a document marker", "---\n", []string{"p.yaml: empty policy file"}},
		{"syntax", "name: t\nhosts: {all: true\n", []string{"p.yaml:1: did not find expected ',' or '}'"}},
		{"two documents", head + "---\nname: u\n", []string{"p.yaml:3: more than one YAML document"}},
		{"not a mapping", "- a\n", []string{"p.yaml:1: baseline must be a mapping"}},
		{"unknown top-level field", head + "aprove: []\n", []string{`p.yaml:3: unknown field "aprove" in baseline (known: name,`}},
		{"unknown rule field", head + "rules:\n  - name: s\n    approve_after_day: 3\n",
			[]string{`p.yaml:5: unknown field "approve_after_day" in rules[0]`}},
		{"field twice", head + "name: u\n", []string{`p.yaml:3: field "name" given twice in baseline`}},
		{"name missing", "hosts: {all: true}\n", []string{"p.yaml:1: name is required"}},
		{"name empty", "name: ''\nhosts: {all: true}\n", []string{"p.yaml:1: name must not be empty"}},
		{"hosts missing", "name: t\n", []string{"p.yaml:1: hosts is required"}},
		{"empty selector", "name: t\nhosts: {}\n", []string{"p.yaml:2: hosts: empty selector"}},
		{"all: false alone is empty", "name: t\nhosts:\n  all: false\n", []string{"p.yaml:3: hosts: empty selector"}},
		{"all with labels", "name: t\nhosts: {all: true, match_labels: {env: prod}}\n", []string{"p.yaml:2: hosts: all: true cannot be combined"}},
		{"empty rule selector", head + "rules:\n  - name: s\n    hosts: {}\n", []string{"p.yaml:5: rules[0].hosts: empty selector"}},
		{"operator without values", "name: t\nhosts:\n  match_expressions:\n    - {key: role, operator: In}\n",
			[]string{"p.yaml:4: hosts.match_expressions[0]: operator In needs values"}},
		{"unknown operator", "name: t\nhosts:\n  match_expressions:\n    - {key: role, operator: in, values: [a]}\n",
			[]string{`p.yaml:4: hosts.match_expressions[0]: unknown operator "in"`}},
		{"Exists with values", "name: t\nhosts:\n  match_expressions:\n    - {key: role, operator: Exists, values: [a]}\n",
			[]string{"operator Exists takes no values"}},
		{"negative days", head + "rules:\n  - name: s\n    approve_after_days: -1\n",
			[]string{"p.yaml:5: rules[0].approve_after_days must be 0 or more, not -1"}},
		{"days not a number", head + "rules:\n  - name: s\n    approve_after_days: seven\n",
			[]string{`p.yaml:5: rules[0].approve_after_days must be a whole number, not "seven"`}},
		{"unknown classification", head + "rules:\n  - name: s\n    classification: [securty]\n",
			[]string{`p.yaml:5: rules[0]: unknown classification "securty"`}},
		{"classification not a list", head + "rules:\n  - name: s\n    classification: security\n",
			[]string{"p.yaml:5: rules[0].classification must be a list"}},
		{"unknown severity", head + "rules:\n  - name: s\n    min_severity: severe\n",
			[]string{`p.yaml:5: rules[0].min_severity: unknown severity "severe"`}},
		{"kev false", head + "rules:\n  - name: s\n    kev: false\n", []string{"p.yaml:5: rules[0]: kev: false has no effect"}},
		{"kev not a bool", head + "rules:\n  - name: s\n    kev: yes\n", []string{`p.yaml:5: rules[0].kev must be true or false, not "yes"`}},
		{"unknown action", head + "rules:\n  - name: s\n    action: reject\n", []string{`p.yaml:5: rules[0].action: unknown action "reject"`}},
		{"decline with days", head + "rules:\n  - name: s\n    action: decline\n    approve_after_days: 3\n",
			[]string{"p.yaml:6: rules[0]: approve_after_days makes no sense with action: decline"}},
		{"rule without name", head + "rules:\n  - classification: [security]\n", []string{"p.yaml:4: rules[0]: name is required"}},
		{"duplicate rule names", head + "rules:\n  - {name: s, kev: true}\n  - {name: s, classification: [bugfix]}\n",
			[]string{`p.yaml:5: rules[1]: name "s" already used by the rule at line 4`}},
		{"rule after a catch-all", head + "rules:\n  - name: all\n    approve_after_days: 30\n  - name: security\n    classification: [security]\n",
			[]string{`p.yaml:6: rules[1] "security" can never match: rule "all" (line 4) before it matches every update`}},
		{"approved and excluded", head + "approve:\n  - package: openssl\nexclude:\n  - package: openssl\n",
			[]string{`p.yaml:4: package "openssl" is both approved (line 4) and excluded (line 6)`}},
		{"approved version of an excluded package", head + "approve:\n  - package: openssl\n    version: \"3.0\"\nexclude:\n  - package: openssl\n",
			[]string{`p.yaml:4: package "openssl" version 3.0 is both approved (line 4) and excluded (line 7)`}},
		{"CVE approved and declined", head + "approve:\n  - cve: CVE-2024-3094\ndecline:\n  - cve: cve-2024-3094\n",
			[]string{"p.yaml:4: CVE-2024-3094 is both approved (line 4) and declined (line 6)"}},
		{"entry with two keys", head + "approve:\n  - package: bash\n    cve: CVE-2024-0001\n",
			[]string{"p.yaml:4: approve[0] needs exactly one of package, source or cve"}},
		{"entry with none", head + "decline:\n  - reason: why\n", []string{"p.yaml:4: decline[0] needs exactly one of package, source or cve"}},
		{"bad CVE", head + "approve:\n  - cve: CVE-24-1\n", []string{`p.yaml:4: approve[0].cve: "CVE-24-1" is not a CVE ID`}},
		{"bad pattern", head + "exclude:\n  - package: \"linux-[\"\n", []string{`p.yaml:4: exclude[0].package: bad pattern "linux-["`}},
		{"version on exclude", head + "exclude:\n  - package: bash\n    version: \"5.2\"\n",
			[]string{`p.yaml:5: unknown field "version" in exclude[0]`}},
		{"version with cve", head + "decline:\n  - cve: CVE-2024-0001\n    version: \"1\"\n",
			[]string{"p.yaml:5: decline[0].version needs a package or source"}},
		{"until outside hold", head + "approve:\n  - package: bash\n    until: 2026-01-01\n", []string{`p.yaml:5: unknown field "until" in approve[0]`}},
		{"bad until", head + "hold:\n  - package: bash\n    until: 2026-13-01\n", []string{`p.yaml:5: hold[0].until: "2026-13-01" is not a date`}},
		{"alias", "name: t\nhosts: &h {all: true}\nrules:\n  - name: s\n    hosts: *h\n", []string{"p.yaml:5: rules[0].hosts: YAML aliases (*h) are not supported"}},
		{"several errors at once", head + "rules:\n  - name: s\n    approve_after_days: -1\n  - name: u\n    classification: [feature]\n",
			[]string{"p.yaml:5: rules[0].approve_after_days", `p.yaml:7: rules[1]: unknown classification "feature"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse("p.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", b)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", err, w)
				}
			}
			checkErrorLines(t, "p.yaml", err)
		})
	}
}

// checkErrorLines requires every line of an error to start with the file
// name, so an operator always knows where to look.
func checkErrorLines(t testing.TB, file string, err error) {
	t.Helper()
	for _, l := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(l, file+":") {
			t.Errorf("error line does not name the file: %q", l)
		}
	}
}

func TestParseValid(t *testing.T) {
	b, err := Parse("p.yaml", []byte(`name: t
hosts:
  match_labels: {env: prod}
  match_expressions:
    - {key: ring, operator: NotIn, values: [canary]}
    - {key: retired, operator: DoesNotExist}
approve:
  - source: openssl
    version: 3.0.18-1~deb12u1
  - cve: cve-2024-3094
decline:
  - source: openssl
    version: 3.0.17-1~deb12u3
rules:
  - name: web-security
    classification: [security, bugfix]
    min_severity: High
    packages: ["nginx*", apache2]
    hosts: {match_labels: {role: web}}
    approve_after_days: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Approve[1].CVE != "CVE-2024-3094" || b.Approve[0].Version != "3.0.18-1~deb12u1" {
		t.Errorf("approve = %+v", b.Approve)
	}
	r := b.Rules[0]
	if len(r.Classification) != 2 || r.MinSeverity.String() != "high" || len(r.Packages) != 2 || r.Action != ActionApprove || r.Line != 15 {
		t.Errorf("rule = %+v", r)
	}
	if len(b.Hosts.MatchExpressions) != 2 || b.Hosts.MatchLabels["env"] != "prod" {
		t.Errorf("hosts = %+v", b.Hosts)
	}
}
