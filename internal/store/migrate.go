package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations live in migrations/<dialect>/NNNN_name.sql; NNNN is the
// schema version the file brings the database to. Both dialects have the
// same versions. A migration, once released, is never edited: a change
// is a new file.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s/%s: name is not NNNN_name.sql", dir, e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s/%s: expected version %d", dir, m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings db to the newest schema version this binary knows, one
// transaction per migration, and refuses a database whose schema is newer.
// Each transaction first takes the dialect's migration lock and re-reads
// the version, so replicas starting at once apply every migration once.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	ms, err := migrations(d.name)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", d.name, err)
	}
	latest := len(ms)
	for _, m := range ms {
		err := applyMigration(ctx, db, d, m, latest)
		if errors.Is(err, errSchemaNewer) {
			return fmt.Errorf("migrate %s: %w", d.name, err)
		}
		if err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", d.name, m.version, err)
		}
	}
	return nil
}

// errSchemaNewer: the database was migrated by a newer binary.
var errSchemaNewer = errors.New("upgrade patchloop")

func applyMigration(ctx context.Context, db *sql.DB, d dialect, m migration, latest int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.migrateLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrateLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return err
	}
	if current > latest {
		return fmt.Errorf("database schema is at version %d, newer than this binary knows (%d): %w", current, latest, errSchemaNewer)
	}
	if current >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	// Literals: placeholders differ between the dialects.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(
		"INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %d)",
		m.version, time.Now().UnixMilli())); err != nil {
		return err
	}
	return tx.Commit()
}
