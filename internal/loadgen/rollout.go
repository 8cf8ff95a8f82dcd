package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/health"
)

// ModeRollout is phase 3 as a rollout: the rollout is created over the
// enrolled fleet and started through Config.Rollout, and its members
// answer each job they are handed as an agent whose installs all succeed
// would, until every member has been handed its install job and answered
// it, or Duration has passed. The members check in round after round
// (Concurrency in flight); or, with Config.Wait, as agents of a server
// that holds check-ins (long polls) do: each member keeps a check-in held
// on the server, and checks in again as soon as it is answered, and the
// rollout is started once the server holds a check-in of every member
// (phase rollout-park, Duration at most).
const ModeRollout = "rollout"

// RolloutDriver is what the rollout mode needs of the admin API.
type RolloutDriver interface {
	// Create creates the rollout (status created) and returns its ID and
	// each member's ring by host ID (hosts with nothing to install left
	// out: they get no job).
	Create(ctx context.Context) (id string, members map[string]string, err error)
	// Start starts it.
	Start(ctx context.Context, id string) error
}

// RingReport is one ring's figures of a rollout phase: when (seconds
// after the start command was sent) its first and last install jobs
// were handed out, its last result was sent (the last attempt of any
// host, a refused one sent again), and its last result was accepted
// (the server answers a result once the step that reads it is done, or
// after its ResultWait: the last one's, when the ring's hosts promote
// the next ring, is that promotion's).
type RingReport struct {
	Name      string  `json:"name"`
	Hosts     int     `json:"hosts"`
	HandedOut int     `json:"handed_out"`
	Answered  int     `json:"answered"`
	FirstS    float64 `json:"first_handed_out_s"`
	LastS     float64 `json:"last_handed_out_s"`
	SentS     float64 `json:"last_result_sent_s"`
	AnsweredS float64 `json:"last_answered_s"`
}

// ringTrack records a ring's progress.
type ringTrack struct {
	mu sync.Mutex
	RingReport
}

func (r *ringTrack) handed(at float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.HandedOut == 0 || at < r.FirstS {
		r.FirstS = at
	}
	r.HandedOut++
	r.LastS = max(r.LastS, at)
}

func (r *ringTrack) sent(at float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.SentS = max(r.SentS, at)
}

func (r *ringTrack) answered(at float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Answered++
	r.AnsweredS = max(r.AnsweredS, at)
}

// rolloutPhases creates the rollout (phase rollout-create) and runs it
// to every member's install answered (phase rollout).
func (g *gen) rolloutPhases(ctx context.Context) ([]*PhaseReport, error) {
	if g.cfg.Rollout == nil {
		return nil, errors.New("loadgen: mode rollout needs a rollout driver")
	}
	create := newRecorder()
	ph := g.begin("rollout-create")
	t0 := time.Now()
	id, members, err := g.cfg.Rollout.Create(ctx)
	create.add(time.Since(t0), err)
	created := ph.end(ctx, namedRecorder{"create", create})
	if err != nil {
		return []*PhaseReport{created}, fmt.Errorf("loadgen: create the rollout: %w", err)
	}
	rings := map[string]*ringTrack{}
	var todo []*simHost
	hostRing := map[*simHost]*ringTrack{}
	for _, h := range g.ready() {
		name, ok := members[h.id]
		if !ok {
			continue
		}
		if rings[name] == nil {
			rings[name] = &ringTrack{RingReport: RingReport{Name: name}}
		}
		rings[name].Hosts++
		hostRing[h] = rings[name]
		todo = append(todo, h)
	}
	if g.cfg.Wait > 0 {
		return g.heldRollout(ctx, id, created, todo, hostRing, rings)
	}
	start, ci, res := newRecorder(), newRecorder(), newRecorder()
	ph = g.begin("rollout")
	t0 = time.Now()
	err = g.cfg.Rollout.Start(ctx, id)
	start.add(time.Since(t0), err)
	if err != nil {
		return []*PhaseReport{created, ph.end(ctx, namedRecorder{"start", start})}, fmt.Errorf("loadgen: start rollout %s: %w", id, err)
	}
	g.cfg.Log.Info("rollout started", "rollout", id, "members", len(todo))
	deadline := t0.Add(g.cfg.Duration)
	var (
		mu   sync.Mutex
		done = map[*simHost]bool{}
	)
	for len(todo) > 0 && ctx.Err() == nil && time.Now().Before(deadline) {
		round := time.Now()
		g.forEach(ctx, todo, func(h *simHost) {
			if g.answerJobs(ctx, h, t0, hostRing[h], ci, res) {
				mu.Lock()
				done[h] = true
				mu.Unlock()
			}
		})
		todo = slices.DeleteFunc(todo, func(h *simHost) bool { return done[h] })
		g.cfg.Log.Info("rollout round", "seconds", time.Since(round).Seconds(), "hosts left", len(todo))
		if len(todo) > 0 && time.Since(round) < 200*time.Millisecond {
			time.Sleep(200 * time.Millisecond) // nothing handed out yet (e.g. a soak): do not spin
		}
	}
	rep := ph.end(ctx, namedRecorder{"start", start}, namedRecorder{"checkin", ci}, namedRecorder{"result", res})
	rep.Rings, rep.RolloutID = ringReports(rings), id
	return []*PhaseReport{created, rep}, nil
}

