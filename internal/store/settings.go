package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Setting returns the value of key; unset is ErrNotFound.
func (s *sqlStore) Setting(ctx context.Context, key string) ([]byte, error) {
	return s.setting(ctx, s.rdb, key)
}

func (s *sqlStore) setting(ctx context.Context, db *sql.DB, key string) ([]byte, error) {
	var v []byte
	err := db.QueryRowContext(ctx, s.q("SELECT value FROM settings WHERE key = ?"), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("setting", key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: setting %s: %w", key, err)
	}
	return v, nil
}

// PutSettingIfAbsent stores v under key unless key is set, and returns
// the stored value. The INSERT waits for a concurrent one to commit, so
// replicas racing here all read the winner's value.
func (s *sqlStore) PutSettingIfAbsent(ctx context.Context, key string, v []byte) ([]byte, error) {
	if v == nil {
		v = []byte{} // the column is NOT NULL
	}
	if _, err := s.exec(ctx, "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, v); err != nil {
		return nil, fmt.Errorf("store: put setting %s: %w", key, err)
	}
	return s.setting(ctx, s.db, key)
}

// Stats counts hosts (all, and the revoked among them), stored
// inventories and queued host jobs, and measures the database.
func (s *sqlStore) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.rdb.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM hosts),
		(SELECT COUNT(*) FROM hosts WHERE revoked_at <> 0),
		(SELECT COUNT(*) FROM inventories),
		(SELECT COUNT(*) FROM host_jobs WHERE state = 'queued')`).
		Scan(&st.Hosts, &st.RevokedHosts, &st.Inventories, &st.QueuedJobs)
	if err == nil {
		err = s.rdb.QueryRowContext(ctx, s.d.sizeQuery).Scan(&st.SizeBytes)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	return st, nil
}
