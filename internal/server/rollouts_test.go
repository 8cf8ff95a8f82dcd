package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/health"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/repo/repotest"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
	"github.com/patchloop/patchloop/internal/store/pgtest"
)

// TestRollouts runs the rollout driver on SQLite and PostgreSQL: a real
// server over TLS, hosts enrolled through the agent API with inventories
// the server detects real updates in (a signed suite on loopback), and
// "agents" that check in and post job results over HTTP as the agent does.
func TestRollouts(t *testing.T) {
	tests := map[string]func(*testing.T, *rolloutEnv){
		"RingsSoakRestartBudget":    tRolloutRingsSoakRestartBudget,
		"PauseResumeHealthRollback": tRolloutPauseResumeHealthRollback,
		"CreateRefused":             tRolloutCreateRefused,
		"ReplicasStepOnce":          tRolloutReplicasStepOnce,
		"LegacyState":               tRolloutLegacyState,
		"WithdrawQueued":            tRolloutWithdrawQueued,
		"RevokedBeforeStart":        tRolloutRevokedBeforeStart,
		"WakesHeld":                 tRolloutWakesHeld,
		"RetryExclude":              tRolloutRetryExclude,
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for name, test := range tests {
			t.Run(backend+"/"+name, func(t *testing.T) { test(t, newRolloutEnv(t, backend)) })
		}
	}
}

// The suite's candidates and the installed versions of the test fleet.
var (
	rolloutCandidates = map[string]string{"jq": "1.6-2.1+deb12u1", "libssl3": "3.0.15-1~deb12u1"}
	rolloutInstalled  = map[string]string{"jq": "1.6-2.1", "libssl3": "3.0.11-1~deb12u2"}
)

type rolloutEnv struct {
	*env
	dsn    string
	mirror repo.Source
	agents map[string]*agent.Client // hostname → client
	ids    map[string]string        // hostname → host ID
	// handler is the running server's; restart replaces it.
	handler http.Handler
}

func newRolloutEnv(t *testing.T, backend string) *rolloutEnv {
	dsn := filepath.Join(t.TempDir(), "db.sqlite")
	if backend == "postgres" {
		dsn = pgtest.Start(t)
	}
	e := &rolloutEnv{env: &env{t: t, clock: &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}},
		dsn: dsn, mirror: publishRolloutSuite(t), agents: map[string]*agent.Client{}, ids: map[string]string{}}
	e.start()
	admin, err := e.srv.CreateAdminToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	e.admin = admin
	e.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }))
	if e.ts.TLS, err = e.srv.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	e.ts.StartTLS()
	t.Cleanup(e.ts.Close)
	e.fpr = pki.Fingerprint(e.srv.CA().Cert)
	tlsConf, err := pki.PinnedTLS(e.fpr, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.client = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	return e
}

// start opens the store and makes a server on it, as a process start does.
func (e *rolloutEnv) start() {
	ctx := context.Background()
	st, err := store.Open(ctx, e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	eng := central.New(central.Config{CacheDir: e.t.TempDir(), Trust: []repo.Source{e.mirror}})
	srv, err := New(ctx, Config{Store: st, Engine: eng, Now: e.clock.Now, Interval: time.Minute, JobLease: 5 * time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st, e.srv, e.handler = st, srv, srv.Handler()
}

// restart stops the server and its store and starts new ones on the same
// database, serving at the same address.
func (e *rolloutEnv) restart() {
	e.st.Close()
	e.start()
}

func publishRolloutSuite(t *testing.T) repo.Source {
	key, err := repotest.NewKey("rollout test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyring := filepath.Join(dir, "key.gpg")
	if err := repotest.WriteKeyring(keyring, key); err != nil {
		t.Fatal(err)
	}
	var idx strings.Builder
	for _, pkg := range []string{"jq", "libssl3"} {
		fmt.Fprintf(&idx, "Package: %s\nVersion: %s\nArchitecture: amd64\n\n", pkg, rolloutCandidates[pkg])
	}
	s := repotest.Suite{Name: "stable-security", Codename: "bookworm-security", Origin: "Debian", Label: "Debian-Security",
		Packages: map[string]string{"main/binary-amd64": idx.String()}}
	if err := repotest.WriteSuite(filepath.Join(dir, "repo"), s, key); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "repo"))))
	t.Cleanup(srv.Close)
	return repo.Source{URI: srv.URL, Suite: "bookworm-security", SignedBy: []string{keyring}}
}

// fleet enrolls hosts named by labels (ring=test or ring=prod) with
// inventories missing both updates (those whose name ends in "-nossl"
// lack libssl3).
func (e *rolloutEnv) fleet(hosts map[string]string) {
	ctx := context.Background()
	for i, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range hosts {
			if !yield(n) {
				return
			}
		}
	}) {
		tok := e.token(api.CreateTokenRequest{Labels: map[string]string{"ring": hosts[name]}})
		c, err := agent.NewClient(e.ts.URL, e.fpr, "", 10*time.Second)
		if err != nil {
			e.t.Fatal(err)
		}
		f := api.Facts{Hostname: name, MachineID: machineID(200 + i), Distro: "debian", Release: "12", Codename: "bookworm", Arch: "amd64"}
		resp, err := c.Enroll(ctx, tok, f)
		if err != nil {
			e.t.Fatal(err)
		}
		hc, err := agent.NewClient(e.ts.URL, e.fpr, resp.Credential, 10*time.Second)
		if err != nil {
			e.t.Fatal(err)
		}
		inv := &api.Inventory{NativeArch: "amd64", Sources: []api.Source{{URI: e.mirror.URI, Suite: e.mirror.Suite, Components: []string{"main"}, Archs: []string{"amd64"}}}}
		for _, pkg := range []string{"jq", "libssl3"} {
			if pkg == "libssl3" && strings.HasSuffix(name, "-nossl") {
				continue
			}
			inv.Packages = append(inv.Packages, api.Package{Name: pkg, Arch: "amd64", Version: rolloutInstalled[pkg], Status: "install ok installed"})
		}
		if err := hc.PutInventory(ctx, inv); err != nil {
			e.t.Fatal(err)
		}
		e.agents[name], e.ids[name] = hc, resp.HostID
	}
}

