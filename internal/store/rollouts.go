package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Rollout is one staged deployment (package rollout): the request it was
// made from, the patch set frozen at creation and the engine's State,
// each as JSON. Version counts the saved steps (1 when created).
type Rollout struct {
	ID        string
	Name      string
	Spec      []byte // JSON: the create request as given
	PatchSet  []byte // JSON: rollout.PatchSet
	SetHash   string
	State     []byte // JSON: rollout.State
	Status    string // the State's status, for listing
	Version   int
	CreatedAt time.Time
	CreatedBy string
	UpdatedAt time.Time
}

// RolloutJob is a job a rollout queues for one host under its
// idempotency key: a key is queued at most once, ever.
type RolloutJob struct {
	Key    string
	HostID string
	Ring   string
	Job    Job // ID, Kind, Params, CreatedAt, CreatedBy
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
	// CreateRollout stores r at version 1 with its first audit lines; an
	// existing ID is ErrConflict.
	CreateRollout(ctx context.Context, r Rollout, audit []RolloutAudit) error
	Rollout(ctx context.Context, id string) (Rollout, error)
	// ListRollouts returns every rollout, newest first, with or without
	// status (status "" is all).
	ListRollouts(ctx context.Context, status ...string) ([]Rollout, error)
	// SaveRolloutStep replaces the state of rollout id if it is still at
	// version (else ErrConflict, nothing stored), appends the audit lines
	// and queues each job whose key was never queued, all in one
	// transaction. It returns the new version and the keys it queued.
	SaveRolloutStep(ctx context.Context, id string, version int, state []byte, status string, at time.Time,
		jobs []RolloutJob, audit []RolloutAudit) (newVersion int, queued []string, err error)
	// QueueRolloutJobs queues the jobs whose keys were never queued and
	// appends the audit lines, without touching the state.
	QueueRolloutJobs(ctx context.Context, id string, jobs []RolloutJob, audit []RolloutAudit) (queued []string, err error)
	// RolloutJobOf finds the rollout job with this job ID (ErrNotFound
	// when the job belongs to no rollout).
	RolloutJobOf(ctx context.Context, jobID string) (RolloutJobRef, error)
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
func (s *sqlStore) CreateRollout(ctx context.Context, r Rollout, audit []RolloutAudit) error {
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
func (s *sqlStore) SaveRolloutStep(ctx context.Context, id string, version int, state []byte, status string, at time.Time,
	jobs []RolloutJob, audit []RolloutAudit) (int, []string, error) {
	var queued []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET state = ?, status = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND version = ?`), string(state), status, ms(at), id, version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if err := tx.QueryRowContext(ctx, s.q("SELECT id FROM rollouts WHERE id = ?"), id).Scan(new(string)); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return fmt.Errorf("version %d is not the stored one: %w", version, ErrConflict)
		}
		if queued, err = s.queueRolloutJobs(ctx, tx, id, jobs); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, id, audit)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: save rollout %s: %w", id, err)
	}
	return version + 1, queued, nil
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

// queueRolloutJobs inserts the key, the job and its host's part of each
// job whose key is new. The key goes in first: a key seen before (or
// being inserted by a concurrent transaction, which PostgreSQL waits
// for) stops there, so nothing is queued twice.
func (s *sqlStore) queueRolloutJobs(ctx context.Context, tx *sql.Tx, id string, jobs []RolloutJob) ([]string, error) {
	var queued []string
	for _, j := range jobs {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO rollout_jobs (key, rollout_id, job_id, host_id, ring, kind, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`), j.Key, id, j.Job.ID, j.HostID, j.Ring, j.Job.Kind, ms(j.Job.CreatedAt))
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			continue // queued before
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO jobs (id, kind, params, created_at, created_by)
			VALUES (?, ?, ?, ?, ?)`), j.Job.ID, j.Job.Kind, jsonText(j.Job.Params), ms(j.Job.CreatedAt), j.Job.CreatedBy); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.Key, err)
		}
		res, err = tx.ExecContext(ctx, s.q(`INSERT INTO host_jobs (job_id, host_id, state, created_at)
			SELECT ?, id, 'queued', ? FROM hosts WHERE id = ?`), j.Job.ID, ms(j.Job.CreatedAt), j.HostID)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return nil, fmt.Errorf("job %s: host %s: %w", j.Key, j.HostID, errors.Join(err, ErrNotFound))
		}
		queued = append(queued, j.Key)
	}
	return queued, nil
}

func (s *sqlStore) appendAudit(ctx context.Context, tx *sql.Tx, id string, audit []RolloutAudit) error {
	if len(audit) == 0 {
		return nil
	}
	var seq int
	if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(MAX(seq), 0) FROM rollout_audit WHERE rollout_id = ?"), id).Scan(&seq); err != nil {
		return err
	}
	insert := s.q(`INSERT INTO rollout_audit (rollout_id, seq, at, actor, what, ring, host, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	for _, a := range audit {
		seq++
		if _, err := tx.ExecContext(ctx, insert, id, seq, ms(a.At), a.Actor, a.What, a.Ring, a.Host, a.Detail); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return nil
}

const rolloutJobColumns = "rj.key, rj.rollout_id, rj.ring, rj.kind, rj.created_at, hj.job_id, hj.host_id, hj.state, hj.attempts, hj.lease_until, hj.status, hj.result, hj.finished_at, hj.created_at"

func scanRolloutJob(row interface{ Scan(...any) error }) (RolloutJobRef, error) {
	var (
		r       RolloutJobRef
		created int64
	)
	hj, err := scanHostJobWith(row, []any{&r.Key, &r.RolloutID, &r.Ring, &r.Kind, &created})
	r.HostJob, r.CreatedAt = hj, fromMS(created)
	r.HostJob.Kind = r.Kind
	return r, err
}

// scanHostJobWith scans leading columns into lead, then a HostJob.
func scanHostJobWith(row interface{ Scan(...any) error }, lead []any) (HostJob, error) {
	var (
		hj                       HostJob
		result                   sql.NullString
		lease, finished, created int64
	)
	dest := append(lead, &hj.JobID, &hj.HostID, &hj.State, &hj.Attempts, &lease, &hj.Status, &result, &finished, &created)
	err := row.Scan(dest...)
	hj.Result, hj.LeaseUntil, hj.FinishedAt, hj.CreatedAt = textBytes(result), fromMS(lease), fromMS(finished), fromMS(created)
	return hj, err
}

// RolloutJobOf implements RolloutStore.
func (s *sqlStore) RolloutJobOf(ctx context.Context, jobID string) (RolloutJobRef, error) {
	r, err := scanRolloutJob(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+rolloutJobColumns+`
		FROM rollout_jobs rj JOIN host_jobs hj ON hj.job_id = rj.job_id AND hj.host_id = rj.host_id
		WHERE rj.job_id = ?`), jobID))
	if errors.Is(err, sql.ErrNoRows) {
		return RolloutJobRef{}, notFound("rollout job", jobID)
	}
	if err != nil {
		return RolloutJobRef{}, fmt.Errorf("store: rollout job %s: %w", jobID, err)
	}
	return r, nil
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
