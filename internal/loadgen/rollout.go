package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/health"
)

// ModeRollout is phase 3 as a rollout: the rollout is created over the
// enrolled fleet and started through Config.Rollout, and every host
// checks in round after round (Concurrency in flight), answering each
// job it is handed as an agent whose installs all succeed would, until
// every host of a ring has been handed its install job and answered it,
// or Duration has passed.
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
// were handed out and its last result was accepted.
type RingReport struct {
	Name      string  `json:"name"`
	Hosts     int     `json:"hosts"`
	HandedOut int     `json:"handed_out"`
	Answered  int     `json:"answered"`
	FirstS    float64 `json:"first_handed_out_s"`
	LastS     float64 `json:"last_handed_out_s"`
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
	for _, name := range slices.Sorted(maps.Keys(rings)) {
		r := rings[name]
		rep.Rings = append(rep.Rings, r.RingReport)
	}
	rep.RolloutID = id
	return []*PhaseReport{created, rep}, nil
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
		if err != nil {
			return
		}
		for _, j := range resp.Jobs {
			install := j.Kind == api.JobInstall
			if install {
				ring.handed(time.Since(t0).Seconds())
			}
			result, err := agentResult(j)
			if err != nil {
				res.add(0, err)
				continue
			}
			t := time.Now()
			err = h.client.JobResult(ctx, j.ID, result)
			res.add(time.Since(t), err)
			if err == nil && install {
				ring.answered(time.Since(t0).Seconds())
				installed = true
			}
		}
	})
	return installed
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
