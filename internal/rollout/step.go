package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

const engine = "engine"

// Step applies events in order to state, then makes the engine's
// decisions at now: time-outs, the failure budget, reboots, promotion,
// completion and new installs. It returns the new state and the actions
// the server must carry out. It does not modify state.
//
// Step is idempotent: events it has already applied (a result for a job
// that is no longer running, a command whose ID it has seen) change
// nothing, and a job is dispatched at most once per (host, kind) — the
// state records it before the action is returned — unless the server
// withdrew it before any agent got it (EventWithdrawn): a new dispatch
// then has a new key. The server must
// persist the returned state and queue the actions' jobs together (one
// transaction), or queue them by Key after saving the state
// (Outstanding re-lists them after a crash).
func Step(state State, events []Event, now time.Time) (State, []Action) {
	s := state.clone()
	now = now.UTC()
	var acts []Action
	for _, e := range events {
		at := e.At.UTC()
		if e.At.IsZero() {
			at = now
		}
		if e.Type.command() {
			s.command(e, at, &acts)
		} else {
			s.result(e, at, &acts)
		}
	}
	s.decide(now, &acts)
	s.owned = nil // the next step starts from a clone
	return s, acts
}

func (s *State) command(e Event, at time.Time, acts *[]Action) {
	actor := e.Actor
	if actor == "" {
		actor = "unknown"
	}
	if e.ID == "" {
		s.audit(at, actor, "rejected "+string(e.Type), "", "", "command without an id")
		return
	}
	if s.Commands[e.ID] {
		return
	}
	s.Commands[e.ID] = true
	reject := func(why string) { s.audit(at, actor, "rejected "+string(e.Type), "", "", why) }
	switch e.Type {
	case CommandStart:
		if s.Status != StatusCreated {
			reject("rollout is " + string(s.Status))
			return
		}
		s.Status = StatusRunning
		s.Rings[0].Started = at
	case CommandPause:
		if s.Status != StatusRunning {
			reject("rollout is " + string(s.Status))
			return
		}
		s.Status, s.Reason = StatusPaused, e.Reason
	case CommandResume:
		switch s.Status {
		case StatusPaused:
		case StatusHalted:
			if s.unfinished(s.Ring) == 0 && s.failed(s.Ring) > 0 {
				reject(fmt.Sprintf("ring %s is finished with failed hosts: retry or exclude them, promote it, or cancel", s.Rings[s.Ring].Name))
				return
			}
			rs := &s.Rings[s.Ring]
			rs.Accepted = s.failed(s.Ring)
			for i := range s.Hosts {
				if h := s.Hosts[i]; h.Ring == s.Ring && h.Phase.failed() && !h.Accepted {
					s.own(i).Accepted = true
				}
			}
			s.audit(at, actor, "accept-failures", rs.Name, "", fmt.Sprintf("%d failed hosts accepted (%s); the budget of %d counts new failures",
				rs.Accepted, strings.Join(s.failedHosts(s.Ring), ", "), rs.Budget))
		default:
			reject("rollout is " + string(s.Status) + "; only a paused or halted rollout resumes")
			return
		}
		s.Status, s.Reason = StatusRunning, ""
	case CommandCancel:
		if s.Status.final() && s.Status != StatusHalted {
			reject("rollout is " + string(s.Status))
			return
		}
		s.Status, s.Reason = StatusCancelled, e.Reason
	case CommandPromote:
		if s.Status == StatusCreated || s.Status == StatusCancelled || s.Status == StatusCompleted {
			reject("rollout is " + string(s.Status))
			return
		}
		if n := s.unfinished(s.Ring); n > 0 {
			reject(fmt.Sprintf("ring %s has %d unfinished hosts", s.Rings[s.Ring].Name, n))
			return
		}
		if s.Status == StatusHalted {
			s.Status, s.Reason = StatusRunning, ""
		}
		s.audit(at, actor, string(e.Type), s.Rings[s.Ring].Name, "", e.Reason)
		s.promote(at, actor, acts)
		return
	case CommandRetry, CommandExclude:
		if why := s.hostCommand(e, at); why != "" {
			s.audit(at, actor, "rejected "+string(e.Type), "", e.Host, why)
			return
		}
		i := s.host(e.Host)
		s.audit(at, actor, string(e.Type), s.Rings[s.Hosts[i].Ring].Name, e.Host, e.Reason)
		return
	}
	s.audit(at, actor, string(e.Type), "", "", e.Reason)
}