// jobs checks host name in and returns the jobs handed to it.
func (e *rolloutEnv) jobs(name string) []api.Job {
	e.t.Helper()
	resp, err := e.agents[name].CheckIn(context.Background(), api.CheckInRequest{})
	if err != nil {
		e.t.Fatalf("check-in of %s: %v", name, err)
	}
	return resp.Jobs
}

// oneJob checks host name in and expects exactly one job of kind.
func (e *rolloutEnv) oneJob(name, kind string) api.Job {
	e.t.Helper()
	js := e.jobs(name)
	if len(js) != 1 || js[0].Kind != kind {
		e.t.Fatalf("%s was handed %+v, want one %s job", name, js, kind)
	}
	return js[0]
}

func (e *rolloutEnv) noJob(name string) {
	e.t.Helper()
	if js := e.jobs(name); len(js) != 0 {
		e.t.Fatalf("%s was handed %+v, want nothing", name, js)
	}
}

// report posts a job's result as the agent does.
func (e *rolloutEnv) report(name string, j api.Job, status string, errMsg string, result any) {
	e.t.Helper()
	res := api.JobResult{Status: status, Error: errMsg}
	if result != nil {
		res.Result = api.Raw(result)
	}
	if err := e.agents[name].JobResult(context.Background(), j.ID, res); err != nil {
		e.t.Fatalf("result of %s: %v", name, err)
	}
}

// installResult is what an agent reports for an install of the job's
// pins: every package at its wanted version, or (broken) left as it was.
func installResult(t *testing.T, j api.Job, healthy, broken bool) api.InstallResult {
	p, err := api.ParseJobParams(j.Kind, j.Params)
	if err != nil {
		t.Fatalf("install params %s: %v", j.Params, err)
	}
	var out api.InstallResult
	for _, pin := range p.(*api.InstallParams).Packages {
		pr := apply.PackageResult{Package: pin.Package, Arch: pin.Arch, Kind: apply.Upgrade, Before: rolloutInstalled[pin.Package], Want: pin.Version,
			Now: pin.Version, Status: "ii ", OK: true}
		if broken {
			pr.Now, pr.OK = pr.Before, false
		}
		out.Packages = append(out.Packages, pr)
	}
	out.Started, out.DurationMS, out.ExitCode, out.Log = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), 4200, 0, "Setting up jq ...\n"
	out.Record, out.Healthy = "20261125T100000Z-0a1b2c3d", healthy && !broken
	rep := health.Report{Healthy: healthy, Checks: []health.Result{{Name: "dpkg --audit", Kind: "dpkg", Status: "pass"}}}
	if !healthy {
		rep.Checks = append(rep.Checks, health.Result{Name: "http://127.0.0.1/healthz", Kind: "http", Status: "fail", Detail: "503"})
	}
	out.Health = &rep
	if broken {
		out.ExitCode, out.Error = 100, "apt-get install: exit status 100"
	}
	return out
}

func (e *rolloutEnv) rollout(id string) api.Rollout {
	e.t.Helper()
	var r api.Rollout
	e.adminJSON("GET", "/api/v1/rollouts/"+id, nil, &r)
	return r
}

func (e *rolloutEnv) command(id, cmd string, want int) api.Rollout {
	e.t.Helper()
	code, body := e.call("POST", "/api/v1/rollouts/"+id+"/"+cmd, e.admin, "application/json", []byte(`{"reason":"test"}`))
	if code != want {
		e.t.Fatalf("%s: %d %s, want %d", cmd, code, body, want)
	}
	var r api.Rollout
	json.Unmarshal([]byte(body), &r)
	return r
}

// member finds a host of a rollout by hostname.
func member(r api.Rollout, name string) api.RolloutHost {
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			if h.Hostname == name {
				return h
			}
		}
	}
	return api.RolloutHost{}
}

func (e *rolloutEnv) phases(r api.Rollout) string {
	var out []string
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			out = append(out, h.Hostname+"="+string(h.Phase))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// wantPhases checks each host's phase; want maps hostnames to phases.
func (e *rolloutEnv) wantPhases(id string, want map[string]rollout.Phase) api.Rollout {
	e.t.Helper()
	r := e.rollout(id)
	var w []string
	for name, p := range want {
		w = append(w, name+"="+string(p))
	}
	slices.Sort(w)
	if got := e.phases(r); got != strings.Join(w, " ") {
		e.t.Fatalf("phases:\n got %s\nwant %s\n(status %s %s)", got, strings.Join(w, " "), r.Status, r.Reason)
	}
	return r
}

// byID orders hostnames as the engine starts them: by host ID.
func (e *rolloutEnv) byID(names ...string) []string {
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(e.ids[a], e.ids[b]) })
	return names
}

