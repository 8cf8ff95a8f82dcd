// Package pgtest gives tests a fresh, empty PostgreSQL database.
//
// The server is the one $PATCHLOOP_TEST_POSTGRES names (a postgres:// URL
// whose user may create databases) or else a throwaway cluster that pgtest
// makes with the PostgreSQL binaries installed on the machine (Debian's
// /usr/lib/postgresql/N/bin, or initdb and pg_ctl in PATH): initdb into a
// temporary directory as the "postgres" user when running as root,
// listening on 127.0.0.1 only, with fsync off. When no binaries are found
// the test is skipped, or fails if $PATCHLOOP_REQUIRE_ORACLES is 1.
//
// A package whose TestMain calls Main shares one cluster among all its
// tests; without it, each Start makes and stops a cluster of its own
// (about a second each).
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.Start(t) // a new database, dropped when t ends
//		...
//	}
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// errUnavailable: PostgreSQL cannot be run here; the test is skipped.
var errUnavailable = errors.New("PostgreSQL is not available")

// shared is the cluster of a test binary whose TestMain calls Main.
var shared struct {
	mu      sync.Mutex
	enabled bool
	c       *cluster
	err     error
}

var dbSeq atomic.Int64

// Main runs the tests with one cluster for all of them, started by the
// first Start and stopped when the tests end, and returns m.Run's code.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		if err := shared.c.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// Start returns the DSN (a postgres:// URL) of a new, empty database that
// is dropped when t ends. Close what uses it in a Cleanup registered after
// Start, or before the test returns.
func Start(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("PATCHLOOP_TEST_POSTGRES")
	if admin == "" {
		var err error
		admin, err = clusterDSN(t)
		if errors.Is(err, errUnavailable) && os.Getenv("PATCHLOOP_REQUIRE_ORACLES") != "1" {
			t.Skipf("pgtest: %v (set PATCHLOOP_TEST_POSTGRES=postgres://... or install postgresql)", err)
		}
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	dsn, err := createDatabase(admin, fmt.Sprintf("pgtest_%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(admin, dsn); err != nil {
			t.Logf("pgtest: %v", err)
		}
	})
	return dsn
}

// clusterDSN returns the admin DSN of the shared cluster or, outside
// Main, of a cluster for t alone.
func clusterDSN(t testing.TB) (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.enabled {
		c, err := startCluster()
		if err != nil {
			return "", err
		}
		t.Cleanup(func() {
			if err := c.stop(); err != nil {
				t.Logf("pgtest: %v", err)
			}
		})
		return c.dsn, nil
	}
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = startCluster()
	}
	if shared.err != nil {
		return "", shared.err
	}
	return shared.c.dsn, nil
}

func createDatabase(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("PATCHLOOP_TEST_POSTGRES: %w", err)
	}
	if err := adminExec(admin, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, u.Redacted(), err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(admin, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if err := adminExec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func adminExec(dsn, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// cluster is a throwaway PostgreSQL cluster in a temporary directory:
// data/ holds the cluster, the directory itself the unix socket, log the
// server's log and owner the PID of the test binary that made it.
type cluster struct {
	dir, bin string
	cred     *syscall.Credential // whom to run as; nil: ourselves
	dsn      string
}

func startCluster() (*cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin}
	if os.Geteuid() == 0 { // initdb refuses root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root and no user postgres to run it as: %v", errUnavailable, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	removeStale()
	if c.dir, err = os.MkdirTemp("", "patchloop-pg-"); err != nil {
		return nil, err
	}
	if err := c.init(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

func (c *cluster) init() error {
	if err := os.WriteFile(filepath.Join(c.dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(c.dir, "data")
	if err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
`, c.dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(conf)
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	// Another process may take the free port before the server does.
	for try := 0; ; try++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		err = c.run("pg_ctl", "-D", data, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60",
			"-o", "-p "+strconv.Itoa(port), "start")
		if err == nil {
			c.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			return nil
		}
		if try == 2 {
			log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
			return fmt.Errorf("%w\nserver log:\n%s", err, log)
		}
	}
}

func (c *cluster) stop() error {
	err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop")
	if err != nil {
		return err
	}
	return os.RemoveAll(c.dir)
}

// run runs one of the PostgreSQL programs as c.cred in c.dir.
func (c *cluster) run(prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + c.bin + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.WaitDelay = 5 * time.Second // the daemon may hold our pipes
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", prog, strings.Join(args, " "), err, out)
	}
	return nil
}

// findBin returns the newest directory holding initdb, pg_ctl and
// postgres.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, prog := range []string{"pg_ctl", "initdb"} {
		if p, err := exec.LookPath(prog); err == nil {
			if p, err = filepath.EvalSymlinks(p); err == nil {
				dirs = append(dirs, filepath.Dir(p))
			}
		}
	}
	for _, dir := range dirs {
		ok := true
		for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, prog)); err != nil {
				ok = false
			}
		}
		if ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb, pg_ctl and postgres in /usr/lib/postgresql/*/bin or in PATH", errUnavailable)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStale stops and removes the clusters left behind by test
// binaries that died before stopping them (a test timeout, a kill).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "patchloop-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // being made, or not ours
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its owner lives
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			// Its command line names dir: not a reused PID, not a zombie.
			running := func(pid int) bool {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				return strings.Contains(string(cmdline), dir)
			}
			if pm, err := strconv.Atoi(first); err == nil && pm > 0 && running(pm) {
				syscall.Kill(pm, syscall.SIGQUIT) // immediate shutdown
				for i := 0; i < 50 && running(pm); i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		os.RemoveAll(dir)
	}
}
