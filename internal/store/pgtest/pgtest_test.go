package pgtest

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// No TestMain here: Start makes a cluster per test.

func TestStart(t *testing.T) {
	dsn := Start(t)
	ping := func(dsn string) string {
		t.Helper()
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var name string
		if err := db.QueryRow("SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		return name
	}
	first := ping(dsn)

	// The server named by PATCHLOOP_TEST_POSTGRES: here, the same one.
	t.Setenv("PATCHLOOP_TEST_POSTGRES", dsn)
	second := ping(Start(t))
	if first == second {
		t.Errorf("two Starts gave the same database %s", first)
	}
}

func TestRemoveStale(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	dead := cmd.Process.Pid
	stale, err := os.MkdirTemp("", "patchloop-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, "owner"), []byte(strconv.Itoa(dead)), 0o644)
	live, err := os.MkdirTemp("", "patchloop-pg-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)
	os.WriteFile(filepath.Join(live, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644)

	removeStale()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		os.RemoveAll(stale)
		t.Errorf("the cluster of dead PID %d is still there: %v", dead, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the cluster of a live test binary was removed: %v", err)
	}
}
