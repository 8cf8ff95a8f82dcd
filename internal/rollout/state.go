package rollout

import (
	"maps"
	"slices"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
)

// Status is the rollout's overall state.
type Status string

// The rollout statuses. Halted, Cancelled and Completed accept no new
// installs; hosts already in flight still report, and a halted rollout
// still reboots hosts that installed.
const (
	StatusCreated   Status = "created"   // planned, waiting for EventStart
	StatusRunning   Status = "running"   // starting hosts, soaking, promoting
	StatusPaused    Status = "paused"    // no new host, no reboot, no promotion
	StatusHalted    Status = "halted"    // by the engine: budget exceeded, promotion blocked
	StatusCancelled Status = "cancelled" // by an operator
	StatusCompleted Status = "completed" // every ring done
)

func (s Status) final() bool {
	return s == StatusHalted || s == StatusCancelled || s == StatusCompleted
}

// Phase is where one host is.
type Phase string

// Host phases. Succeeded, Skipped, Excluded, Failed, Lost, RolledBack
// and RollbackFailed are terminal; the failing ones count against the
// ring's budget. A host is in flight in Installing, Rebooting, AwaitingReboot
// and RollingBack.
const (
	PhasePending        Phase = "pending"         // not started
	PhaseInstalling     Phase = "installing"      // install job dispatched
	PhaseAwaitingReboot Phase = "awaiting-reboot" // installed; reboot waits for a window
	PhaseRebooting      Phase = "rebooting"       // reboot job dispatched
	PhaseRollingBack    Phase = "rolling-back"    // rollback job dispatched after a failed health check
	PhaseSucceeded      Phase = "succeeded"       // installed (and rebooted) and healthy
	PhaseSkipped        Phase = "skipped"         // nothing to install
	PhaseExcluded       Phase = "excluded"        // taken out by an operator (CommandExclude)
	PhaseFailed         Phase = "failed"          // install failed, or health failed without rollback
	PhaseLost           Phase = "lost"            // no result in time
	PhaseRolledBack     Phase = "rolled-back"     // health failed, previous versions restored
	PhaseRollbackFailed Phase = "rollback-failed" // health failed and so did the rollback
)

func (p Phase) terminal() bool {
	switch p {
	case PhaseSucceeded, PhaseSkipped, PhaseExcluded, PhaseFailed, PhaseLost, PhaseRolledBack, PhaseRollbackFailed:
		return true
	}
	return false
}

func (p Phase) failed() bool {
	switch p {
	case PhaseFailed, PhaseLost, PhaseRolledBack, PhaseRollbackFailed, PhaseRollingBack:
		return true
	}
	return false
}

func (p Phase) inFlight() bool {
	switch p {
	case PhaseInstalling, PhaseAwaitingReboot, PhaseRebooting, PhaseRollingBack:
		return true
	}
	return false
}

// JobKind is what a dispatched job does on the host.
type JobKind string

// Job kinds, as the agent runs them (internal/apply).
const (
	JobInstall  JobKind = "install"
	JobReboot   JobKind = "reboot"
	JobRollback JobKind = "rollback"
)

// Job is one job dispatched to a host.
type Job struct {
	Kind       JobKind   `json:"kind"`
	Key        string    `json:"key"`
	Dispatched time.Time `json:"dispatched"`
	Started    time.Time `json:"started,omitzero"`
	Finished   time.Time `json:"finished,omitzero"`
	// Result is "succeeded", "failed", "health-failed", "rolled-back" or
	// "lost"; empty while the job runs.
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Retried: an operator retried the host after this job
	// (CommandRetry); the job is history, a new one has a new key.
	Retried bool `json:"retried,omitempty"`
}

// superseded: the job was withdrawn before any agent got it, or the host
// was retried after it. Neither counts as the host's job of its kind.
func (j *Job) superseded() bool { return j.Result == "withdrawn" || j.Retried }

// HostState is one host of the rollout.
type HostState struct {
	ID    string      `json:"id"`
	Ring  int         `json:"ring"`
	Group int         `json:"group"` // index in Spec.Groups, -1 for none
	Pins  []apply.Pin `json:"pins,omitempty"`
	Phase Phase       `json:"phase"`
	// Wave numbers the hosts a ring started in one step, from 1.
	Wave int   `json:"wave,omitempty"`
	Jobs []Job `json:"jobs,omitempty"`
	// Finished is when the host reached a terminal phase.
	Finished time.Time `json:"finished,omitzero"`
	// RebootPending is set when the host needs a reboot that the
	// rollout's options do not allow.
	RebootPending bool   `json:"reboot_pending,omitempty"`
	Note          string `json:"note,omitempty"`
	// Accepted: the host had failed when an operator resumed the halted
	// rollout, and is one of its ring's Accepted failures.
	Accepted bool `json:"accepted,omitempty"`
}

