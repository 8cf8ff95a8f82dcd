package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
)

// The rollout driver: package rollout decides, this file persists. Each
// rollout is stepped one Step at a time (a lock per rollout in this
// process, the stored version between replicas): load the state, turn
// the results of its hosts' current jobs into events, Step, and save the
// new state with the jobs of its actions in one transaction, each job
// under the action's idempotency key. A step that finds a result stored
// but not yet applied (the server stopped in between) applies it then,
// so job results are never lost and never applied twice.

// rolloutJobID is the queue's job ID for an idempotency key: the same key
// always gives the same ID, which names the job's files on the agent.
func rolloutJobID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "ro-" + hex.EncodeToString(sum[:12])
}

// rolloutLock serialises the steps of one rollout in this process.
func (s *Server) rolloutLock(id string) *sync.Mutex {
	mu, _ := s.rolloutLocks.LoadOrStore(id, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// loadRollout reads a rollout and its state.
func (s *Server) loadRollout(ctx context.Context, id string) (store.Rollout, rollout.State, error) {
	r, err := s.store.Rollout(ctx, id)
	if err != nil {
		return r, rollout.State{}, err
	}
	var st rollout.State
	if err := json.Unmarshal(r.State, &st); err != nil {
		return r, st, fmt.Errorf("stored state of rollout %s: %w", id, err)
	}
	return r, st, nil
}

// stepRollout applies commands and every stored result the state has not
// seen, at the server's clock, and saves the outcome. A concurrent save
// by another replica makes it start over from the stored state.
// It returns the state before and after the step.
func (s *Server) stepRollout(ctx context.Context, id string, commands ...rollout.Event) (rollout.State, rollout.State, error) {
	mu := s.rolloutLock(id)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		r, st, err := s.loadRollout(ctx, id)
		if err != nil {
			return st, st, err
		}
		events, err := s.resultEvents(ctx, id, &st)
		if err != nil {
			return st, st, err
		}
		now := s.cfg.Now()
		next, acts := rollout.Step(st, append(events, commands...), now)
		state, err := json.Marshal(next)
		if err != nil {
			return st, st, err
		}
		if len(acts) == 0 && string(state) == string(r.State) {
			return st, st, nil // nothing happened: do not count a version
		}
		var req api.CreateRolloutRequest
		if err := json.Unmarshal(r.Spec, &req); err != nil {
			return st, st, fmt.Errorf("stored request of rollout %s: %w", id, err)
		}
		jobs, err := actionJobs(id, req.Options, acts, now)
		if err != nil {
			return st, st, err
		}
		var audit []store.RolloutAudit
		for _, a := range next.Audit[min(len(st.Audit), len(next.Audit)):] {
			audit = append(audit, store.RolloutAudit{At: a.At, Actor: a.Actor, What: a.What, Ring: a.Ring, Host: a.Host, Detail: a.Detail})
		}
		_, queued, err := s.store.SaveRolloutStep(ctx, id, r.Version, state, string(next.Status), now, jobs, audit)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return st, st, err
		}
		for _, a := range acts {
			switch a.Kind {
			case rollout.ActionHalt, rollout.ActionPromote, rollout.ActionComplete:
				s.log.Info("rollout "+string(a.Kind), "rollout", id, "ring", a.Ring, "reason", a.Reason)
			}
		}
		if len(queued) > 0 {
			s.log.Info("rollout jobs queued", "rollout", id, "jobs", len(queued), "status", next.Status)
		}
		return st, next, nil
	}
}

// actionJobs turns the dispatch actions into queue jobs.
func actionJobs(id string, opts api.RolloutOptions, acts []rollout.Action, now time.Time) ([]store.RolloutJob, error) {
	var jobs []store.RolloutJob
	for _, a := range acts {
		var (
			kind   string
			params any
		)
		switch a.Kind {
		case rollout.ActionInstall:
			kind, params = api.JobInstall, api.InstallParams{Packages: a.Pins, AllowRemovals: opts.AllowRemovals, LockTimeoutSeconds: opts.LockTimeoutSeconds}
		case rollout.ActionReboot:
			kind, params = api.JobReboot, api.RebootParams{IfRequired: true}
		case rollout.ActionRollback:
			kind, params = api.JobRollback, api.RollbackParams{InstallJob: rolloutJobID(a.Install), LockTimeoutSeconds: opts.LockTimeoutSeconds}
		default:
			continue
		}
		raw := api.Raw(params)
		if _, err := api.ParseJobParams(kind, raw); err != nil {
			return nil, fmt.Errorf("rollout %s: %s job of host %s: %w", id, kind, a.Host, err)
		}
		jobs = append(jobs, store.RolloutJob{Key: a.Key, HostID: a.Host, Ring: a.Ring,
			Job: store.Job{ID: rolloutJobID(a.Key), Kind: kind, Params: raw, CreatedAt: now, CreatedBy: "rollout " + id}})
	}
	return jobs, nil
}

