package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DebianSources is a deb822 sources file for Debian 12 with main,
// updates, backports and security, signed by Debian's archive keyring.
const DebianSources = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

// AgentPath is where NewFleet puts the agent binary inside each host.
const AgentPath = "/usr/local/bin/patchloop"

// FleetOptions describe the endpoints of a fleet.
type FleetOptions struct {
	Hosts   int
	Binary  string // the patchloop binary, copied into every host
	Sources string // deb822 sources for every host; "" DebianSources
	// Prepare, when set, changes host i before it is attached (pins,
	// holds, packages).
	Prepare func(ctx context.Context, i int, h *Host) error
}

// Fleet is a network with endpoints on it, each a real Debian system
// with the patchloop binary, its own machine-id and hostname, and apt
// lists fetched from the mirror before it was cut off from everything but
// the network's address.
type Fleet struct {
	Net   *Network
	Hosts []*FleetHost
}

// FleetHost is one endpoint and, once enrolled, its agent.
type FleetHost struct {
	*Host
	ID    string   // host ID given by the server at enrollment
	Agent *Process // the running agent
}

// NewFleet builds the endpoints under dir (one subdirectory each). The
// first host runs apt-get update with the machine's network; the others
// get a copy of its lists (same sources). Close removes everything.
func NewFleet(ctx context.Context, base *Base, dir, name string, o FleetOptions) (f *Fleet, err error) {
	if o.Sources == "" {
		o.Sources = DebianSources
	}
	f = &Fleet{}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.Net, err = NewNetwork(ctx, name); err != nil {
		return nil, err
	}
	for i := 0; i < o.Hosts; i++ {
		hdir := filepath.Join(dir, fmt.Sprintf("host%d", i))
		if err := os.MkdirAll(hdir, 0o755); err != nil {
			return nil, err
		}
		h, err := NewHost(base, hdir, fmt.Sprintf("%s%d", name, i))
		if err != nil {
			return nil, err
		}
		f.Hosts = append(f.Hosts, &FleetHost{Host: h})
		if err := f.prepare(ctx, i, h, o); err != nil {
			return nil, err
		}
		if err := f.Net.Attach(ctx, h); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *Fleet) prepare(ctx context.Context, i int, h *Host, o FleetOptions) error {
	id := make([]byte, 16)
	rand.Read(id)
	files := map[string]string{
		"/etc/machine-id":                        hex.EncodeToString(id) + "\n",
		"/etc/hostname":                          h.Name + "\n",
		"/etc/apt/sources.list":                  "",
		"/etc/apt/sources.list.d/debian.sources": o.Sources,
	}
	for path, content := range files {
		if err := h.WriteFile(path, content); err != nil {
			return err
		}
	}
	if o.Prepare != nil {
		if err := o.Prepare(ctx, i, h); err != nil {
			return fmt.Errorf("lab: prepare %s: %w", h.Name, err)
		}
	}
	if i == 0 {
		if _, err := h.RunHostNet(ctx, "apt-get", "update", "-q"); err != nil {
			return err
		}
	} else {
		lists := "var/lib/apt/lists"
		if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(f.Hosts[0].Root, lists)+"/.", filepath.Join(h.Root, lists)).CombinedOutput(); err != nil {
			return fmt.Errorf("lab: copy apt lists to %s: %v: %s", h.Name, err, out)
		}
	}
	return copyFile(o.Binary, filepath.Join(h.Root, AgentPath), 0o755)
}

// Enroll enrolls every host's agent with the server and starts it with
// agentArgs added to `patchloop agent run`.
func (f *Fleet) Enroll(ctx context.Context, serverURL, caFingerprint, token string, agentArgs ...string) error {
	for _, h := range f.Hosts {
		out, err := h.Run(ctx, AgentPath, "agent", "enroll", "--server", serverURL, "--ca-fingerprint", caFingerprint, "--token", token)
		if err != nil {
			return err
		}
		id, ok := strings.CutPrefix(strings.TrimSpace(out), "enrolled as host ")
		if !ok {
			return fmt.Errorf("lab: enroll %s: unexpected output %q", h.Name, out)
		}
		h.ID = id
		if h.Agent, err = h.Start(ctx, nil, append([]string{AgentPath, "agent", "run"}, agentArgs...)...); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the agents and removes the hosts and the network.
func (f *Fleet) Close() error {
	var errs []error
	for _, h := range f.Hosts {
		errs = append(errs, h.Close())
	}
	if f.Net != nil {
		errs = append(errs, f.Net.Close())
	}
	return errors.Join(errs...)
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
