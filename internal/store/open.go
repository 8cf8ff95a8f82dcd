package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"modernc.org/sqlite"               // database/sql driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/patchloop/patchloop/internal/memo"
)

// Open opens the store named by dsn and brings its schema up to date.
//
// A dsn starting with postgres:// or postgresql:// is a PostgreSQL
// connection URL. Anything else is the path of a SQLite database file,
// optionally prefixed with "sqlite:"; the file and its directory (mode
// 0700) are created when missing.
func Open(ctx context.Context, dsn string) (Store, error) {
	var (
		s   *sqlStore
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s, err = openPostgres(ctx, dsn)
	} else {
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, s.db, s.d); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// dialect holds what differs between the SQL of SQLite and PostgreSQL.
// Everything else (ON CONFLICT, RETURNING, the queries) is shared.
type dialect struct {
	name   string // "sqlite" or "postgres": error messages, migrations/<name>
	dollar bool   // placeholders are $1, $2, ... rather than ?
	// forUpdate is appended to a SELECT whose rows a transaction is about
	// to change, so concurrent transactions queue up behind it. SQLite
	// needs none: it has a single writer.
	forUpdate string
	// skipLocked is appended to the SELECT that picks jobs to lease, so
	// concurrent leases pass over each other's rows instead of waiting.
	skipLocked string
	// forShare is appended to a SELECT whose rows must not change before
	// its transaction ends (SQLite: its single writer sees to that).
	forShare string
	// migrateLock is run first in every migration transaction so that
	// replicas starting at once apply each migration once.
	migrateLock string
	sizeQuery   string // database size on disk, in bytes
}

var (
	sqliteDialect = dialect{
		name:      "sqlite",
		sizeQuery: "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
	}
	postgresDialect = dialect{
		name:        "postgres",
		dollar:      true,
		forUpdate:   " FOR UPDATE",
		skipLocked:  " FOR UPDATE SKIP LOCKED",
		forShare:    " FOR SHARE",
		migrateLock: "SELECT pg_advisory_xact_lock(7031746133817331822)", // a key of our own
		sizeQuery:   "SELECT pg_database_size(current_database())",
	}
)

// sqlStore implements Store over database/sql for both dialects.
type sqlStore struct {
	d dialect
	// db runs writes and transactions. On SQLite it holds one connection,
	// so writers queue in Go (honouring their contexts) instead of
	// meeting SQLITE_BUSY; its transactions begin IMMEDIATE so that
	// another process writing the same file waits in busy_timeout too.
	db *sql.DB
	// rdb runs plain reads. On SQLite it is a pool of query-only
	// connections that WAL lets read while the writer writes; on
	// PostgreSQL it is db.
	rdb *sql.DB
	// stmts are the prepared statements, by handle and query (stmts.go).
	stmts sync.Map // stmtKey → *sql.Stmt
	// specs are the kinds and params of jobs handed out lately (stmts.go):
	// the install job of a rollout's ring is shared by every host with the
	// same pins, and its params are read once instead of once per host.
	specs memo.Map[string, jobSpec]
	// group commits the hot small writes of concurrent callers together
	// (group.go).
	group group
}

func openPostgres(ctx context.Context, dsn string) (*sqlStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// Several replicas share one server: keep each one's share modest.
	// Keep as many idle as may be open: under load, a connection closed
	// for want of an idle slot is a backend forked again moments later.
	// Idle ones close after a while.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return &sqlStore{d: postgresDialect, db: db, rdb: db}, nil
}

func openSQLite(ctx context.Context, path string) (*sqlStore, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty database path")
	}
	if strings.Contains(path, "?") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite %s: want a plain file path, without '?' or file:", path)
	}
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1&_synchronous=NORMAL", busyTimeout.Milliseconds())
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite", path+"?"+common+fmt.Sprintf("&_txlock=immediate&_pragma=cache_size(%d)", writerCacheKiB))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &sqlStore{d: sqliteDialect, db: db, rdb: db}
	if memory { // every connection would be a database of its own
		return s, nil
	}
	if err := useWAL(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: WAL mode: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)
	s.rdb = rdb
	return s, nil
}

// writerCacheKiB is the page cache of the SQLite connection that writes
// (in KiB, as a negative cache_size): 256 MB instead of SQLite's 2 MB.
// Its cache lasts across its own commits (the readers' is emptied by
// each), and with 2 MB the leases of a ring's start read most of their
// B-tree pages from the file: 90,000 held check-ins of a prod ring were
// handed their jobs in 124 s, in 38 s with this (docs/benchmarks.md).
// The cache grows only as pages are read.
const writerCacheKiB = -256 << 10

// busyTimeout is how long a SQLite connection waits for another one's lock.
const busyTimeout = 10 * time.Second

// useWAL switches the database file to WAL mode, which lasts with the file.
// When two processes (or stores) open the same new file at once, SQLite
// answers one of them SQLITE_BUSY at once instead of waiting in
// busy_timeout, so the switch is tried again for as long as busy_timeout
// would have waited.
func useWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		if err == nil && mode != "wal" {
			err = fmt.Errorf("journal mode is %q", mode)
		}
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Close closes the database handles.
func (s *sqlStore) Close() error {
	s.closeStmts()
	err := s.db.Close()
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// q rewrites the ? placeholders of query for the dialect. Queries in this
// package never contain a literal '?'.
func (s *sqlStore) q(query string) string {
	if !s.d.dollar {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// inTx runs fn in a write transaction and commits it when fn returns nil.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one write statement and returns the number of rows it changed.
func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ms is t in Unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS inverts ms: 0 is the zero time, anything else a UTC time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// jsonText is b as a nullable text value: nil is NULL.
func jsonText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// textBytes inverts jsonText.
func textBytes(v sql.NullString) []byte {
	if !v.Valid {
		return nil
	}
	return []byte(v.String)
}

func encodeLabels(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

// decodeLabels returns nil for no labels.
func decodeLabels(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// notFound wraps ErrNotFound with what was looked for.
func notFound(what, id string) error {
	return fmt.Errorf("store: %s %s: %w", what, id, ErrNotFound)
}
