package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/lab"
)

// rolloutLab is a fleet of real endpoints with running agents enrolled in
// a real server, every host's updates computed, and a baseline approving
// exactly two library security updates whose .debs are in every host's
// apt cache (as in TestRolloutLab).
type rolloutLab struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	srv  *fleetServer
	eps  []*lab.FleetHost
	pins []string          // "name=version", sorted
	old  map[string]string // name → version installed before
}

// newRolloutLab builds the lab: fleet name (distinct from other lab
// tests'), one host per entry of rings (its ring label), prepare run on
// each host before it is attached, the server on port.
func newRolloutLab(t *testing.T, ctx context.Context, name string, rings []string, port string, prepare func(i int, h *lab.Host) error) *rolloutLab {
	t.Helper()
	must(t, lab.Sweep(ctx))
	base, err := lab.EnsureBase(ctx, lab.DefaultCacheDir(), "bookworm", "amd64", lab.DefaultMirror)
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := lab.NewFleet(ctx, base, t.TempDir(), name, lab.FleetOptions{Hosts: len(rings), Binary: binary,
		Prepare: func(ctx context.Context, i int, h *lab.Host) error {
			if err := h.WriteFile("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n"); err != nil { // no services start in a chroot
				return err
			}
			if err := os.Chmod(filepath.Join(h.Root, "usr/sbin/policy-rc.d"), 0o755); err != nil {
				return err
			}
			if prepare != nil {
				return prepare(i, h)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	l := &rolloutLab{t: t, ctx: ctx, dir: t.TempDir(), eps: fleet.Hosts}
	l.pins, l.old = labSecurityUpdates(t, l.eps[0].Host)
	t.Logf("security updates: %v (installed %v)", l.pins, l.old)
	for _, ep := range l.eps {
		if out, err := ep.Host.RunHostNet(ctx, append([]string{"apt-get", "install", "-q", "-y", "--download-only", "--no-install-recommends"}, l.pins...)...); err != nil {
			t.Fatalf("download into %s: %v\n%s", ep.Host.Name, err, out)
		}
	}

	sources := filepath.Join(l.dir, "debian.sources")
	must(t, os.WriteFile(sources, []byte(lab.DebianSources), 0o644))
	logFile, err := os.Create(filepath.Join(l.dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	listen := net.JoinHostPort(fleet.Net.Addr(), port)
	l.srv = &fleetServer{t: t, dataDir: filepath.Join(l.dir, "data"), url: "https://" + listen, log: logFile}
	l.srv.args = []string{"server", "--listen", listen, "--data-dir", l.srv.dataDir, "--sources", sources,
		"--interval", labInterval.String(), "--refresh", "1h", "--rollout-tick", "1s", "--log-level", "info"}
	l.srv.start()
	t.Cleanup(func() { l.srv.kill() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", l.srv.logText())
			for _, h := range l.eps {
				if h.Agent != nil {
					t.Logf("agent log of %s:\n%s", h.Name, h.Agent.Log())
				}
			}
		}
	})
	toks := map[string]api.EnrollToken{}
	for _, ring := range rings {
		if _, ok := toks[ring]; !ok {
			var tok api.EnrollToken
			l.srv.cli(&tok, "tokens", "create", "--max-uses", strconv.Itoa(len(rings)), "--expires-in", "1h", "--label", "ring="+ring)
			toks[ring] = tok
		}
	}
	for i, ep := range l.eps {
		tok := toks[rings[i]]
		out, err := ep.Host.Run(ctx, lab.AgentPath, "agent", "enroll", "--server", l.srv.url, "--ca-fingerprint", tok.CAFingerprint, "--token", tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		id, ok := strings.CutPrefix(strings.TrimSpace(out), "enrolled as host ")
		if !ok {
			t.Fatalf("enroll %s: %q", ep.Host.Name, out)
		}
		ep.ID = id
		l.startAgent(ep)
	}
	waitFor(t, "every host's updates", 3*time.Minute, func() bool { return len(computed(l.srv)) == len(l.eps) })

	var pol strings.Builder
	pol.WriteString("name: lab\nhosts:\n  all: true\napprove:\n")
	for _, p := range l.pins {
		name, _, _ := strings.Cut(p, "=")
		fmt.Fprintf(&pol, "  - {package: %s}\n", name)
	}
	polFile := filepath.Join(l.dir, "10-lab.yaml")
	must(t, os.WriteFile(polFile, []byte(pol.String()), 0o644))
	l.srv.cli(nil, "policy", "apply", "-f", polFile)
	return l
}

func (l *rolloutLab) startAgent(ep *lab.FleetHost) {
	l.t.Helper()
	var err error
	if ep.Agent, err = ep.Host.Start(l.ctx, nil, lab.AgentPath, "agent", "run", "--max-backoff", "3s"); err != nil {
		l.t.Fatal(err)
	}
}

// create creates (not starts) a rollout from a spec file's text and checks
// that it froze exactly the approved set.
func (l *rolloutLab) create(spec string) api.Rollout {
	l.t.Helper()
	file := filepath.Join(l.dir, "rollout.yaml")
	must(l.t, os.WriteFile(file, []byte(spec), 0o644))
	var r api.Rollout
	l.srv.cli(&r, "rollout", "create", "-f", file)
	var frozen []string
	for _, ts := range r.PatchSet.Targets {
		for _, p := range ts.Pins {
			frozen = append(frozen, p.Package+"="+p.Version)
		}
	}
	if slices.Sort(frozen); !slices.Equal(frozen, l.pins) {
		l.t.Fatalf("frozen set %v, want the approved %v (left: %+v)", frozen, l.pins, r.PatchSet.Left)
	}
	return r
}

func (l *rolloutLab) status(id string) api.Rollout {
	l.t.Helper()
	var r api.Rollout
	l.srv.cli(&r, "rollout", "status", id)
	return r
}

// member returns the rollout's member for host ID, and its ring.
func member(r api.Rollout, id string) (api.RolloutHost, string) {
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			if h.ID == id {
				return h, ring.Name
			}
		}
	}
	return api.RolloutHost{}, ""
}

// dpkgAll is the whole of `dpkg-query -W` on a host.
func dpkgAll(t *testing.T, h *lab.Host) string {
	t.Helper()
	out, err := h.Run(context.Background(), "dpkg-query", "-W")
	must(t, err)
	return out
}

// aptInstallRuns counts apt's runs in the host's history.log that
// installed or upgraded any of names.
func aptInstallRuns(t *testing.T, h *lab.Host, names []string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.Root, "var/log/apt/history.log"))
	if os.IsNotExist(err) {
		return 0
	}
	must(t, err)
	runs := 0
	for _, entry := range strings.Split(string(data), "\n\n") {
		for _, line := range strings.Split(entry, "\n") {
			what, list, ok := strings.Cut(line, ": ")
			if !ok || (what != "Install" && what != "Upgrade") {
				continue
			}
			if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(list, n+":") }) {
				runs++
				break
			}
		}
	}
	return runs
}

