package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/lab"
)

// The fleet lab test runs the real server on the test machine and the
// real agent in three real Debian 12 endpoints (debootstrap minbase,
// overlay copies), each chrooted in its own network namespace that reaches
// only the server. It needs root, debootstrap and Debian's mirror, so it
// runs only with PATCHLOOP_LAB=1 (.ci/run sets it).

const labInterval = 2 * time.Second

// fleetServer is the real server process.
type fleetServer struct {
	t       *testing.T
	args    []string
	dataDir string
	url     string
	cmd     *exec.Cmd
	log     *os.File
}

func (s *fleetServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(binary, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.url, "https://")
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("server did not listen on %s:\n%s", addr, s.logText())
}

// kill stops the server as a crash would: SIGKILL, no shutdown.
func (s *fleetServer) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *fleetServer) logText() string {
	data, _ := os.ReadFile(s.log.Name())
	return string(data)
}

// cli runs a client command against the server and decodes its JSON.
func (s *fleetServer) cli(out any, args ...string) {
	s.t.Helper()
	args = append(args, "--server", s.url, "--data-dir", s.dataDir, "--format", "json")
	data, err := exec.Command(binary, args...).Output()
	if err != nil {
		s.t.Fatalf("patchloop %s: %v: %s", strings.Join(args, " "), err, stderrOf(err))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("patchloop %s: %v in %s", strings.Join(args, " "), err, data)
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func TestFleetLab(t *testing.T) {
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("lab test: set PATCHLOOP_LAB=1 (needs root, debootstrap and the Debian mirror)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := lab.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	base, err := lab.EnsureBase(ctx, lab.DefaultCacheDir(), "bookworm", "amd64", lab.DefaultMirror)
	if err != nil {
		t.Fatal(err)
	}
	// Three endpoints: plain, one with a package held, one pinning libc
	// to the release version.
	fleet, err := lab.NewFleet(ctx, base, t.TempDir(), "fleet", lab.FleetOptions{Hosts: 3, Binary: binary,
		Prepare: func(ctx context.Context, i int, h *lab.Host) error {
			switch i {
			case 1:
				_, err := h.Run(ctx, "apt-mark", "hold", "tzdata")
				return err
			case 2:
				return h.WriteFile("/etc/apt/preferences.d/pin", "Package: libc6 libc-bin\nPin: release n=bookworm\nPin-Priority: 1001\n")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	network := fleet.Net

	// The server mirrors Debian with the test machine's archive keyring.
	dir := t.TempDir()
	sources := filepath.Join(dir, "debian.sources")
	must(t, os.WriteFile(sources, []byte(lab.DebianSources), 0o644))
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	listen := net.JoinHostPort(network.Addr(), "18443")
	srv := &fleetServer{t: t, dataDir: filepath.Join(dir, "data"), url: "https://" + listen, log: logFile}
	srv.args = []string{"server", "--listen", listen, "--data-dir", srv.dataDir, "--sources", sources,
		"--interval", labInterval.String(), "--refresh", "1h", "--log-level", "info"}
	srv.start()
	t.Cleanup(srv.kill)
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.logText())
			for _, h := range fleet.Hosts {
				if h.Agent != nil {
					t.Logf("agent log of %s:\n%s", h.Name, h.Agent.Log())
				}
			}
		}
	}()
	var tok api.EnrollToken
	srv.cli(&tok, "tokens", "create", "--max-uses", "3", "--expires-in", "1h")
	if err := fleet.Enroll(ctx, srv.url, tok.CAFingerprint, tok.Token, "--max-backoff", "3s"); err != nil {
		t.Fatal(err)
	}
	eps := fleet.Hosts
	// The endpoints cannot reach the mirror, only the server.
	if out, err := eps[0].Host.Run(ctx, "apt-get", "update", "-q", "-o", "Acquire::Retries=0", "-o", "Acquire::http::Timeout=3"); err == nil && !strings.Contains(out, "Err:") {
		t.Errorf("an endpoint reached the mirror:\n%s", out)
	}
	// A fourth enrollment is over the token's limit.
	extra, err := lab.NewHost(base, t.TempDir(), "fleet-extra")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { extra.Close() })
	copyFile(t, binary, filepath.Join(extra.Root, lab.AgentPath))
	must(t, extra.WriteFile("/etc/machine-id", randomHex(16)+"\n"))
	if err := network.Attach(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if out, err := extra.Run(ctx, lab.AgentPath, "agent", "enroll", "--server", srv.url, "--ca-fingerprint", tok.CAFingerprint, "--token", tok.Token); err == nil || !strings.Contains(out, "used") {
		t.Errorf("fourth enrollment with a 3-use token: %v\n%s", err, out)
	}

	waitFor(t, "every host's updates", 3*time.Minute, func() bool { return len(computed(srv)) == 3 })
	for _, ep := range eps {
		compareWithAptIn(t, srv, ep)
	}

	// A scan job queued, then the server killed and restarted: no host,
	// result or job is lost, and the job completes on every host.
	var job api.JobStatus
	srv.cli(&job, "jobs", "scan")
	srv.kill()
	time.Sleep(2 * labInterval)
	srv.start()
	waitFor(t, "the scan job done on every host", 2*time.Minute, func() bool {
		srv.cli(&job, "jobs", "show", job.ID)
		done := 0
		for _, h := range job.Hosts {
			if h.State == "done" && h.Status == "ok" {
				done++
			}
		}
		return done == 3
	})
	if got := computed(srv); len(got) != 3 {
		t.Fatalf("after the restart, %d hosts have results", len(got))
	}

	// Cutting one endpoint's link makes it stale; it recovers with the link.
	must(t, eps[0].Host.LinkDown(ctx))
	waitFor(t, eps[0].Host.Name+" stale", time.Minute, func() bool { return hostByID(srv, eps[0].ID).Stale })
	for _, ep := range eps[1:] {
		if hostByID(srv, ep.ID).Stale {
			t.Errorf("%s stale while only %s was cut off", ep.Host.Name, eps[0].Host.Name)
		}
	}
	must(t, eps[0].Host.LinkUp(ctx))
	waitFor(t, eps[0].Host.Name+" back", time.Minute, func() bool { return !hostByID(srv, eps[0].ID).Stale })

	// A revoked host's credential is refused at once.
	srv.cli(nil, "hosts", "revoke", eps[2].ID)
	if out, err := eps[2].Host.Run(ctx, lab.AgentPath, "agent", "run", "--once"); err == nil || !strings.Contains(out, "revoked") {
		t.Errorf("check-in of a revoked host: %v\n%s", err, out)
	}
	// A forged credential (right host, wrong secret) is refused.
	stateFile := filepath.Join(eps[1].Host.Root, "var/lib/patchloop-agent/state.json")
	data, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]string
	must(t, json.Unmarshal(data, &st))
	st["credential"] = st["credential"][:len(st["credential"])-6] + "AAAAAA"
	forged, _ := json.Marshal(st)
	must(t, os.MkdirAll(filepath.Join(eps[1].Host.Root, "tmp/forged"), 0o700))
	must(t, os.WriteFile(filepath.Join(eps[1].Host.Root, "tmp/forged/state.json"), forged, 0o600))
	if out, err := eps[1].Host.Run(ctx, lab.AgentPath, "agent", "run", "--once", "--state-dir", "/tmp/forged"); err == nil || !strings.Contains(out, "wrong host credential") {
		t.Errorf("check-in with a forged credential: %v\n%s", err, out)
	}
}

// computed returns the hosts whose updates the server has computed.
func computed(srv *fleetServer) map[string]api.HostUpdates {
	var all []api.HostUpdates
	srv.cli(&all, "updates", "list")
	out := map[string]api.HostUpdates{}
	for _, h := range all {
		if h.ComputedAt != nil {
			out[h.HostID] = h
		}
	}
	return out
}

func hostByID(srv *fleetServer, id string) api.Host {
	var h api.Host
	srv.cli(&h, "hosts", "show", id)
	return h
}

// compareWithAptIn checks the server's list for ep against `apt list
// --upgradable` run inside the endpoint, entry for entry.
func compareWithAptIn(t *testing.T, srv *fleetServer, ep *lab.FleetHost) {
	t.Helper()
	h := computed(srv)[ep.ID]
	if h.Error != "" {
		t.Fatalf("%s: server could not compute: %s", ep.Host.Name, h.Error)
	}
	var ups []detect.Update
	must(t, json.Unmarshal(h.Updates, &ups))
	var got []string
	for _, u := range ups {
		got = append(got, fmt.Sprintf("%s %s %s %s", u.Package, u.Arch, u.Installed, u.Candidate))
	}
	out, err := ep.Host.Run(context.Background(), "apt", "list", "--upgradable")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(out, "\n") {
		// name/suite[,suite] candidate arch [upgradable from: installed]
		f := strings.Fields(line)
		if len(f) != 6 || !strings.Contains(f[0], "/") {
			continue
		}
		name, _, _ := strings.Cut(f[0], "/")
		want = append(want, fmt.Sprintf("%s %s %s %s", name, f[2], strings.TrimSuffix(f[5], "]"), f[1]))
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(want) == 0 {
		t.Fatalf("%s: apt lists no updates; the lab base should miss some:\n%s", ep.Host.Name, out)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: server and apt differ\nserver:\n%s\napt:\n%s", ep.Host.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("%s: %d updates, equal to apt list --upgradable", ep.Host.Name, len(got))
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	must(t, os.MkdirAll(filepath.Dir(to), 0o755))
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	must(t, out.Close())
}
