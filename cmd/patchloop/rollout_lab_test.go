package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/lab"
)

// TestRolloutLab runs a rollout end to end: the real server, five real
// Debian 12 endpoints in two rings (ring=test ×2, ring=prod ×3) with real
// agents, a baseline approving two security updates the base misses. The
// rollout freezes them, plans them on every host, installs them in ring
// test, soaks, promotes, installs them in ring prod; afterwards apt lists
// them no more and dpkg shows exactly the set's versions on every host;
// then `patchloop rollback --rollout` puts the previous versions back.
// The endpoints reach only the server: the .debs the installs need are
// put in apt's cache beforehand, as a local mirror would serve them.
func TestRolloutLab(t *testing.T) {
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("lab test: set PATCHLOOP_LAB=1 (needs root, debootstrap and the Debian mirror)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	must(t, lab.Sweep(ctx))
	base, err := lab.EnsureBase(ctx, lab.DefaultCacheDir(), "bookworm", "amd64", lab.DefaultMirror)
	if err != nil {
		t.Fatal(err)
	}
	rings := []string{"test", "test", "prod", "prod", "prod"}
	fleet, err := lab.NewFleet(ctx, base, t.TempDir(), "roll", lab.FleetOptions{Hosts: len(rings), Binary: binary,
		Prepare: func(ctx context.Context, i int, h *lab.Host) error {
			if err := h.WriteFile("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n"); err != nil { // no services start in a chroot
				return err
			}
			return os.Chmod(filepath.Join(h.Root, "usr/sbin/policy-rc.d"), 0o755)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	eps := fleet.Hosts

	// Two library security updates the base misses; their .debs (and
	// those of what they pull in) go into every endpoint's apt cache.
	pins, old := labSecurityUpdates(t, eps[0].Host)
	t.Logf("security updates: %v (installed %v)", pins, old)
	var args []string
	for _, p := range pins {
		args = append(args, p)
	}
	for _, ep := range eps {
		if out, err := ep.Host.RunHostNet(ctx, append([]string{"apt-get", "install", "-q", "-y", "--download-only", "--no-install-recommends"}, args...)...); err != nil {
			t.Fatalf("download into %s: %v\n%s", ep.Host.Name, err, out)
		}
	}

	dir := t.TempDir()
	sources := filepath.Join(dir, "debian.sources")
	must(t, os.WriteFile(sources, []byte(lab.DebianSources), 0o644))
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	listen := net.JoinHostPort(fleet.Net.Addr(), "18444")
	srv := &fleetServer{t: t, dataDir: filepath.Join(dir, "data"), url: "https://" + listen, log: logFile}
	srv.args = []string{"server", "--listen", listen, "--data-dir", srv.dataDir, "--sources", sources,
		"--interval", labInterval.String(), "--refresh", "1h", "--rollout-tick", "1s", "--log-level", "info"}
	srv.start()
	t.Cleanup(srv.kill)
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.logText())
			for _, h := range eps {
				if h.Agent != nil {
					t.Logf("agent log of %s:\n%s", h.Name, h.Agent.Log())
				}
			}
		}
	}()
	// One token per ring: the ring is a label the token gives.
	toks := map[string]api.EnrollToken{}
	for _, ring := range []string{"test", "prod"} {
		var tok api.EnrollToken
		srv.cli(&tok, "tokens", "create", "--max-uses", "3", "--expires-in", "1h", "--label", "ring="+ring)
		toks[ring] = tok
	}
	for i, ep := range eps {
		tok := toks[rings[i]]
		out, err := ep.Host.Run(ctx, lab.AgentPath, "agent", "enroll", "--server", srv.url, "--ca-fingerprint", tok.CAFingerprint, "--token", tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		id, ok := strings.CutPrefix(strings.TrimSpace(out), "enrolled as host ")
		if !ok {
			t.Fatalf("enroll %s: %q", ep.Host.Name, out)
		}
		ep.ID = id
		if ep.Agent, err = ep.Host.Start(ctx, nil, lab.AgentPath, "agent", "run", "--max-backoff", "3s"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every host's updates", 3*time.Minute, func() bool { return len(computed(srv)) == len(eps) })

	// The baseline approves exactly the two updates.
	var pol strings.Builder
	pol.WriteString("name: lab\nhosts:\n  all: true\napprove:\n")
	for _, p := range pins {
		name, _, _ := strings.Cut(p, "=")
		fmt.Fprintf(&pol, "  - {package: %s}\n", name)
	}
	polFile := filepath.Join(dir, "10-lab.yaml")
	must(t, os.WriteFile(polFile, []byte(pol.String()), 0o644))
	srv.cli(nil, "policy", "apply", "-f", polFile)

	spec := filepath.Join(dir, "rollout.yaml")
	must(t, os.WriteFile(spec, []byte(`name: lab security
rings:
  - name: test
    hosts: {match_labels: {ring: test}}
    concurrency: {count: 1}
    soak: 5s
  - name: prod
    hosts: {match_labels: {ring: prod}}
    concurrency: {percent: 50}
options:
  reboot: never
  job_timeout: 15m
`), 0o644))
	var r api.Rollout
	srv.cli(&r, "rollout", "create", "-f", spec)
	var frozen []string
	for _, ts := range r.PatchSet.Targets {
		for _, p := range ts.Pins {
			frozen = append(frozen, p.Package+"="+p.Version)
		}
	}
	if slices.Sort(frozen); !slices.Equal(frozen, pins) {
		t.Fatalf("frozen set %v, want the approved %v (left: %+v)", frozen, pins, r.PatchSet.Left)
	}
	var created api.Rollout // create answers the summary; status has the hosts
	srv.cli(&created, "rollout", "status", r.ID)
	members := 0
	for _, ring := range created.Rings {
		for _, h := range ring.Members {
			members++
			if len(h.Pins) != len(pins) || h.PinCount != len(pins) {
				t.Errorf("%s in ring %s has pins %v", h.Hostname, ring.Name, h.Pins)
			}
		}
	}
	if r.Rings[0].Hosts != 2 || r.Rings[1].Hosts != 3 || members != 5 {
		t.Fatalf("rings: %+v", r.Rings)
	}

	// The plan: apt's simulation on every host, none refused.
	var plan api.RolloutPlan
	srv.cli(&plan, "rollout", "plan", r.ID, "--wait", "2m")
	if !plan.Complete || len(plan.Hosts) != len(eps) {
		t.Fatalf("plan: %+v", plan)
	}
	for _, h := range plan.Hosts {
		if h.Plan == nil || h.Refused != "" || h.Error != "" || len(h.Plan.Changes) < len(pins) {
			t.Errorf("plan of %s: %+v", h.Hostname, h)
		}
	}

	srv.cli(&r, "rollout", "start", r.ID)
	waitFor(t, "the rollout completed", 10*time.Minute, func() bool {
		srv.cli(&r, "rollout", "status", r.ID)
		if r.Status == "halted" || r.Status == "cancelled" {
			t.Fatalf("rollout %s: %s", r.Status, r.Reason)
		}
		return r.Status == "completed"
	})
	test, prod := r.Rings[0], r.Rings[1]
	if soak := test.Promoted.Sub(test.Done); soak < 5*time.Second || !prod.Started.Equal(test.Promoted) {
		t.Errorf("ring test done %s, promoted %s (soak %s); prod started %s", test.Done, test.Promoted, soak, prod.Started)
	}
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			if h.Phase != "succeeded" || len(h.Jobs) < 1 {
				t.Errorf("%s: %s %+v", h.Hostname, h.Phase, h.Jobs)
				continue
			}
			for _, j := range h.Jobs {
				if j.Kind == "install" && (j.Status != "ok" || j.ExitCode == nil || *j.ExitCode != 0 || j.Duration <= 0 || j.Finished.Before(ring.Started)) {
					t.Errorf("%s install: %+v", h.Hostname, j)
				}
			}
		}
	}
	// Every host: the set's versions, and apt lists them no more.
	for _, ep := range eps {
		upgradable, err := ep.Host.Run(ctx, "apt", "list", "--upgradable")
		must(t, err)
		for _, p := range pins {
			name, version, _ := strings.Cut(p, "=")
			if got := labDpkgShows(t, ep.Host, name); got != version+" ii" {
				t.Errorf("%s: dpkg-query shows %s %q, want %s", ep.Host.Name, name, got, version)
			}
			if strings.Contains(upgradable, "\n"+name+"/") {
				t.Errorf("%s: apt still lists %s as upgradable", ep.Host.Name, name)
			}
		}
	}

	// Rolling back the whole rollout puts the previous versions back.
	var back api.RolloutRollback
	srv.cli(&back, "rollback", "--rollout", r.ID, "--reason", "lab test")
	if len(back.Queued) != len(eps) || len(back.Skipped) != 0 {
		t.Fatalf("rollback: %+v", back)
	}
	waitFor(t, "every host rolled back", 5*time.Minute, func() bool {
		srv.cli(&r, "rollout", "status", r.ID)
		done := 0
		for _, ring := range r.Rings {
			for _, h := range ring.Members {
				for _, j := range h.Jobs {
					if j.Kind == "manual-rollback" && j.State == "done" {
						if j.Status != "ok" {
							t.Fatalf("rollback of %s: %+v", h.Hostname, j)
						}
						done++
					}
				}
			}
		}
		return done == len(eps)
	})
	for _, ep := range eps {
		for _, p := range pins {
			name, _, _ := strings.Cut(p, "=")
			if got := labDpkgShows(t, ep.Host, name); got != old[name]+" ii" {
				t.Errorf("%s after rollback: dpkg-query shows %s %q, want %s", ep.Host.Name, name, got, old[name])
			}
		}
	}
	var audit []string
	for _, a := range r.Audit {
		audit = append(audit, a.What)
	}
	for _, w := range []string{"create", "plan", "start", "promote", "complete", "rollback"} {
		if !slices.Contains(audit, w) {
			t.Errorf("audit lacks %q: %v", w, audit)
		}
	}
}

// labSecurityUpdates picks two library security updates the base misses
// (as "name=version", sorted) and their installed versions.
func labSecurityUpdates(t *testing.T, h *lab.Host) ([]string, map[string]string) {
	t.Helper()
	out, err := h.Run(context.Background(), "apt", "list", "--upgradable")
	must(t, err)
	re := regexp.MustCompile(`^([^/]+)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$`)
	var pins []string
	old := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := re.FindStringSubmatch(line)
		if f == nil || !strings.Contains(f[2], "security") || !strings.HasPrefix(f[1], "lib") || f[4] != "amd64" ||
			strings.HasPrefix(f[1], "libpam") || strings.HasPrefix(f[1], "libapt") || strings.HasPrefix(f[1], "libc6") {
			continue
		}
		pins = append(pins, f[1]+"="+f[3])
		old[f[1]] = f[5]
	}
	slices.Sort(pins)
	if len(pins) < 2 {
		t.Fatalf("a bookworm minbase should miss at least two library security updates; found %v", pins)
	}
	return pins[:2], old
}

func labDpkgShows(t *testing.T, h *lab.Host, name string) string {
	t.Helper()
	out, _ := h.Run(context.Background(), "dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", name)
	return strings.TrimSpace(out)
}
