package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Rollout is one staged deployment (package rollout): the request it was
// made from, the patch set frozen at creation and the engine's State
// without its hosts, each as JSON; the hosts are RolloutHost rows.
// Version counts the saved steps (1 when created).
type Rollout struct {
	ID        string
	Name      string
	Spec      []byte // JSON: the create request as given
	PatchSet  []byte // JSON: rollout.PatchSet
	SetHash   string
	State     []byte // JSON: rollout.State, its hosts in RolloutHost rows
	Status    string // the State's status, for listing
	Version   int
	CreatedAt time.Time
	CreatedBy string
	UpdatedAt time.Time
}

// RolloutHost is one host's part of a rollout's state.
type RolloutHost struct {
	Idx    int    // the host's place in the state's host order, from 0
	HostID string // the host
	Pins   string // the hash naming its pins (RolloutPins)
	Phase  string // for counting without reading State
	State  []byte // JSON: rollout.HostState without its pins
}

// RolloutPins is one distinct list of pins of a rollout, named by hash.
type RolloutPins struct {
	Hash string
	Pins []byte // JSON: []apply.Pin
}

// RolloutJob is a job a rollout queues for one host under its
// idempotency key: a key is queued at most once, ever. Hosts may share
// a job (the same Job.ID): the job row is stored once, and each host
// gets its own HostJob.
type RolloutJob struct {
	Key    string
	HostID string
	Ring   string
	Job    Job // ID, Kind, Params, CreatedAt, CreatedBy
}

// RolloutStep is what one step of a rollout's engine changed.
type RolloutStep struct {
	Version int    // the stored version the step was computed from
	State   []byte // the new state without hosts
	Status  string
	At      time.Time
	Hosts   []RolloutHost // the hosts whose state changed (or all, to move a state's hosts into rows)
	Pins    []RolloutPins // lists the hosts name that may not be stored yet
	Jobs    []RolloutJob  // to queue
	// Seen records, by key, the RolloutJobUpdate.News the step applied.
	Seen  map[string]int
	Audit []RolloutAudit
}

// RolloutJobUpdate is a rollout job with news for the engine: it was
// handed out, answered or taken back, or its host was revoked, since the
// engine last saw it.
type RolloutJobUpdate struct {
	RolloutJobRef
	News          int // the count of changes; a step saves it as seen
	HostRevokedAt time.Time
}

// RolloutJobRef is a queued rollout job with its host's part of it.
type RolloutJobRef struct {
	Key       string
	RolloutID string
	Ring      string
	Kind      string
	HostJob   HostJob // JobID, HostID, state and result
	CreatedAt time.Time
}

// RolloutAudit is one line of a rollout's history.
type RolloutAudit struct {
	Seq    int // from 1, in order; assigned when stored
	At     time.Time
	Actor  string
	What   string
	Ring   string
	Host   string
	Detail string
}

