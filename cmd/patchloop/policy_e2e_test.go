package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/server"
	"github.com/patchloop/patchloop/internal/store"
)

// The policy, findings and feeds commands of the real binary against a
// real server (SQLite) over TLS on loopback.
func TestPolicyFindingsCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(ctx, server.Config{Store: st, Engine: central.New(central.Config{CacheDir: filepath.Join(dir, "cache"), Offline: true})})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.CreateAdminToken(ctx, "cli")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	if ts.TLS, err = srv.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	ts.StartTLS()
	defer ts.Close()
	conn := []string{"--server", ts.URL, "--token", tok, "--ca-fingerprint", pki.Fingerprint(srv.CA().Cert)}
	run := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(binary, append(args, conn...)...).CombinedOutput()
		return string(out), err
	}
	pol := "../../docs/policies/"
	out, err := run("policy", "apply", "-f", pol+"90-default.yaml", "-f", pol+"10-production.yaml", "--format", "json")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	var puts []api.PolicyPut
	if err := json.Unmarshal([]byte(out), &puts); err != nil || len(puts) != 2 || puts[0].Name != "default" || puts[0].Priority != 90 ||
		puts[1].Priority != 10 || !puts[1].Changed || puts[1].Version != 1 {
		t.Fatalf("apply: %v %s", err, out)
	}
	// Local validation names the operator's file; nothing is sent.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nhosts: {all: true}\nrules:\n  - name: a\n    colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run("policy", "apply", "-f", bad); err == nil || !strings.Contains(out, bad+`:5: unknown field "colour"`) {
		t.Errorf("apply of an invalid file: %v\n%s", err, out)
	}
	if out, err := run("policy", "validate", bad); err == nil || !strings.Contains(out, bad+":5:") {
		t.Errorf("validate of an invalid file: %v\n%s", err, out)
	}
	out, err = run("policy", "list")
	if err != nil || !strings.Contains(out, "production  10") || strings.Index(out, "production") > strings.Index(out, "default") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if out, err := run("policy", "show", "production"); err != nil || !strings.Contains(out, "name: production\n") || !strings.Contains(out, "by cli (") {
		t.Errorf("show: %v\n%s", err, out)
	}
	if out, err := run("policy", "delete", "default"); err != nil {
		t.Errorf("delete: %v\n%s", err, out)
	}
	var list []api.Policy
	if out, err := run("policy", "list", "--format", "json"); err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Errorf("list after delete: %v\n%s", err, out)
	}
	// Findings: the server's validation reaches the operator.
	var f api.Findings
	if out, err := run("findings", "--kev", "--overdue", "--format", "json"); err != nil || json.Unmarshal([]byte(out), &f) != nil || len(f.Hosts) != 0 {
		t.Errorf("findings: %v\n%s", err, out)
	}
	if out, err := run("findings", "--cve", "log4shell"); err == nil || !strings.Contains(out, `400 Bad Request: cve "log4shell"`) {
		t.Errorf("findings --cve log4shell: %v\n%s", err, out)
	}
	if out, err := run("feeds", "--format", "json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("feeds without any: %v\n%s", err, out)
	}
}