// resultEvents reads the queue's answers to the hosts' current jobs: a
// stored result becomes the event the engine waits for, a job handed out
// becomes "started", a revoked host's job "lost".
func (s *Server) resultEvents(ctx context.Context, id string, st *rollout.State) ([]rollout.Event, error) {
	current := map[string]rollout.Job{} // key → job
	for _, h := range st.Hosts {
		if n := len(h.Jobs); n > 0 && h.Jobs[n-1].Result == "" {
			current[h.Jobs[n-1].Key] = h.Jobs[n-1]
		}
	}
	if len(current) == 0 {
		return nil, nil
	}
	jobs, err := s.store.RolloutJobs(ctx, id)
	if err != nil {
		return nil, err
	}
	var events []rollout.Event
	for _, rj := range jobs {
		j, ok := current[rj.Key]
		if !ok {
			continue
		}
		hj := rj.HostJob
		if hj.State == store.JobDone {
			events = append(events, resultEvent(rj))
			continue
		}
		h, err := s.store.Host(ctx, hj.HostID)
		switch {
		case err != nil:
			return nil, err
		case !h.RevokedAt.IsZero():
			events = append(events, rollout.Event{Type: rollout.EventLost, Host: hj.HostID, Key: rj.Key, At: h.RevokedAt,
				Reason: "host revoked"})
		case hj.State == store.JobLeased && j.Started.IsZero():
			events = append(events, rollout.Event{Type: rollout.EventStarted, Host: hj.HostID, Key: rj.Key})
		}
	}
	return events, nil
}

// resultEvent reads an agent's result as the engine's event.
func resultEvent(rj store.RolloutJobRef) rollout.Event {
	hj := rj.HostJob
	e := rollout.Event{Host: hj.HostID, Key: rj.Key, At: hj.FinishedAt}
	var res api.JobResult
	if err := json.Unmarshal(hj.Result, &res); err != nil {
		e.Type, e.Reason = rollout.EventFailed, "unreadable result: "+err.Error()
		return e
	}
	e.Reason = res.Error
	ok := hj.Status == "ok"
	switch rj.Kind {
	case api.JobInstall:
		var ir api.InstallResult
		_ = json.Unmarshal(res.Result, &ir) // an empty result reads as zero
		switch {
		case ok:
			e.Type = rollout.EventSucceeded
			e.RebootRequired = ir.Reboot != nil && ir.Reboot.Required
		case ir.Error == "" && ir.Health != nil && !ir.Health.Healthy && allOK(ir.Packages):
			e.Type = rollout.EventHealthFailed
		default:
			e.Type = rollout.EventFailed
		}
	case api.JobRollback:
		e.Type = rollout.EventFailed
		if ok {
			e.Type = rollout.EventRolledBack
		}
	default: // reboot
		e.Type = rollout.EventFailed
		if ok {
			e.Type = rollout.EventSucceeded
		}
	}
	return e
}

func allOK(pkgs []apply.PackageResult) bool {
	for _, p := range pkgs {
		if !p.OK {
			return false
		}
	}
	return len(pkgs) > 0
}

// RunRollouts steps every rollout that may move with the clock (soak,
// windows, time-outs) or has results to apply, every interval, until ctx
// ends. Job results also step their rollout at once (jobResult).
func (s *Server) RunRollouts(ctx context.Context, every time.Duration) {
	if err := s.ResumeRollouts(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("rollouts", "err", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.StepRollouts(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rollouts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ResumeRollouts queues again, by their keys, the jobs every active
// rollout's state has in flight (rollout.Outstanding). The state and its
// jobs are saved in one transaction, so this finds them queued and queues
// nothing; it guards against a database restored from a backup taken
// between the two, or jobs deleted by hand.
func (s *Server) ResumeRollouts(ctx context.Context) error {
	list, err := s.store.ListRollouts(ctx, string(rollout.StatusRunning), string(rollout.StatusPaused),
		string(rollout.StatusHalted), string(rollout.StatusCancelled))
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range list {
		var st rollout.State
		var req api.CreateRolloutRequest
		if err := errors.Join(json.Unmarshal(r.State, &st), json.Unmarshal(r.Spec, &req)); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
			continue
		}
		jobs, err := actionJobs(r.ID, req.Options, rollout.Outstanding(st), s.cfg.Now())
		if err == nil && len(jobs) > 0 {
			var queued []string
			if queued, err = s.store.QueueRolloutJobs(ctx, r.ID, jobs, nil); len(queued) > 0 {
				s.log.Warn("rollout jobs queued again", "rollout", r.ID, "jobs", queued)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// StepRollouts steps every rollout that is not created or completed.
func (s *Server) StepRollouts(ctx context.Context) error {
	list, err := s.store.ListRollouts(ctx, string(rollout.StatusRunning), string(rollout.StatusPaused),
		string(rollout.StatusHalted), string(rollout.StatusCancelled))
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range list {
		if _, _, err := s.stepRollout(ctx, r.ID); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// rolloutResult steps the rollout a job belongs to once its result is
// stored. Errors are logged: the result is stored, and the next tick
// applies it.
func (s *Server) rolloutResult(ctx context.Context, jobID string) {
	ref, err := s.store.RolloutJobOf(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err == nil && !rolloutStepKinds[ref.Kind] {
		return
	}
	if err == nil {
		err = s.stepRolloutShared(ctx, ref.RolloutID)
	}
	if err != nil {
		s.log.Warn("rollout step after a job result", "job", jobID, "err", err)
	}
}

// rolloutStepKinds are the job kinds whose results the engine waits for.
var rolloutStepKinds = map[string]bool{api.JobInstall: true, api.JobReboot: true, api.JobRollback: true}