// RolloutStore persists rollouts. Every method is atomic.
type RolloutStore interface {
	// CreateRollout stores r at version 1 with its hosts, their pins and
	// its first audit lines; an existing ID is ErrConflict.
	CreateRollout(ctx context.Context, r Rollout, hosts []RolloutHost, pins []RolloutPins, audit []RolloutAudit) error
	Rollout(ctx context.Context, id string) (Rollout, error)
	// RolloutHosts returns a rollout's host rows by Idx and the pin
	// lists they name.
	RolloutHosts(ctx context.Context, id string) ([]RolloutHost, []RolloutPins, error)
	// ListRollouts returns every rollout, newest first, with or without
	// status (status "" is all).
	ListRollouts(ctx context.Context, status ...string) ([]Rollout, error)
	// SaveRolloutStep replaces the state of rollout id if it is still at
	// step.Version (else ErrConflict, nothing stored), writes its changed
	// host rows and new pin lists, records what the engine saw of jobs
	// (by key), appends the audit lines and queues each job whose key was
	// never queued, all in one transaction. It returns the new version
	// and the keys it queued.
	SaveRolloutStep(ctx context.Context, id string, step RolloutStep) (newVersion int, queued []string, err error)
	// RolloutJobUpdates lists the rollout's jobs whose state (or whose
	// host's) changed since a step last recorded it as seen. A result
	// stored with a summary reads as its summary (HostJob.Result). They
	// come by host, then key.
	RolloutJobUpdates(ctx context.Context, id string) ([]RolloutJobUpdate, error)
	// WithdrawRolloutJobs takes back the rollout's queued jobs with these
	// keys that no agent ever got (never leased): their state becomes
	// JobWithdrawn and RolloutJobUpdates lists them. It returns how many.
	WithdrawRolloutJobs(ctx context.Context, id string, keys []string) (int, error)
	// RolloutJobIDs maps the rollout's queued keys among keys to their
	// job IDs.
	RolloutJobIDs(ctx context.Context, id string, keys []string) (map[string]string, error)
	// RolloutPhases counts a rollout's hosts by phase.
	RolloutPhases(ctx context.Context, id string) (map[string]int, error)
	// QueueRolloutJobs queues the jobs whose keys were never queued and
	// appends the audit lines, without touching the state.
	QueueRolloutJobs(ctx context.Context, id string, jobs []RolloutJob, audit []RolloutAudit) (queued []string, err error)
	// RolloutOfJob finds the rollout and the kind of the rollout job with
	// this job ID of this host (ErrNotFound when the job belongs to no
	// rollout).
	RolloutOfJob(ctx context.Context, jobID, hostID string) (rolloutID, kind string, err error)
	// RolloutJobs lists a rollout's jobs with their hosts' parts, by
	// host then creation.
	RolloutJobs(ctx context.Context, id string) ([]RolloutJobRef, error)
	RolloutAudit(ctx context.Context, id string) ([]RolloutAudit, error)
}

const rolloutColumns = "id, name, spec, patch_set, set_hash, state, status, version, created_at, created_by, updated_at"

func scanRollout(row interface{ Scan(...any) error }) (Rollout, error) {
	var (
		r                Rollout
		spec, set, state string
		created, updated int64
	)
	err := row.Scan(&r.ID, &r.Name, &spec, &set, &r.SetHash, &state, &r.Status, &r.Version, &created, &r.CreatedBy, &updated)
	r.Spec, r.PatchSet, r.State = []byte(spec), []byte(set), []byte(state)
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(updated)
	return r, err
}

