package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const enrollTokenColumns = "id, secret_hash, labels, created_at, expires_at, max_uses, uses, revoked_at, note"

func scanEnrollToken(row interface{ Scan(...any) error }) (EnrollToken, error) {
	var (
		t                         EnrollToken
		labels                    string
		created, expires, revoked int64
	)
	if err := row.Scan(&t.ID, &t.SecretHash, &labels, &created, &expires, &t.MaxUses, &t.Uses, &revoked, &t.Note); err != nil {
		return EnrollToken{}, err
	}
	var err error
	t.Labels, err = decodeLabels(labels)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMS(created), fromMS(expires), fromMS(revoked)
	return t, err
}

// CreateEnrollToken stores t; an existing ID is ErrConflict.
func (s *sqlStore) CreateEnrollToken(ctx context.Context, t EnrollToken) error {
	n, err := s.exec(ctx, "INSERT INTO enroll_tokens ("+enrollTokenColumns+
		") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		t.ID, t.SecretHash, encodeLabels(t.Labels), ms(t.CreatedAt), ms(t.ExpiresAt),
		t.MaxUses, t.Uses, ms(t.RevokedAt), t.Note)
	if err != nil {
		return fmt.Errorf("store: create enroll token %s: %w", t.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: create enroll token %s: %w", t.ID, ErrConflict)
	}
	return nil
}

// ListEnrollTokens returns every token, oldest first.
func (s *sqlStore) ListEnrollTokens(ctx context.Context) ([]EnrollToken, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+enrollTokenColumns+" FROM enroll_tokens ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("store: list enroll tokens: %w", err)
	}
	defer rows.Close()
	var ts []EnrollToken
	for rows.Next() {
		t, err := scanEnrollToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list enroll tokens: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list enroll tokens: %w", err)
	}
	return ts, nil
}

// revokeSQL sets revoked_at unless it is set already: the first
// revocation's time is kept.
const revokeSQL = "UPDATE %s SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?"

// RevokeEnrollToken marks token id revoked at at; unknown is ErrNotFound.
func (s *sqlStore) RevokeEnrollToken(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, fmt.Sprintf(revokeSQL, "enroll_tokens"), ms(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke enroll token %s: %w", id, err)
	}
	if n == 0 {
		return notFound("enroll token", id)
	}
	return nil
}

// Enroll implements Store.Enroll in one transaction.
func (s *sqlStore) Enroll(ctx context.Context, id string, secretHash []byte, h Host, now time.Time) (Host, error) {
	if h.ID == "" || h.MachineID == "" {
		return Host{}, fmt.Errorf("store: enroll token %s: host ID and machine ID are required", id)
	}
	var out Host
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := scanEnrollToken(tx.QueryRowContext(ctx, s.q(
			"SELECT "+enrollTokenColumns+" FROM enroll_tokens WHERE id = ?"+s.d.forUpdate), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("unknown: %w", ErrTokenInvalid)
		}
		if err != nil {
			return err
		}
		if err := usable(t, secretHash, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE enroll_tokens SET uses = uses + 1 WHERE id = ?"), id); err != nil {
			return err
		}
		out, err = s.upsertHost(ctx, tx, h, t.Labels, now)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.MachineID, err)
		}
		return nil
	})
	if err != nil {
		return Host{}, fmt.Errorf("store: enroll token %s: %w", id, err)
	}
	return out, nil
}

// usable says why t cannot enroll a host with secretHash at now, or nil.
// The secret is checked first so that a caller without it learns nothing
// about the token's state.
func usable(t EnrollToken, secretHash []byte, now time.Time) error {
	switch {
	case subtle.ConstantTimeCompare(t.SecretHash, secretHash) != 1:
		return fmt.Errorf("wrong secret: %w", ErrTokenInvalid)
	case !t.RevokedAt.IsZero():
		return fmt.Errorf("revoked at %s: %w", t.RevokedAt.Format(time.RFC3339), ErrTokenInvalid)
	case !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(now):
		return fmt.Errorf("expired at %s: %w", t.ExpiresAt.Format(time.RFC3339), ErrTokenInvalid)
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return fmt.Errorf("used up (%d of %d uses): %w", t.Uses, t.MaxUses, ErrTokenInvalid)
	}
	return nil
}

