// Package store persists the server's state: enrollment and admin tokens,
// hosts with their facts and inventories, per-host detection results, the
// durable per-host job queue, the patch baselines (policies) and the
// rollouts (their state, the jobs they queued by idempotency key, their
// audit). One
// interface, Store, with two implementations over database/sql: SQLite
// (embedded, the default) and PostgreSQL (for large fleets and several
// server replicas sharing one database). Versioned schema migrations are
// applied by Open.
//
// Times are stored as Unix milliseconds (UTC); JSON documents as text;
// inventories as opaque bytes keyed by their SHA-256, shared by every host
// that reports the same inventory.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors the implementations wrap; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrTokenInvalid: an enrollment token that is unknown, has the wrong
	// secret, is revoked, expired or used up. The wrapping error says which.
	ErrTokenInvalid = errors.New("enrollment token not valid")
	// ErrConflict: a create with an ID that exists, or a job result for a
	// (job, host) that does not hold the lease it reports on.
	ErrConflict = errors.New("conflict")
)

// EnrollToken lets agents enroll. The secret itself is never stored, only
// its SHA-256.
type EnrollToken struct {
	ID         string
	SecretHash []byte // SHA-256 of the secret part
	Labels     map[string]string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	MaxUses    int       // 0: unlimited
	Uses       int
	RevokedAt  time.Time // zero: not revoked
	Note       string
}

// AdminToken authenticates the CLI and operators. Agents never hold one.
type AdminToken struct {
	ID         string
	SecretHash []byte
	Name       string
	CreatedAt  time.Time
	RevokedAt  time.Time
}

// Host is one enrolled endpoint.
type Host struct {
	ID            string // stable across re-enrollment of the same machine-id
	MachineID     string // /etc/machine-id; unique among hosts
	Hostname      string
	Labels        map[string]string
	SecretHash    []byte // SHA-256 of the host's credential secret
	EnrolledAt    time.Time
	RevokedAt     time.Time // zero: active
	LastSeen      time.Time // last successful check-in; zero: never
	Facts         []byte    // JSON: OS facts as last reported (distro, kernel, ...)
	InventoryHash string    // hex SHA-256 of the last full inventory stored; "" none
	InventoryAt   time.Time // when that inventory was stored
}

// HostFilter narrows ListHosts. Zero fields match everything.
type HostFilter struct {
	Label          map[string]string // every pair must match
	IncludeRevoked bool
}

// CheckIn is what a check-in with an unchanged inventory changes.
type CheckIn struct {
	HostID string
	At     time.Time
	Facts  []byte // nil: unchanged
}

// HostUpdates is the server's detection result for one host: the updates
// apt would install, computed from the host's inventory and the indexes
// the server holds. Basis identifies the inputs (inventory hash and index
// set) so a result is recomputed only when they change.
type HostUpdates struct {
	HostID     string
	ComputedAt time.Time
	Basis      string
	Updates    []byte // JSON array of detect.Update-shaped objects (the server adds installed_source_version)
	Count      int
	Security   int
	Error      string // why no result could be computed ("" ok)
}

// UpdateRef is a host's detection result, its list named by hash.
type UpdateRef struct {
	HostID     string
	ComputedAt time.Time
	Basis      string
	Hash       string // "" for a list stored inline
	Error      string
}

// Job is a unit of work for a set of hosts (scan now; later install,
// reboot, rollback). Each (job, host) pair is delivered at least once and
// its result stored once.
type Job struct {
	ID        string
	Kind      string // "scan"
	Params    []byte // JSON; kind-specific
	CreatedAt time.Time
	CreatedBy string
}

// Job states of one host's part of a job.
const (
	JobQueued = "queued" // not handed out, or its lease ran out
	JobLeased = "leased" // handed to the agent until LeaseUntil
	JobDone   = "done"   // result stored (the agent's status inside)
	// JobWithdrawn: taken back before any agent got it (a rollout's
	// queued jobs when it pauses, halts or is cancelled).
	JobWithdrawn = "withdrawn"
)

// HostJob is one host's part of a Job. (JobID, HostID) is its
// idempotency key: an agent that runs a job twice reports on the same
// pair, and only the first result is kept.
type HostJob struct {
	JobID      string
	HostID     string
	Kind       string
	Params     []byte
	State      string
	Attempts   int       // times handed out
	LeaseUntil time.Time // when State is JobLeased
	Status     string    // agent-reported: "ok" or "failed"
	Result     []byte    // JSON, as the agent reported it
	// ResultErr: the stored result could not be read (Result is nil);
	// it says so and names the job and host, as views show it. One bad
	// row does not fail a listing.
	ResultErr  error
	FinishedAt time.Time
	CreatedAt  time.Time
}

// Policy is one patch baseline (package policy) kept by name: the YAML
// source as the operator gave it. The server validates it before storing.
type Policy struct {
	Name   string
	Source []byte // YAML
	// Priority orders the set a host's baseline is chosen from: lowest
	// first, then by name. Given to PutPolicy, a negative value keeps the
	// stored priority (DefaultPolicyPriority for a new policy).
	Priority  int
	Version   int // 1 when created, +1 per change
	CreatedAt time.Time
	UpdatedAt time.Time
	UpdatedBy string // who made the last change (the admin token)
}

// DefaultPolicyPriority is the priority of a policy put without one.
const DefaultPolicyPriority = 100