// jobCount counts the jobs queued for hosts (hosts of a ring with the
// same pins share a job: each has its own part).
func (e *rolloutEnv) jobCount() int {
	e.t.Helper()
	js, err := e.st.ListJobs(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, j := range js {
		_, hjs, err := e.st.Job(context.Background(), j.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(hjs)
	}
	return n
}

func tRolloutRingsSoakRestartBudget(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"t1": "test", "t2-nossl": "test", "p1": "prod", "p2": "prod", "p3": "prod"})
	req := api.CreateRolloutRequest{Name: "november", Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "test", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "test"}}, Concurrency: rollout.Limit{Count: 1},
			Soak: rollout.Duration(time.Hour)},
		{Name: "prod", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "prod"}}, Concurrency: rollout.Limit{Percent: 50}},
	}}
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", req, &r)
	id := r.ID
	// The set: both candidates, frozen for debian 12 amd64; a host's pins
	// are what it misses of it.
	if r.Status != "created" || r.PatchSet == nil || len(r.PatchSet.Targets) != 1 ||
		fmt.Sprint(r.PatchSet.Targets[0].Pins) != "[jq:amd64=1.6-2.1+deb12u1 libssl3:amd64=3.0.15-1~deb12u1]" {
		t.Fatalf("created: %s %+v", r.Status, r.PatchSet)
	}
	// Create answers the summary; the status has the members.
	if len(r.Rings[0].Members) != 0 || r.Audit != nil {
		t.Errorf("create answered members or audit: %+v", r.Rings)
	}
	if got := fmt.Sprint(member(e.rollout(id), "t2-nossl").Pins); got != "[jq:amd64=1.6-2.1+deb12u1]" {
		t.Errorf("t2-nossl pins %s", got)
	}
	// Members filtered, without pins.
	var only api.Rollout
	e.adminJSON("GET", "/api/v1/rollouts/"+id+"?pins=false&audit=false&ring=test&host=t2-nossl", nil, &only)
	if h := member(only, "t2-nossl"); len(only.Rings[0].Members) != 1 || len(only.Rings[1].Members) != 0 || h.PinCount != 1 || h.Pins != nil || only.Audit != nil {
		t.Errorf("filtered status: %+v", only.Rings)
	}
	if code, body := e.call("GET", "/api/v1/rollouts/"+id+"?members=some", e.admin, "", nil); code != 400 || !strings.Contains(body, "members") {
		t.Errorf("bad members parameter: %d %s", code, body)
	}
	if r.Rings[0].Hosts != 2 || r.Rings[1].Hosts != 3 || r.Request == nil || r.Request.Name != "november" {
		t.Fatalf("rings: %+v", r.Rings)
	}
	test, prod := e.byID("t1", "t2-nossl"), e.byID("p1", "p2", "p3")
	t1, t2, p1, p2, p3 := test[0], test[1], prod[0], prod[1], prod[2]
	// Nothing is dispatched before start, by the tick either.
	if err := e.srv.StepRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.noJob(t1)
	e.command(id, "start", 200)
	e.command(id, "start", http.StatusConflict) // once only

	// Ring test, concurrency 1: t1, then t2.
	j := e.oneJob(t1, api.JobInstall)
	e.noJob(t2)
	e.report(t1, j, "ok", "", installResult(t, j, true, false))
	e.report(t1, j, "ok", "", installResult(t, j, true, false)) // a repeated report changes nothing
	r = e.wantPhases(id, map[string]rollout.Phase{t1: "succeeded", t2: "installing", p1: "pending", p2: "pending", p3: "pending"})
	h := member(r, t1)
	if len(h.Jobs) != 1 || h.Jobs[0].State != store.JobDone || h.Jobs[0].Duration != 4200 || h.Jobs[0].ExitCode == nil ||
		len(h.Jobs[0].Packages) != len(h.Pins) || h.Jobs[0].Packages[0].Before != "1.6-2.1" || h.Jobs[0].Packages[0].Now != "1.6-2.1+deb12u1" ||
		!strings.Contains(h.Jobs[0].Log, "Setting up jq") {
		t.Fatalf("t1's install in the status: %+v", h.Jobs)
	}

	// The server stops after storing t2's result, before stepping (the
	// result is stored as the handler stores it), and starts again.
	j2 := e.oneJob(t2, api.JobInstall)
	res := api.JobResult{Status: "ok", Result: api.Raw(installResult(t, j2, true, false))}
	body, _ := json.Marshal(res)
	if _, err := e.st.CompleteJob(context.Background(), j2.ID, e.ids[t2], "ok", body, nil, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	before := e.jobCount()
	e.restart()
	// Re-sending what the state has in flight finds it queued.
	if err := e.srv.ResumeRollouts(context.Background()); err != nil || e.jobCount() != before {
		t.Fatalf("resume after a restart: %v, %d jobs → %d", err, before, e.jobCount())
	}
	if err := e.srv.StepRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = e.wantPhases(id, map[string]rollout.Phase{t1: "succeeded", t2: "succeeded", p1: "pending", p2: "pending", p3: "pending"})
	if e.jobCount() != before {
		t.Fatalf("the restarted server queued %d jobs", e.jobCount()-before)
	}
	// Soaking: ring prod waits an hour after t2 finished.
	e.clock.Add(30 * time.Minute)
	e.srv.StepRollouts(context.Background())
	e.noJob(p1)
	// Steps on a second restarted server queue nothing either.
	version := e.rollout(id).Version
	e.restart()
	for range 3 {
		e.srv.StepRollouts(context.Background())
	}
	if v := e.rollout(id).Version; v != version || e.jobCount() != before {
		t.Fatalf("idle steps after a restart: version %d → %d, %d jobs → %d", version, v, before, e.jobCount())
	}
	e.clock.Add(31 * time.Minute)
	if err := e.srv.StepRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Ring prod, 50% of 3 hosts is 2 at once, failure budget 0.
	r = e.wantPhases(id, map[string]rollout.Phase{t1: "succeeded", t2: "succeeded", p1: "installing", p2: "installing", p3: "pending"})
	if r.Ring != "prod" || r.Rings[0].Promoted.IsZero() {
		t.Fatalf("not promoted: %+v", r.Rings)
	}
	jp1, jp2 := e.oneJob(p1, api.JobInstall), e.oneJob(p2, api.JobInstall)
	e.report(p1, jp1, "failed", "apt-get install: exit status 100", installResult(t, jp1, true, true))
	r = e.wantPhases(id, map[string]rollout.Phase{t1: "succeeded", t2: "succeeded", p1: "failed", p2: "installing", p3: "pending"})
	if r.Status != "halted" || !strings.Contains(r.Reason, "ring prod: 1 of 3 hosts failed") {
		t.Fatalf("after a failure over the budget: %s %q", r.Status, r.Reason)
	}
	// Hosts in flight still report; nothing new starts.
	e.report(p2, jp2, "ok", "", installResult(t, jp2, true, false))
	e.srv.StepRollouts(context.Background())
	e.noJob(p3)
	r = e.wantPhases(id, map[string]rollout.Phase{t1: "succeeded", t2: "succeeded", p1: "failed", p2: "succeeded", p3: "pending"})
	if f := member(r, p1).Jobs[0]; f.Result != "failed" || f.Status != "failed" || !strings.Contains(f.Error, "exit status 100") || *f.ExitCode != 100 {
		t.Errorf("p1's failed install: %+v", f)
	}
	// The audit names who started it and the engine's decisions, stored.
	var whats []string
	for _, a := range r.Audit {
		whats = append(whats, a.Actor+":"+a.What)
	}
	for _, w := range []string{"alice (", ":start", "engine:dispatch-install", "engine:promote", "engine:halt", "rejected start"} {
		if !strings.Contains(strings.Join(whats, " "), w) {
			t.Errorf("audit lacks %q: %v", w, whats)
		}
	}
	// The list shows it, without hosts.
	var list []api.Rollout
	e.adminJSON("GET", "/api/v1/rollouts", nil, &list)
	if len(list) != 1 || list[0].ID != id || list[0].Status != "halted" || list[0].Hosts["succeeded"] != 3 || len(list[0].Rings[0].Members) != 0 {
		t.Errorf("list: %+v", list)
	}
}

