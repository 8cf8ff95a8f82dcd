package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
)

// TestHolds runs the held check-in (long poll) tests on SQLite and on
// PostgreSQL, over real HTTPS with the agent's client.
func TestHolds(t *testing.T) {
	tests := map[string]func(*testing.T, string){
		"WokenByJob":              tHoldWokenByJob,
		"EndsAtServerLimit":       tHoldEndsAtServerLimit,
		"OtherReplicaQueues":      tHoldOtherReplicaQueues,
		"DrainAnswersAtOnce":      tHoldDrainAnswersAtOnce,
		"NotHeldWhenInventoryDue": tHoldNotHeldWhenInventoryDue,
		"RevokedGetsNoJob":        tHoldRevokedGetsNoJob,
		"AgentGoneLeasesNothing":  tHoldAgentGoneLeasesNothing,
		"TwoHeldOneGetsTheJob":    tHoldTwoHeldOneGetsTheJob,
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for name, test := range tests {
			t.Run(backend+"/"+name, func(t *testing.T) { test(t, backend) })
		}
	}
}

// tRolloutWakesHeld: the steps that start a ring queue its installs and
// wake the hosts' held check-ins themselves (no sweep here); the hosts of
// the next ring stay held until its promotion.
func tRolloutWakesHeld(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"a1": "test", "a2": "test", "b1": "prod"})
	e.srv.cfg.Hold = time.Minute
	e.srv.holds.every = time.Hour
	t.Cleanup(e.srv.Drain)
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "test", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "test"}}, Concurrency: rollout.Limit{Count: 2}},
		{Name: "prod", Hosts: rollout.Selector{MatchLabels: map[string]string{"ring": "prod"}}, Concurrency: rollout.Limit{Count: 1}}}}, &r)
	held := map[string]<-chan heldAnswer{}
	for _, name := range []string{"a1", "a2", "b1"} {
		h, err := e.st.Host(context.Background(), e.ids[name])
		if err != nil {
			t.Fatal(err)
		}
		c := e.agents[name]
		ch := make(chan heldAnswer, 1)
		go func() {
			resp, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: h.InventoryHash, WaitSeconds: 50})
			ch <- heldAnswer{resp: resp, err: err}
		}()
		held[name] = ch
	}
	waitHeld(t, e.srv, 3)
	e.command(r.ID, "start", 200)
	for _, name := range []string{"a1", "a2"} {
		a := answer(t, held[name], 20*time.Second)
		if len(a.resp.Jobs) != 1 || a.resp.Jobs[0].Kind != api.JobInstall {
			t.Fatalf("%s's held check-in answered %+v, want its install", name, a.resp)
		}
		e.report(name, a.resp.Jobs[0], "ok", "", installResult(t, a.resp.Jobs[0], true, false))
	}
	a := answer(t, held["b1"], 20*time.Second)
	if len(a.resp.Jobs) != 1 || a.resp.Jobs[0].Kind != api.JobInstall {
		t.Fatalf("b1's held check-in answered %+v after the test ring succeeded, want its install", a.resp)
	}
}

// holdEnv is a server holding check-ins up to hold, its listener closed
// only after its held check-ins were answered.
func holdEnv(t *testing.T, backend string, hold time.Duration) *env {
	e := newEnvWith(t, backend, func(c *Config) { c.Hold = hold })
	t.Cleanup(e.srv.Drain) // runs before ts.Close, which waits for requests
	return e
}

// parked enrolls host n with its inventory stored, so that its check-ins
// may be held.
func (e *env) parked(n int) (*agent.Client, string) {
	e.t.Helper()
	c, enrolled, err := e.enroll(e.token(api.CreateTokenRequest{}), machineID(n))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.PutInventory(context.Background(), inventory("1.6-2")); err != nil {
		e.t.Fatal(err)
	}
	return c, enrolled.HostID
}

type heldAnswer struct {
	resp    api.CheckInResponse
	err     error
	elapsed time.Duration
}

// holdCheckIn starts a check-in asking to wait up to wait and returns
// where its answer will come.
func holdCheckIn(c *agent.Client, wait time.Duration) <-chan heldAnswer {
	ch := make(chan heldAnswer, 1)
	go func() {
		start := time.Now()
		resp, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: inventory("1.6-2").Hash(), WaitSeconds: int(wait / time.Second)})
		ch <- heldAnswer{resp, err, time.Since(start)}
	}()
	return ch
}