// hostCommand applies a retry or an exclude of host e.Host, or says why
// it cannot.
func (s *State) hostCommand(e Event, at time.Time) string {
	i := s.host(e.Host)
	switch {
	case e.Host == "":
		return "no host named"
	case i < 0:
		return "host " + e.Host + " is not in this rollout"
	case s.Status == StatusCompleted || s.Status == StatusCancelled:
		return "rollout is " + string(s.Status)
	}
	h := s.Hosts[i]
	ring := s.Rings[h.Ring].Name
	retryable := h.Phase.failed() && h.Phase.terminal()
	if e.Type == CommandRetry {
		switch {
		case s.Status == StatusCreated:
			return "rollout is " + string(s.Status)
		case h.Ring != s.Ring:
			return fmt.Sprintf("host %s is in ring %s; only hosts of the current ring %s are retried", h.ID, ring, s.Rings[s.Ring].Name)
		case !retryable:
			return fmt.Sprintf("host %s is %s; only a failed, lost or rolled-back host is retried", h.ID, h.Phase)
		}
		h = s.own(i)
		h.Jobs = slices.Clone(h.Jobs) // shared with the state stepped from (clone)
		for j := range h.Jobs {
			if !h.Jobs[j].superseded() {
				h.Jobs[j].Retried = true
			}
		}
		h.Phase, h.Wave, h.Finished, h.RebootPending = PhasePending, 0, time.Time{}, false
		s.Rings[h.Ring].Done = time.Time{}
	} else {
		if h.Phase != PhasePending && !retryable {
			return fmt.Sprintf("host %s is %s; only a pending, failed, lost or rolled-back host is excluded", h.ID, h.Phase)
		}
		h = s.own(i)
		h.Phase, h.Finished = PhaseExcluded, at
	}
	// A failure accepted before (resume after a halt) is no longer one:
	// the ring's budget counts every later failure, the host's own too.
	// (States from before hosts recorded it: no more than those left.)
	rs := &s.Rings[h.Ring]
	switch {
	case h.Accepted:
		h.Accepted = false
		rs.Accepted--
	case !slices.ContainsFunc(s.Hosts, func(o *HostState) bool { return o.Ring == h.Ring && o.Accepted }):
		rs.Accepted = min(rs.Accepted, s.failed(h.Ring))
	}
	return ""
}

// result applies a host's job result; results for jobs that are not
// running (duplicates, stale keys, unknown hosts) are ignored.
func (s *State) result(e Event, at time.Time, acts *[]Action) {
	i := s.host(e.Host)
	if i < 0 {
		return
	}
	if j := s.Hosts[i].current(); j == nil || j.Key != e.Key {
		return
	}
	h := s.own(i)
	j := h.ownCurrent()
	ring := s.Rings[h.Ring].Name
	finish := func(result string, p Phase) {
		j.Result, j.Finished, j.Reason = result, at, e.Reason
		h.Phase = p
		if p.terminal() {
			h.Finished = at
		}
		detail := fmt.Sprintf("%s job %s", j.Kind, result)
		if e.Reason != "" {
			detail += ": " + e.Reason
		}
		s.audit(at, "host", "host-"+string(p), ring, h.ID, detail)
	}
	switch e.Type {
	case EventStarted:
		if j.Started.IsZero() {
			j.Started = at
		}
	case EventSucceeded:
		switch {
		case j.Kind == JobRollback:
			finish("rolled-back", PhaseRolledBack)
		case j.Kind == JobInstall && e.RebootRequired && s.Spec.Options.Reboot == RebootNever:
			h.RebootPending = true
			finish("succeeded", PhaseSucceeded)
		case j.Kind == JobInstall && e.RebootRequired:
			finish("succeeded", PhaseAwaitingReboot)
		default:
			finish("succeeded", PhaseSucceeded)
		}
	case EventRolledBack:
		if j.Kind == JobRollback {
			finish("rolled-back", PhaseRolledBack)
		}
	case EventFailed:
		if j.Kind == JobRollback {
			finish("failed", PhaseRollbackFailed)
		} else {
			finish("failed", PhaseFailed)
		}
	case EventHealthFailed:
		switch {
		case j.Kind == JobRollback:
			finish("health-failed", PhaseRollbackFailed)
		case s.Spec.Options.Rollback:
			finish("health-failed", PhaseRollingBack)
			s.dispatchJob(h, JobRollback, at, acts)
		default:
			finish("health-failed", PhaseFailed)
		}
	case EventLost:
		finish("lost", PhaseLost)
	case EventWithdrawn:
		var back Phase
		switch j.Kind {
		case JobInstall:
			back, h.Wave = PhasePending, 0
		case JobReboot:
			back = PhaseAwaitingReboot
		default:
			return // a rollback is never taken back: the host needs it
		}
		j.Result, j.Finished, j.Reason = "withdrawn", at, e.Reason
		h.Phase = back
		s.audit(at, "server", "withdraw-"+string(j.Kind), ring, h.ID, e.Reason)
	}
}

