package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/rollout"
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

func TestWriteRollout(t *testing.T) {
	exit := 0
	done := time.Date(2026, 11, 25, 10, 5, 0, 0, time.UTC)
	r := api.Rollout{ID: "r1", Name: "nov", Status: "halted", Reason: "ring prod: 1 of 3 hosts failed", SetHash: "ab12",
		Hosts: map[string]int{"succeeded": 1, "failed": 1, "pending": 1},
		Rings: []api.RolloutRing{
			{RingState: rollout.RingState{Name: "test", Hosts: 1, Started: done.Add(-time.Hour), Done: done, Promoted: done.Add(time.Hour)},
				Members: []api.RolloutHost{{ID: "h1", Hostname: "web1", Phase: "succeeded", Jobs: []api.RolloutJob{{Kind: "install", State: "done",
					Result: "succeeded", Status: "ok", Duration: 4200, ExitCode: &exit,
					Packages: []apply.PackageResult{{Package: "jq", Before: "1.6-2.1", Now: "1.6-2.1+deb12u1"}}}}}}},
			{RingState: rollout.RingState{Name: "prod", Hosts: 2, Failed: 1, Started: done.Add(time.Hour)},
				Members: []api.RolloutHost{
					{ID: "h2", Hostname: "db1", Phase: "failed", Jobs: []api.RolloutJob{{Kind: "install", State: "done", Result: "failed", Status: "failed",
						Error: "apt-get install: exit status 100\nmore"}}},
					{ID: "h3", Phase: "pending", PinCount: 1, Pins: []apply.Pin{{Package: "jq", Version: "1.6-2.1+deb12u1"}}}}},
		}}
	var b strings.Builder
	if err := writeRollout(&b, r); err != nil {
		t.Fatal(err)
	}
	// Columns are aligned with spaces; compare with runs of them as one.
	out := strings.Join(strings.Fields(strings.ReplaceAll(b.String(), "\n", " | ")), " ")
	for _, want := range []string{
		"status halted | reason ring prod: 1 of 3 hosts failed | patch set ab12 | hosts 1 failed, 1 pending, 1 succeeded",
		"ring test 1 hosts, 0 failed (budget 0), 0 waves, promoted 2026-11-25T11:05:00Z",
		"ring prod 2 hosts, 1 failed (budget 0), 0 waves, started 2026-11-25T11:05:00Z",
		"RING HOST PHASE JOB STATE RESULT DURATION EXIT PACKAGES NOTE",
		"test web1 succeeded install done succeeded 4.2s 0 jq 1.6-2.1→1.6-2.1+deb12u1 |",
		"prod db1 failed install done failed apt-get install: exit status 100 |", // the error's first line only
		"prod h3 pending 1 pins |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