// CreateRollout implements RolloutStore.
func (s *sqlStore) CreateRollout(ctx context.Context, r Rollout, hosts []RolloutHost, pins []RolloutPins, audit []RolloutAudit) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO rollouts (`+rolloutColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			r.ID, r.Name, string(r.Spec), string(r.PatchSet), r.SetHash, string(r.State), r.Status,
			ms(r.CreatedAt), r.CreatedBy, ms(r.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrConflict)
		}
		if err := s.putRolloutHosts(ctx, tx, r.ID, hosts, pins); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, r.ID, audit)
	})
	if err != nil {
		return fmt.Errorf("store: create rollout %s: %w", r.ID, err)
	}
	return nil
}

// Rollout implements RolloutStore.
func (s *sqlStore) Rollout(ctx context.Context, id string) (Rollout, error) {
	r, err := scanRollout(s.rdb.QueryRowContext(ctx, s.q("SELECT "+rolloutColumns+" FROM rollouts WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Rollout{}, notFound("rollout", id)
	}
	if err != nil {
		return Rollout{}, fmt.Errorf("store: rollout %s: %w", id, err)
	}
	return r, nil
}

// ListRollouts implements RolloutStore.
func (s *sqlStore) ListRollouts(ctx context.Context, status ...string) ([]Rollout, error) {
	query := "SELECT " + rolloutColumns + " FROM rollouts"
	var args []any
	for i, st := range status {
		if i == 0 {
			query += " WHERE status IN (?"
		} else {
			query += ", ?"
		}
		args = append(args, st)
	}
	if len(status) > 0 {
		query += ")"
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(query+" ORDER BY created_at DESC, id DESC"), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list rollouts: %w", err)
	}
	defer rows.Close()
	var out []Rollout
	for rows.Next() {
		r, err := scanRollout(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list rollouts: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list rollouts: %w", err)
	}
	return out, nil
}

// SaveRolloutStep implements RolloutStore.
func (s *sqlStore) SaveRolloutStep(ctx context.Context, id string, step RolloutStep) (int, []string, error) {
	var queued []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET state = ?, status = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND version = ?`), string(step.State), step.Status, ms(step.At), id, step.Version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if err := tx.QueryRowContext(ctx, s.q("SELECT id FROM rollouts WHERE id = ?"), id).Scan(new(string)); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return fmt.Errorf("version %d is not the stored one: %w", step.Version, ErrConflict)
		}
		if err := s.putRolloutHosts(ctx, tx, id, step.Hosts, step.Pins); err != nil {
			return err
		}
		if len(step.Seen) > 0 {
			// A step only raises seen: a change counted after the step
			// read the job keeps news above it.
			mark, err := tx.PrepareContext(ctx, s.q("UPDATE rollout_jobs SET seen = ? WHERE key = ? AND rollout_id = ? AND seen < ?"))
			if err != nil {
				return err
			}
			defer mark.Close()
			for _, key := range slices.Sorted(maps.Keys(step.Seen)) {
				if _, err := mark.ExecContext(ctx, step.Seen[key], key, id, step.Seen[key]); err != nil {
					return fmt.Errorf("job %s: %w", key, err)
				}
			}
		}
		if queued, err = s.queueRolloutJobs(ctx, tx, id, step.Jobs); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, id, step.Audit)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: save rollout %s: %w", id, err)
	}
	return step.Version + 1, queued, nil
}

// putRolloutHosts writes host rows (replacing those at the same Idx) and
// the pin lists not stored yet.
func (s *sqlStore) putRolloutHosts(ctx context.Context, tx *sql.Tx, id string, hosts []RolloutHost, pins []RolloutPins) error {
	if len(pins) > 0 {
		put, err := tx.PrepareContext(ctx, s.q(`INSERT INTO rollout_pins (rollout_id, hash, pins) VALUES (?, ?, ?)
			ON CONFLICT (rollout_id, hash) DO NOTHING`))
		if err != nil {
			return err
		}
		defer put.Close()
		for _, p := range pins {
			if _, err := put.ExecContext(ctx, id, p.Hash, string(p.Pins)); err != nil {
				return fmt.Errorf("pins %s: %w", p.Hash, err)
			}
		}
	}
	if len(hosts) == 0 {
		return nil
	}
	// (A row given twice: the last one, as one statement per row did.
	// PostgreSQL refuses to update a row twice in one statement.)
	last := make(map[int]int, len(hosts))
	for i, h := range hosts {
		last[h.Idx] = i
	}
	if len(last) < len(hosts) {
		var once []RolloutHost
		for i, h := range hosts {
			if last[h.Idx] == i {
				once = append(once, h)
			}
		}
		hosts = once
	}
	err := s.insertRows(ctx, tx, "INSERT INTO rollout_hosts (rollout_id, idx, host_id, pins, phase, state)", "(?, ?, ?, ?, ?, ?)",
		"ON CONFLICT (rollout_id, idx) DO UPDATE SET host_id = excluded.host_id, pins = excluded.pins, phase = excluded.phase, state = excluded.state",
		len(hosts), func(i int) []any {
			h := hosts[i]
			return []any{id, h.Idx, h.HostID, h.Pins, h.Phase, string(h.State)}
		}, nil)
	if err != nil {
		return fmt.Errorf("hosts %s to %s: %w", hosts[0].HostID, hosts[len(hosts)-1].HostID, err)
	}
	return nil
}

// rowsPerInsert bounds the rows of one insertRows statement: 500 rows of
// 8 columns are 4,000 parameters (SQLite takes 32,766, PostgreSQL 65,535).
const rowsPerInsert = 500

