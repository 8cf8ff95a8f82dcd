package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

const hostColumns = "id, machine_id, hostname, labels, secret_hash, enrolled_at, revoked_at, last_seen, facts, inventory_hash, inventory_at"

func scanHost(row interface{ Scan(...any) error }) (Host, error) {
	var (
		h                              Host
		labels                         string
		facts, invHash                 sql.NullString
		enrolled, revoked, seen, invAt int64
	)
	if err := row.Scan(&h.ID, &h.MachineID, &h.Hostname, &labels, &h.SecretHash,
		&enrolled, &revoked, &seen, &facts, &invHash, &invAt); err != nil {
		return Host{}, err
	}
	var err error
	h.Labels, err = decodeLabels(labels)
	h.EnrolledAt, h.RevokedAt, h.LastSeen, h.InventoryAt = fromMS(enrolled), fromMS(revoked), fromMS(seen), fromMS(invAt)
	h.Facts, h.InventoryHash = textBytes(facts), invHash.String
	return h, err
}

// Host returns host id; unknown is ErrNotFound.
func (s *sqlStore) Host(ctx context.Context, id string) (Host, error) {
	st, err := s.prepared(ctx, s.rdb, "SELECT "+hostColumns+" FROM hosts WHERE id = ?")
	if err != nil {
		return Host{}, fmt.Errorf("store: host %s: %w", id, err)
	}
	h, err := scanHost(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Host{}, notFound("host", id)
	}
	if err != nil {
		return Host{}, fmt.Errorf("store: host %s: %w", id, err)
	}
	return h, nil
}

// ListHosts returns the hosts f selects ordered by hostname, then ID.
func (s *sqlStore) ListHosts(ctx context.Context, f HostFilter) ([]Host, error) {
	query := "SELECT " + hostColumns + " FROM hosts"
	if !f.IncludeRevoked {
		query += " WHERE revoked_at = 0"
	}
	rows, err := s.rdb.QueryContext(ctx, query+" ORDER BY hostname, id")
	if err != nil {
		return nil, fmt.Errorf("store: list hosts: %w", err)
	}
	defer rows.Close()
	var hs []Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list hosts: %w", err)
		}
		if hasLabels(h.Labels, f.Label) {
			hs = append(hs, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list hosts: %w", err)
	}
	return hs, nil
}

// ActiveHostIDs implements Store.
func (s *sqlStore) ActiveHostIDs(ctx context.Context) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT id FROM hosts WHERE revoked_at = 0")
	if err != nil {
		return nil, fmt.Errorf("store: active hosts: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: active hosts: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: active hosts: %w", err)
	}
	return ids, nil
}

// hasLabels reports whether every pair of want is in have.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// RevokeHost marks host id revoked at at; unknown is ErrNotFound.
func (s *sqlStore) RevokeHost(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, fmt.Sprintf(revokeSQL, "hosts"), ms(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke host %s: %w", id, err)
	}
	if n == 0 {
		return notFound("host", id)
	}
	return nil
}

// CheckIn records LastSeen and, when not nil, Facts: one UPDATE by
// primary key, the server's hottest statement, committed with the other
// check-ins of the moment (group.go).
func (s *sqlStore) CheckIn(ctx context.Context, c CheckIn) error {
	query, args := "UPDATE hosts SET last_seen = ? WHERE id = ?", []any{ms(c.At), c.HostID}
	if c.Facts != nil {
		query, args = "UPDATE hosts SET last_seen = ?, facts = ? WHERE id = ?", []any{ms(c.At), string(c.Facts), c.HostID}
	}
	st, err := s.prepared(ctx, s.db, query)
	if err != nil {
		return fmt.Errorf("store: check in host %s: %w", c.HostID, err)
	}
	n, err := s.groupedExec(ctx, st, args...)
	if err != nil {
		return fmt.Errorf("store: check in host %s: %w", c.HostID, err)
	}
	if n == 0 {
		return notFound("host", c.HostID)
	}
	return nil
}

// PutInventory stores data under hash unless it is there already and
// makes it host hostID's inventory, in one transaction.
func (s *sqlStore) PutInventory(ctx context.Context, hostID, hash string, data []byte, at time.Time) error {
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO inventories (hash, data, created_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING"),
			hash, data, ms(at)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q("UPDATE hosts SET inventory_hash = ?, inventory_at = ? WHERE id = ?"), hash, ms(at), hostID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put inventory %s of host %s: %w", hash, hostID, err)
	}
	return nil
}

