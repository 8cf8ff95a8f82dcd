package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const policyColumns = "name, source, priority, version, created_at, updated_at, updated_by"

func scanPolicy(row interface{ Scan(...any) error }) (Policy, error) {
	var (
		p                Policy
		source           string
		created, updated int64
	)
	if err := row.Scan(&p.Name, &source, &p.Priority, &p.Version, &created, &updated, &p.UpdatedBy); err != nil {
		return Policy{}, err
	}
	p.Source, p.CreatedAt, p.UpdatedAt = []byte(source), fromMS(created), fromMS(updated)
	return p, nil
}

// PutPolicy creates or replaces a policy in one statement: a second
// writer of the same name waits for the first and then sees its row.
func (s *sqlStore) PutPolicy(ctx context.Context, p Policy) (Policy, bool, error) {
	prio := p.Priority
	if prio < 0 {
		prio = DefaultPolicyPriority
	}
	at := ms(p.UpdatedAt)
	row := s.db.QueryRowContext(ctx, s.q(`INSERT INTO policies (name, source, priority, version, created_at, updated_at, updated_by)
		VALUES (?, ?, ?, 1, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			source = excluded.source,
			priority = CASE WHEN ? < 0 THEN policies.priority ELSE excluded.priority END,
			version = policies.version + 1,
			updated_at = excluded.updated_at,
			updated_by = excluded.updated_by
		WHERE policies.source <> excluded.source OR (? >= 0 AND policies.priority <> excluded.priority)
		RETURNING `+policyColumns),
		p.Name, string(p.Source), prio, at, at, p.UpdatedBy, p.Priority, p.Priority)
	got, err := scanPolicy(row)
	if errors.Is(err, sql.ErrNoRows) { // the same again: unchanged
		got, err = s.policy(ctx, s.db, p.Name)
		return got, false, err
	}
	if err != nil {
		return Policy{}, false, fmt.Errorf("store: put policy %s: %w", p.Name, err)
	}
	return got, true, nil
}

// Policy returns the policy name; unknown is ErrNotFound.
func (s *sqlStore) Policy(ctx context.Context, name string) (Policy, error) {
	return s.policy(ctx, s.rdb, name)
}

func (s *sqlStore) policy(ctx context.Context, db *sql.DB, name string) (Policy, error) {
	p, err := scanPolicy(db.QueryRowContext(ctx, s.q("SELECT "+policyColumns+" FROM policies WHERE name = ?"), name))
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, notFound("policy", name)
	}
	if err != nil {
		return Policy{}, fmt.Errorf("store: policy %s: %w", name, err)
	}
	return p, nil
}

// ListPolicies returns every policy by priority, then name.
func (s *sqlStore) ListPolicies(ctx context.Context) ([]Policy, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+policyColumns+" FROM policies ORDER BY priority, name")
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list policies: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	// Sorted here, by bytes: PostgreSQL's ORDER BY follows the database's
	// collation, SQLite's the bytes, and the first matching baseline
	// decides, so the order must not depend on the database.
	slices.SortStableFunc(out, func(a, b Policy) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

// DeletePolicy removes the policy name; unknown is ErrNotFound.
func (s *sqlStore) DeletePolicy(ctx context.Context, name string) error {
	n, err := s.exec(ctx, "DELETE FROM policies WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("store: delete policy %s: %w", name, err)
	}
	if n == 0 {
		return notFound("policy", name)
	}
	return nil
}
