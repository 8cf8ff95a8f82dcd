package api

import (
	"encoding/json"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/health"
	"github.com/patchloop/patchloop/internal/rollout"
)

// Which updates a rollout's patch set is frozen from.
const (
	UpdatesApproved = "approved" // those the hosts' baselines approve (the default)
	UpdatesAll      = "all"      // every missing update
	UpdatesSecurity = "security" // every missing security update
)

// CreateRolloutRequest is POST /api/v1/rollouts. The patch set is frozen
// from the hosts' missing updates when the rollout is created.
type CreateRolloutRequest struct {
	Name string `json:"name,omitempty"`
	// Updates is UpdatesApproved (default), UpdatesAll or UpdatesSecurity.
	Updates string `json:"updates,omitempty"`
	// MinAge leaves out versions released less than this long ago (a Go
	// duration such as 72h; "" is none).
	MinAge       string                `json:"min_age,omitempty"`
	Rings        []rollout.Ring        `json:"rings"`
	WindowGroups []rollout.WindowGroup `json:"window_groups,omitempty"`
	Options      RolloutOptions        `json:"options,omitzero"`
}

// RolloutOptions are the engine's options and the install jobs'.
type RolloutOptions struct {
	rollout.Options
	// AllowRemovals lets installs whose plan removes packages go ahead.
	AllowRemovals      bool `json:"allow_removals,omitempty"`
	LockTimeoutSeconds int  `json:"lock_timeout_seconds,omitempty"`
}

// RolloutCommand is the body of POST /api/v1/rollouts/{id}/{start|pause|resume|cancel|promote|retry|exclude}:
// optional but for retry and exclude, which name their host.
type RolloutCommand struct {
	Reason string `json:"reason,omitempty"`
	// Host is the host a retry or an exclude applies to: its ID, or its
	// hostname when that names one member of the rollout.
	Host string `json:"host,omitempty"`
}

// Rollout is GET /api/v1/rollouts/{id} (and, without Rings' hosts, the
// patch set and the audit, an item of GET /api/v1/rollouts). Create and
// the commands answer it without hosts and audit.
type Rollout struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	Ring      string    `json:"ring"` // the current ring
	SetHash   string    `json:"set_hash"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at"`
	// Hosts counts the rollout's hosts by phase.
	Hosts      map[string]int        `json:"hosts"`
	Rings      []RolloutRing         `json:"rings"`
	Unassigned []string              `json:"unassigned,omitempty"`
	Request    *CreateRolloutRequest `json:"request,omitempty"`
	PatchSet   *rollout.PatchSet     `json:"patch_set,omitempty"`
	Audit      []RolloutAudit        `json:"audit,omitempty"`
}

// RolloutRing is one ring's progress and, in GET /api/v1/rollouts/{id},
// its hosts.
type RolloutRing struct {
	rollout.RingState
	Members []RolloutHost `json:"members,omitempty"`
}

// RolloutHost is one host of a rollout.
type RolloutHost struct {
	ID            string        `json:"id"`
	Hostname      string        `json:"hostname,omitempty"`
	Phase         rollout.Phase `json:"phase"`
	Wave          int           `json:"wave,omitempty"`
	PinCount      int           `json:"pin_count"`
	Pins          []apply.Pin   `json:"pins,omitempty"` // left out with pins=false
	Finished      *time.Time    `json:"finished,omitempty"`
	RebootPending bool          `json:"reboot_pending,omitempty"`
	Note          string        `json:"note,omitempty"`
	Jobs          []RolloutJob  `json:"jobs,omitempty"`
}

// RolloutJob is one job a rollout gave a host: what the engine recorded
// and, once the agent answered, what the job did.
type RolloutJob struct {
	Kind  string `json:"kind"` // install, reboot, rollback, manual-rollback, plan
	Key   string `json:"key"`
	JobID string `json:"job_id"`
	// State is the queue's: queued, leased, done.
	State      string     `json:"state"`
	Attempts   int        `json:"attempts,omitempty"`
	Dispatched time.Time  `json:"dispatched"`
	Finished   *time.Time `json:"finished,omitempty"`
	// Result is the engine's reading (succeeded, failed, health-failed,
	// rolled-back, lost); Status and Error the agent's (ok, failed).
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Retried: an operator retried the host after this job; a later
	// job of its kind has a key ending in #2, #3, ...
	Retried  bool                  `json:"retried,omitempty"`
	Status   string                `json:"status,omitempty"`
	Error    string                `json:"error,omitempty"`
	Packages []apply.PackageResult `json:"packages,omitempty"` // before, want and now per package
	Duration int64                 `json:"duration_ms,omitempty"`
	ExitCode *int                  `json:"exit_code,omitempty"`
	Healthy  *bool                 `json:"healthy,omitempty"`
	Health   *health.Report        `json:"health,omitempty"`
	Reboot   *apply.Reboot         `json:"reboot,omitempty"`
	// Log is the end of the job's log (at most 2 KiB).
	Log string `json:"log,omitempty"`
}

// RolloutAudit is one line of a rollout's history.
type RolloutAudit struct {
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	What   string    `json:"what"`
	Ring   string    `json:"ring,omitempty"`
	Host   string    `json:"host,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// RolloutPlan is GET /api/v1/rollouts/{id}/plan: per host, what apt
// would change to install its pins.
type RolloutPlan struct {
	RolloutID string `json:"rollout_id"`
	// Complete is set when every host answered.
	Complete bool              `json:"complete"`
	Hosts    []RolloutHostPlan `json:"hosts"`
}

// RolloutHostPlan is one host's plan.
type RolloutHostPlan struct {
	HostID   string      `json:"host_id"`
	Hostname string      `json:"hostname,omitempty"`
	Ring     string      `json:"ring"`
	JobID    string      `json:"job_id"`
	State    string      `json:"state"` // the queue's
	Pins     []apply.Pin `json:"pins"`
	Status   string      `json:"status,omitempty"`
	Error    string      `json:"error,omitempty"`
	// Plan is apt's simulation, once the agent answered.
	Plan *apply.InstallPlan `json:"plan,omitempty"`
	// Refused says why the install would be refused (removals the
	// rollout does not allow, downgrades, held packages changed).
	Refused string `json:"refused,omitempty"`
}

// RolloutRollbackRequest is POST /api/v1/rollouts/{id}/rollback: roll
// back one host, one ring's hosts, or (neither given) every host whose
// install changed something.
type RolloutRollbackRequest struct {
	Ring   string `json:"ring,omitempty"`
	Host   string `json:"host,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// RolloutRollback is the answer: the rollback jobs queued and the hosts
// left alone, with why.
type RolloutRollback struct {
	Queued  []RolloutRollbackHost `json:"queued"`
	Skipped []RolloutRollbackHost `json:"skipped"`
}

// RolloutRollbackHost is one host of a rollback request.
type RolloutRollbackHost struct {
	HostID string `json:"host_id"`
	Ring   string `json:"ring"`
	JobID  string `json:"job_id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Raw returns v as JSON (for params built in code).
func Raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