// ringReports are the rings' figures, by name.
func ringReports(rings map[string]*ringTrack) []RingReport {
	var out []RingReport
	for _, name := range slices.Sorted(maps.Keys(rings)) {
		out = append(out, rings[name].RingReport)
	}
	return out
}

// heldRun is the state the members of a held rollout share.
type heldRun struct {
	ring map[*simHost]*ringTrack
	// sem has a slot per check-in being sent (Concurrency): a request
	// finding its transport's connections full dials one.
	sem chan struct{}
	// ci counts the check-ins answered: phase rollout-park's recorder
	// until the start, then phase rollout's.
	ci  atomic.Pointer[recorder]
	res *recorder
	t0  atomic.Int64 // when the start command was sent, Unix ns; 0 before
}

// since is the seconds from the start to t.
func (r *heldRun) since(t time.Time) float64 { return t.Sub(time.Unix(0, r.t0.Load())).Seconds() }

// heldRollout runs the rollout by held check-ins (Config.Wait): every
// member loops on check-ins (holdLoop) from before the start, which is
// sent once the server holds a check-in of every member (phase
// rollout-park, Duration at most); phase rollout then lasts until every
// member answered its install job, or Duration.
func (g *gen) heldRollout(ctx context.Context, id string, created *PhaseReport, members []*simHost, hostRing map[*simHost]*ringTrack, rings map[string]*ringTrack) ([]*PhaseReport, error) {
	r := &heldRun{ring: hostRing, sem: make(chan struct{}, g.cfg.Concurrency), res: newRecorder()}
	parkCI, start, ci := newRecorder(), newRecorder(), newRecorder()
	r.ci.Store(parkCI)
	loops, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }() // on errors
	var left atomic.Int64
	left.Store(int64(len(members)))
	allDone := make(chan struct{})
	if len(members) == 0 {
		close(allDone)
	}
	ph := g.begin("rollout-park")
	for _, h := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g.holdLoop(loops, h, r) && left.Add(-1) == 0 {
				close(allDone)
			}
		}()
	}
	err := g.waitHeld(ctx, len(members), ph.start.Add(g.cfg.Duration))
	parked := ph.end(ctx, namedRecorder{"checkin", parkCI})
	if err != nil {
		return []*PhaseReport{created, parked}, err
	}
	g.cfg.Log.Info("members parked", "members", len(members), "seconds", parked.Seconds)

	ph = g.begin("rollout")
	t0 := time.Now()
	r.t0.Store(t0.UnixNano())
	r.ci.Store(ci)
	err = g.cfg.Rollout.Start(ctx, id)
	start.add(time.Since(t0), err)
	if err != nil {
		return []*PhaseReport{created, parked, ph.end(ctx, namedRecorder{"start", start})}, fmt.Errorf("loadgen: start rollout %s: %w", id, err)
	}
	g.cfg.Log.Info("rollout started", "rollout", id, "members", len(members))
	timer := time.NewTimer(time.Until(t0.Add(g.cfg.Duration)))
	defer timer.Stop()
	select {
	case <-allDone:
	case <-timer.C:
	case <-ctx.Done():
	}
	stop()
	wg.Wait()
	rep := ph.end(ctx, namedRecorder{"start", start}, namedRecorder{"checkin", ci}, namedRecorder{"result", r.res})
	rep.Rings, rep.RolloutID = ringReports(rings), id
	return []*PhaseReport{created, parked, rep}, nil
}

