package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/patchloop/patchloop/internal/health"
)

// DefaultConfigFile is where the agent reads its local configuration.
const DefaultConfigFile = "/etc/patchloop/agent.yaml"

// LocalConfig is what the machine's administrator allows the agent to do
// and how it checks the machine after an install. It is read from a
// local file only: the server can neither set nor widen it. The zero
// value (no file) allows no reboot and no commands, and checks only
// dpkg --audit.
//
//	allow_reboot: true
//	allow_commands: true
//	never_restart: [ssh.service]
//	health:
//	  units: [nginx.service]
//	  http: [{url: "http://127.0.0.1/healthz", status: 200, timeout: 5s}]
//	  tcp: [{address: "127.0.0.1:5432"}]
//	  commands: [{name: selftest, argv: [/usr/local/bin/selftest], timeout: 30s}]
type LocalConfig struct {
	// AllowReboot lets reboot jobs reboot the machine.
	AllowReboot bool `yaml:"allow_reboot"`
	// AllowCommands lets health.commands run.
	AllowCommands bool `yaml:"allow_commands"`
	// NeverRestart are units restart-services jobs leave alone.
	NeverRestart []string      `yaml:"never_restart"`
	Health       health.Checks `yaml:"health"`
}

// LoadLocalConfig reads the configuration at path; a missing file is the
// zero LocalConfig. Unknown keys, bad values and a second document are
// errors naming the file.
func LoadLocalConfig(path string) (LocalConfig, error) {
	var c LocalConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	c, err = ParseLocalConfig(data)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseLocalConfig parses a configuration file's contents (YAML, of
// which JSON is a subset).
func ParseLocalConfig(data []byte) (LocalConfig, error) {
	var c LocalConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return c, errors.New("more than one YAML document")
	}
	if err := c.Health.Validate(); err != nil {
		return c, err
	}
	for i, u := range c.NeverRestart {
		if !health.ValidUnit(u) {
			return c, fmt.Errorf("never_restart[%d]: %q is not a unit name", i, u)
		}
	}
	return c, nil
}