// upsertHost creates h with labels merged over h.Labels or, when a host
// with h.MachineID exists, gives that host h's credential, hostname and
// facts (when not nil), merges labels over its own labels and clears its
// revocation. It returns the stored host.
func (s *sqlStore) upsertHost(ctx context.Context, tx *sql.Tx, h Host, labels map[string]string, now time.Time) (Host, error) {
	// Insert first: of two enrollments of a new machine at once, the
	// second waits here for the first and then updates its row.
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO hosts (id, machine_id, hostname, labels, secret_hash, enrolled_at, facts)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		h.ID, h.MachineID, h.Hostname, encodeLabels(mergeLabels(h.Labels, labels)), h.SecretHash, ms(now), jsonText(h.Facts))
	if err != nil {
		return Host{}, err
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return Host{}, err
	}
	stored, err := scanHost(tx.QueryRowContext(ctx, s.q(
		"SELECT "+hostColumns+" FROM hosts WHERE machine_id = ?"+s.d.forUpdate), h.MachineID))
	if errors.Is(err, sql.ErrNoRows) { // the conflict was on the ID
		return Host{}, fmt.Errorf("host ID %s is another machine's: %w", h.ID, ErrConflict)
	}
	if err != nil || inserted == 1 {
		return stored, err
	}
	stored.SecretHash, stored.Hostname, stored.RevokedAt = h.SecretHash, h.Hostname, time.Time{}
	stored.Labels = mergeLabels(stored.Labels, labels)
	if h.Facts != nil {
		stored.Facts = h.Facts
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE hosts SET secret_hash = ?, hostname = ?, labels = ?, revoked_at = 0, facts = ?
		WHERE id = ?`), stored.SecretHash, stored.Hostname, encodeLabels(stored.Labels), jsonText(stored.Facts), stored.ID)
	return stored, err
}

// mergeLabels returns base with over's pairs replacing base's; nil when
// empty.
func mergeLabels(base, over map[string]string) map[string]string {
	if len(base)+len(over) == 0 {
		return nil
	}
	m := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range over {
		m[k] = v
	}
	return m
}

const adminTokenColumns = "id, secret_hash, name, created_at, revoked_at"

func scanAdminToken(row interface{ Scan(...any) error }) (AdminToken, error) {
	var (
		t                AdminToken
		created, revoked int64
	)
	err := row.Scan(&t.ID, &t.SecretHash, &t.Name, &created, &revoked)
	t.CreatedAt, t.RevokedAt = fromMS(created), fromMS(revoked)
	return t, err
}

// CreateAdminToken stores t; an existing ID is ErrConflict.
func (s *sqlStore) CreateAdminToken(ctx context.Context, t AdminToken) error {
	n, err := s.exec(ctx, "INSERT INTO admin_tokens ("+adminTokenColumns+") VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		t.ID, t.SecretHash, t.Name, ms(t.CreatedAt), ms(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("store: create admin token %s: %w", t.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: create admin token %s: %w", t.ID, ErrConflict)
	}
	return nil
}

// AdminToken returns token id; unknown is ErrNotFound.
func (s *sqlStore) AdminToken(ctx context.Context, id string) (AdminToken, error) {
	t, err := scanAdminToken(s.rdb.QueryRowContext(ctx, s.q("SELECT "+adminTokenColumns+" FROM admin_tokens WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return AdminToken{}, notFound("admin token", id)
	}
	if err != nil {
		return AdminToken{}, fmt.Errorf("store: admin token %s: %w", id, err)
	}
	return t, nil
}

// ListAdminTokens returns every admin token, oldest first.
func (s *sqlStore) ListAdminTokens(ctx context.Context) ([]AdminToken, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+adminTokenColumns+" FROM admin_tokens ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("store: list admin tokens: %w", err)
	}
	defer rows.Close()
	var ts []AdminToken
	for rows.Next() {
		t, err := scanAdminToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list admin tokens: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list admin tokens: %w", err)
	}
	return ts, nil
}

// RevokeAdminToken marks admin token id revoked at at; unknown is
// ErrNotFound.
func (s *sqlStore) RevokeAdminToken(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, fmt.Sprintf(revokeSQL, "admin_tokens"), ms(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke admin token %s: %w", id, err)
	}
	if n == 0 {
		return notFound("admin token", id)
	}
	return nil
}