func tRolloutPauseResumeHealthRollback(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"a1": "test", "a2": "test", "a3": "prod"})
	req := api.CreateRolloutRequest{Updates: api.UpdatesSecurity, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Count: 1}, FailureBudget: rollout.Limit{Count: 1}}},
		Options: api.RolloutOptions{Options: rollout.Options{Rollback: true}, LockTimeoutSeconds: 60}}
	order := e.byID("a1", "a2", "a3")
	a1, a2, a3 := order[0], order[1], order[2]
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", req, &r)
	id := r.ID

	// The plan: one plan job per host, collected as they answer; a plan
	// that removes a package is shown refused.
	var plan api.RolloutPlan
	e.adminJSON("GET", "/api/v1/rollouts/"+id+"/plan", nil, &plan)
	if plan.Complete || len(plan.Hosts) != 3 || plan.Hosts[0].State != store.JobQueued {
		t.Fatalf("plan before answers: %+v", plan)
	}
	for _, name := range []string{a1, a2, a3} {
		j := e.oneJob(name, api.JobPlan)
		p := apply.InstallPlan{Changes: []apply.Change{{Package: "jq", Arch: "amd64", Before: "1.6-2.1", After: "1.6-2.1+deb12u1", Kind: apply.Upgrade, Requested: true}}}
		if name == a3 {
			p.Changes = append(p.Changes, apply.Change{Package: "libfoo1", Arch: "amd64", Before: "1", Kind: apply.Remove})
			p.Removes = true
		}
		e.report(name, j, "ok", "", p)
	}
	e.adminJSON("GET", "/api/v1/rollouts/"+id+"/plan", nil, &plan)
	if !plan.Complete || plan.Hosts[0].Plan == nil || plan.Hosts[0].Refused != "" || !strings.Contains(plan.Hosts[2].Refused, "removes libfoo1") {
		t.Fatalf("plan: %+v", plan)
	}
	e.noJob(a1) // a plan is asked for once

	e.command(id, "pause", http.StatusConflict) // not running yet
	e.command(id, "start", 200)
	j1 := e.oneJob(a1, api.JobInstall)
	var ip api.InstallParams
	if json.Unmarshal(j1.Params, &ip) != nil || ip.LockTimeoutSeconds != 60 || len(ip.Packages) != 2 {
		t.Fatalf("install params %s", j1.Params)
	}
	if r = e.command(id, "pause", 200); r.Status != "paused" {
		t.Fatalf("paused: %+v", r)
	}
	e.report(a1, j1, "ok", "", installResult(t, j1, true, false))
	e.srv.StepRollouts(context.Background())
	e.noJob(a2) // paused: nothing starts
	e.wantPhases(id, map[string]rollout.Phase{a1: "succeeded", a2: "pending", a3: "pending"})
	e.command(id, "resume", 200)
	e.command(id, "resume", http.StatusConflict)
	// a2 installs but fails its health gate: the rollout rolls it back.
	j2 := e.oneJob(a2, api.JobInstall)
	e.report(a2, j2, "failed", "health gates failed: http://127.0.0.1/healthz", installResult(t, j2, false, false))
	e.wantPhases(id, map[string]rollout.Phase{a1: "succeeded", a2: "rolling-back", a3: "pending"})
	rb := e.oneJob(a2, api.JobRollback)
	var rp api.RollbackParams
	if json.Unmarshal(rb.Params, &rp) != nil || rp.InstallJob != j2.ID {
		t.Fatalf("rollback params %s, want install_job %s", rb.Params, j2.ID)
	}
	e.report(a2, rb, "ok", "", api.RollbackResult{Record: "20261125T100000Z-0a1b2c3d"})
	// One failure is within the budget of 1: a3 goes on.
	e.wantPhases(id, map[string]rollout.Phase{a1: "succeeded", a2: "rolled-back", a3: "installing"})
	j3 := e.oneJob(a3, api.JobInstall)

	// Rolling back by hand needs the rollout stopped.
	code, body := e.call("POST", "/api/v1/rollouts/"+id+"/rollback", e.admin, "application/json", []byte(`{}`))
	if code != http.StatusConflict {
		t.Fatalf("rollback of a running rollout: %d %s", code, body)
	}
	e.clock.Add(time.Minute)
	e.command(id, "cancel", 200)
	var back api.RolloutRollback
	e.adminJSON("POST", "/api/v1/rollouts/"+id+"/rollback", api.RolloutRollbackRequest{Reason: "bad batch"}, &back)
	if len(back.Queued) != 1 || back.Queued[0].HostID != e.ids[a1] || len(back.Skipped) != 2 {
		t.Fatalf("rollback: %+v", back)
	}
	mj := e.oneJob(a1, api.JobRollback)
	if json.Unmarshal(mj.Params, &rp) != nil || rp.InstallJob != j1.ID {
		t.Fatalf("manual rollback params %s, want install_job %s", mj.Params, j1.ID)
	}
	e.report(a1, mj, "ok", "", api.RollbackResult{Record: "20261125T100000Z-0a1b2c3d"})
	// a3's install still reports after the cancel, and is recorded.
	e.report(a3, j3, "ok", "", installResult(t, j3, true, false))
	e.adminJSON("POST", "/api/v1/rollouts/"+id+"/rollback", api.RolloutRollbackRequest{Host: e.ids[a1]}, &back)
	if len(back.Queued) != 0 || len(back.Skipped) != 1 || !strings.Contains(back.Skipped[0].Reason, "already") {
		t.Fatalf("second rollback of a1: %+v", back)
	}
	r = e.wantPhases(id, map[string]rollout.Phase{a1: "succeeded", a2: "rolled-back", a3: "succeeded"})
	if r.Status != "cancelled" {
		t.Fatalf("status %s", r.Status)
	}
	var kinds []string
	for _, j := range member(r, a1).Jobs {
		kinds = append(kinds, j.Kind+":"+j.State)
	}
	if strings.Join(kinds, " ") != "install:done plan:done manual-rollback:done" {
		t.Errorf("a1's jobs: %v", kinds)
	}
}