// Store is the server's persistence. Every method is safe for concurrent
// use and atomic: it either applies completely or not at all.
type Store interface {
	// Enrollment tokens.
	CreateEnrollToken(ctx context.Context, t EnrollToken) error
	ListEnrollTokens(ctx context.Context) ([]EnrollToken, error)
	RevokeEnrollToken(ctx context.Context, id string, at time.Time) error

	// Enroll consumes one use of token id (whose SHA-256 secret must equal
	// secretHash; unknown, revoked, expired or used-up tokens fail with
	// ErrTokenInvalid) and creates the host, or, when a host with
	// h.MachineID exists, gives that host (same ID) the new credential,
	// hostname and the token's labels merged over its own, and clears its
	// revocation. It returns the stored host.
	Enroll(ctx context.Context, id string, secretHash []byte, h Host, now time.Time) (Host, error)

	// Hosts.
	Host(ctx context.Context, id string) (Host, error)
	ListHosts(ctx context.Context, f HostFilter) ([]Host, error)
	// ActiveHostIDs lists the IDs of the hosts not revoked, in no order:
	// what ListHosts lists, without reading (and decoding) each host.
	ActiveHostIDs(ctx context.Context) ([]string, error)
	RevokeHost(ctx context.Context, id string, at time.Time) error
	// CheckIn records a check-in: LastSeen, and Facts when not nil.
	CheckIn(ctx context.Context, c CheckIn) error
	// PutInventory stores an inventory (deduplicated by hash) and makes it
	// the host's current one, in one transaction.
	PutInventory(ctx context.Context, hostID, hash string, data []byte, at time.Time) error
	// Inventory returns the stored inventory with this hash.
	Inventory(ctx context.Context, hash string) ([]byte, error)

	// Admin tokens.
	CreateAdminToken(ctx context.Context, t AdminToken) error
	AdminToken(ctx context.Context, id string) (AdminToken, error)
	ListAdminTokens(ctx context.Context) ([]AdminToken, error)
	RevokeAdminToken(ctx context.Context, id string, at time.Time) error

	// Detection results.
	PutHostUpdates(ctx context.Context, u HostUpdates) error
	HostUpdates(ctx context.Context, hostID string) (HostUpdates, error)
	// UpdateRefs lists every host's detection result without its list:
	// the hash naming the list (UpdateList), "" for a list stored inline
	// before update_lists (read it with HostUpdates).
	UpdateRefs(ctx context.Context) ([]UpdateRef, error)
	// UpdateList returns a stored list of updates by hash.
	UpdateList(ctx context.Context, hash string) ([]byte, error)
	// PruneUpdateLists deletes stored lists of updates that no host names.
	PruneUpdateLists(ctx context.Context) (int64, error)

	// Jobs.
	// CreateJob stores j with one queued HostJob per host, atomically.
	CreateJob(ctx context.Context, j Job, hostIDs []string) error
	Job(ctx context.Context, id string) (Job, []HostJob, error)
	ListJobs(ctx context.Context, limit int) ([]Job, error)
	// LeaseJobs hands out up to max of the host's jobs that are queued or
	// whose lease ran out before now, oldest first, marking them leased
	// until now+lease and counting the attempt.
	LeaseJobs(ctx context.Context, hostID string, now time.Time, lease time.Duration, max int) ([]HostJob, error)
	// LeaseWoken is LeaseJobs for a held check-in woken by a job queued
	// for its host: it leases nothing (revoked) when the host was revoked
	// or is unknown, which it reads in the lease's transaction (holding
	// the host's row until it commits).
	LeaseWoken(ctx context.Context, hostID string, now time.Time, lease time.Duration, max int) (jobs []HostJob, revoked bool, err error)
	// QueuedSince returns the hosts of jobs still queued that were
	// queued at or after since (by the queueing server's clock), each
	// host once.
	QueuedSince(ctx context.Context, since time.Time) ([]string, error)
	// CompleteJob stores the result of (jobID, hostID) once, with the
	// caller's summary of it (nil for none), which RolloutJobUpdates
	// returns instead of the result. A repeated report returns first=false
	// and changes nothing. A pair that does not exist is ErrNotFound, one
	// never leased (still queued) ErrConflict.
	CompleteJob(ctx context.Context, jobID, hostID, status string, result, summary []byte, at time.Time) (first bool, err error)

	// Policies. PutPolicy creates p.Name or replaces its source and
	// priority, counting the version up and recording p.UpdatedAt and
	// p.UpdatedBy; a put that changes neither source nor priority stores
	// nothing and returns changed=false. It returns the stored policy.
	PutPolicy(ctx context.Context, p Policy) (stored Policy, changed bool, err error)
	Policy(ctx context.Context, name string) (Policy, error)
	ListPolicies(ctx context.Context) ([]Policy, error)
	DeletePolicy(ctx context.Context, name string) error

	// Settings hold server-wide values that replicas must share, such as
	// the CA certificate and key. Setting returns ErrNotFound when unset.
	// PutSettingIfAbsent stores v unless the key exists, and returns the
	// stored value either way (so replicas starting at once agree).
	Setting(ctx context.Context, key string) ([]byte, error)
	PutSettingIfAbsent(ctx context.Context, key string, v []byte) ([]byte, error)

	// Rollouts (rollouts.go).
	RolloutStore

	// Stats for metrics and benchmarks.
	Stats(ctx context.Context) (Stats, error)

	Close() error
}

// Stats are counts for metrics.
type Stats struct {
	Hosts, RevokedHosts, Inventories, QueuedJobs int
	SizeBytes                                    int64 // database size on disk, when known
}