// insertRows inserts n rows with head + " VALUES tuple, tuple, ... " + tail,
// row(i) the values of the i-th row's tuple (the "?" in it), and gives
// returned (when not nil) each row a RETURNING tail returns (one column):
// one statement per rowsPerInsert rows instead of one per row, which cost
// a round trip each on PostgreSQL (a ring of 10,000 hosts took seconds to
// start) and a statement's overhead each on SQLite.
func (s *sqlStore) insertRows(ctx context.Context, tx *sql.Tx, head, tuple, tail string, n int, row func(i int) []any, returned func(string)) error {
	query := func(rows int) string {
		return s.q(head + " VALUES " + strings.Repeat(tuple+", ", rows-1) + tuple + " " + tail)
	}
	// Several full statements: SQLite parses theirs once.
	var full *sql.Stmt
	if n > rowsPerInsert {
		var err error
		if full, err = tx.PrepareContext(ctx, query(rowsPerInsert)); err != nil {
			return err
		}
		defer full.Close()
	}
	var args []any
	for start := 0; start < n; start += rowsPerInsert {
		end := min(start+rowsPerInsert, n)
		args = args[:0]
		for i := start; i < end; i++ {
			args = append(args, row(i)...)
		}
		var (
			rows *sql.Rows
			err  error
		)
		if end-start == rowsPerInsert && full != nil {
			rows, err = full.QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, query(end-start), args...)
		}
		if err != nil {
			return err
		}
		if err := scanReturned(rows, returned); err != nil {
			return err
		}
	}
	return nil
}

// scanReturned gives returned (when not nil) the one column of each row,
// and closes rows.
func scanReturned(rows *sql.Rows, returned func(string)) error {
	defer rows.Close()
	for returned != nil && rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		returned(v)
	}
	return rows.Err()
}

// RolloutHosts implements RolloutStore. The hosts are read first: pins
// are stored with the first host naming them and never deleted, so the
// pins read after include every list the hosts name.
func (s *sqlStore) RolloutHosts(ctx context.Context, id string) ([]RolloutHost, []RolloutPins, error) {
	hosts, err := s.rolloutHosts(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("store: hosts of rollout %s: %w", id, err)
	}
	pins, err := s.rolloutPins(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("store: pins of rollout %s: %w", id, err)
	}
	return hosts, pins, nil
}

func (s *sqlStore) rolloutHosts(ctx context.Context, id string) ([]RolloutHost, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q("SELECT idx, host_id, pins, phase, state FROM rollout_hosts WHERE rollout_id = ? ORDER BY idx"), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hosts []RolloutHost
	for rows.Next() {
		var (
			h     RolloutHost
			state string
		)
		if err := rows.Scan(&h.Idx, &h.HostID, &h.Pins, &h.Phase, &state); err != nil {
			return nil, err
		}
		h.State = []byte(state)
		hosts = append(hosts, h)
	}
	return hosts, rows.Err()
}

func (s *sqlStore) rolloutPins(ctx context.Context, id string) ([]RolloutPins, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q("SELECT hash, pins FROM rollout_pins WHERE rollout_id = ? ORDER BY hash"), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pins []RolloutPins
	for rows.Next() {
		var (
			p    RolloutPins
			list string
		)
		if err := rows.Scan(&p.Hash, &list); err != nil {
			return nil, err
		}
		p.Pins = []byte(list)
		pins = append(pins, p)
	}
	return pins, rows.Err()
}

var updatesQuery = `SELECT ` + updateColumns + `, rj.news, h.revoked_at
	FROM rollout_jobs rj JOIN host_jobs hj ON hj.job_id = rj.job_id AND hj.host_id = rj.host_id
	JOIN hosts h ON h.id = rj.host_id
	WHERE rj.rollout_id = ? AND rj.news > rj.seen`