func tRolloutCreateRefused(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"c1": "test"})
	ring := `"rings":[{"name":"test","hosts":{"all":true},"concurrency":{"count":1}}]`
	for _, tc := range []struct {
		body string
		want int
		msg  string
	}{
		{`{` + ring + `}`, 400, "no patch baselines"},
		{`{"updates":"some",` + ring + `}`, 400, "updates"},
		{`{"updates":"all","min_age":"soon",` + ring + `}`, 400, "min_age"},
		{`{"updates":"all","rings":[{"name":"Test/1","hosts":{"all":true},"concurrency":{"count":1}}]}`, 400, "name"},
		{`{"updates":"all","rings":[{"name":"test","hosts":{"all":true}}]}`, 400, "concurrency"},
		{`{"updates":"all","bogus":1,` + ring + `}`, 400, "unknown field"},
		{`{"updates":"all","options":{"lock_timeout_seconds":99999},` + ring + `}`, 400, "lock_timeout"},
	} {
		code, body := e.call("POST", "/api/v1/rollouts", e.admin, "application/json", []byte(tc.body))
		if code != tc.want || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.body, code, body, tc.want, tc.msg)
		}
	}
	// POST /api/v1/jobs takes the agent's job kinds with their params.
	var job api.JobStatus
	e.adminJSON("POST", "/api/v1/jobs", api.CreateJobRequest{Kind: api.JobReboot, Params: json.RawMessage(`{"if_required":true}`)}, &job)
	if j := e.oneJob("c1", api.JobReboot); j.ID != job.ID || string(j.Params) != `{"if_required":true}` {
		t.Errorf("reboot job handed out: %+v", j)
	}
	if code, body := e.call("POST", "/api/v1/rollouts/nope/start", e.admin, "", nil); code != 404 {
		t.Errorf("unknown rollout: %d %s", code, body)
	}
	// With a baseline, "approved" takes what it approves: security
	// updates of ring=test hosts, not jq's if it declines jq.
	pol := "name: test\nhosts:\n  match_labels: {ring: test}\ndecline:\n  - {package: jq, reason: pinned by the app team}\nrules:\n  - {name: security, classification: [security]}\n"
	if code, body := e.call("PUT", "/api/v1/policies/test", e.admin, "application/yaml", []byte(pol)); code != 201 {
		t.Fatalf("policy: %d %s", code, body)
	}
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", json.RawMessage(`{`+ring+`}`), &r)
	r = e.rollout(r.ID)
	if got := fmt.Sprint(member(r, "c1").Pins); got != "[libssl3:amd64=3.0.15-1~deb12u1]" {
		t.Errorf("approved pins of c1: %s; set %+v", got, r.PatchSet)
	}
}