func (l *rolloutLab) pinNames() []string {
	var names []string
	for _, p := range l.pins {
		name, _, _ := strings.Cut(p, "=")
		names = append(names, name)
	}
	return names
}

// TestRolloutLabHealthHalt: one host of ring test fails its health gate
// (its agent's local configuration probes a closed TCP port) after the
// install. With a failure budget of 0 the rollout halts, ring prod gets
// no job and keeps its packages, and `patchloop rollback --rollout ID
// --host H` puts that host's dpkg back exactly as it was. Once its gate
// is mended, `patchloop rollout retry` and `resume` install it again and
// the rollout completes through ring prod.
func TestRolloutLabHealthHalt(t *testing.T) {
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("lab test: set PATCHLOOP_LAB=1 (needs root, debootstrap and the Debian mirror)")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rings := []string{"test", "test", "prod", "prod"}
	const gate = "127.0.0.1:9" // discard: nobody listens in the endpoint's namespace
	l := newRolloutLab(t, ctx, "rhalt", rings, "18445", func(i int, h *lab.Host) error {
		if i != 0 {
			return nil
		}
		return h.WriteFile("/etc/patchloop/agent.yaml", "health:\n  tcp:\n    - {address: \""+gate+"\", timeout: 2s}\n")
	})
	bad, good := l.eps[0], l.eps[1]
	before := map[string]string{}
	for _, ep := range l.eps {
		before[ep.ID] = dpkgAll(t, ep.Host)
	}
	t.Logf("lab ready after %s", time.Since(start).Round(time.Second))

	r := l.create(`name: lab health gate
rings:
  - name: test
    hosts: {match_labels: {ring: test}}
    concurrency: {count: 2}
    failure_budget: {count: 0}
    soak: 2s
  - name: prod
    hosts: {match_labels: {ring: prod}}
    concurrency: {percent: 100}
options:
  reboot: never
  job_timeout: 15m
`)
	l.srv.cli(&r, "rollout", "start", r.ID)
	// Halted, and every host of ring test finished (the good one was in
	// flight with the bad one and reports too).
	waitFor(t, "the rollout halted with ring test finished", 8*time.Minute, func() bool {
		r = l.status(r.ID)
		if r.Status == "completed" {
			t.Fatalf("rollout completed although %s failed its health gate", bad.Name)
		}
		if r.Status != "halted" {
			return false
		}
		for _, ep := range []*lab.FleetHost{bad, good} {
			h, _ := member(r, ep.ID)
			if len(h.Jobs) == 0 || h.Jobs[len(h.Jobs)-1].State != "done" {
				return false
			}
		}
		return true
	})
	t.Logf("halted after %s: %s", time.Since(start).Round(time.Second), r.Reason)
	if !strings.Contains(r.Reason, "test") || !strings.Contains(r.Reason, bad.ID) {
		t.Errorf("reason %q names neither ring test nor %s", r.Reason, bad.ID)
	}
	h, _ := member(r, bad.ID)
	if h.Phase != "failed" || len(h.Jobs) != 1 {
		t.Fatalf("%s: phase %s, jobs %+v", bad.Name, h.Phase, h.Jobs)
	}
	j := h.Jobs[0]
	if j.Kind != "install" || j.Status != "failed" || j.Result != "health-failed" || j.Health == nil || j.Health.Healthy ||
		!strings.Contains(j.Error, "tcp "+gate) {
		t.Errorf("%s install: %+v", bad.Name, j)
	}
	for _, p := range j.Packages {
		if !p.OK {
			t.Errorf("%s: the install itself went wrong: %+v", bad.Name, p)
		}
	}
	for _, p := range l.pins { // installed, then the gate failed
		name, version, _ := strings.Cut(p, "=")
		if got := labDpkgShows(t, bad.Host, name); got != version+" ii" {
			t.Errorf("%s: dpkg-query shows %s %q, want %s", bad.Name, name, got, version)
		}
	}
	if h, _ := member(r, good.ID); h.Phase != "succeeded" {
		t.Errorf("%s (in flight with %s): %s %+v", good.Name, bad.Name, h.Phase, h.Jobs)
	}
	// Ring prod: untouched, no job queued, dpkg as before.
	checkProd := func(when string) {
		t.Helper()
		for _, ep := range l.eps[2:] {
			h, ring := member(r, ep.ID)
			if ring != "prod" || h.Phase != "pending" || len(h.Jobs) != 0 {
				t.Errorf("%s %s: ring %s phase %s jobs %+v", when, ep.Name, ring, h.Phase, h.Jobs)
			}
			if got := dpkgAll(t, ep.Host); got != before[ep.ID] {
				t.Errorf("%s %s: dpkg-query -W changed", when, ep.Name)
			}
		}
	}
	checkProd("halted:")
	if !r.Rings[1].Started.IsZero() {
		t.Errorf("ring prod started at %s", r.Rings[1].Started)
	}

	// Roll back the bad host by hand: dpkg exactly as before the rollout.
	var back api.RolloutRollback
	l.srv.cli(&back, "rollback", "--rollout", r.ID, "--host", bad.ID, "--reason", "health gate failed")
	if len(back.Queued) != 1 || back.Queued[0].HostID != bad.ID || len(back.Skipped) != 0 {
		t.Fatalf("rollback: %+v", back)
	}
	waitFor(t, bad.Name+" rolled back", 5*time.Minute, func() bool {
		r = l.status(r.ID)
		h, _ := member(r, bad.ID)
		for _, j := range h.Jobs {
			if j.Kind == "manual-rollback" && j.State == "done" {
				if j.Status != "ok" {
					t.Fatalf("rollback of %s: %+v", bad.Name, j)
				}
				return true
			}
		}
		return false
	})
	if got := dpkgAll(t, bad.Host); got != before[bad.ID] {
		t.Errorf("%s after the rollback: dpkg-query -W differs from before the rollout:\n%s", bad.Name, lineDiff(before[bad.ID], got))
	}
	if out, err := bad.Host.Run(ctx, "dpkg", "--audit"); err != nil || out != "" {
		t.Errorf("%s: dpkg --audit after the rollback: %v %q", bad.Name, err, out)
	}
	for _, p := range l.pins { // the good host keeps the update
		name, version, _ := strings.Cut(p, "=")
		if got := labDpkgShows(t, good.Host, name); got != version+" ii" {
			t.Errorf("%s: dpkg-query shows %s %q, want %s", good.Name, name, got, version)
		}
	}
	checkProd("after the rollback:")
	if r.Status != "halted" {
		t.Errorf("status after the rollback: %s", r.Status)
	}

	// The operator mends the bad host (its gate probes nothing now),
	// retries it and resumes: it installs again under a new job, passes,
	// and the rollout promotes ring prod and completes.
	must(t, bad.Host.WriteFile("/etc/patchloop/agent.yaml", "{}\n"))
	must(t, bad.Agent.Stop())
	l.startAgent(bad)
	var answer api.Rollout
	l.srv.cli(&answer, "rollout", "retry", r.ID, "--host", bad.ID, "--reason", "health probe fixed")
	r = l.status(r.ID)
	if h, _ := member(r, bad.ID); answer.Status != "halted" || r.Status != "halted" || h.Phase != "pending" {
		t.Fatalf("after the retry: %s (answer %s), %s %s", r.Status, answer.Status, bad.Name, h.Phase)
	}
	l.srv.cli(&answer, "rollout", "resume", r.ID)
	waitFor(t, "the rollout completed after the retry", 8*time.Minute, func() bool {
		r = l.status(r.ID)
		if r.Status == "halted" || r.Status == "cancelled" {
			t.Fatalf("rollout %s after the retry: %s", r.Status, r.Reason)
		}
		return r.Status == "completed"
	})
	// Its jobs: the first install (retried), the second, and the
	// rollback by hand between them.
	h, _ = member(r, bad.ID)
	var jobs []string
	for _, j := range h.Jobs {
		jobs = append(jobs, fmt.Sprintf("%s %s retried=%v", strings.TrimPrefix(j.Key, r.ID+"/test/"+bad.ID+"/"), j.Result, j.Retried))
	}
	if got, want := strings.Join(jobs, "; "), "install health-failed retried=true; install#2 succeeded retried=false; manual-rollback  retried=false"; h.Phase != "succeeded" || got != want {
		t.Fatalf("%s after the retry: %s\n got %s\nwant %s", bad.Name, h.Phase, got, want)
	}
	for _, ep := range append([]*lab.FleetHost{bad}, l.eps[2:]...) {
		for _, p := range l.pins {
			name, version, _ := strings.Cut(p, "=")
			if got := labDpkgShows(t, ep.Host, name); got != version+" ii" {
				t.Errorf("%s after the retry: dpkg-query shows %s %q, want %s", ep.Name, name, got, version)
			}
		}
	}
	t.Logf("done after %s", time.Since(start).Round(time.Second))
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// aptDpkgIn returns the pid of a dpkg that apt runs (with --status-fd)
// chrooted into root, 0 if there is none.
func aptDpkgIn(root string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "dpkg" {
			continue
		}
		if r, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err != nil || r != root {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("--status-fd")) {
			return pid
		}
	}
	return 0
}