// RolloutJobUpdates implements RolloutStore. The rows are sorted here:
// with an ORDER BY, SQLite reads them by the index in that order instead
// of the partial index of the jobs with news, and so reads every job of
// the rollout at every step (a tenth of the server's time in a rollout
// of 100,000 hosts).
func (s *sqlStore) RolloutJobUpdates(ctx context.Context, id string) ([]RolloutJobUpdate, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(updatesQuery), id)
	if err != nil {
		return nil, fmt.Errorf("store: job updates of rollout %s: %w", id, err)
	}
	defer rows.Close()
	var out []RolloutJobUpdate
	for rows.Next() {
		var (
			u       RolloutJobUpdate
			revoked int64
		)
		ref, err := scanRolloutJob(rows, &u.News, &revoked)
		if err != nil {
			return nil, fmt.Errorf("store: job updates of rollout %s: %w", id, err)
		}
		u.RolloutJobRef, u.HostRevokedAt = ref, fromMS(revoked)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: job updates of rollout %s: %w", id, err)
	}
	slices.SortFunc(out, func(a, b RolloutJobUpdate) int {
		return cmp.Or(strings.Compare(a.HostJob.HostID, b.HostJob.HostID), strings.Compare(a.Key, b.Key))
	})
	return out, nil
}

// QueueRolloutJobs implements RolloutStore.
func (s *sqlStore) QueueRolloutJobs(ctx context.Context, id string, jobs []RolloutJob, audit []RolloutAudit) ([]string, error) {
	var queued []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if queued, err = s.queueRolloutJobs(ctx, tx, id, jobs); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, id, audit)
	})
	if err != nil {
		return nil, fmt.Errorf("store: queue jobs of rollout %s: %w", id, err)
	}
	return queued, nil
}