// job is the host's job of this kind that was not superseded (nil when
// none was dispatched).
func (h *HostState) job(kind JobKind) *Job {
	for i := range h.Jobs {
		if h.Jobs[i].Kind == kind && !h.Jobs[i].superseded() {
			return &h.Jobs[i]
		}
	}
	return nil
}

// superseded counts the host's superseded jobs of this kind.
func (h *HostState) superseded(kind JobKind) int {
	n := 0
	for i := range h.Jobs {
		if h.Jobs[i].Kind == kind && h.Jobs[i].superseded() {
			n++
		}
	}
	return n
}

// LastRun returns the host's last job of this kind that was not
// withdrawn: its current one, or the one it was retried after.
func (h HostState) LastRun(kind JobKind) (Job, bool) {
	for i := len(h.Jobs) - 1; i >= 0; i-- {
		if j := h.Jobs[i]; j.Kind == kind && j.Result != "withdrawn" {
			return j, true
		}
	}
	return Job{}, false
}

// Job returns the host's job of this kind that was not superseded.
func (h HostState) Job(kind JobKind) (Job, bool) {
	if j := h.job(kind); j != nil {
		return *j, true
	}
	return Job{}, false
}

// current is the host's running job, nil when none runs.
func (h *HostState) current() *Job {
	if len(h.Jobs) == 0 {
		return nil
	}
	j := &h.Jobs[len(h.Jobs)-1]
	if j.Result != "" {
		return nil
	}
	return j
}

// ownCurrent is current, in a copy of the host's jobs that this state
// owns, to be changed: states share their hosts' jobs (clone).
func (h *HostState) ownCurrent() *Job {
	if h.current() == nil {
		return nil
	}
	h.Jobs = slices.Clone(h.Jobs)
	return &h.Jobs[len(h.Jobs)-1]
}

// RingState is the progress of one ring.
type RingState struct {
	Name  string `json:"name"`
	Hosts int    `json:"hosts"`
	// Started is when the ring became the current ring; Done when every
	// host finished; Promoted when the next ring started (or the rollout
	// completed).
	Started  time.Time `json:"started,omitzero"`
	Done     time.Time `json:"done,omitzero"`
	Promoted time.Time `json:"promoted,omitzero"`
	Waves    int       `json:"waves,omitempty"`
	Failed   int       `json:"failed,omitempty"`
	Budget   int       `json:"budget"`
	// Accepted are the failures an operator accepted by resuming the
	// rollout after a halt: the budget counts the failures beyond them.
	Accepted int `json:"accepted,omitempty"`
}

