package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseLocalConfig(t *testing.T) {
	c, err := ParseLocalConfig([]byte(`
allow_reboot: true
allow_commands: true
never_restart: [ssh.service]
health:
  units: [nginx.service, postgresql@15-main.service]
  http:
    - {url: "http://127.0.0.1:8080/healthz", status: 204, timeout: 3s}
  tcp:
    - address: "127.0.0.1:5432"
  commands:
    - {name: selftest, argv: [/usr/local/bin/selftest, --quick], timeout: 30s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowReboot || !c.AllowCommands || len(c.NeverRestart) != 1 || len(c.Health.Units) != 2 ||
		c.Health.HTTP[0].Status != 204 || c.Health.HTTP[0].Timeout != 3*time.Second ||
		c.Health.TCP[0].Address != "127.0.0.1:5432" || c.Health.Commands[0].Timeout != 30*time.Second ||
		strings.Join(c.Health.Commands[0].Argv, " ") != "/usr/local/bin/selftest --quick" {
		t.Errorf("parsed %+v", c)
	}
	// JSON is YAML.
	j, err := ParseLocalConfig([]byte(`{"allow_reboot": true, "health": {"tcp": [{"address": "[::1]:22"}]}}`))
	if err != nil || !j.AllowReboot || j.Health.TCP[0].Address != "[::1]:22" {
		t.Errorf("JSON: %+v, %v", j, err)
	}
	empty, err := ParseLocalConfig(nil)
	if err != nil || empty.AllowReboot || empty.AllowCommands {
		t.Errorf("empty file: %+v, %v", empty, err)
	}
	for _, tc := range []struct{ yaml, err string }{
		{"allow_reboots: true", "allow_reboots"},
		{"health: {unit: [a.service]}", "unit"},
		{"allow_reboot: yes please", "into bool"},
		{"health: {units: [nginx]}", "units[0]"},
		{"health: {http: [{url: 'file:///etc/passwd'}]}", "http[0]"},
		{"health: {tcp: [{address: localhost}]}", "tcp[0]"},
		{"health: {commands: [{name: x, argv: [sh, -c, 'true']}]}", "absolute"},
		{"health: {http: [{url: 'http://x/', timeout: soon}]}", "soon"},
		{"never_restart: ['a;b']", "never_restart[0]"},
		{"allow_reboot: true\n---\nallow_reboot: false\n", "more than one"},
	} {
		if _, err := ParseLocalConfig([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.err)
		}
	}
}

func TestLoadLocalConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadLocalConfig(filepath.Join(dir, "absent.yaml"))
	if err != nil || c.AllowReboot || c.AllowCommands || len(c.Health.Units) != 0 {
		t.Errorf("missing file: %+v, %v", c, err)
	}
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte("allow_reboot: maybe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLocalConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("bad file: %v", err)
	}
}