// tRolloutReplicasStepOnce: two servers on one database (replicas) step
// the same rollout at once after a result: the next host's install is
// queued once, and neither fails.
func tRolloutReplicasStepOnce(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"r1": "test", "r2": "test", "r3": "test"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Count: 1}}}}, &r)
	e.command(r.ID, "start", 200)
	order := e.byID("r1", "r2", "r3")
	j := e.oneJob(order[0], api.JobInstall)
	body, _ := json.Marshal(api.JobResult{Status: "ok", Result: api.Raw(installResult(t, j, true, false))})
	if _, err := e.st.CompleteJob(context.Background(), j.ID, e.ids[order[0]], "ok", body, nil, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	first := e.srv
	before := e.jobCount()
	e.start() // a second replica on the same database
	second := e.srv
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			srv := first
			if i%2 == 1 {
				srv = second
			}
			errs <- srv.StepRollouts(context.Background())
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := e.jobCount(); n != before+1 {
		t.Fatalf("replicas stepping at once queued %d jobs, want 1", n-before)
	}
	e.oneJob(order[1], api.JobInstall)
	e.noJob(order[2])
	e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "succeeded", order[1]: "installing", order[2]: "pending"})
	// A host revoked with a job in flight is lost, which counts against
	// the budget (0 here): the rollout halts.
	e.adminJSON("POST", "/api/v1/hosts/"+e.ids[order[1]]+"/revoke", nil, nil)
	if err := e.srv.StepRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "succeeded", order[1]: "lost", order[2]: "pending"})
	if r.Status != "halted" || member(r, order[1]).Jobs[0].Reason != "host revoked" {
		t.Fatalf("after revoking a host in flight: %s %q %+v", r.Status, r.Reason, member(r, order[1]).Jobs)
	}
}

// tRolloutLegacyState: a rollout stored before host rows existed (its
// state one JSON document, hosts inline) is read from that document, and
// its next step moves the hosts to rows.
func tRolloutLegacyState(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"l1": "test", "l2": "test"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Count: 1}}}}, &r)
	ctx := context.Background()
	l, err := e.srv.loadRollout(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The old format, with a note the host rows do not have.
	old := l.st
	old.Hosts = slices.Clone(old.Hosts)
	h := *old.Hosts[1] // states share their hosts: change a copy
	h.Note = "from the old document"
	old.Hosts[1] = &h
	doc, _ := json.Marshal(old)
	if _, _, err := e.st.SaveRolloutStep(ctx, r.ID, store.RolloutStep{Version: l.rec.Version, State: doc, Status: string(old.Status), At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.restart() // no cached state
	name := ""
	for n, id := range e.ids {
		if id == old.Hosts[1].ID {
			name = n
		}
	}
	if got := e.rollout(r.ID); got.Hosts["pending"] != 2 || member(got, name).Note != "from the old document" {
		t.Fatalf("legacy status: %+v", got)
	}
	e.command(r.ID, "start", 200)
	order := e.byID("l1", "l2")
	e.oneJob(order[0], api.JobInstall)
	rows, _, err := e.st.RolloutHosts(ctx, r.ID)
	if err != nil || len(rows) != 2 || !strings.Contains(string(rows[1].State), "from the old document") || rows[0].Phase != "installing" {
		t.Fatalf("host rows after the first step: %+v, %v", rows, err)
	}
	rec, _ := e.st.Rollout(ctx, r.ID)
	var head map[string]json.RawMessage
	if err := json.Unmarshal(rec.State, &head); err != nil || string(head["hosts"]) != `"rows"` {
		t.Fatalf("the rollout's row still holds its hosts: %s", rec.State)
	}
	e.restart()
	e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "installing", order[1]: "pending"})
}

