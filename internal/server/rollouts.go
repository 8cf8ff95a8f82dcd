package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

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

// sharedJobID is the ID of a job the hosts of one ring share because
// they get the same parameters: the same pins (named by pinsRef) or none.
// It stays the same for the same (rollout, ring, kind, pins), so a host
// is handed it at most once (a host has one ring and one key per kind).
func sharedJobID(rolloutID, ring, kind, pins string) string {
	return rolloutJobID(rolloutID + "/" + ring + "/" + kind + "/" + pins)
}

// again is the "#n" a key of a job dispatched again after a withdrawal
// ends in ("" for the first dispatch): it makes the shared job a new one.
func again(key string) string {
	if i := strings.LastIndexByte(key, '#'); i >= 0 {
		return key[i:]
	}
	return ""
}

// pinsRef names a list of pins by the SHA-256 of its lines
// "package\tarch\tversion\n" (not of its JSON, which a new field of
// apply.Pin would change) and returns its JSON; an empty list is "".
func pinsRef(pins []apply.Pin) (string, []byte) {
	if len(pins) == 0 {
		return "", nil
	}
	h := sha256.New()
	for _, p := range pins {
		fmt.Fprintf(h, "%s\t%s\t%s\n", p.Package, p.Arch, p.Version)
	}
	b, _ := json.Marshal(pins) // pins always marshal
	return hex.EncodeToString(h.Sum(nil)), b
}

// pinRefs names pin lists by the list's first element: hosts that share
// a list share its backing array (the freeze hands out one slice per
// distinct list, and loading decodes each stored list once), so each
// list is hashed once.
type pinRefs map[pinsKey]string

type pinsKey struct {
	first *apply.Pin
	n     int
}

func (r pinRefs) ref(pins []apply.Pin) string {
	if len(pins) == 0 {
		return ""
	}
	k := pinsKey{&pins[0], len(pins)}
	if ref, ok := r[k]; ok {
		return ref
	}
	ref, _ := pinsRef(pins)
	r[k] = ref
	return ref
}

// cachedRollout is a rollout's state at a stored version. States are
// never modified (Step copies), so readers share them without a lock;
// refs is used by steps only, under the rollout's lock.
type cachedRollout struct {
	version int
	st      rollout.State // without audit
	refs    pinRefs
}