// waitHeld waits until srv holds n check-ins.
func waitHeld(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.holds.count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d check-ins held, want %d", srv.holds.count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// answer waits for a held answer, failing after limit.
func answer(t *testing.T, ch <-chan heldAnswer, limit time.Duration) heldAnswer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("held check-in: %v", a.err)
		}
		return a
	case <-time.After(limit):
		t.Fatalf("no answer to the held check-in within %s", limit)
		return heldAnswer{}
	}
}

func tHoldWokenByJob(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	e.srv.holds.every = time.Hour // no sweep: the jobs API wakes the host itself
	c, host := e.parked(1)
	ch := holdCheckIn(c, 50*time.Second)
	waitHeld(t, e.srv, 1)
	var job api.JobStatus
	e.adminJSON("POST", "/api/v1/jobs", api.CreateJobRequest{Kind: "scan", Hosts: []string{host}}, &job)
	a := answer(t, ch, 20*time.Second) // far below the 50 s asked for
	if !a.resp.Held || len(a.resp.Jobs) != 1 || a.resp.Jobs[0].ID != job.ID {
		t.Fatalf("held check-in answered %+v, want held with job %s", a.resp, job.ID)
	}
	e.adminJSON("GET", "/api/v1/jobs/"+job.ID, nil, &job)
	if job.Hosts[0].State != store.JobLeased || job.Hosts[0].Attempts != 1 {
		t.Fatalf("job after the held hand-out: %+v", job.Hosts[0])
	}
	waitHeld(t, e.srv, 0)
	// Timed apart in the request metrics, since its time is the wait.
	e.wantMetric(`patchloop_http_request_duration_seconds_count{code="200",route="POST /api/v1/agent/checkin (held)"} 1`)
	e.wantMetric(`patchloop_checkins_held 0`)
}

func tHoldEndsAtServerLimit(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Second)
	c, _ := e.parked(1)
	a := answer(t, holdCheckIn(c, 50*time.Second), 20*time.Second)
	if !a.resp.Held || len(a.resp.Jobs) != 0 || a.elapsed < 750*time.Millisecond {
		t.Fatalf("answer %+v after %s, want held for 75-100%% of the server's 1 s, without jobs", a.resp, a.elapsed)
	}
	// A wait too large for a Duration is held to the limit too.
	huge, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: inventory("1.6-2").Hash(), WaitSeconds: 1 << 62})
	if err != nil || !huge.Held {
		t.Fatalf("check-in asking to wait 2^62 s: %+v, %v", huge, err)
	}
	// Not asking to wait is answered at once, and not held.
	r, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: inventory("1.6-2").Hash()})
	if err != nil || r.Held {
		t.Fatalf("check-in without wait: %+v, %v", r, err)
	}
}

// tHoldOtherReplicaQueues: a job queued through another server sharing
// the database wakes the check-in held here, by the sweep.
func tHoldOtherReplicaQueues(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	c, host := e.parked(1)
	other, err := New(context.Background(), Config{Store: e.st, Engine: e.srv.engine, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ch := holdCheckIn(c, 50*time.Second)
	waitHeld(t, e.srv, 1)
	job := store.Job{ID: "from-the-other-replica", Kind: api.JobScan, CreatedAt: e.clock.Now()}
	if err := other.store.CreateJob(context.Background(), job, []string{host}); err != nil {
		t.Fatal(err)
	}
	a := answer(t, ch, 20*time.Second)
	if len(a.resp.Jobs) != 1 || a.resp.Jobs[0].ID != job.ID {
		t.Fatalf("held check-in answered %+v, want job %s", a.resp, job.ID)
	}
}

func tHoldDrainAnswersAtOnce(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	c, _ := e.parked(1)
	ch := holdCheckIn(c, 50*time.Second)
	waitHeld(t, e.srv, 1)
	e.srv.Drain()
	// Not held: the agent waits its interval rather than coming back
	// within a second to a server that is going away.
	if a := answer(t, ch, 20*time.Second); a.resp.Held || len(a.resp.Jobs) != 0 {
		t.Fatalf("drained check-in answered %+v", a.resp)
	}
	// After the drain nothing is held: agents fall back to the interval.
	if a := answer(t, holdCheckIn(c, 50*time.Second), 20*time.Second); a.resp.Held {
		t.Fatalf("check-in after the drain was held: %+v", a.resp)
	}
}

func tHoldNotHeldWhenInventoryDue(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	c, _ := e.parked(1)
	r, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: inventory("1.7-1").Hash(), WaitSeconds: 50})
	if err != nil || r.Held || !r.SendInventory {
		t.Fatalf("check-in with a new inventory: %+v, %v; want answered at once, asking for it", r, err)
	}
}