// holdLoop is member h of a held rollout: it checks in asking the server
// to hold its answer up to Wait, answers the jobs the answer brings as
// answerJobs does, and checks in again, until it answered its install job
// (it returns true) or ctx ends. A failed check-in is counted and retried
// after the agent's back-off; one the server answered at once without a
// job (it does not hold check-ins, or is shutting down) after a second,
// so as not to spin; an inventory the server asks for is sent first.
// The latency counted of a check-in answered after the start is from the
// start, if it was sent before: the time the server took to hand its job.
func (g *gen) holdLoop(ctx context.Context, h *simHost, r *heldRun) bool {
	req := api.CheckInRequest{Facts: h.facts, InventoryHash: h.inv.Hash, WaitSeconds: int(g.cfg.Wait / time.Second)}
	failures := 0
	for ctx.Err() == nil {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		var once sync.Once
		release := func() { once.Do(func() { <-r.sem }) }
		installed, again := false, false
		var failed error
		g.turn(ctx, g.cfg.Reconnect, func(ctx context.Context) {
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { release() }})
			sent := time.Now()
			resp, err := h.client.CheckIn(ctx, req)
			release()
			if ctx.Err() != nil {
				return // the run is over: not counted
			}
			if t0 := r.t0.Load(); t0 > sent.UnixNano() {
				sent = time.Unix(0, t0)
			}
			r.ci.Load().add(time.Since(sent), err)
			if err != nil {
				failed = err
				return
			}
			if resp.SendInventory {
				// As an agent does; uncounted, and only then can the
				// server hold the host's check-ins.
				if err := h.client.PutInventory(ctx, h.inv.Inv); err != nil {
					failed = err
					return
				}
			}
			installed = g.answer(ctx, h, resp.Jobs, r.since, r.ring[h], r.res)
			again = !resp.Held && len(resp.Jobs) == 0 && !resp.SendInventory
		})
		if installed {
			return true
		}
		switch {
		case failed != nil:
			failures++
			sleep(ctx, agent.RetryWait(failed, failures, agent.DefaultMaxBackoff))
		case again:
			failures = 0
			sleep(ctx, time.Second)
		default:
			failures = 0
		}
	}
	return false
}

