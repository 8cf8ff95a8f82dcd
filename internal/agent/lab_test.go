package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/health"
	"github.com/patchloop/patchloop/internal/lab"
	"github.com/patchloop/patchloop/internal/lab/labtest"
	"github.com/patchloop/patchloop/internal/store"
)

// The lab test runs install, rollback and interrupted-install jobs handed
// out by the real server (in this process, over TLS) to an agent whose
// system is a real Debian 12 root (internal/lab's cached debootstrap
// minbase, an overlay copy) with real apt, dpkg and Debian's mirror.
// It runs only with PATCHLOOP_LAB=1 and root.

func labRoot(t *testing.T) *lab.Host {
	t.Helper()
	h := labtest.Host(t)
	for path, content := range map[string]string{
		"/etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\n" +
			"deb http://deb.debian.org/debian-security bookworm-security main\n",
		"/usr/sbin/policy-rc.d": "#!/bin/sh\nexit 101\n", // no services start in a chroot
		"/etc/machine-id":       "5f0c3b1e2d4a49c8a7e6b5d4c3b2a190\n",
		"/etc/hostname":         "agent-lab\n",
	} {
		if err := h.WriteFile(path, content); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(h.Root, "usr/sbin/policy-rc.d"), 0o755)
	labRun(t, h, "apt-get", "update", "-q")
	return h
}

func labRun(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dpkgShows is what dpkg-query -W shows for name in the root: "version status".
func dpkgShows(t *testing.T, h *lab.Host, name string) string {
	t.Helper()
	out, _ := h.Run(context.Background(), "dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", name)
	return strings.TrimSpace(out)
}

// twoSecurityUpdates picks two library security updates the base misses,
// from apt list --upgradable: pins and the installed versions.
func twoSecurityUpdates(t *testing.T, h *lab.Host) ([]apply.Pin, map[string]string) {
	t.Helper()
	re := regexp.MustCompile(`^([^/]+)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$`)
	type up struct{ name, cand, inst string }
	var ups []up
	for _, line := range strings.Split(labRun(t, h, "apt", "list", "--upgradable"), "\n") {
		f := re.FindStringSubmatch(line)
		if f == nil || !strings.Contains(f[2], "security") || !strings.HasPrefix(f[1], "lib") ||
			strings.HasPrefix(f[1], "libpam") || strings.HasPrefix(f[1], "libapt") || strings.HasPrefix(f[1], "libc6") {
			continue
		}
		ups = append(ups, up{f[1], f[3], f[5]})
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].name < ups[j].name })
	if len(ups) < 2 {
		t.Fatalf("a bookworm minbase should miss at least two library security updates; found %v", ups)
	}
	var pins []apply.Pin
	old := map[string]string{}
	for _, u := range ups[:2] {
		pins = append(pins, apply.Pin{Package: u.name, Arch: "amd64", Version: u.cand})
		old[u.name] = u.inst
	}
	return pins, old
}

func labAgent(t *testing.T, ts *testServer, h *lab.Host) *Agent {
	t.Helper()
	ctx := context.Background()
	tok := store.EnrollToken{ID: "tok", SecretHash: sum("secret"), CreatedAt: time.Now()}
	if err := ts.st.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateDir: filepath.Join(t.TempDir(), "state"), Root: h.Root}
	if _, err := Enroll(ctx, cfg, ts.url, ts.fpr, "ple_tok_secret"); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func installParams(pins []apply.Pin, rollbackOnFailure bool) string {
	data, _ := json.Marshal(api.InstallParams{Packages: pins, LockTimeoutSeconds: 60, RollbackOnFailure: rollbackOnFailure})
	return string(data)
}

func decode[T any](t *testing.T, res api.JobResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(res.Result, &v); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	return v
}

func check(t *testing.T, rep *health.Report, name, status string) {
	t.Helper()
	if rep == nil {
		t.Fatalf("no health report")
	}
	for _, c := range rep.Checks {
		if c.Name == name {
			if c.Status != status {
				t.Errorf("health %s: %+v, want %s", name, c, status)
			}
			return
		}
	}
	t.Errorf("no health check %q in %+v", name, rep.Checks)
}

