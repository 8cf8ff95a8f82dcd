package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
)

func TestRingAndLimitFlags(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"test:ring=test", `{"name":"test","hosts":{"match_labels":{"ring":"test"}},"concurrency":{},"failure_budget":{}}`, ""},
		{"prod:env=prod,role=web", `{"name":"prod","hosts":{"match_labels":{"env":"prod","role":"web"}},"concurrency":{},"failure_budget":{}}`, ""},
		{"all:all", `{"name":"all","hosts":{"all":true},"concurrency":{},"failure_budget":{}}`, ""},
		{"test", "", "want NAME:"},
		{"test:ring", "", "not KEY=VALUE"},
		{":ring=test", "", "want NAME:"},
	} {
		r, err := ringFlag(tc.in)
		got, _ := json.Marshal(r)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ringFlag(%q) = %s, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("ringFlag(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for in, want := range map[string]string{"3": "3", "25%": "25%", "0": "0", "x": "error", "-1": "error", "%": "error"} {
		l, err := limitFlag("concurrency", in)
		got := l.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("limitFlag(%q) = %s (%v), want %s", in, got, err, want)
		}
	}
}

func TestReadSpec(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	must(t, os.WriteFile(spec, []byte("name: nov\nupdates: security\nrings:\n  - name: test\n    hosts: {match_labels: {ring: test}}\n    concurrency: {percent: 25}\n    soak: 90m\noptions: {reboot: never, allow_removals: true}\n"), 0o644))
	raw, err := readSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	// What the server decodes, strictly.
	var req api.CreateRolloutRequest
	if err := api.Decode(strings.NewReader(string(raw)), api.MaxBody, &req); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if req.Name != "nov" || req.Updates != "security" || len(req.Rings) != 1 || req.Rings[0].Concurrency.Percent != 25 ||
		time.Duration(req.Rings[0].Soak) != 90*time.Minute || req.Options.Reboot != "never" || !req.Options.AllowRemovals {
		t.Errorf("decoded %+v from %s", req, raw)
	}
	must(t, os.WriteFile(spec, []byte("- just\n- a list\n"), 0o644))
	if _, err := readSpec(spec); err == nil || !strings.Contains(err.Error(), "mapping") {
		t.Errorf("a list as spec: %v", err)
	}
	must(t, os.WriteFile(spec, []byte("rings: [\n"), 0o644))
	if _, err := readSpec(spec); err == nil || !strings.Contains(err.Error(), "spec.yaml") {
		t.Errorf("bad YAML: %v", err)
	}
}