// waitAptDpkg waits until apt runs dpkg in one of eps and returns that
// host.
func waitAptDpkg(t *testing.T, what string, limit time.Duration, eps []*lab.FleetHost) *lab.FleetHost {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, ep := range eps {
			if aptDpkgIn(ep.Host.Root) != 0 {
				return ep
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for dpkg %s", limit, what)
	return nil
}

// TestRolloutLabCrash: the server is SIGKILLed while ring test installs
// (dpkg running on one of its hosts) and restarted on the same data; an
// agent of ring prod is SIGKILLed while apt runs dpkg for its install
// and started again. The rollout completes, every host has the set's
// versions, apt's history shows one install run per host and the
// rollout one install job per host: nothing ran twice.
func TestRolloutLabCrash(t *testing.T) {
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("lab test: set PATCHLOOP_LAB=1 (needs root, debootstrap and the Debian mirror)")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rings := []string{"test", "test", "prod", "prod"}
	l := newRolloutLab(t, ctx, "rcrash", rings, "18446", nil)
	// Every dpkg run apt makes lasts 3 s more (dpkg's post-invoke hook),
	// so that the kills below land while dpkg runs, whatever the load.
	for _, ep := range l.eps {
		must(t, ep.Host.WriteFile("/etc/dpkg/dpkg.cfg.d/lab-slow", "post-invoke=sleep 3\n"))
	}
	names := l.pinNames()
	for _, ep := range l.eps {
		if n := aptInstallRuns(t, ep.Host, names); n != 0 {
			t.Fatalf("%s: %d apt runs installed %v before the rollout", ep.Name, n, names)
		}
	}
	t.Logf("lab ready after %s", time.Since(start).Round(time.Second))

	r := l.create(`name: lab crash
rings:
  - name: test
    hosts: {match_labels: {ring: test}}
    concurrency: {count: 1}
    soak: 2s
  - name: prod
    hosts: {match_labels: {ring: prod}}
    concurrency: {percent: 100}
options:
  reboot: never
  job_timeout: 15m
`)
	l.srv.cli(&r, "rollout", "start", r.ID)

	// The server killed while ring test's first host runs dpkg.
	ep := waitAptDpkg(t, "in ring test", 5*time.Minute, l.eps[:2])
	l.srv.kill()
	t.Logf("server killed while dpkg ran in %s (%s)", ep.Name, time.Since(start).Round(time.Second))
	time.Sleep(2 * labInterval)
	l.srv.start()

	// An agent of ring prod killed, alone (not apt, not dpkg), while apt
	// runs dpkg for its install; then started again.
	ep = waitAptDpkg(t, "in ring prod", 8*time.Minute, l.eps[2:])
	r = l.status(r.ID)
	if r.Ring != "prod" {
		t.Fatalf("dpkg runs in %s while the rollout is at ring %s", ep.Name, r.Ring)
	}
	old := ep.Agent
	must(t, syscall.Kill(old.Pid(), syscall.SIGKILL))
	<-old.Done()
	if aptDpkgIn(ep.Host.Root) == 0 {
		t.Logf("note: dpkg in %s finished just as its agent was killed", ep.Name)
	}
	t.Logf("agent of %s killed while dpkg ran (%s)", ep.Name, time.Since(start).Round(time.Second))
	l.startAgent(ep)
	killed := ep

	waitFor(t, "the rollout completed", 8*time.Minute, func() bool {
		r = l.status(r.ID)
		if r.Status == "halted" || r.Status == "cancelled" {
			for _, ring := range r.Rings {
				for _, h := range ring.Members {
					for _, j := range h.Jobs {
						if j.Status != "" && j.Status != "ok" {
							t.Errorf("%s %s job: %s %s: %s %+v", h.Hostname, j.Kind, j.Status, j.Result, j.Error, j.Packages)
						}
					}
				}
			}
			t.Fatalf("rollout %s: %s", r.Status, r.Reason)
		}
		return r.Status == "completed"
	})
	t.Logf("completed after %s", time.Since(start).Round(time.Second))
	// Hosts of a ring with the same pins share an install job: the
	// queue's view of each job has each of those hosts once, done once.
	jobHosts := map[string][]string{} // job ID → host IDs
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			var installs []api.RolloutJob
			for _, j := range h.Jobs {
				if j.Kind == "install" {
					installs = append(installs, j)
				}
			}
			if h.Phase != "succeeded" || len(installs) != 1 || len(h.Jobs) != 1 {
				t.Errorf("%s: phase %s, jobs %+v", h.Hostname, h.Phase, h.Jobs)
				continue
			}
			j := installs[0]
			if j.State != "done" || j.Status != "ok" || j.Result != "succeeded" {
				t.Errorf("%s install: %+v", h.Hostname, j)
			}
			jobHosts[j.JobID] = append(jobHosts[j.JobID], h.ID)
		}
	}
	for id, hosts := range jobHosts {
		var js api.JobStatus
		l.srv.cli(&js, "jobs", "show", id)
		var got []string
		for _, hs := range js.Hosts {
			got = append(got, hs.HostID)
			if hs.State != "done" || hs.Status != "ok" {
				t.Errorf("job %s of %s: %+v", id, hs.HostID, hs)
			}
		}
		slices.Sort(got)
		slices.Sort(hosts)
		if !slices.Equal(got, hosts) {
			t.Errorf("job %s went to %v, the rollout's members with it are %v", id, got, hosts)
		}
	}
	for _, ep := range l.eps {
		for _, p := range l.pins {
			name, version, _ := strings.Cut(p, "=")
			if got := labDpkgShows(t, ep.Host, name); got != version+" ii" {
				t.Errorf("%s: dpkg-query shows %s %q, want %s", ep.Name, name, got, version)
			}
		}
		if n := aptInstallRuns(t, ep.Host, names); n != 1 {
			data, _ := os.ReadFile(filepath.Join(ep.Host.Root, "var/log/apt/history.log"))
			t.Errorf("%s: %d apt runs installed %v, want 1:\n%s", ep.Name, n, names, data)
		}
		if out, err := ep.Host.Run(ctx, "dpkg", "--audit"); err != nil || out != "" {
			t.Errorf("%s: dpkg --audit: %v %q", ep.Name, err, out)
		}
	}
	// The restarted agent answered the job from its journal and dpkg.
	if log := killed.Agent.Log(); !strings.Contains(log, "job interrupted; reporting what the machine shows") {
		t.Errorf("the restarted agent of %s did not recover the install from its journal:\n%s", killed.Name, log)
	}
	var audit []string
	for _, a := range r.Audit {
		audit = append(audit, a.What)
	}
	for _, w := range []string{"create", "start", "promote", "complete"} {
		if !slices.Contains(audit, w) {
			t.Errorf("audit lacks %q: %v", w, audit)
		}
	}
}