// tRolloutWithdrawQueued: pausing takes back the install jobs no agent
// has picked up yet (no new host starts, even one whose job waits for
// its next check-in); a job already handed out runs on. Resume hands the
// taken-back hosts new jobs, and a halt takes back the queued ones too.
func tRolloutWithdrawQueued(t *testing.T, e *rolloutEnv) {
	// One fleet for the whole test (a second e.fleet call would give
	// its hosts machine IDs the first one's have).
	e.fleet(map[string]string{"w1": "test", "w2": "test", "w3": "test", "w4": "test", "w5": "late"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "test"}}, Concurrency: rollout.Limit{Count: 3}}}}, &r)
	e.command(r.ID, "start", 200)
	order := e.byID("w1", "w2", "w3", "w4")
	j1 := e.oneJob(order[0], api.JobInstall) // handed out; the others wait for their check-in
	e.command(r.ID, "pause", 200)
	ctx := context.Background()
	_, hjs, err := e.st.Job(ctx, j1.ID)
	states := map[string]string{}
	for _, hj := range hjs {
		states[hj.HostID] = hj.State
	}
	if err != nil || states[e.ids[order[0]]] != store.JobLeased || states[e.ids[order[1]]] != store.JobWithdrawn || states[e.ids[order[2]]] != store.JobWithdrawn {
		t.Fatalf("after pause, the shared job's hosts: %v, %v", states, err)
	}
	e.noJob(order[1])
	e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "installing", order[1]: "pending", order[2]: "pending", order[3]: "pending"})
	// The host that had its job finishes it while paused.
	e.report(order[0], j1, "ok", "", installResult(t, j1, true, false))
	e.noJob(order[1])
	e.command(r.ID, "resume", 200)
	j2 := e.oneJob(order[1], api.JobInstall)
	if j2.ID == j1.ID {
		t.Fatalf("a host taken back got the withdrawn job %s again", j1.ID)
	}
	r = e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "succeeded", order[1]: "installing", order[2]: "installing", order[3]: "installing"})
	if jobs := member(r, order[1]).Jobs; len(jobs) != 2 || jobs[0].Result != "withdrawn" || jobs[0].State != store.JobWithdrawn ||
		!strings.HasSuffix(jobs[1].Key, "/install#2") {
		t.Fatalf("jobs of a host taken back: %+v", jobs)
	}
	// A failure halts (budget 0): the queued jobs are taken back.
	e.report(order[1], j2, "failed", "apt-get install: exit status 100", installResult(t, j2, true, true))
	r = e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "succeeded", order[1]: "failed", order[2]: "pending", order[3]: "pending"})
	if r.Status != "halted" {
		t.Fatalf("after a failure: %s", r.Status)
	}
	e.noJob(order[2])
	e.noJob(order[3])
	// Resuming the halted rollout accepts its failure: the hosts taken
	// back get new jobs, and the budget counts only new failures.
	r = e.command(r.ID, "resume", 200)
	if r.Status != "running" || r.Rings[0].Accepted != 1 {
		t.Fatalf("resume after the halt: %s, %+v", r.Status, r.Rings[0])
	}
	j3 := e.oneJob(order[2], api.JobInstall)
	e.oneJob(order[3], api.JobInstall)
	e.report(order[2], j3, "ok", "", installResult(t, j3, true, false))
	r = e.wantPhases(r.ID, map[string]rollout.Phase{order[0]: "succeeded", order[1]: "failed", order[2]: "succeeded", order[3]: "installing"})
	if jobs := member(r, order[2]).Jobs; len(jobs) != 3 || !strings.HasSuffix(jobs[2].Key, "/install#3") {
		t.Fatalf("jobs of a host taken back twice: %+v", jobs)
	}

	// A job the engine times out while no agent has it is taken back:
	// the host counted lost never installs late.
	var late api.Rollout
	req := api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "late", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "late"}}, Concurrency: rollout.Limit{Count: 1},
			FailureBudget: rollout.Limit{Count: 1}}}}
	req.Options.JobTimeout = rollout.Duration(time.Hour)
	e.adminJSON("POST", "/api/v1/rollouts", req, &late)
	e.command(late.ID, "start", 200)
	e.clock.Add(2 * time.Hour)
	if err := e.srv.StepRollouts(ctx); err != nil {
		t.Fatal(err)
	}
	e.noJob("w5")
	late = e.wantPhases(late.ID, map[string]rollout.Phase{"w5": "lost"})
	if jobs := member(late, "w5").Jobs; len(jobs) != 1 || jobs[0].Result != "lost" || jobs[0].State != store.JobWithdrawn {
		t.Fatalf("a timed-out job no agent had: %+v", jobs)
	}
	var whats []string
	for _, a := range r.Audit {
		if strings.HasPrefix(a.What, "withdraw") {
			whats = append(whats, a.What+" "+a.Host)
		}
	}
	if len(whats) != 4 {
		t.Errorf("audit of withdrawals: %v", whats)
	}
	if !slices.ContainsFunc(r.Audit, func(a api.RolloutAudit) bool { return a.What == "accept-failures" }) {
		t.Errorf("audit lacks the accepted failures")
	}
}

// tRolloutRevokedBeforeStart: a host revoked after the rollout was
// created and before its job was queued is lost at the step that queues
// it (its agent will never take the job), and the budget counts it.
func tRolloutRevokedBeforeStart(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"v1": "test", "v2": "test"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Count: 2}, FailureBudget: rollout.Limit{Count: 1}}}}, &r)
	e.adminJSON("POST", "/api/v1/hosts/"+e.ids["v2"]+"/revoke", nil, nil)
	e.command(r.ID, "start", 200)
	if err := e.srv.StepRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = e.wantPhases(r.ID, map[string]rollout.Phase{"v1": "installing", "v2": "lost"})
	if jobs := member(r, "v2").Jobs; len(jobs) != 1 || jobs[0].Reason != "host revoked" {
		t.Fatalf("jobs of the revoked host: %+v", jobs)
	}
}