func (s *State) dispatchJob(h *HostState, kind JobKind, at time.Time, acts *[]Action) {
	ring := s.Spec.Rings[h.Ring].Name
	if h.job(kind) != nil {
		return // never twice
	}
	// A job withdrawn before any agent got it, or one the host was
	// retried after, is dispatched again under a new key:
	// r/ring/host/install#2.
	key := Key(s.Spec.ID, ring, h.ID, kind)
	if n := h.superseded(kind); n > 0 {
		key += fmt.Sprintf("#%d", n+1)
	}
	h.Jobs = append(slices.Clip(h.Jobs), Job{Kind: kind, Key: key, Dispatched: at}) // a new array: see clone
	switch kind {
	case JobInstall:
		h.Phase = PhaseInstalling
	case JobReboot:
		h.Phase = PhaseRebooting
	case JobRollback:
		h.Phase = PhaseRollingBack
	}
	s.audit(at, engine, "dispatch-"+string(kind), ring, h.ID, key)
	*acts = append(*acts, s.dispatch(h, kind, key))
}

// decide makes the engine's own decisions at now.
func (s *State) decide(now time.Time, acts *[]Action) {
	if s.Status == StatusCreated {
		return
	}
	s.timeouts(now)
	for r := range s.Rings {
		s.Rings[r].Failed, s.Rings[r].Budget = s.failed(r), s.Spec.Rings[r].FailureBudget.Budget(s.Rings[r].Hosts)
	}
	if s.Status == StatusRunning || s.Status == StatusPaused {
		if rs := &s.Rings[s.Ring]; rs.Failed-rs.Accepted > rs.Budget {
			accepted := ""
			if rs.Accepted > 0 {
				accepted = fmt.Sprintf(", %d of them accepted before", rs.Accepted)
			}
			s.halt(now, fmt.Sprintf("ring %s: %d of %d hosts failed (%s%s), budget %d (%s)",
				rs.Name, rs.Failed, rs.Hosts, strings.Join(s.failedHosts(s.Ring), ", "), accepted, rs.Budget, s.Spec.Rings[s.Ring].FailureBudget), acts)
		}
	}
	if s.Status == StatusRunning || s.Status == StatusHalted {
		s.reboots(now, acts)
	}
	for s.Status == StatusRunning {
		if !s.progress(now, acts) {
			if s.Status == StatusRunning {
				s.installs(now, acts)
			}
			return
		}
	}
}

// timeouts marks hosts lost whose job has run longer than JobTimeout.
func (s *State) timeouts(now time.Time) {
	limit := time.Duration(s.Spec.Options.JobTimeout)
	if limit <= 0 {
		return
	}
	for i, h := range s.Hosts {
		if j := h.current(); j == nil || now.Sub(j.Dispatched) <= limit {
			continue
		}
		h = s.own(i)
		j := h.ownCurrent()
		j.Result, j.Finished, j.Reason = "lost", now, fmt.Sprintf("no result after %s", limit)
		h.Phase, h.Finished = PhaseLost, now
		s.audit(now, engine, "host-lost", s.Rings[h.Ring].Name, h.ID, fmt.Sprintf("%s job %s", j.Kind, j.Reason))
	}
}

func (s *State) failed(ring int) int {
	n := 0
	for i := range s.Hosts {
		if s.Hosts[i].Ring == ring && s.Hosts[i].Phase.failed() {
			n++
		}
	}
	return n
}

func (s *State) failedHosts(ring int) []string {
	var ids []string
	for i := range s.Hosts {
		if s.Hosts[i].Ring == ring && s.Hosts[i].Phase.failed() {
			ids = append(ids, s.Hosts[i].ID)
		}
	}
	return ids
}

func (s *State) unfinished(ring int) int {
	n := 0
	for i := range s.Hosts {
		if s.Hosts[i].Ring == ring && !s.Hosts[i].Phase.terminal() {
			n++
		}
	}
	return n
}

func (s *State) halt(now time.Time, reason string, acts *[]Action) {
	s.Status, s.Reason = StatusHalted, reason
	s.audit(now, engine, "halt", s.Rings[s.Ring].Name, "", reason)
	*acts = append(*acts, Action{Kind: ActionHalt, Ring: s.Rings[s.Ring].Name, Reason: reason})
}