// Audit is one line of the rollout's history: an operator's command or
// an engine decision.
type Audit struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"` // the operator, or "engine"
	What   string    `json:"what"`  // start, pause, dispatch-install, halt, promote, ...
	Ring   string    `json:"ring,omitempty"`
	Host   string    `json:"host,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// State is everything the server must persist about a rollout. It is
// JSON-serialisable and Step is a pure function of it.
type State struct {
	Spec    Spec        `json:"spec"`
	Status  Status      `json:"status"`
	Created time.Time   `json:"created"`
	Ring    int         `json:"ring"` // the current ring
	Rings   []RingState `json:"rings"`
	// Hosts are by ring, then id. States share the hosts that did not
	// change between them: Step copies a host before it changes it (own).
	Hosts      []*HostState `json:"hosts,omitempty"`
	Unassigned []string     `json:"unassigned,omitempty"`
	// Reason says why the rollout is halted, cancelled or paused.
	Reason string `json:"reason,omitempty"`
	// Commands are the IDs of the operator commands applied, so that a
	// command delivered twice is applied once.
	Commands map[string]bool `json:"commands"`
	// Audit is the history Step adds to; the server stores it apart and
	// may start each Step with none.
	Audit []Audit `json:"audit,omitempty"`

	index map[string]int // host ID → place in Hosts, built by host
	// owned are the places of the hosts this state copied to change
	// them (own), since it was cloned.
	owned map[int]bool
}

func (s *State) audit(at time.Time, actor, what, ring, host, detail string) {
	s.Audit = append(s.Audit, Audit{At: at.UTC(), Actor: actor, What: what, Ring: ring, Host: host, Detail: detail})
}

// clone copies everything Step changes, so that Step never writes to the
// state it was given. Pins and the spec are shared: nothing changes them.
func (s State) clone() State {
	c := s
	c.Rings = slices.Clone(s.Rings)
	// The hosts are shared, not copied (100,000 copies a step): the step
	// copies a host before it changes it (own), and its jobs before it
	// changes one (ownCurrent); it appends to a clipped slice
	// (dispatchJob).
	c.Hosts = slices.Clone(s.Hosts)
	c.owned = nil
	c.Commands = maps.Clone(s.Commands)
	if c.Commands == nil {
		c.Commands = map[string]bool{}
	}
	c.Audit = slices.Clip(s.Audit)
	return c
}

// own returns host i to be changed: a copy the first time since the
// state was cloned, which replaces the shared one.
func (s *State) own(i int) *HostState {
	if !s.owned[i] {
		if s.owned == nil {
			s.owned = map[int]bool{}
		}
		h := *s.Hosts[i]
		s.Hosts[i], s.owned[i] = &h, true
	}
	return s.Hosts[i]
}

// host finds a host by id (-1 when it is not in the rollout). Hosts keep
// their places once New made the state, so the index is built once and
// shared by clones.
func (s *State) host(id string) int {
	if s.index == nil {
		s.index = make(map[string]int, len(s.Hosts))
		for i := range s.Hosts {
			s.index[s.Hosts[i].ID] = i
		}
	}
	if i, ok := s.index[id]; ok && i < len(s.Hosts) && s.Hosts[i].ID == id {
		return i
	}
	return -1
}

// Idle reports whether only an operator's command can change the state:
// the rollout is completed, or halted or cancelled with no host in
// flight (no result to wait for, no time-out, no reboot to start).
func (s *State) Idle() bool {
	switch s.Status {
	case StatusCompleted:
		return true
	case StatusHalted, StatusCancelled:
		return !slices.ContainsFunc(s.Hosts, func(h *HostState) bool { return h.Phase.Waits(s.Status) })
	}
	return false
}

// Waits reports whether a rollout in status st still waits for a host in
// this phase: a job running, or a reboot to come (a cancelled rollout
// never reboots: a host awaiting one waits for nothing).
func (p Phase) Waits(st Status) bool {
	return p.inFlight() && (st != StatusCancelled || p != PhaseAwaitingReboot)
}

// Lookup returns a copy of host id's state.
func (s *State) Lookup(id string) (HostState, bool) {
	if i := s.host(id); i >= 0 {
		return *s.Hosts[i], true
	}
	return HostState{}, false
}

// Current is the host's running job (false when none runs).
func (h HostState) Current() (Job, bool) {
	if j := h.current(); j != nil {
		return *j, true
	}
	return Job{}, false
}

// ChangedHosts lists the places of the hosts whose state differs between
// a and b, two states of one rollout (b stepped from a). A state whose
// hosts differ in number or order changed all of them. Hosts that b
// shares with a are the same.
func ChangedHosts(a, b State) []int {
	var out []int
	for i := range b.Hosts {
		if i >= len(a.Hosts) || a.Hosts[i] != b.Hosts[i] && !a.Hosts[i].same(b.Hosts[i]) {
			out = append(out, i)
		}
	}
	return out
}

// same compares everything but the pins, which never change.
func (h *HostState) same(o *HostState) bool {
	if h.ID != o.ID || h.Ring != o.Ring || h.Group != o.Group || h.Phase != o.Phase || h.Wave != o.Wave ||
		!h.Finished.Equal(o.Finished) || h.RebootPending != o.RebootPending || h.Note != o.Note || h.Accepted != o.Accepted ||
		len(h.Jobs) != len(o.Jobs) {
		return false
	}
	for i := range h.Jobs {
		a, b := &h.Jobs[i], &o.Jobs[i]
		if a.Kind != b.Kind || a.Key != b.Key || !a.Dispatched.Equal(b.Dispatched) || !a.Started.Equal(b.Started) ||
			!a.Finished.Equal(b.Finished) || a.Result != b.Result || a.Reason != b.Reason || a.Retried != b.Retried {
			return false
		}
	}
	return true
}

// Key is the idempotency key of a job: the same (rollout, ring, host,
// kind) always gives the same key, and the engine dispatches each at most
// once. The server's job queue must refuse a second job with a key it
// has (a unique index), which makes re-sending an Outstanding action
// harmless.
func Key(rollout, ring, host string, kind JobKind) string {
	return rollout + "/" + ring + "/" + host + "/" + string(kind)
}

// Outstanding lists the dispatches the state says are in flight, as the
// actions that made them. A server that may have lost actions (it saved
// the state, then crashed before queuing the jobs) re-queues these on
// start; their keys make that idempotent.
func Outstanding(s State) []Action {
	var out []Action
	for _, h := range s.Hosts {
		if j := h.current(); j != nil {
			out = append(out, s.dispatch(h, j.Kind, j.Key))
		}
	}
	return out
}

func (s *State) dispatch(h *HostState, kind JobKind, key string) Action {
	a := Action{Ring: s.Spec.Rings[h.Ring].Name, Host: h.ID, Key: key}
	switch kind {
	case JobInstall:
		a.Kind, a.Pins = ActionInstall, h.Pins
	case JobReboot:
		a.Kind = ActionReboot
	case JobRollback:
		a.Kind, a.Pins = ActionRollback, h.Pins
		if j := h.job(JobInstall); j != nil {
			a.Install = j.Key
		}
	}
	return a
}
