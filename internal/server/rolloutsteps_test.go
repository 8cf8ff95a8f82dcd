package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
)

// TestRolloutResultsShareSteps: results posted at once by eight agents
// share steps (never more steps than results), and each agent's POST
// returns only once its own result is applied.
func TestRolloutResultsShareSteps(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := newRolloutEnv(t, backend)
			const n = 8
			hosts := map[string]string{}
			for i := range n {
				hosts[fmt.Sprintf("s%d", i)] = "test"
			}
			e.fleet(hosts)
			var r api.Rollout
			e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
				{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Percent: 100}}}}, &r)
			e.command(r.ID, "start", 200)
			jobs := map[string]api.Job{}
			for name := range hosts {
				jobs[name] = e.oneJob(name, api.JobInstall)
			}
			ctx := context.Background()
			before, err := e.st.Rollout(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, n)
			for name, j := range jobs {
				go func() {
					res := api.JobResult{Status: "ok", Result: api.Raw(installResult(t, j, true, false))}
					if err := e.agents[name].JobResult(ctx, j.ID, res); err != nil {
						errs <- err
						return
					}
					l, err := e.srv.loadRollout(ctx, r.ID)
					if err != nil {
						errs <- err
						return
					}
					if len(l.st.Hosts) == 0 {
						errs <- fmt.Errorf("rollout %s has no hosts", r.ID)
						return
					}
					for _, h := range l.st.Hosts {
						if h.ID == e.ids[name] && h.Phase != rollout.PhaseSucceeded {
							errs <- fmt.Errorf("%s's POST returned with the host %s", name, h.Phase)
							return
						}
					}
					errs <- nil
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			after := e.wantPhases(r.ID, map[string]rollout.Phase{"s0": "succeeded", "s1": "succeeded", "s2": "succeeded",
				"s3": "succeeded", "s4": "succeeded", "s5": "succeeded", "s6": "succeeded", "s7": "succeeded"})
			if after.Status != "completed" || after.Version-before.Version > n {
				t.Errorf("%s after %d steps for %d results", after.Status, after.Version-before.Version, n)
			}
			t.Logf("%d results applied in %d steps", n, after.Version-before.Version)
		})
	}
}

// startTwo starts a rollout of one ring over hosts s0 and s1 (SQLite)
// and returns each host's install job.
func startTwo(t *testing.T) (*rolloutEnv, api.Rollout, map[string]api.Job) {
	e := newRolloutEnv(t, "sqlite")
	e.fleet(map[string]string{"s0": "test", "s1": "test"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Percent: 100}}}}, &r)
	e.command(r.ID, "start", 200)
	return e, r, map[string]api.Job{"s0": e.oneJob("s0", api.JobInstall), "s1": e.oneJob("s1", api.JobInstall)}
}

// hostJobState is the queue state of host name's row of job id.
func hostJobState(t *testing.T, e *rolloutEnv, id, name string) string {
	t.Helper()
	_, hjs, err := e.st.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, hj := range hjs {
		if hj.HostID == e.ids[name] {
			return hj.State
		}
	}
	return "none"
}