// rolloutLock serialises the steps of one rollout in this process.
func (s *Server) rolloutLock(id string) *sync.Mutex {
	mu, _ := s.rolloutLocks.LoadOrStore(id, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// loadedRollout is a rollout's record and state (without audit).
type loadedRollout struct {
	rec  store.Rollout
	st   rollout.State
	refs pinRefs
	// legacy is set when the stored state still holds its hosts inline
	// (written before rollout_hosts): the next save moves them to rows.
	legacy bool
}

// loadRollout reads a rollout's record and its state: from this
// process's cache when the stored version is the cached one, else from
// the head row and the host rows.
func (s *Server) loadRollout(ctx context.Context, id string) (loadedRollout, error) {
	rec, err := s.store.Rollout(ctx, id)
	if err != nil {
		return loadedRollout{rec: rec}, err
	}
	l := loadedRollout{rec: rec}
	if c, ok := s.rolloutStates.Load(id); ok {
		if c := c.(*cachedRollout); c.version == rec.Version {
			l.st, l.refs = c.st, c.refs
			return l, nil
		}
	}
	head, legacy, err := readHead(rec)
	if err != nil {
		return l, err
	}
	l.st, l.refs = head, pinRefs{}
	if legacy {
		l.legacy = true
		return l, nil
	}
	rows, lists, err := s.store.RolloutHosts(ctx, id)
	if err != nil {
		return l, err
	}
	pins := map[string][]apply.Pin{"": nil}
	for _, p := range lists {
		var list []apply.Pin
		if err := json.Unmarshal(p.Pins, &list); err != nil {
			return l, fmt.Errorf("stored pins %s of rollout %s: %w", p.Hash, id, err)
		}
		if ref, _ := pinsRef(list); ref != p.Hash {
			return l, fmt.Errorf("stored pins %s of rollout %s: content hashes to %s", p.Hash, id, ref)
		}
		pins[p.Hash] = list
		if len(list) > 0 {
			l.refs[pinsKey{&list[0], len(list)}] = p.Hash
		}
	}
	l.st.Hosts = make([]*rollout.HostState, len(rows))
	states := make([]rollout.HostState, len(rows)) // one allocation
	for i, row := range rows {
		h := &states[i]
		l.st.Hosts[i] = h
		list, ok := pins[row.Pins]
		switch {
		case row.Idx != i:
			return l, fmt.Errorf("stored hosts of rollout %s: row %d is host %d", id, i, row.Idx)
		case !ok:
			return l, fmt.Errorf("stored host %s of rollout %s: no pins %s", row.HostID, id, row.Pins)
		}
		if err := json.Unmarshal(row.State, h); err != nil || h.ID != row.HostID {
			return l, fmt.Errorf("stored host %s of rollout %s: %v", row.HostID, id, errors.Join(err, fmt.Errorf("state of host %q", h.ID)))
		}
		h.Pins = list
	}
	if !l.st.Idle() { // a finished rollout's status is read from the rows each time
		s.rolloutStates.Store(id, &cachedRollout{version: rec.Version, st: l.st, refs: l.refs})
	}
	return l, nil
}

// hostRows are the rows of the hosts at idx of st, with the pin lists
// they name.
func hostRows(st rollout.State, idx []int, refs pinRefs) ([]store.RolloutHost, []store.RolloutPins, error) {
	rows := make([]store.RolloutHost, 0, len(idx))
	var lists []store.RolloutPins
	seen := map[string]bool{"": true}
	for _, i := range idx {
		h := *st.Hosts[i]
		ref := refs.ref(h.Pins)
		if !seen[ref] {
			seen[ref] = true
			_, b := pinsRef(h.Pins)
			lists = append(lists, store.RolloutPins{Hash: ref, Pins: b})
		}
		h.Pins = nil
		b, err := json.Marshal(h)
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, store.RolloutHost{Idx: i, HostID: h.ID, Pins: ref, Phase: string(h.Phase), State: b})
	}
	return rows, lists, nil
}

// storedHead is a state without its hosts and audit, as the rollout's
// row keeps it. Its "hosts" is the string "rows": a server from before
// rollout_hosts, still running during an upgrade, then fails to read the
// state instead of stepping a rollout without hosts. Before, "hosts" was
// the list of hosts.
type storedHead struct {
	rollout.State
	Hosts json.RawMessage `json:"hosts"`
}

const hostsInRows = `"rows"`

func headJSON(st rollout.State) ([]byte, error) {
	st.Hosts, st.Audit = nil, nil
	return json.Marshal(storedHead{State: st, Hosts: json.RawMessage(hostsInRows)})
}

// readHead reads a rollout row's state; legacy is set when it holds its
// hosts (stored before rollout_hosts), which are then in the state.
func readHead(rec store.Rollout) (st rollout.State, legacy bool, err error) {
	var h storedHead
	if err := json.Unmarshal(rec.State, &h); err != nil {
		return st, false, fmt.Errorf("stored state of rollout %s: %w", rec.ID, err)
	}
	st = h.State
	st.Audit = nil
	switch raw := string(h.Hosts); raw {
	case hostsInRows:
		return st, false, nil
	case "", "null":
		return st, false, fmt.Errorf("stored state of rollout %s: no hosts", rec.ID)
	}
	if err := json.Unmarshal(h.Hosts, &st.Hosts); err != nil {
		return st, false, fmt.Errorf("stored state of rollout %s: hosts: %w", rec.ID, err)
	}
	return st, true, nil
}

// stepRollout applies commands and every stored result the state has not
// seen, at the server's clock, and saves the outcome: the rollout's row,
// the rows of the hosts that changed, the jobs of the actions and what
// the step saw of jobs, in one transaction. A concurrent save by another
// replica makes it start over from the stored state. It returns the
// state before and after the step; the audit of the state after is the
// step's.
func (s *Server) stepRollout(ctx context.Context, id string, commands ...rollout.Event) (rollout.State, rollout.State, error) {
	mu := s.rolloutLock(id)
	mu.Lock()
	defer mu.Unlock()
	prev, next, err := s.stepOnce(ctx, id, commands...)
	if err == nil && len(withdrawKinds(next.Status)) > 0 && next.Status != prev.Status {
		// Take back at once what no agent got yet.
		_, _, err = s.stepOnce(ctx, id)
	}
	return prev, next, err
}

// withdrawKinds are the kinds of queued jobs a rollout in this status
// takes back before any agent gets them: "no new host starts" must hold
// for hosts whose job waits for their next check-in too. A paused or
// cancelled rollout also holds its reboots; a halted one still reboots
// hosts that installed. Rollbacks are never taken back.
func withdrawKinds(st rollout.Status) []string {
	switch st {
	case rollout.StatusPaused, rollout.StatusCancelled:
		return []string{api.JobInstall, api.JobReboot}
	case rollout.StatusHalted:
		return []string{api.JobInstall}
	}
	return nil
}

// lostJobs are the keys of the jobs the engine gave up on (time-out) of
// these hosts, never seen handed out: to be taken back if still queued.
// Rollbacks are never taken back.
func lostJobs(hosts []*rollout.HostState) []string {
	var keys []string
	for _, h := range hosts {
		for _, j := range h.Jobs { // a retried host's lost jobs too
			if j.Result == "lost" && j.Started.IsZero() && j.Kind != rollout.JobRollback {
				keys = append(keys, j.Key)
			}
		}
	}
	return keys
}

// withdrawable are the keys of the current jobs a rollout in its status
// takes back, of hosts not seen to have them yet.
func withdrawable(st rollout.State) []string {
	kinds := withdrawKinds(st.Status)
	if len(kinds) == 0 {
		return nil
	}
	var keys []string
	for _, h := range st.Hosts {
		if j, ok := h.Current(); ok && j.Started.IsZero() && slices.Contains(kinds, string(j.Kind)) {
			keys = append(keys, j.Key)
		}
	}
	return keys
}

func (s *Server) stepOnce(ctx context.Context, id string, commands ...rollout.Event) (rollout.State, rollout.State, error) {
	for attempt := 0; ; attempt++ {
		l, err := s.loadRollout(ctx, id)
		st := l.st
		if err != nil {
			return st, st, err
		}
		if keys := withdrawable(st); len(keys) > 0 {
			if n, err := s.store.WithdrawRolloutJobs(ctx, id, keys); err != nil {
				return st, st, err
			} else if n > 0 {
				s.log.Info("rollout jobs withdrawn", "rollout", id, "jobs", n, "status", st.Status)
			}
		}
		events, seen, err := s.resultEvents(ctx, id, &st)
		if err != nil {
			return st, st, err
		}
		now := s.cfg.Now()
		next, acts := rollout.Step(st, append(events, commands...), now)
		head, err := headJSON(next)
		if err != nil {
			return st, st, err
		}
		changed := rollout.ChangedHosts(st, next)
		if l.legacy {
			changed = make([]int, len(next.Hosts))
			for i := range changed {
				changed[i] = i
			}
		}
		if len(acts) == 0 && len(changed) == 0 && len(seen) == 0 && len(next.Audit) == 0 && string(head) == string(l.rec.State) {
			return st, st, nil // nothing happened: do not count a version
		}
		var req api.CreateRolloutRequest
		if err := json.Unmarshal(l.rec.Spec, &req); err != nil {
			return st, st, fmt.Errorf("stored request of rollout %s: %w", id, err)
		}
		jobs, err := s.actionJobs(ctx, id, req.Options, acts, l.refs, now)
		if err != nil {
			return st, st, err
		}
		rows, lists, err := hostRows(next, changed, l.refs)
		if err != nil {
			return st, st, err
		}
		var audit []store.RolloutAudit
		for _, a := range next.Audit {
			audit = append(audit, store.RolloutAudit{At: a.At, Actor: a.Actor, What: a.What, Ring: a.Ring, Host: a.Host, Detail: a.Detail})
		}
		version, queued, err := s.store.SaveRolloutStep(ctx, id, store.RolloutStep{Version: l.rec.Version, State: head,
			Status: string(next.Status), At: now, Hosts: rows, Pins: lists, Jobs: jobs, Seen: seen, Audit: audit})
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return st, st, err
		}
		if len(queued) > 0 {
			s.wakeJobs(jobs)
		}
		// A job the engine gave up on (its time-out) and no agent has yet
		// is taken back: its host must not install after being counted lost.
		// (A failure here is retried when the server starts: resumeRollout.)
		// (Of a host lost before and now retried or excluded too: its lost
		// job is history, and must not run after the host's new one.)
		var lost []string
		for _, i := range changed {
			lost = append(lost, lostJobs(next.Hosts[i:i+1])...)
		}
		if n, err := s.store.WithdrawRolloutJobs(ctx, id, lost); err != nil {
			s.log.Warn("rollout: withdraw the jobs of hosts lost", "rollout", id, "err", err)
		} else if n > 0 {
			s.log.Info("rollout jobs of lost hosts withdrawn", "rollout", id, "jobs", n)
		}
		if next.Idle() { // kept in memory only while it may move
			s.rolloutStates.Delete(id)
		} else {
			cached := next
			cached.Audit = nil
			s.rolloutStates.Store(id, &cachedRollout{version: version, st: cached, refs: l.refs})
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

// actionJobs turns the dispatch actions into queue jobs. Hosts of a ring
// with the same pins share their install and rollback jobs, all hosts
// of a ring its reboot job: the job's row and parameters are stored
// once, each host has its own state and result.
//
// A rollback names the job ID its install was queued under (read back:
// installs queued before jobs were shared have one of their own), and
// hosts that shared the install share the rollback.
func (s *Server) actionJobs(ctx context.Context, id string, opts api.RolloutOptions, acts []rollout.Action, refs pinRefs, now time.Time) ([]store.RolloutJob, error) {
	var installs []string
	for _, a := range acts {
		if a.Kind == rollout.ActionRollback {
			installs = append(installs, a.Install)
		}
	}
	installIDs, err := s.store.RolloutJobIDs(ctx, id, installs)
	if err != nil {
		return nil, err
	}
	var jobs []store.RolloutJob
	checked := map[string][]byte{} // job ID → its parameters
	for _, a := range acts {
		var (
			kind, jobID string
			params      any
		)
		switch a.Kind {
		case rollout.ActionInstall:
			kind, jobID = api.JobInstall, sharedJobID(id, a.Ring, api.JobInstall+again(a.Key), refs.ref(a.Pins))
			params = api.InstallParams{Packages: a.Pins, AllowRemovals: opts.AllowRemovals, LockTimeoutSeconds: opts.LockTimeoutSeconds}
		case rollout.ActionReboot:
			kind, jobID, params = api.JobReboot, sharedJobID(id, a.Ring, api.JobReboot+again(a.Key), ""), api.RebootParams{IfRequired: true}
		case rollout.ActionRollback:
			install, ok := installIDs[a.Install]
			if !ok {
				return nil, fmt.Errorf("rollout %s: rollback of host %s: its install %s was never queued", id, a.Host, a.Install)
			}
			kind, jobID = api.JobRollback, rolloutJobID("rollback of "+install)
			params = api.RollbackParams{InstallJob: install, LockTimeoutSeconds: opts.LockTimeoutSeconds}
		default:
			continue
		}
		raw, ok := checked[jobID]
		if !ok {
			raw = api.Raw(params)
			if _, err := api.ParseJobParams(kind, raw); err != nil {
				return nil, fmt.Errorf("rollout %s: %s job of host %s: %w", id, kind, a.Host, err)
			}
			checked[jobID] = raw
		}
		jobs = append(jobs, store.RolloutJob{Key: a.Key, HostID: a.Host, Ring: a.Ring,
			Job: store.Job{ID: jobID, Kind: kind, Params: raw, CreatedAt: now, CreatedBy: "rollout " + id}})
	}
	return jobs, nil
}

// resultEvents reads the queue's news of the rollout's jobs: a stored
// result of a host's current job becomes the event the engine waits for,
// its job handed out becomes "started", a revoked host's job "lost".
// seen says, by key, what the step has then seen of each job read.
func (s *Server) resultEvents(ctx context.Context, id string, st *rollout.State) ([]rollout.Event, map[string]int, error) {
	ups, err := s.store.RolloutJobUpdates(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var events []rollout.Event
	seen := map[string]int{}
	for _, u := range ups {
		hj := u.HostJob
		h, _ := st.Lookup(hj.HostID)
		j, ok := h.Current()
		current := ok && j.Key == u.Key
		seen[u.Key] = u.News
		if !current {
			continue
		}
		switch {
		case hj.State == store.JobDone:
			events = append(events, resultEvent(u.RolloutJobRef))
		case hj.State == store.JobWithdrawn:
			events = append(events, rollout.Event{Type: rollout.EventWithdrawn, Host: hj.HostID, Key: u.Key,
				Reason: "taken back before the host got it: rollout " + string(st.Status)})
		case !u.HostRevokedAt.IsZero():
			events = append(events, rollout.Event{Type: rollout.EventLost, Host: hj.HostID, Key: u.Key, At: u.HostRevokedAt,
				Reason: "host revoked"})
		case hj.State == store.JobLeased && j.Started.IsZero():
			events = append(events, rollout.Event{Type: rollout.EventStarted, Host: hj.HostID, Key: u.Key})
		}
	}
	return events, seen, nil
}

// resultEvent reads an agent's result as the engine's event.
func resultEvent(rj store.RolloutJobRef) rollout.Event {
	hj := rj.HostJob
	e := rollout.Event{Host: hj.HostID, Key: rj.Key, At: hj.FinishedAt}
	var res outcome
	err := hj.ResultErr // says "stored result unreadable" itself
	if err == nil {
		if res, err = readOutcome(hj.Result); err != nil {
			err = fmt.Errorf("unreadable result: %w", err)
		}
	}
	if err != nil {
		e.Type, e.Reason = rollout.EventFailed, err.Error()
		return e
	}
	e.Reason = res.Error
	ok := hj.Status == "ok"
	switch rj.Kind {
	case api.JobInstall:
		ir := res.Result
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

// outcome is what a step reads of a job result (api.JobResult, with an
// api.InstallResult inside): decoding only these fields skips the rest,
// the per-package versions and the log, which made reading results most
// of a step's time.
type outcome struct {
	Error  string `json:"error"`
	Result struct {
		Error    string      `json:"error"`
		Packages []packageOK `json:"packages"`
		Health   *struct {
			Healthy bool `json:"healthy"`
		} `json:"health"`
		Reboot *struct {
			Required bool `json:"required"`
		} `json:"reboot"`
	} `json:"result"`
}

// readOutcome decodes a stored job result (or its summary). A result
// whose inner part is not an install result reads as an empty one, as
// far as it reads (an error only when the whole is not a job result).
func readOutcome(data []byte) (outcome, error) {
	var res api.JobResult
	if err := jsonv2.Unmarshal(data, &res, lenient); err != nil {
		return outcome{}, err
	}
	return outcomeOf(res), nil
}

// lenient decodes stored results as encoding/json did (api.DecodeJobResult
// refuses these at the door now; results stored before it did not).
var lenient = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), jsonv1.MatchCaseSensitiveDelimiter(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// outcomeOf is the outcome of a decoded job result.
func outcomeOf(res api.JobResult) outcome {
	o := outcome{Error: res.Error}
	_ = jsonv2.Unmarshal(res.Result, &o.Result, lenient) // as far as it reads
	return o
}

// summaryOf is what a step reads of a job result's outcome, stored with
// the result (store.CompleteJob): the outcome, with the packages reduced
// to one that is ok when all are (allOK), so that a step reads and
// decodes a hundred bytes instead of the whole result (every package's
// versions and the log, 10 KB and more for a real patch set). It reads
// as the result does (readOutcome, resultEvent).
func summaryOf(o outcome) []byte {
	if pkgs := o.Result.Packages; len(pkgs) > 0 {
		o.Result.Packages = []packageOK{{OK: allOK(pkgs)}}
	}
	b, _ := json.Marshal(o) // always marshals
	return b
}

// packageOK is what a step reads of an apply.PackageResult.
type packageOK struct {
	OK bool `json:"ok"`
}

func allOK(pkgs []packageOK) bool {
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
		mu := s.rolloutLock(r.ID)
		mu.Lock()
		err := s.resumeRollout(ctx, r)
		mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) resumeRollout(ctx context.Context, r store.Rollout) error {
	l, err := s.loadRollout(ctx, r.ID)
	if err != nil {
		return err
	}
	var req api.CreateRolloutRequest
	if err := json.Unmarshal(r.Spec, &req); err != nil {
		return err
	}
	// Jobs of lost hosts a step did not take back (it failed, or the
	// server stopped before).
	if n, err := s.store.WithdrawRolloutJobs(ctx, r.ID, lostJobs(l.st.Hosts)); err != nil {
		return err
	} else if n > 0 {
		s.log.Warn("rollout jobs of lost hosts withdrawn at start", "rollout", r.ID, "jobs", n)
	}
	jobs, err := s.actionJobs(ctx, r.ID, req.Options, rollout.Outstanding(l.st), l.refs, s.cfg.Now())
	if err != nil || len(jobs) == 0 {
		return err
	}
	queued, err := s.queueRolloutJobs(ctx, r.ID, jobs, nil)
	if len(queued) > 0 {
		s.log.Warn("rollout jobs queued again", "rollout", r.ID, "jobs", queued)
	}
	return err
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
		if r.Status == string(rollout.StatusHalted) || r.Status == string(rollout.StatusCancelled) {
			// An idle rollout (nothing in flight) moves only by a command
			// or a late result, which step it themselves.
			phases, err := s.store.RolloutPhases(ctx, r.ID)
			if err != nil {
				errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
				continue
			}
			if !slices.ContainsFunc(slices.Collect(maps.Keys(phases)), func(p string) bool { return rollout.Phase(p).Waits(rollout.Status(r.Status)) }) && len(phases) > 0 {
				continue
			}
		}
		if _, _, err := s.stepRollout(ctx, r.ID); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// errStepLate: the step a job result waits for took longer than the
// server's ResultWait.
var errStepLate = errors.New("the step that applies it is still running")

// rolloutResult steps the rollout a job belongs to once its result is
// stored, and waits for that step up to the server's ResultWait. Errors
// are logged: the result is stored, and the next step or tick applies it.
func (s *Server) rolloutResult(ctx context.Context, jobID, hostID string) {
	ro, ok := s.jobRollouts.Get(jobID)
	id, kind := ro[0], ro[1]
	var err error
	if !ok {
		id, kind, err = s.store.RolloutOfJob(ctx, jobID, hostID)
		if err == nil {
			s.jobRollouts.Put(jobID, [2]string{id, kind})
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err == nil && !rolloutStepKinds[kind] {
		return
	}
	if err == nil {
		err = s.stepRolloutShared(ctx, id, s.cfg.ResultWait)
	}
	switch {
	case errors.Is(err, errStepLate) || err != nil && ctx.Err() != nil:
		// The result is stored and the step runs on: answered now.
		s.log.Debug("job result answered before its step", "job", jobID, "err", err)
	case err != nil:
		s.log.Warn("rollout step after a job result", "job", jobID, "err", err)
	}
}

// rolloutStepKinds are the job kinds whose results the engine waits for.
var rolloutStepKinds = map[string]bool{api.JobInstall: true, api.JobReboot: true, api.JobRollback: true}