// queueRolloutJobs inserts the key, the job (unless another host's key
// stored it) and its host's part of each job whose key is new. The key
// goes in first: a key seen before (or being inserted by a concurrent
// transaction, which PostgreSQL waits for) stops there, so nothing is
// queued twice.
func (s *sqlStore) queueRolloutJobs(ctx context.Context, tx *sql.Tx, id string, jobs []RolloutJob) ([]string, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	hostIDs := make([]string, len(jobs))
	for i, j := range jobs {
		hostIDs[i] = j.HostID
	}
	revoked, err := s.hostsRevoked(ctx, tx, hostIDs)
	if err != nil {
		return nil, fmt.Errorf("hosts of the jobs: %w", err)
	}
	// A job queued for a revoked host is news at once: its host will
	// never take it, and no trigger would fire. A key queued before (or
	// twice here) is not returned, and is queued once.
	inserted := map[string]bool{}
	err = s.insertRows(ctx, tx, "INSERT INTO rollout_jobs (key, rollout_id, job_id, host_id, ring, kind, created_at, news)",
		"(?, ?, ?, ?, ?, ?, ?, ?)", "ON CONFLICT (key) DO NOTHING RETURNING key", len(jobs), func(i int) []any {
			j, news := jobs[i], 0
			if revoked[j.HostID] {
				news = 1
			}
			return []any{j.Key, id, j.Job.ID, j.HostID, j.Ring, j.Job.Kind, ms(j.Job.CreatedAt), news}
		}, func(key string) { inserted[key] = true })
	if err != nil {
		return nil, fmt.Errorf("jobs %s to %s: %w", jobs[0].Key, jobs[len(jobs)-1].Key, err)
	}
	var fresh []RolloutJob
	for _, j := range jobs {
		if inserted[j.Key] {
			delete(inserted, j.Key)
			fresh = append(fresh, j)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	putJob, err := tx.PrepareContext(ctx, s.q(`INSERT INTO jobs (id, kind, params, created_at, created_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`))
	if err != nil {
		return nil, err
	}
	defer putJob.Close()
	queued := make([]string, len(fresh))
	stored := map[string]bool{} // job IDs stored by this call
	for i, j := range fresh {
		if _, ok := revoked[j.HostID]; !ok {
			return nil, fmt.Errorf("job %s: host %s: %w", j.Key, j.HostID, ErrNotFound)
		}
		if !stored[j.Job.ID] {
			if _, err := putJob.ExecContext(ctx, j.Job.ID, j.Job.Kind, jsonText(j.Job.Params), ms(j.Job.CreatedAt), j.Job.CreatedBy); err != nil {
				return nil, fmt.Errorf("job %s: %w", j.Key, err)
			}
			stored[j.Job.ID] = true
		}
		queued[i] = j.Key
	}
	err = s.insertRows(ctx, tx, "INSERT INTO host_jobs (job_id, host_id, state, created_at)", "(?, ?, 'queued', ?)", "", len(fresh),
		func(i int) []any { return []any{fresh[i].Job.ID, fresh[i].HostID, ms(fresh[i].Job.CreatedAt)} }, nil)
	if err != nil {
		return nil, fmt.Errorf("host jobs of %s to %s: %w", fresh[0].Key, fresh[len(fresh)-1].Key, err)
	}
	return queued, nil
}

// hostsRevoked reports, of the ids that are hosts, whether each is
// revoked (absent: no such host), rowsPerInsert at a time.
func (s *sqlStore) hostsRevoked(ctx context.Context, tx *sql.Tx, ids []string) (map[string]bool, error) {
	revoked := make(map[string]bool, len(ids))
	for start := 0; start < len(ids); start += rowsPerInsert {
		chunk := ids[start:min(start+rowsPerInsert, len(ids))]
		args := make([]any, len(chunk))
		for i, h := range chunk {
			args[i] = h
		}
		rows, err := tx.QueryContext(ctx, s.q("SELECT id, revoked_at FROM hosts WHERE id IN ("+strings.Repeat("?, ", len(chunk)-1)+"?)"), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				h  string
				at int64
			)
			if err := rows.Scan(&h, &at); err != nil {
				rows.Close()
				return nil, err
			}
			revoked[h] = at != 0
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return revoked, nil
}

func (s *sqlStore) appendAudit(ctx context.Context, tx *sql.Tx, id string, audit []RolloutAudit) error {
	if len(audit) == 0 {
		return nil
	}
	var seq int
	if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(MAX(seq), 0) FROM rollout_audit WHERE rollout_id = ?"), id).Scan(&seq); err != nil {
		return err
	}
	err := s.insertRows(ctx, tx, "INSERT INTO rollout_audit (rollout_id, seq, at, actor, what, ring, host, detail)", "(?, ?, ?, ?, ?, ?, ?, ?)", "",
		len(audit), func(i int) []any {
			a := audit[i]
			return []any{id, seq + 1 + i, ms(a.At), a.Actor, a.What, a.Ring, a.Host, a.Detail}
		}, nil)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

const rolloutJobColumns = "rj.key, rj.rollout_id, rj.ring, rj.kind, rj.created_at, hj.job_id, hj.host_id, hj.state, hj.attempts, hj.lease_until, hj.status, hj.result, hj.result_zstd, hj.finished_at, hj.created_at"

// updateColumns are rolloutJobColumns with a result's summary, when it
// has one, in place of the result.
var updateColumns = strings.Replace(rolloutJobColumns, "hj.result, hj.result_zstd",
	"COALESCE(hj.summary, hj.result), CASE WHEN hj.summary IS NULL THEN hj.result_zstd END", 1)

// scanRolloutJob scans rolloutJobColumns (or updateColumns), then more.
func scanRolloutJob(row interface{ Scan(...any) error }, more ...any) (RolloutJobRef, error) {
	var (
		r       RolloutJobRef
		created int64
	)
	hj, err := scanHostJobWith(row, []any{&r.Key, &r.RolloutID, &r.Ring, &r.Kind, &created}, more...)
	r.HostJob, r.CreatedAt = hj, fromMS(created)
	r.HostJob.Kind = r.Kind
	return r, err
}

// RolloutOfJob implements RolloutStore. It reads rollout_jobs alone: a
// job result calls it, and the host job's row holds the (large) result.
func (s *sqlStore) RolloutOfJob(ctx context.Context, jobID, hostID string) (string, string, error) {
	var id, kind string
	err := s.queryRow(ctx, `SELECT rollout_id, kind FROM rollout_jobs WHERE job_id = ? AND host_id = ?`, []any{jobID, hostID}, &id, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", notFound("rollout job", jobID)
	}
	if err != nil {
		return "", "", fmt.Errorf("store: rollout job %s: %w", jobID, err)
	}
	return id, kind, nil
}

// RolloutJobs implements RolloutStore.
func (s *sqlStore) RolloutJobs(ctx context.Context, id string) ([]RolloutJobRef, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+rolloutJobColumns+`
		FROM rollout_jobs rj JOIN host_jobs hj ON hj.job_id = rj.job_id AND hj.host_id = rj.host_id
		WHERE rj.rollout_id = ? ORDER BY rj.host_id, rj.created_at, rj.key`), id)
	if err != nil {
		return nil, fmt.Errorf("store: jobs of rollout %s: %w", id, err)
	}
	defer rows.Close()
	var out []RolloutJobRef
	for rows.Next() {
		r, err := scanRolloutJob(rows)
		if err != nil {
			return nil, fmt.Errorf("store: jobs of rollout %s: %w", id, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: jobs of rollout %s: %w", id, err)
	}
	return out, nil
}

// RolloutAudit implements RolloutStore.
func (s *sqlStore) RolloutAudit(ctx context.Context, id string) ([]RolloutAudit, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT seq, at, actor, what, ring, host, detail
		FROM rollout_audit WHERE rollout_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, fmt.Errorf("store: audit of rollout %s: %w", id, err)
	}
	defer rows.Close()
	var out []RolloutAudit
	for rows.Next() {
		var (
			a  RolloutAudit
			at int64
		)
		if err := rows.Scan(&a.Seq, &at, &a.Actor, &a.What, &a.Ring, &a.Host, &a.Detail); err != nil {
			return nil, fmt.Errorf("store: audit of rollout %s: %w", id, err)
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit of rollout %s: %w", id, err)
	}
	return out, nil
}

// RolloutPhases counts a rollout's host rows by phase.
func (s *sqlStore) RolloutPhases(ctx context.Context, id string) (map[string]int, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q("SELECT phase, COUNT(*) FROM rollout_hosts WHERE rollout_id = ? GROUP BY phase"), id)
	if err != nil {
		return nil, fmt.Errorf("store: phases of rollout %s: %w", id, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			phase string
			n     int
		)
		if err := rows.Scan(&phase, &n); err != nil {
			return nil, fmt.Errorf("store: phases of rollout %s: %w", id, err)
		}
		out[phase] = n
	}
	return out, rows.Err()
}

// WithdrawRolloutJobs implements RolloutStore. A job whose lease ran out
// is queued again but may be running on its host: only jobs never
// handed out (no attempts) are taken back.
func (s *sqlStore) WithdrawRolloutJobs(ctx context.Context, id string, keys []string) (int, error) {
	total := 0
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 500)]
		keys = keys[len(chunk):]
		args := []any{id}
		for _, k := range chunk {
			args = append(args, k)
		}
		n, err := s.exec(ctx, `UPDATE host_jobs SET state = 'withdrawn'
			WHERE (job_id, host_id) IN (SELECT job_id, host_id FROM rollout_jobs
				WHERE rollout_id = ? AND key IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`))
			AND state = 'queued' AND attempts = 0`, args...)
		if err != nil {
			return total, fmt.Errorf("store: withdraw jobs of rollout %s: %w", id, err)
		}
		total += int(n)
	}
	return total, nil
}

// RolloutJobIDs implements RolloutStore.
func (s *sqlStore) RolloutJobIDs(ctx context.Context, id string, keys []string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range keys {
		var job string
		err := s.rdb.QueryRowContext(ctx, s.q("SELECT job_id FROM rollout_jobs WHERE key = ? AND rollout_id = ?"), k, id).Scan(&job)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: job of %s: %w", k, err)
		}
		out[k] = job
	}
	return out, nil
}
