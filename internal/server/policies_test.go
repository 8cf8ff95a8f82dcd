package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/api"
)

// TestPolicies runs on SQLite and PostgreSQL.
func TestPolicies(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { tPolicies(t, newEnv(t, backend)) })
	}
}

// putPolicy sends a YAML policy and returns the status and the body.
func (e *env) putPolicy(name, query, yaml string) (int, string) {
	e.t.Helper()
	path := "/api/v1/policies/" + name
	if query != "" {
		path += "?" + query
	}
	return e.call("PUT", path, e.admin, "application/yaml", []byte(yaml))
}

func readPolicy(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile("../../docs/policies/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func tPolicies(t *testing.T, e *env) {
	prod, def := readPolicy(t, "10-production.yaml"), readPolicy(t, "90-default.yaml")
	put := func(name, query, yaml string, wantCode int) api.PolicyPut {
		t.Helper()
		code, body := e.putPolicy(name, query, yaml)
		var r api.PolicyPut
		if code != wantCode || json.Unmarshal([]byte(body), &r) != nil {
			t.Fatalf("PUT %s?%s: %d %s, want %d", name, query, code, body, wantCode)
		}
		return r
	}
	r := put("production", "priority=10", prod, http.StatusCreated)
	if !r.Changed || r.Version != 1 || r.Priority != 10 || r.Source != prod || r.UpdatedBy != fmt.Sprintf("test (%s)", adminID(e.admin)) ||
		r.Description != "Internet-facing and database hosts in production." {
		t.Errorf("created: %+v", r)
	}
	// Without a priority: the default for a new policy.
	if r := put("default", "", def, http.StatusCreated); r.Priority != 100 {
		t.Errorf("default priority: %+v", r)
	}
	// The same again: nothing changes. A priority alone is a change.
	if r := put("production", "", prod, http.StatusOK); r.Changed || r.Version != 1 || r.Priority != 10 {
		t.Errorf("put unchanged: %+v", r)
	}
	if r := put("default", "priority=90", def, http.StatusOK); !r.Changed || r.Version != 2 || r.Priority != 90 {
		t.Errorf("new priority: %+v", r)
	}
	v2 := prod + "# reviewed\n"
	if r := put("production", "", v2, http.StatusOK); !r.Changed || r.Version != 2 || r.Priority != 10 {
		t.Errorf("changed source: %+v", r)
	}
	// A dry run validates and stores nothing.
	if r := put("production", "dry_run=true&priority=5", prod+"# not stored\n", http.StatusOK); !r.DryRun || r.Changed || r.Priority != 5 {
		t.Errorf("dry run: %+v", r)
	}
	var one api.Policy
	e.adminJSON("GET", "/api/v1/policies/production", nil, &one)
	if one.Source != v2 || one.Version != 2 || one.Priority != 10 {
		t.Errorf("after the dry run: version %d priority %d source ends %q", one.Version, one.Priority, one.Source[len(one.Source)-30:])
	}
	var list []api.Policy
	e.adminJSON("GET", "/api/v1/policies", nil, &list)
	if len(list) != 2 || list[0].Name != "production" || list[1].Name != "default" || list[0].Source != "" || list[1].Version != 2 {
		t.Errorf("list: %+v", list)
	}

	// Invalid policies: 400, each problem with file and line.
	for _, tc := range []struct {
		name, path, ctype, body string
		code                    int
		want                    []string
	}{
		{"unknown field", "bad", "application/yaml",
			"name: bad\nhosts: {all: true}\nrules:\n  - name: a\n    kev: true\n    colour: red\n", 400,
			[]string{`bad.yaml:6: unknown field "colour"`}},
		{"impossible rules", "bad", "application/yaml",
			"name: bad\nhosts: {all: true}\nrules:\n  - name: x\n    action: decline\n    approve_after_days: 3\n  - name: y\n    kev: false\n", 400,
			[]string{"bad.yaml:6: rules[0]: approve_after_days makes no sense with action: decline", "bad.yaml:8: rules[1]: kev: false has no effect"}},
		{"unreachable rule", "bad", "text/yaml",
			"name: bad\nhosts: {all: true}\nrules:\n  - name: all\n  - name: never\n    kev: true\n", 400,
			[]string{`bad.yaml:5: rules[1] "never" can never match`}},
		{"YAML syntax", "bad", "application/yaml", "name: bad\nhosts: [\n", 400, []string{"bad.yaml:"}},
		{"name differs from the path", "other", "application/yaml", def, 400, []string{`other.yaml:`, `name "default" differs from "other"`}},
		{"bad name", "Bad_Name", "application/yaml", def, 400, []string{`policy name "Bad_Name"`}},
		{"JSON body", "default", "application/json", `{"name":"default"}`, 415, []string{"application/yaml"}},
		{"too large", "default", "application/yaml", def + strings.Repeat("#", api.MaxPolicyBody), 413, []string{"larger than"}},
		{"bad priority", "default?priority=-1", "application/yaml", def, 400, []string{`priority "-1"`}},
		{"unknown parameter", "default?prio=1", "application/yaml", def, 400, []string{`unknown query parameter "prio"`}},
	} {
		code, body := e.call("PUT", "/api/v1/policies/"+tc.path, e.admin, tc.ctype, []byte(tc.body))
		var msg api.Error
		if err := json.Unmarshal([]byte(body), &msg); err != nil || code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.code)
			continue
		}
		all := msg.Error + "\n" + strings.Join(msg.Details, "\n")
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: %q does not say %q", tc.name, all, w)
			}
		}
		if len(tc.want) > 1 && tc.code == 400 && strings.HasPrefix(tc.want[0], "bad.yaml") && len(msg.Details) != len(tc.want) {
			t.Errorf("%s: details %q, want %d problems", tc.name, msg.Details, len(tc.want))
		}
	}
	// Nothing invalid was stored.
	if code, body := e.call("GET", "/api/v1/policies/bad", e.admin, "", nil); code != 404 {
		t.Errorf("invalid policy stored: %d %s", code, body)
	}
	if code, _ := e.call("GET", "/api/v1/policies", "", "", nil); code != 401 {
		t.Errorf("policies without an admin token: %d", code)
	}

	if code, body := e.call("DELETE", "/api/v1/policies/default", e.admin, "", nil); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if code, body := e.call(m, "/api/v1/policies/default", e.admin, "", nil); code != 404 {
			t.Errorf("%s of a deleted policy: %d %s", m, code, body)
		}
	}
	e.adminJSON("GET", "/api/v1/policies", nil, &list)
	if len(list) != 1 || list[0].Name != "production" {
		t.Errorf("list after delete: %+v", list)
	}
}

// adminID is the ID part of an admin token pla_ID_SECRET.
func adminID(tok string) string {
	id, _, _ := splitCredential(tok, api.AdminTokenPrefix)
	return id
}