func TestLabInstallJobs(t *testing.T) {
	h := labRoot(t)
	ts := newTestServer(t)
	a := labAgent(t, ts, h)
	pins, old := twoSecurityUpdates(t, h)
	t.Logf("security updates: %v (installed %v)", pins, old)
	wantOld := func(when string) {
		t.Helper()
		for _, p := range pins {
			if got := dpkgShows(t, h, p.Package); got != old[p.Package]+" ii" {
				t.Errorf("%s: dpkg-query shows %s %q, want %s", when, p.Package, got, old[p.Package])
			}
		}
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	a.local.Health.HTTP = []health.HTTP{{URL: app.URL + "/healthz"}}
	a.local.Health.Units = []string{"cron.service"}

	// A plan job: the plan, nothing changed.
	status, res := runJob(t, ts, a, "plan1", api.JobPlan, mustJSON(api.PlanParams{Packages: pins}))
	plan := decode[apply.InstallPlan](t, res)
	if status != "ok" || len(plan.Changes) < 2 {
		t.Fatalf("plan: %s %q %+v", status, res.Error, plan)
	}
	wantOld("after the plan job")

	// Install: the new versions, checked with dpkg, gates passed.
	status, res = runJob(t, ts, a, "inst1", api.JobInstall, installParams(pins, false))
	ir := decode[api.InstallResult](t, res)
	if status != "ok" || !ir.Healthy || ir.ExitCode != 0 || ir.Record == "" || ir.Interrupted {
		t.Fatalf("install: %s %q %+v", status, res.Error, ir)
	}
	for _, p := range pins {
		if got := dpkgShows(t, h, p.Package); got != p.Version+" ii" {
			t.Errorf("after install dpkg-query shows %s %q, want %s", p.Package, got, p.Version)
		}
		found := false
		for _, pr := range ir.Packages {
			if pr.Package == p.Package {
				found = pr.Before == old[p.Package] && pr.Now == p.Version && pr.OK
			}
		}
		if !found {
			t.Errorf("result packages %+v lack %s %s → %s", ir.Packages, p.Package, old[p.Package], p.Version)
		}
	}
	check(t, ir.Health, "dpkg --audit", health.Pass)
	check(t, ir.Health, "http "+app.URL+"/healthz", health.Pass)
	check(t, ir.Health, "unit cron.service", health.Skip)
	if ir.Reboot == nil || ir.Restart == nil || ir.DurationMS <= 0 || !strings.Contains(ir.Log, "apt-get install") {
		t.Errorf("install result: reboot %v restart %v duration %d log %q", ir.Reboot, ir.Restart, ir.DurationMS, ir.Log)
	}

	// Roll back by the install job's ID.
	status, res = runJob(t, ts, a, "rb1", api.JobRollback, `{"install_job":"inst1"}`)
	rr := decode[api.RollbackResult](t, res)
	if status != "ok" || rr.Record != ir.Record {
		t.Fatalf("rollback: %s %q %+v", status, res.Error, rr)
	}
	wantOld("after the rollback job")

	// A failing gate with rollback_on_failure: installed, then put back.
	a.local.Health.TCP = []health.TCP{{Address: deadAddr(t), Timeout: time.Second}}
	status, res = runJob(t, ts, a, "inst2", api.JobInstall, installParams(pins, true))
	ir = decode[api.InstallResult](t, res)
	if status != "failed" || ir.Healthy || ir.ExitCode != 0 || ir.Rollback == nil || ir.Rollback.Error != "" ||
		!strings.Contains(res.Error, "health gates failed: tcp ") || !strings.Contains(res.Error, "rolled back") {
		t.Fatalf("install with a failing gate: %s %q %+v", status, res.Error, ir)
	}
	check(t, ir.Health, "tcp "+a.local.Health.TCP[0].Address, health.Fail)
	for _, pr := range ir.Packages {
		if !pr.OK { // the install itself went as planned
			t.Errorf("install part: %+v", pr)
		}
	}
	wantOld("after the failed gate's rollback")
	a.local.Health.TCP = nil

	// An install interrupted by killing the agent, apt and dpkg at once
	// (as a power cut or a cgroup kill does) while dpkg runs.
	history := func() int {
		data, _ := os.ReadFile(filepath.Join(h.Root, "var/log/apt/history.log"))
		return strings.Count(string(data), "Commandline:")
	}
	ctx := context.Background()
	if err := ts.st.CreateJob(ctx, store.Job{ID: "inst3", Kind: api.JobInstall, Params: []byte(installParams(pins, false)), CreatedAt: time.Now()}, []string{a.st.HostID}); err != nil {
		t.Fatal(err)
	}
	// Killed once dpkg has changed the first package in its database.
	killedDuring(t, a, func() bool {
		pkgs, err := deb.ReadStatus(h.Root)
		if err != nil {
			return false
		}
		for _, p := range pkgs {
			if _, asked := old[p.Name]; asked && (p.Version != old[p.Name] || p.State != "installed") {
				return true
			}
		}
		return false
	})
	runs := history()
	b, err := New(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.pending) != 1 || b.pending[0].job.ID != "inst3" {
		t.Fatalf("pending after the restart: %+v", b.pending)
	}
	if err := b.Once(ctx); err != nil {
		t.Fatal(err)
	}
	status, res = jobResult(t, ts, b, "inst3")
	ir = decode[api.InstallResult](t, res)
	if !ir.Interrupted || ir.ExitCode != -1 || len(ir.Packages) != len(ir.Plan.Changes) || len(ir.Packages) < 2 {
		t.Fatalf("interrupted install: %s %q %+v", status, res.Error, ir)
	}
	if got := history(); got != runs {
		t.Errorf("apt ran again after the restart: %d runs in history.log, %d before", got, runs)
	}
	allOK, changed := true, false
	for _, pr := range ir.Packages {
		changed = changed || pr.Now != old[pr.Package] || pr.Status != "ii "
		shows := dpkgShows(t, h, pr.Package)
		if got := strings.TrimSpace(pr.Now + " " + pr.Status); got != shows {
			t.Errorf("reported %s %q, dpkg-query shows %q", pr.Package, got, shows)
		}
		allOK = allOK && pr.OK
	}
	t.Logf("after the kill: %s: %s", status, res.Error)
	if !changed {
		t.Errorf("the kill left nothing half-way: %+v", ir.Packages)
	}
	if (status == "ok") != (allOK && ir.Health.Healthy) || (status != "ok" && !strings.Contains(res.Error, "nothing was run again")) {
		t.Errorf("interrupted install reported %s %q with packages ok=%v health %+v", status, res.Error, allOK, ir.Health)
	}

	// And its rollback repairs dpkg and puts the old versions back.
	status, res = runJob(t, ts, b, "rb3", api.JobRollback, `{"install_job":"inst3"}`)
	rr = decode[api.RollbackResult](t, res)
	if status != "ok" {
		t.Fatalf("rollback of the interrupted install: %s %q %+v", status, res.Error, rr)
	}
	wantOld("after rolling back the interrupted install")
	if out := labRun(t, h, "dpkg", "--audit"); out != "" {
		t.Errorf("dpkg --audit after the rollback:\n%s", out)
	}
}

func mustJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// deadAddr is a loopback port nobody listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// killedDuring runs a's check-in in a child process (this test binary,
// TestLabHelperAgent) and kills its whole process group, apt and dpkg
// included, as soon as now says so.
func killedDuring(t *testing.T, a *Agent, now func() bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLabHelperAgent$", "-test.v")
	cmd.Env = append(os.Environ(), "PATCHLOOP_AGENT_HELPER="+a.cfg.StateDir, "PATCHLOOP_AGENT_HELPER_ROOT="+a.cfg.Root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("the agent finished before dpkg was seen: %v\n%s", err, out.String())
		case <-deadline:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Fatalf("dpkg never ran:\n%s", out.String())
		case <-time.After(5 * time.Millisecond):
		}
		if now() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return
		}
	}
}

// TestLabHelperAgent is the agent process killedDuring kills: one
// check-in with the state and root it is given.
func TestLabHelperAgent(t *testing.T) {
	dir := os.Getenv("PATCHLOOP_AGENT_HELPER")
	if dir == "" {
		t.Skip("helper process of TestLabInstallJobs")
	}
	a, err := New(Config{StateDir: dir, Root: os.Getenv("PATCHLOOP_AGENT_HELPER_ROOT")})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Once(context.Background())
	fmt.Println("helper agent: check-in returned", err)
}