// progress finishes, promotes or completes the current ring when it is
// done; it reports whether it promoted (the next ring may be done too).
func (s *State) progress(now time.Time, acts *[]Action) bool {
	r := s.Ring
	rs := &s.Rings[r]
	if s.unfinished(r) > 0 {
		return false
	}
	installed := false
	if rs.Done.IsZero() {
		rs.Done = rs.Started
		for _, h := range s.Hosts {
			if h.Ring == r && h.Finished.After(rs.Done) {
				rs.Done = h.Finished
			}
		}
		s.audit(now, engine, "ring-done", rs.Name, "", fmt.Sprintf("%d hosts, %d failed", rs.Hosts, rs.Failed))
	}
	for _, h := range s.Hosts {
		if h.Ring == r && h.Phase == PhaseSucceeded {
			installed = true
		}
	}
	last := r == len(s.Rings)-1
	if rs.Failed > 0 && !last {
		s.halt(now, fmt.Sprintf("ring %s finished with %d failed hosts (%s): promotion needs every host succeeded; promote by hand or cancel",
			rs.Name, rs.Failed, strings.Join(s.failedHosts(r), ", ")), acts)
		return false
	}
	if !last && installed && now.Before(rs.Done.Add(time.Duration(s.Spec.Rings[r].Soak))) {
		return false // soaking
	}
	s.promote(now, engine, acts)
	return s.Status == StatusRunning
}

// promote ends the current ring and starts the next, or completes the
// rollout after the last ring.
func (s *State) promote(now time.Time, actor string, acts *[]Action) {
	rs := &s.Rings[s.Ring]
	if rs.Done.IsZero() {
		rs.Done = now
	}
	rs.Promoted = now
	if s.Ring == len(s.Rings)-1 {
		var failed int
		for r := range s.Rings {
			failed += s.failed(r)
		}
		s.Status = StatusCompleted
		reason := fmt.Sprintf("%d hosts, %d failed", len(s.Hosts), failed)
		s.audit(now, actor, "complete", rs.Name, "", reason)
		*acts = append(*acts, Action{Kind: ActionComplete, Reason: reason})
		return
	}
	s.Ring++
	next := &s.Rings[s.Ring]
	next.Started = now
	s.audit(now, actor, "promote", next.Name, "", "from ring "+rs.Name)
	*acts = append(*acts, Action{Kind: ActionPromote, Ring: next.Name, Reason: "from ring " + rs.Name})
}

// windowOK reports whether host h may start work that takes est at now:
// one of its windows is open and stays open that long.
func (s *State) windowOK(h *HostState, now time.Time, est time.Duration) bool {
	if h.Group < 0 || h.Group >= len(s.Spec.Groups) {
		return true
	}
	for _, w := range s.Spec.Groups[h.Group].Windows {
		if end, open := w.OpenUntil(now); open && !now.Add(est).After(end) {
			return true
		}
	}
	return false
}

// windowCache answers windowOK once per (group, estimate) within a step.
type windowCache map[[2]int64]bool

func (s *State) cachedWindowOK(c windowCache, h *HostState, now time.Time, est time.Duration) bool {
	k := [2]int64{int64(h.Group), int64(est)}
	if v, ok := c[k]; ok {
		return v
	}
	v := s.windowOK(h, now, est)
	c[k] = v
	return v
}

func (s *State) reboots(now time.Time, acts *[]Action) {
	c := windowCache{}
	est := time.Duration(s.Spec.Options.RebootEstimate)
	for i, h := range s.Hosts {
		if h.Phase == PhaseAwaitingReboot && s.cachedWindowOK(c, h, now, est) {
			s.dispatchJob(s.own(i), JobReboot, now, acts)
		}
	}
}

// installs starts pending hosts of the current ring, in host order, while
// the ring has fewer than its concurrency in flight.
func (s *State) installs(now time.Time, acts *[]Action) {
	r := s.Ring
	rs := &s.Rings[r]
	limit := s.Spec.Rings[r].Concurrency.Concurrency(rs.Hosts)
	inflight := 0
	for i := range s.Hosts {
		if s.Hosts[i].Ring == r && s.Hosts[i].Phase.inFlight() {
			inflight++
		}
	}
	c := windowCache{}
	est := time.Duration(s.Spec.Options.InstallEstimate)
	wave := false
	for i, h := range s.Hosts {
		if inflight >= limit {
			break
		}
		if h.Ring != r || h.Phase != PhasePending || !s.cachedWindowOK(c, h, now, est) {
			continue
		}
		h = s.own(i)
		if !wave {
			wave = true
			rs.Waves++
		}
		h.Wave = rs.Waves
		s.dispatchJob(h, JobInstall, now, acts)
		inflight++
	}
}
