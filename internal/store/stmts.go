package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Prepared statements of the hot paths (every agent request): SQLite
// would otherwise parse each statement at every run, which was a sixth of
// the server's time handing out a rollout's jobs. The pgx driver caches
// its statements itself.

// stmtKey names a statement prepared on one of the store's handles.
type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns query (in ? form) prepared on db, preparing it once.
func (s *sqlStore) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{db, query}
	if st, ok := s.stmts.Load(k); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if old, loaded := s.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// txExec runs st, prepared on db, in tx. (Preparing takes a connection
// of db, so it is done before: on SQLite tx holds db's only one.)
func txExec(ctx context.Context, tx *sql.Tx, st *sql.Stmt, args ...any) (int64, error) {
	res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs a fixed single-row read of a hot path, prepared once, on
// rdb, and scans its row into dest.
func (s *sqlStore) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	st, err := s.prepared(ctx, s.rdb, query)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// closeStmts closes the prepared statements.
func (s *sqlStore) closeStmts() {
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
}

// jobSpec is what never changes of a stored job: its kind and params.
type jobSpec struct {
	kind   string
	params []byte
}

// jobSpec returns the kind and params of job id, read with tx if not
// remembered.
func (s *sqlStore) jobSpec(ctx context.Context, tx *sql.Tx, id string) (jobSpec, error) {
	if sp, ok := s.specs.Get(id); ok {
		return sp, nil
	}
	var sp jobSpec
	var params sql.NullString
	err := tx.QueryRowContext(ctx, s.q("SELECT kind, params FROM jobs WHERE id = ?"), id).Scan(&sp.kind, &params)
	if errors.Is(err, sql.ErrNoRows) {
		return sp, notFound("job", id)
	}
	if err != nil {
		return sp, fmt.Errorf("store: job %s: %w", id, err)
	}
	sp.params = textBytes(params)
	s.specs.Put(id, sp)
	return sp, nil
}