// TestRolloutResultLateStep: while a step cannot run (the rollout's lock
// is taken), a result's POST is answered after ResultWait with its result
// stored, and a POST whose agent stops waiting fails on the agent's side
// only. Neither cancels the step: once the lock is free it applies both
// results, with no tick and no other request.
func TestRolloutResultLateStep(t *testing.T) {
	e, r, jobs := startTwo(t)
	result := func(name string) api.JobResult {
		return api.JobResult{Status: "ok", Result: api.Raw(installResult(t, jobs[name], true, false))}
	}
	e.srv.cfg.ResultWait = 300 * time.Millisecond
	mu := e.srv.rolloutLock(r.ID)
	mu.Lock()
	ctx := context.Background()
	t0 := time.Now()
	if err := e.agents["s0"].JobResult(ctx, jobs["s0"].ID, result("s0")); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	if d := time.Since(t0); d < e.srv.cfg.ResultWait || d > 5*time.Second {
		t.Errorf("s0's POST answered after %s, want ResultWait (%s)", d, e.srv.cfg.ResultWait)
	}
	// s1's agent gives up once its result is stored, while the POST
	// waits for the step.
	gone, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- e.agents["s1"].JobResult(gone, jobs["s1"].ID, result("s1")) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if hostJobState(t, e, jobs["s1"].ID, "s1") == store.JobDone {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			mu.Unlock()
			t.Fatal("s1's result not stored")
		}
	}
	cancel()
	if err := <-errc; err == nil {
		t.Error("s1's POST, given up, succeeded")
	}
	if st := hostJobState(t, e, jobs["s0"].ID, "s0"); st != store.JobDone {
		t.Errorf("s0's result not stored: job %s", st)
	}
	l, err := e.srv.loadRollout(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := l.st.Lookup(e.ids["s0"]); h.Phase == rollout.PhaseSucceeded {
		t.Error("s0 succeeded while no step could run")
	}
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.rollout(r.ID)
		if got.Status == "completed" {
			e.wantPhases(r.ID, map[string]rollout.Phase{"s0": "succeeded", "s1": "succeeded"})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s (%s) after the lock was freed: %s", got.Status, got.Reason, e.phases(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJobResultBusy: with every result slot taken, a result waits for
// one up to resultSlotWait and is then refused (503, busy), not stored; a
// result waiting when a slot frees is taken; a stored result's slot is
// free again while its POST waits for its step.
func TestJobResultBusy(t *testing.T) {
	e, r, jobs := startTwo(t)
	ctx := context.Background()
	post := func(name string) error {
		res := api.JobResult{Status: "ok", Result: api.Raw(installResult(t, jobs[name], true, false))}
		return e.agents[name].JobResult(ctx, jobs[name].ID, res)
	}
	state := func(name string) string { return hostJobState(t, e, jobs[name].ID, name) }
	defer func(d time.Duration) { resultSlotWait = d }(resultSlotWait)
	resultSlotWait = 300 * time.Millisecond
	for range cap(e.srv.resultSlots) {
		e.srv.resultSlots <- struct{}{}
	}
	t0 := time.Now()
	err := post("s0")
	var se *agent.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(se.Reason, "busy") {
		t.Fatalf("result with every slot taken: %v, want 503 busy", err)
	}
	if se.RetryAfter != 5*time.Second {
		t.Errorf("refusal's Retry-After: %s, want 5 s", se.RetryAfter)
	}
	if d := time.Since(t0); d < resultSlotWait {
		t.Errorf("refused after %s, before resultSlotWait (%s)", d, resultSlotWait)
	}
	if st := state("s0"); st != store.JobLeased {
		t.Fatalf("refused result: job %s, want it still leased", st)
	}
	// A slot that frees while the result waits: taken.
	resultSlotWait = 5 * time.Second
	waited := make(chan error, 1)
	go func() { waited <- post("s0") }()
	time.Sleep(200 * time.Millisecond)
	<-e.srv.resultSlots
	if err := <-waited; err != nil {
		t.Fatalf("result waiting when a slot freed: %v", err)
	}
	if st := state("s0"); st != store.JobDone {
		t.Fatalf("result taken after waiting: job %s, want done", st)
	}
	// One slot free: taken by s1's result while it is stored, free again
	// while its POST waits for the step (the rollout's lock held).
	mu := e.srv.rolloutLock(r.ID)
	mu.Lock()
	e.srv.cfg.ResultWait = 5 * time.Second
	done := make(chan error, 1)
	go func() { done <- post("s1") }()
	deadline := time.Now().Add(5 * time.Second)
	for state("s1") != store.JobDone {
		if time.Now().After(deadline) {
			mu.Unlock()
			t.Fatal("s1's result not stored with a slot free")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case e.srv.resultSlots <- struct{}{}:
		<-e.srv.resultSlots
	case <-time.After(time.Second):
		t.Error("the stored result's slot is still taken while its POST waits for the step")
	}
	select {
	case err := <-done:
		t.Errorf("s1's POST returned while its step could not run: %v", err)
	default:
	}
	mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range cap(e.srv.resultSlots) - 1 {
		<-e.srv.resultSlots
	}
}

// TestStopSteps: StopSteps waits for a step run for a result (held on
// the rollout's lock), which then ends; afterwards a result starts no
// step and its POST is answered at once, its result stored.
func TestStopSteps(t *testing.T) {
	e, r, jobs := startTwo(t)
	post := func(name string) error {
		res := api.JobResult{Status: "ok", Result: api.Raw(installResult(t, jobs[name], true, false))}
		return e.agents[name].JobResult(context.Background(), jobs[name].ID, res)
	}
	e.srv.cfg.ResultWait = 200 * time.Millisecond
	mu := e.srv.rolloutLock(r.ID)
	mu.Lock()
	if err := post("s0"); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { e.srv.StopSteps(); close(stopped) }()
	select {
	case <-stopped:
		t.Error("StopSteps returned while a step waited for the rollout's lock")
	case <-time.After(300 * time.Millisecond):
	}
	mu.Unlock()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("StopSteps still waits after the step could run")
	}
	e.srv.cfg.ResultWait = 10 * time.Second
	t0 := time.Now()
	if err := post("s1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("a result after StopSteps answered after %s: it waited for a step", d)
	}
	if st := hostJobState(t, e, jobs["s1"].ID, "s1"); st != store.JobDone {
		t.Errorf("s1's result after StopSteps: job %s, want done", st)
	}
}