// Inventory returns the inventory stored under hash; unknown is
// ErrNotFound.
func (s *sqlStore) Inventory(ctx context.Context, hash string) ([]byte, error) {
	var data []byte
	err := s.rdb.QueryRowContext(ctx, s.q("SELECT data FROM inventories WHERE hash = ?"), hash).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("inventory", hash)
	}
	if err != nil {
		return nil, fmt.Errorf("store: inventory %s: %w", hash, err)
	}
	return data, nil
}

// PutHostUpdates replaces the detection result of host u.HostID; an
// unknown host is ErrNotFound. The list of updates is kept once per
// content (update_lists), shared by every host with the same list.
func (s *sqlStore) PutHostUpdates(ctx context.Context, u HostUpdates) error {
	var hash any // nil: no list
	if u.Updates != nil {
		sum := sha256.Sum256(u.Updates)
		hash = hex.EncodeToString(sum[:])
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, s.q("SELECT 1 FROM hosts WHERE id = ?"), u.HostID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if hash != nil {
			// A concurrent PruneUpdateLists may find this list unnamed and
			// try to delete it; the foreign key from host_updates refuses
			// that once this transaction's reference exists, failing that
			// prune (retried at the next refresh), never this write. DO
			// UPDATE rather than DO NOTHING makes PostgreSQL lock the row,
			// so such a prune waits for this transaction to end.
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO update_lists (hash, updates) VALUES (?, ?)
				ON CONFLICT (hash) DO UPDATE SET hash = excluded.hash`), hash, string(u.Updates))
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO host_updates (host_id, computed_at, basis, updates, updates_hash, count, security, error)
			VALUES (?, ?, ?, NULL, ?, ?, ?, ?)
			ON CONFLICT (host_id) DO UPDATE SET computed_at = excluded.computed_at, basis = excluded.basis,
				updates = NULL, updates_hash = excluded.updates_hash, count = excluded.count,
				security = excluded.security, error = excluded.error`),
			u.HostID, ms(u.ComputedAt), u.Basis, hash, u.Count, u.Security, u.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put updates of host %s: %w", u.HostID, err)
	}
	return nil
}

// PruneUpdateLists deletes the lists of updates no host names any more
// and returns how many it deleted. On PostgreSQL, a list a concurrent
// write starts naming makes the statement fail on the foreign key: the
// caller retries later (the server prunes at every index refresh).
func (s *sqlStore) PruneUpdateLists(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM update_lists WHERE NOT EXISTS
		(SELECT 1 FROM host_updates WHERE host_updates.updates_hash = update_lists.hash)`)
	if err != nil {
		return 0, fmt.Errorf("store: prune update lists: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// HostUpdates returns the detection result of host hostID; none is
// ErrNotFound.
func (s *sqlStore) HostUpdates(ctx context.Context, hostID string) (HostUpdates, error) {
	var (
		u        = HostUpdates{HostID: hostID}
		computed int64
		updates  sql.NullString
	)
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT h.computed_at, h.basis, COALESCE(l.updates, h.updates), h.count, h.security, h.error
		FROM host_updates h LEFT JOIN update_lists l ON l.hash = h.updates_hash WHERE h.host_id = ?`), hostID).
		Scan(&computed, &u.Basis, &updates, &u.Count, &u.Security, &u.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return HostUpdates{}, notFound("updates of host", hostID)
	}
	if err != nil {
		return HostUpdates{}, fmt.Errorf("store: updates of host %s: %w", hostID, err)
	}
	u.ComputedAt, u.Updates = fromMS(computed), textBytes(updates)
	return u, nil
}

// UpdateRefs implements Store.
func (s *sqlStore) UpdateRefs(ctx context.Context) ([]UpdateRef, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT host_id, computed_at, basis, COALESCE(updates_hash, ''), error FROM host_updates ORDER BY host_id`)
	if err != nil {
		return nil, fmt.Errorf("store: update refs: %w", err)
	}
	defer rows.Close()
	var out []UpdateRef
	for rows.Next() {
		var (
			r        UpdateRef
			computed int64
		)
		if err := rows.Scan(&r.HostID, &computed, &r.Basis, &r.Hash, &r.Error); err != nil {
			return nil, fmt.Errorf("store: update refs: %w", err)
		}
		r.ComputedAt = fromMS(computed)
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateList implements Store.
func (s *sqlStore) UpdateList(ctx context.Context, hash string) ([]byte, error) {
	var list string
	err := s.rdb.QueryRowContext(ctx, s.q("SELECT updates FROM update_lists WHERE hash = ?"), hash).Scan(&list)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("update list", hash)
	}
	if err != nil {
		return nil, fmt.Errorf("store: update list %s: %w", hash, err)
	}
	return []byte(list), nil
}
