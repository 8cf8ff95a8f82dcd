package store

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/store/pgtest"
)

func TestMigrationsMatch(t *testing.T) {
	lite, err := migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := migrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || len(lite) != len(pg) {
		t.Fatalf("%d sqlite migrations, %d postgres", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].name != pg[i].name {
			t.Errorf("migration %d: %s (sqlite) vs %s (postgres)", i+1, lite[i].name, pg[i].name)
		}
	}
}

func TestMigrateSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "p.db")
	runMigrateTests(t, "sqlite:"+path, "sqlite", func(t *testing.T) *sql.DB {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("database directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

func TestMigratePostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	runMigrateTests(t, dsn, "postgres", func(t *testing.T) *sql.DB {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// runMigrateTests opens dsn several times at once, reopens it, and then
// makes its schema newer than the binary's.
func runMigrateTests(t *testing.T, dsn, dialect string, rawDB func(t *testing.T) *sql.DB) {
	// Replicas (or processes, on SQLite) starting at once.
	if err := openAtOnce(4, func() (Store, error) { return Open(ctx, dsn) }); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t)
	defer db.Close()
	applied := func() (vs []string) {
		rows, err := db.Query("SELECT version, applied_at FROM schema_migrations ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var v, at int64
			rows.Scan(&v, &at)
			vs = append(vs, fmt.Sprint(v, "@", at))
		}
		return vs
	}
	ms, _ := migrations(dialect)
	before := applied()
	if len(before) != len(ms) {
		t.Fatalf("applied %v, want %d migrations once each", before, len(ms))
	}

	// Reopening applies nothing, and the data is still there.
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdminToken(ctx, AdminToken{ID: "a", SecretHash: hash("a"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminToken(ctx, "a"); err != nil {
		t.Errorf("after reopening: %v", err)
	}
	s.Close()
	if after := applied(); !reflect.DeepEqual(after, before) {
		t.Errorf("reopening changed schema_migrations: %v -> %v", before, after)
	}

	// A newer binary migrated this database: refuse it.
	if _, err := db.Exec(fmt.Sprintf("INSERT INTO schema_migrations (version, applied_at) VALUES (%d, 0)", len(ms)+1)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, dsn)
	want := fmt.Sprintf("migrate %s: database schema is at version %d, newer than this binary knows (%d): upgrade patchloop",
		dialect, len(ms)+1, len(ms))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Open of a newer schema: %v\nwant an error containing %q", err, want)
	}
}

// TestOpenSQLiteAtOnce opens new database files from several stores at
// once, as processes started together do. SQLite answers a concurrent
// switch to WAL mode with SQLITE_BUSY without waiting in busy_timeout (a
// few rounds in a hundred with 4 stores), so openSQLite must try again.
func TestOpenSQLiteAtOnce(t *testing.T) {
	dir := t.TempDir()
	for round := range 150 {
		path := filepath.Join(dir, fmt.Sprint(round, ".db"))
		if err := openAtOnce(6, func() (*sqlStore, error) { return openSQLite(ctx, path) }); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// openAtOnce opens n stores at once with open, then closes them.
func openAtOnce[S interface{ Close() error }](n int, open func() (S, error)) error {
	return errors.Join(run(n, func(int) error {
		s, err := open()
		if err == nil {
			err = s.Close()
		}
		return err
	})...)
}

func TestSQLiteSettings(t *testing.T) {
	s := openSQLiteT(t).(*sqlStore)
	for _, c := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.db, "journal_mode", "wal"},
		{s.db, "synchronous", "1"}, // NORMAL
		{s.db, "foreign_keys", "1"},
		{s.db, "busy_timeout", "10000"},
		{s.rdb, "busy_timeout", "10000"},
		{s.rdb, "query_only", "1"},
		{s.db, "cache_size", fmt.Sprint(writerCacheKiB)},
	} {
		var got string
		if err := c.db.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil || got != c.want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", c.pragma, got, err, c.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	tests := []struct{ dsn, want string }{
		{file + "/sub/p.db", "open sqlite " + file + "/sub/p.db: "},
		{"sqlite:", "open sqlite: empty database path"},
		{"/tmp/a?b.db", "open sqlite /tmp/a?b.db: want a plain file path"},
		{"postgres://nobody@127.0.0.1:1/x?connect_timeout=2", "open postgres: "},
	}
	for _, tc := range tests {
		s, err := Open(ctx, tc.dsn)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error starting %q", tc.dsn, err, tc.want)
		}
	}
}

func TestMilliseconds(t *testing.T) {
	for _, tm := range []time.Time{{}, t0, t0.Add(1500 * time.Microsecond), time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)} {
		want := tm.Truncate(time.Millisecond)
		if got := fromMS(ms(tm)); !got.Equal(want) || got.IsZero() != tm.IsZero() || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("fromMS(ms(%v)) = %v", tm, got)
		}
	}
}