// tRolloutRetryExclude: an operator retries a failed host, which gets a
// new install job (not its first again), and excludes a host of the next
// ring, which is never handed one; what the engine refuses is a 409
// saying why, a retry or exclude without a host a 400.
func tRolloutRetryExclude(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"t1": "test", "t2": "test", "p1": "prod", "p2": "prod"})
	req := api.CreateRolloutRequest{Updates: api.UpdatesSecurity, Rings: []rollout.Ring{
		{Name: "test", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "test"}}, Concurrency: rollout.Limit{Count: 2}},
		{Name: "prod", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "prod"}}, Concurrency: rollout.Limit{Count: 2}}}}
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", req, &r)
	id := r.ID
	hostCmd := func(cmd, host string, want int) string {
		t.Helper()
		body, _ := json.Marshal(api.RolloutCommand{Host: host, Reason: "ticket OPS-7"})
		code, out := e.call("POST", "/api/v1/rollouts/"+id+"/"+cmd, e.admin, "application/json", body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", cmd, host, code, out, want)
		}
		return out
	}
	e.command(id, "start", 200)
	j1, j2 := e.oneJob("t1", api.JobInstall), e.oneJob("t2", api.JobInstall)
	e.report("t1", j1, "ok", "", installResult(t, j1, true, false))
	e.report("t2", j2, "failed", "apt-get install: exit status 100", installResult(t, j2, true, true))
	if r = e.wantPhases(id, map[string]rollout.Phase{"t1": "succeeded", "t2": "failed", "p1": "pending", "p2": "pending"}); r.Status != "halted" {
		t.Fatalf("status %s, want halted (budget 0)", r.Status)
	}
	hostCmd("retry", "", http.StatusBadRequest)
	if code, out := e.call("POST", "/api/v1/rollouts/"+id+"/pause", e.admin, "application/json", []byte(`{"host":"x"}`)); code != http.StatusBadRequest {
		t.Fatalf("pause with a host: %d %s", code, out)
	}
	if out := hostCmd("retry", e.ids["t1"], http.StatusConflict); !strings.Contains(out, "is succeeded; only a failed") {
		t.Fatalf("retry of a host that succeeded: %s", out)
	}
	if out := hostCmd("retry", e.ids["p1"], http.StatusConflict); !strings.Contains(out, "only hosts of the current ring test") {
		t.Fatalf("retry of a host of the next ring: %s", out)
	}
	// Rolled back by hand while halted (its install kept a record).
	var back api.RolloutRollback
	e.adminJSON("POST", "/api/v1/rollouts/"+id+"/rollback", api.RolloutRollbackRequest{Host: e.ids["t2"]}, &back)
	if len(back.Queued) != 1 {
		t.Fatalf("rollback of t2: %+v", back)
	}
	mj := e.oneJob("t2", api.JobRollback)
	e.report("t2", mj, "ok", "", api.RollbackResult{Record: "20261125T100000Z-0a1b2c3d"})
	hostCmd("exclude", "p2", 200) // by its hostname
	var after api.Rollout
	if json.Unmarshal([]byte(hostCmd("retry", e.ids["t2"], 200)), &after); after.Status != "halted" || after.Hosts["pending"] != 2 {
		t.Fatalf("the retry's answer: %s, %v", after.Status, after.Hosts)
	}
	e.wantPhases(id, map[string]rollout.Phase{"t1": "succeeded", "t2": "pending", "p1": "pending", "p2": "excluded"})
	e.noJob("t2") // halted: the retried host waits for the resume
	e.command(id, "resume", 200)
	again := e.oneJob("t2", api.JobInstall)
	if again.ID == j2.ID || string(again.Params) != string(j2.Params) {
		t.Fatalf("the retry's job %s %s, the first %s %s: want a new job with the same pins", again.ID, again.Params, j2.ID, j2.Params)
	}
	e.report("t2", again, "ok", "", installResult(t, again, true, false))
	p1 := e.oneJob("p1", api.JobInstall)
	e.noJob("p2")
	e.report("p1", p1, "ok", "", installResult(t, p1, true, false))
	r = e.wantPhases(id, map[string]rollout.Phase{"t1": "succeeded", "t2": "succeeded", "p1": "succeeded", "p2": "excluded"})
	if r.Status != "completed" {
		t.Fatalf("status %s %s", r.Status, r.Reason)
	}
	var jobs []string
	for _, j := range member(r, "t2").Jobs {
		jobs = append(jobs, fmt.Sprintf("%s %s retried=%v", strings.TrimPrefix(j.Key, id+"/"), j.Result, j.Retried))
	}
	if got, want := strings.Join(jobs, "; "), "test/"+e.ids["t2"]+"/install failed retried=true; test/"+e.ids["t2"]+"/install#2 succeeded retried=false; "+
		"test/"+e.ids["t2"]+"/manual-rollback  retried=false"; got != want {
		t.Errorf("t2's jobs:\n got %s\nwant %s", got, want)
	}
	// Its second install may be rolled back by hand too, under a key of
	// its own.
	e.adminJSON("POST", "/api/v1/rollouts/"+id+"/rollback", api.RolloutRollbackRequest{Host: e.ids["t2"]}, &back)
	if len(back.Queued) != 1 {
		t.Fatalf("rollback of t2's second install: %+v", back)
	}
	var rp api.RollbackParams
	if mj = e.oneJob("t2", api.JobRollback); json.Unmarshal(mj.Params, &rp) != nil || rp.InstallJob != again.ID {
		t.Fatalf("rollback of the second install: %s, want install_job %s", mj.Params, again.ID)
	}
	r = e.rollout(id)
	var kinds []string
	for _, j := range member(r, "t2").Jobs {
		kinds = append(kinds, j.Kind+" "+strings.TrimPrefix(j.Key, id+"/test/"+e.ids["t2"]+"/"))
	}
	if got, want := strings.Join(kinds, "; "), "install install; install install#2; manual-rollback manual-rollback; manual-rollback manual-rollback#2"; got != want {
		t.Errorf("t2's jobs after the second rollback:\n got %s\nwant %s", got, want)
	}
	var audit []string
	for _, a := range r.Audit {
		if strings.HasPrefix(a.Actor, "alice ") && (a.What == "retry" || a.What == "exclude") {
			audit = append(audit, a.What+" "+a.Host+" "+a.Detail)
		}
	}
	if got, want := strings.Join(audit, "; "), "exclude "+e.ids["p2"]+" ticket OPS-7; retry "+e.ids["t2"]+" ticket OPS-7"; got != want {
		t.Errorf("audit:\n got %s\nwant %s", got, want)
	}
}
