package rollout

import (
	"time"

	"github.com/patchloop/patchloop/internal/apply"
)

// EventType says what happened.
type EventType string

// Host results, reported by the agent through the server (Host and Key
// name the job they answer), and operator commands (ID and Actor set).
const (
	// EventStarted: the agent picked the job up.
	EventStarted EventType = "started"
	// EventSucceeded: the job did its work and, unless RebootRequired
	// is set on an install, the host passed its health check.
	EventSucceeded EventType = "succeeded"
	// EventFailed: the job failed (apply refused or failed).
	EventFailed EventType = "failed"
	// EventHealthFailed: the job succeeded but the health check after it
	// did not.
	EventHealthFailed EventType = "health-failed"
	// EventRolledBack: a rollback job restored the previous versions.
	EventRolledBack EventType = "rolled-back"
	// EventLost: the server gave up on the job (lease expired too often,
	// host revoked or silent).
	EventLost EventType = "lost"
	// EventWithdrawn: the server took the job back before any agent got
	// it (the rollout paused, halted or was cancelled): the host is as
	// before the dispatch, and a later dispatch gets a new key.
	EventWithdrawn EventType = "withdrawn"

	CommandStart EventType = "start"
	CommandPause EventType = "pause"
	// CommandResume resumes a paused rollout, or a halted one: then the
	// current ring's failures so far are accepted (RingState.Accepted)
	// and its budget counts only new ones.
	CommandResume EventType = "resume"
	CommandCancel EventType = "cancel"
	// CommandPromote promotes the current ring at once, skipping the soak
	// and the all-succeeded rule; every host of the ring must be finished.
	// It also resumes a rollout halted because promotion was blocked.
	CommandPromote EventType = "promote"
	// CommandRetry starts a failed, lost or rolled-back host of the
	// current ring (Event.Host) again: its jobs so far are kept as
	// retried, it is pending, and its next install has a new key
	// (r/ring/host/install#2). The ring's accepted failures shrink with it.
	CommandRetry EventType = "retry"
	// CommandExclude takes a host (Event.Host) that is pending, failed,
	// lost or rolled back out of the rollout: it is excluded, which
	// neither counts as a failure nor blocks promotion, and it is never
	// started again.
	CommandExclude EventType = "exclude"
)

func (t EventType) command() bool {
	switch t {
	case CommandStart, CommandPause, CommandResume, CommandCancel, CommandPromote, CommandRetry, CommandExclude:
		return true
	}
	return false
}

// Event is one input of Step.
type Event struct {
	Type EventType `json:"type"`
	// At is when it happened (zero: Step's now).
	At time.Time `json:"at,omitzero"`
	// Host results.
	Host string `json:"host,omitempty"`
	Key  string `json:"key,omitempty"`
	// RebootRequired, on an install's EventSucceeded: the host needs a
	// reboot before its health can be judged.
	RebootRequired bool `json:"reboot_required,omitempty"`
	// Commands: a unique ID (a command delivered twice is applied once)
	// and who gave it. Retry and exclude name their host in Host.
	ID    string `json:"id,omitempty"`
	Actor string `json:"actor,omitempty"`
	// Reason is the failure's or the command's explanation.
	Reason string `json:"reason,omitempty"`
}

// ActionKind says what the server must do.
type ActionKind string

// Actions. Install, Reboot and Rollback are jobs for one host, to be
// queued under their Key; Halt, Promote and Complete are notifications
// (the state already says so).
const (
	ActionInstall  ActionKind = "install"
	ActionReboot   ActionKind = "reboot"
	ActionRollback ActionKind = "rollback"
	ActionHalt     ActionKind = "halt"
	ActionPromote  ActionKind = "promote"
	ActionComplete ActionKind = "complete"
)

// Action is one output of Step.
type Action struct {
	Kind ActionKind `json:"kind"`
	Ring string     `json:"ring,omitempty"`
	Host string     `json:"host,omitempty"`
	// Key is the job's idempotency key (Key).
	Key string `json:"key,omitempty"`
	// Pins are the host's pins: those to install, or on a rollback
	// those the install it undoes installed.
	Pins []apply.Pin `json:"pins,omitempty"`
	// Install, on a rollback, is the key of the install to undo (the
	// agent finds the apply.Record it kept under it).
	Install string `json:"install,omitempty"`
	// Reason explains a halt; Ring names the ring promoted to.
	Reason string `json:"reason,omitempty"`
}