// waitHeld waits until the server holds n check-ins (its gauge
// patchloop_checkins_held), reading its /metrics every 500 ms, and fails
// at the deadline.
func (g *gen) waitHeld(ctx context.Context, n int, deadline time.Time) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	logged := time.Now()
	for {
		st, err := scrapeMetrics(ctx, g.metrics, g.cfg.Server)
		if err == nil && st.CheckInsHeld >= int64(n) {
			return nil
		}
		if time.Since(logged) >= 10*time.Second {
			g.cfg.Log.Info("parking", "held", st.CheckInsHeld, "members", n, "err", err)
			logged = time.Now()
		}
		if !time.Now().Before(deadline) {
			if err != nil {
				return fmt.Errorf("loadgen: held check-ins: %w", err)
			}
			return fmt.Errorf("loadgen: the server holds %d check-ins of the %d members after %s", st.CheckInsHeld, n, g.cfg.Duration)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// answerJobs checks host h in and answers every job it is handed: an
// install with every pin installed and healthy, anything else with ok.
// It reports whether the host answered its install job.
func (g *gen) answerJobs(ctx context.Context, h *simHost, t0 time.Time, ring *ringTrack, ci, res *recorder) bool {
	installed := false
	g.turn(ctx, g.cfg.Reconnect, func(ctx context.Context) {
		t := time.Now()
		resp, err := h.client.CheckIn(ctx, api.CheckInRequest{Facts: h.facts, InventoryHash: h.inv.Hash})
		ci.add(time.Since(t), err)
		if err == nil {
			installed = g.answer(ctx, h, resp.Jobs, func(t time.Time) float64 { return t.Sub(t0).Seconds() }, ring, res)
		}
	})
	return installed
}

// answer answers host h's jobs as answerJobs says (each failed report
// counted, and retried), recording in ring
// when (since the start, by since) its install job was handed out and
// answered. It reports whether the host answered its install job.
func (g *gen) answer(ctx context.Context, h *simHost, jobs []api.Job, since func(time.Time) float64, ring *ringTrack, res *recorder) bool {
	installed := false
	for _, j := range jobs {
		install := j.Kind == api.JobInstall
		if install {
			ring.handed(since(time.Now()))
		}
		result, err := g.result(j)
		if err != nil {
			res.add(0, err)
			continue
		}
		if install && g.cfg.InstallTime > 0 {
			half := g.cfg.InstallTime / 2
			if sleep(ctx, half+rand.N(g.cfg.InstallTime-half+1)); ctx.Err() != nil {
				return false
			}
		}
		// As an agent does, a report that failed for want of the server
		// (an error or a 5xx) is sent again, after the agent's back-off
		// (1-2 s, 2-4 s, ..., or the server's Retry-After), until it is
		// taken or refused: the job stays leased to this host.
		for failures := 1; ; failures++ {
			t := time.Now()
			if install {
				ring.sent(since(t))
			}
			err = h.client.JobResultJSON(ctx, j.ID, result)
			res.add(time.Since(t), err)
			var se *agent.StatusError
			if err == nil || ctx.Err() != nil || errors.As(err, &se) && se.Code < 500 {
				break
			}
			if sleep(ctx, agent.RetryWait(err, failures, agent.DefaultMaxBackoff)); ctx.Err() != nil {
				break
			}
		}
		if err == nil && install {
			ring.answered(since(time.Now()))
			installed = true
		}
	}
	return installed
}

// result is agentResult(j) in JSON, built and encoded once per job: the
// hosts a rollout hands one job (its hosts with the same pins) answer
// with the same result, which a real agent's differs from only in its
// times. Building it (decoding the job's pins, encoding a result of each)
// was a sixth of the load generator's time, on the cores the server
// shares with it, and encoding the built result for each host an eighth.
func (g *gen) result(j api.Job) ([]byte, error) {
	if b, ok := g.results.Get(j.ID); ok {
		return b, nil
	}
	r, err := agentResult(j)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err == nil {
		g.results.Put(j.ID, b)
	}
	return b, err
}

// agentResult is what an agent whose installs succeed reports for job j,
// in the agent's result format.
func agentResult(j api.Job) (api.JobResult, error) {
	if j.Kind != api.JobInstall {
		return api.JobResult{Status: "ok", Result: json.RawMessage(`{}`)}, nil
	}
	p, err := api.ParseJobParams(j.Kind, j.Params)
	if err != nil {
		return api.JobResult{}, fmt.Errorf("install job %s: %w", j.ID, err)
	}
	now := time.Now().UTC()
	var ir api.InstallResult
	for _, pin := range p.(*api.InstallParams).Packages {
		ir.Packages = append(ir.Packages, apply.PackageResult{Package: pin.Package, Arch: pin.Arch, Kind: apply.Upgrade,
			Want: pin.Version, Now: pin.Version, Status: "ii ", OK: true})
	}
	ir.Started, ir.DurationMS, ir.Log = now, 1, "simulated by patchloop loadgen\n"
	ir.Record, ir.Healthy = now.Format("20060102T150405Z")+"-loadgen", true
	ir.Health = &health.Report{Healthy: true, Checks: []health.Result{{Name: "dpkg --audit", Kind: "dpkg", Status: "pass"}}}
	return api.JobResult{Status: "ok", Result: api.Raw(ir)}, nil
}