func tHoldRevokedGetsNoJob(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	c, host := e.parked(1)
	ch := holdCheckIn(c, 50*time.Second)
	waitHeld(t, e.srv, 1)
	if err := e.st.RevokeHost(context.Background(), host, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	job := store.Job{ID: "after-revocation", Kind: api.JobScan, CreatedAt: e.clock.Now()}
	if err := e.st.CreateJob(context.Background(), job, []string{host}); err != nil {
		t.Fatal(err)
	}
	e.srv.holds.wake(host)
	if a := answer(t, ch, 20*time.Second); len(a.resp.Jobs) != 0 {
		t.Fatalf("revoked host's held check-in got %+v", a.resp.Jobs)
	}
	_, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: inventory("1.6-2").Hash(), WaitSeconds: 5})
	if se, ok := err.(*agent.StatusError); !ok || !strings.Contains(se.Reason, "revoked") {
		t.Fatalf("check-in of the revoked host: %v", err)
	}
}

// tHoldAgentGoneLeasesNothing: an agent that goes away while held is
// forgotten (gauge back to 0), and a job queued afterwards is not leased
// to it but handed out at its next check-in.
func tHoldAgentGoneLeasesNothing(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	c, host := e.parked(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.CheckIn(ctx, api.CheckInRequest{InventoryHash: inventory("1.6-2").Hash(), WaitSeconds: 50})
		done <- err
	}()
	waitHeld(t, e.srv, 1)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled held check-in returned no error")
	}
	waitHeld(t, e.srv, 0)
	var job api.JobStatus
	e.adminJSON("POST", "/api/v1/jobs", api.CreateJobRequest{Kind: "scan", Hosts: []string{host}}, &job)
	e.adminJSON("GET", "/api/v1/jobs/"+job.ID, nil, &job)
	if job.Hosts[0].State != store.JobQueued {
		t.Fatalf("job after its agent went away: %+v", job.Hosts[0])
	}
	if r, err := c.CheckIn(context.Background(), api.CheckInRequest{InventoryHash: inventory("1.6-2").Hash()}); err != nil || len(r.Jobs) != 1 {
		t.Fatalf("next check-in: %+v, %v", r, err)
	}
}

// tHoldTwoHeldOneGetsTheJob: two held check-ins of one host (an agent
// restarted while its old request is still held) are both woken; the job
// goes to one, and the other goes on waiting.
func tHoldTwoHeldOneGetsTheJob(t *testing.T, backend string) {
	e := holdEnv(t, backend, time.Minute)
	c, host := e.parked(1)
	first, second := holdCheckIn(c, 50*time.Second), holdCheckIn(c, 50*time.Second)
	waitHeld(t, e.srv, 2)
	var job api.JobStatus
	e.adminJSON("POST", "/api/v1/jobs", api.CreateJobRequest{Kind: "scan", Hosts: []string{host}}, &job)
	var got heldAnswer
	var still <-chan heldAnswer
	select {
	case got = <-first:
		still = second
	case got = <-second:
		still = first
	case <-time.After(20 * time.Second):
		t.Fatal("neither held check-in was answered")
	}
	if got.err != nil || len(got.resp.Jobs) != 1 || got.resp.Jobs[0].ID != job.ID {
		t.Fatalf("answered check-in: %+v, %v", got.resp, got.err)
	}
	waitHeld(t, e.srv, 1)
	select {
	case a := <-still:
		t.Fatalf("the other check-in was answered too: %+v, %v", a.resp, a.err)
	case <-time.After(300 * time.Millisecond):
	}
	e.srv.Drain()
	if a := answer(t, still, 20*time.Second); len(a.resp.Jobs) != 0 {
		t.Fatalf("the other check-in got %+v", a.resp.Jobs)
	}
}
