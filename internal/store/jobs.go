package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// CreateJob stores j and one queued HostJob per host (duplicates
// ignored) in one transaction. An existing job ID is ErrConflict, an
// unknown host ErrNotFound.
func (s *sqlStore) CreateJob(ctx context.Context, j Job, hostIDs []string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO jobs (id, kind, params, created_at, created_by)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			j.ID, j.Kind, jsonText(j.Params), ms(j.CreatedAt), j.CreatedBy)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrConflict)
		}
		// Selecting from hosts both checks the host exists and, with
		// ON CONFLICT, makes a repeated host ID harmless.
		insert := s.q(`INSERT INTO host_jobs (job_id, host_id, state, created_at)
			SELECT ?, id, 'queued', ? FROM hosts WHERE id = ? ON CONFLICT (job_id, host_id) DO NOTHING`)
		for _, h := range hostIDs {
			res, err := tx.ExecContext(ctx, insert, j.ID, ms(j.CreatedAt), h)
			if err != nil {
				return fmt.Errorf("host %s: %w", h, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				if err := tx.QueryRowContext(ctx, s.q("SELECT id FROM hosts WHERE id = ?"), h).Scan(new(string)); err != nil {
					if errors.Is(err, sql.ErrNoRows) {
						err = ErrNotFound
					}
					return fmt.Errorf("host %s: %w", h, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create job %s: %w", j.ID, err)
	}
	return nil
}

const jobColumns = "id, kind, params, created_at, created_by"

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var (
		j       Job
		params  sql.NullString
		created int64
	)
	err := row.Scan(&j.ID, &j.Kind, &params, &created, &j.CreatedBy)
	j.Params, j.CreatedAt = textBytes(params), fromMS(created)
	return j, err
}

const hostJobColumns = "job_id, host_id, state, attempts, lease_until, status, result, result_zstd, finished_at, created_at"

func scanHostJob(row interface{ Scan(...any) error }, extra ...any) (HostJob, error) {
	return scanHostJobWith(row, nil, extra...)
}

// scanHostJobWith scans leading columns into lead, then a HostJob, then
// trailing columns into more.
func scanHostJobWith(row interface{ Scan(...any) error }, lead []any, more ...any) (HostJob, error) {
	var (
		hj                       HostJob
		result                   sql.NullString
		packed                   []byte
		lease, finished, created int64
	)
	dest := append(lead, &hj.JobID, &hj.HostID, &hj.State, &hj.Attempts, &lease, &hj.Status, &result, &packed, &finished, &created)
	if err := row.Scan(append(dest, more...)...); err != nil {
		return hj, err
	}
	hj.LeaseUntil, hj.FinishedAt, hj.CreatedAt = fromMS(lease), fromMS(finished), fromMS(created)
	var err error
	if hj.Result, err = unpackResult(result, packed); err != nil {
		hj.ResultErr = fmt.Errorf("job %s of host %s: %w", hj.JobID, hj.HostID, err)
	}
	return hj, nil
}

// Job returns job id and its hosts' parts, ordered by host ID; unknown is
// ErrNotFound.
func (s *sqlStore) Job(ctx context.Context, id string) (Job, []HostJob, error) {
	j, err := scanJob(s.rdb.QueryRowContext(ctx, s.q("SELECT "+jobColumns+" FROM jobs WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, nil, notFound("job", id)
	}
	if err != nil {
		return Job{}, nil, fmt.Errorf("store: job %s: %w", id, err)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q("SELECT "+hostJobColumns+" FROM host_jobs WHERE job_id = ? ORDER BY host_id"), id)
	if err != nil {
		return Job{}, nil, fmt.Errorf("store: job %s: %w", id, err)
	}
	defer rows.Close()
	var hjs []HostJob
	for rows.Next() {
		hj, err := scanHostJob(rows)
		if err != nil {
			return Job{}, nil, fmt.Errorf("store: job %s: %w", id, err)
		}
		hj.Kind, hj.Params = j.Kind, j.Params
		hjs = append(hjs, hj)
	}
	if err := rows.Err(); err != nil {
		return Job{}, nil, fmt.Errorf("store: job %s: %w", id, err)
	}
	return j, hjs, nil
}

// ListJobs returns up to limit jobs, newest first; limit <= 0 is all.
func (s *sqlStore) ListJobs(ctx context.Context, limit int) ([]Job, error) {
	query := "SELECT " + jobColumns + " FROM jobs ORDER BY created_at DESC, id DESC"
	var args []any
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list jobs: %w", err)
	}
	defer rows.Close()
	var js []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list jobs: %w", err)
		}
		js = append(js, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list jobs: %w", err)
	}
	return js, nil
}

// leasable is the condition on host_jobs rows that LeaseJobs may hand
// out: queued, or leased with the lease run out (the parameter is now).
const leasable = "host_id = ? AND (state = 'queued' OR (state = 'leased' AND lease_until < ?))"

// LeaseJobs implements Store.LeaseJobs in one UPDATE ... RETURNING. On
// PostgreSQL the picking SELECT skips rows another lease is taking and
// the UPDATE's WHERE re-checks each row after any wait, so no job is
// handed out twice within a lease; SQLite runs one writer at a time.
// The pick is a MATERIALIZED CTE: as an IN subquery PostgreSQL may
// re-run it per row, and each re-run, skipping the rows the UPDATE has
// just changed, would pick more than max. max <= 0 leases nothing.
func (s *sqlStore) LeaseJobs(ctx context.Context, hostID string, now time.Time, lease time.Duration, max int) ([]HostJob, error) {
	if max <= 0 {
		return nil, nil
	}
	// Nearly every check-in finds no job: see that with a plain read, so
	// that it takes no write lock (SQLite has a single writer) and costs
	// no UPDATE ... RETURNING to parse and run.
	var one int
	err := s.queryRow(ctx, "SELECT 1 FROM host_jobs WHERE "+leasable+" LIMIT 1", []any{hostID, ms(now)}, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: lease jobs of host %s: %w", hostID, err)
	}
	jobs, _, err := s.lease(ctx, hostID, now, lease, max, false)
	return jobs, err
}

// LeaseWoken implements Store.LeaseWoken. It skips LeaseJobs' first read:
// the check-in was woken because a job was queued.
func (s *sqlStore) LeaseWoken(ctx context.Context, hostID string, now time.Time, lease time.Duration, max int) ([]HostJob, bool, error) {
	if max <= 0 {
		return nil, false, nil
	}
	return s.lease(ctx, hostID, now, lease, max, true)
}

// lease leases the jobs of hostID, none if ifActive and the host was
// revoked (revoked is then set).
func (s *sqlStore) lease(ctx context.Context, hostID string, now time.Time, lease time.Duration, max int, ifActive bool) (hjs []HostJob, revoked bool, err error) {
	st, err := s.prepared(ctx, s.db, `WITH picked AS MATERIALIZED (
			SELECT job_id FROM host_jobs WHERE `+leasable+`
			ORDER BY created_at, job_id LIMIT ?`+s.d.skipLocked+`)
		UPDATE host_jobs SET state = 'leased', lease_until = ?, attempts = attempts + 1
		WHERE `+leasable+` AND job_id IN (SELECT job_id FROM picked)
		RETURNING `+hostJobColumns)
	if err != nil {
		return nil, false, fmt.Errorf("store: lease jobs of host %s: %w", hostID, err)
	}
	var active *sql.Stmt
	if ifActive {
		// (Locked until the lease commits: a revocation waits for it, or
		// the lease for the revocation.)
		if active, err = s.prepared(ctx, s.db, "SELECT revoked_at FROM hosts WHERE id = ?"+s.d.forShare); err != nil {
			return nil, false, fmt.Errorf("store: lease jobs of host %s: %w", hostID, err)
		}
	}
	// One transaction (shared with the writes of other requests: group.go):
	// the jobs are leased only if their kind and params are read too (a
	// failure leaves them queued, not leased to no one).
	err = s.grouped(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		hjs, revoked = nil, false // (a write of a failed group runs again)
		if active != nil {
			var at int64
			err := tx.StmtContext(ctx, active).QueryRowContext(ctx, hostID).Scan(&at)
			if errors.Is(err, sql.ErrNoRows) { // deleted: as good as revoked
				revoked = true
				return nil
			}
			if err != nil {
				return err
			}
			if revoked = at != 0; revoked {
				return nil
			}
		}
		rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, hostID, ms(now), max, ms(now.Add(lease)), hostID, ms(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			hj, err := scanHostJob(rows)
			if err != nil {
				return err
			}
			hjs = append(hjs, hj)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		// Kind and params come from the job, shared by its hosts: read
		// once.
		for i := range hjs {
			sp, err := s.jobSpec(ctx, tx, hjs[i].JobID)
			if err != nil {
				return err
			}
			hjs[i].Kind, hjs[i].Params = sp.kind, sp.params
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: lease jobs of host %s: %w", hostID, err)
	}
	// RETURNING has no order.
	sort.Slice(hjs, func(i, j int) bool {
		if !hjs[i].CreatedAt.Equal(hjs[j].CreatedAt) {
			return hjs[i].CreatedAt.Before(hjs[j].CreatedAt)
		}
		return hjs[i].JobID < hjs[j].JobID
	})
	return hjs, revoked, nil
}

// queuedSince is a range read of the host_jobs_created index. The hosts
// are made distinct by the caller: with DISTINCT, SQLite scans the whole
// (host_id, ...) index instead.
const queuedSince = "SELECT host_id FROM host_jobs WHERE created_at >= ? AND state = 'queued'"

// QueuedSince implements Store.QueuedSince.
func (s *sqlStore) QueuedSince(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(queuedSince), ms(since))
	if err != nil {
		return nil, fmt.Errorf("store: jobs queued since %s: %w", since.Format(time.RFC3339Nano), err)
	}
	defer rows.Close()
	var hosts []string
	seen := map[string]bool{}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("store: jobs queued since %s: %w", since.Format(time.RFC3339Nano), err)
		}
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: jobs queued since %s: %w", since.Format(time.RFC3339Nano), err)
	}
	return hosts, nil
}

// CompleteJob stores the first result of (jobID, hostID). It is accepted
// whatever the lease's state (the agent did the work: at-least-once), but
// only for a job handed out: a result for one still queued is refused.
func (s *sqlStore) CompleteJob(ctx context.Context, jobID, hostID, status string, result, summary []byte, at time.Time) (bool, error) {
	st, err := s.prepared(ctx, s.db, `UPDATE host_jobs SET state = 'done', status = ?, result = NULL, result_zstd = ?, summary = ?, finished_at = ?, lease_until = 0
		WHERE job_id = ? AND host_id = ? AND state = 'leased'`)
	if err != nil {
		return false, fmt.Errorf("store: complete job %s of host %s: %w", jobID, hostID, err)
	}
	n, err := s.groupedExec(ctx, st, status, packResult(result), jsonText(summary), ms(at), jobID, hostID)
	if err != nil {
		return false, fmt.Errorf("store: complete job %s of host %s: %w", jobID, hostID, err)
	}
	if n == 1 {
		return true, nil
	}
	var state string
	err = s.rdb.QueryRowContext(ctx, s.q("SELECT state FROM host_jobs WHERE job_id = ? AND host_id = ?"), jobID, hostID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: complete job %s of host %s: %w", jobID, hostID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("store: complete job %s of host %s: %w", jobID, hostID, err)
	}
	if state == JobQueued {
		return false, fmt.Errorf("store: complete job %s of host %s: never handed out: %w", jobID, hostID, ErrConflict)
	}
	return false, nil
}
