package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/server"
	"github.com/patchloop/patchloop/internal/store"
)

// testServer is the real server on SQLite behind a switch that can drop
// inventory uploads on the floor, as a lost connection would.
type testServer struct {
	srv          *server.Server
	st           store.Store
	url, fpr     string
	dropUploads  atomic.Bool
	uploadsTried atomic.Int32
	// resumed counts requests that came over a resumed TLS session.
	resumed atomic.Int32
	// oldCheckIn makes check-ins decode as a server older than held
	// check-ins did (strictly, without wait_seconds); refusedCheckIns
	// counts those it refused.
	oldCheckIn      atomic.Bool
	refusedCheckIns atomic.Int32
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, nil)
}

// newTestServerWith is newTestServer with the server's Config changed by
// with.
func newTestServerWith(t *testing.T, with func(*server.Config)) *testServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := server.Config{Store: st, Engine: central.New(central.Config{CacheDir: dir, Offline: true})}
	if with != nil {
		with(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, st: st, fpr: pki.Fingerprint(srv.CA().Cert)}
	h := srv.Handler()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && r.TLS.DidResume {
			ts.resumed.Add(1)
		}
		if r.URL.Path == "/api/v1/agent/checkin" && ts.oldCheckIn.Load() {
			body, _ := io.ReadAll(r.Body)
			var old struct { // the request before held check-ins
				Facts         api.Facts `json:"facts"`
				InventoryHash string    `json:"inventory_hash"`
			}
			if err := api.Decode(bytes.NewReader(body), api.MaxBody, &old); err != nil {
				ts.refusedCheckIns.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if r.URL.Path == "/api/v1/agent/inventory" {
			ts.uploadsTried.Add(1)
			if ts.dropUploads.Load() {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	if hs.TLS, err = srv.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Drain) // before hs.Close, which waits for held check-ins
	ts.url = hs.URL
	return ts
}

// enrolled returns an agent enrolled with ts, reporting this test's root.
func enrolled(t *testing.T, ts *testServer) *Agent {
	t.Helper()
	ctx := context.Background()
	tok := store.EnrollToken{ID: "tok", SecretHash: sum("secret"), CreatedAt: time.Now()}
	if err := ts.st.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeRoot(t, root)
	cfg := Config{StateDir: filepath.Join(t.TempDir(), "state"), Root: root}
	if _, err := Enroll(ctx, cfg, ts.url, ts.fpr, "ple_tok_secret"); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func writeRoot(t *testing.T, root string) {
	t.Helper()
	files := map[string]string{
		"var/lib/dpkg/status": "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\n\n",
		"etc/machine-id":      "0123456789abcdef0123456789abcdef\n",
		"etc/hostname":        "agent-test\n",
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJobFinishedAfterLostConnection(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	ctx := context.Background()
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.CreateJob(ctx, store.Job{ID: "job1", Kind: "scan", Params: []byte("{}"), CreatedAt: time.Now()}, []string{a.st.HostID}); err != nil {
		t.Fatal(err)
	}
	ts.dropUploads.Store(true)
	if err := a.Once(ctx); err == nil || !strings.Contains(err.Error(), "job job1") {
		t.Fatalf("check-in whose job upload was cut: %v", err)
	}
	ts.dropUploads.Store(false)
	// The lease still holds, so the server hands nothing out; the agent
	// finishes the job it kept.
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	_, parts, err := ts.st.Job(ctx, "job1")
	if err != nil || len(parts) != 1 || parts[0].State != store.JobDone || parts[0].Status != "ok" || parts[0].Attempts != 1 {
		t.Fatalf("job after recovery: %+v, %v", parts, err)
	}
	if len(a.pending) != 0 {
		t.Errorf("%d jobs still pending", len(a.pending))
	}
}

// TestRunTakesJobsFromHeldCheckIns: a running agent parks its check-in
// on a server that holds them, and runs a job queued meanwhile at once,
// not at its next check-in a minute later.
func TestRunTakesJobsFromHeldCheckIns(t *testing.T) {
	ts := newTestServerWith(t, func(c *server.Config) { c.Interval, c.Hold = time.Minute, time.Minute })
	a := enrolled(t, ts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 20 s (the agent's interval is 1 min): %s", what)
			}
		}
	}
	until("the agent sent its inventory and parked", func() bool {
		h, err := ts.st.Host(context.Background(), a.st.HostID)
		return err == nil && h.InventoryHash != "" && ts.srv.Held() == 1
	})
	for _, id := range []string{"job1", "job2"} {
		if err := ts.st.CreateJob(ctx, store.Job{ID: id, Kind: "scan", Params: []byte("{}"), CreatedAt: time.Now()}, []string{a.st.HostID}); err != nil {
			t.Fatal(err)
		}
		until(id+" done", func() bool {
			_, parts, err := ts.st.Job(context.Background(), id)
			return err == nil && len(parts) == 1 && parts[0].State == store.JobDone
		})
		until("the agent parked again", func() bool { return ts.srv.Held() == 1 })
	}
}

// TestOldServerRefusingWait: a server older than held check-ins refuses
// the unknown field; the agent checks in without it at once, and does not
// ask again for an hour.
func TestOldServerRefusingWait(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	ts.oldCheckIn.Store(true)
	ctx := context.Background()
	for i := range 2 {
		if _, err := a.once(ctx, time.Minute); err != nil {
			t.Fatalf("check-in %d against an old server: %v", i, err)
		}
	}
	if n := ts.refusedCheckIns.Load(); n != 1 {
		t.Fatalf("the old server refused %d check-ins, want 1 (then none asked to wait)", n)
	}
}

func TestStateLossMeansReEnroll(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{StateDir: dir}); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("empty state dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{trunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{StateDir: dir}); !errors.Is(err, ErrNotEnrolled) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt state: %v", err)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	max := 40 * time.Second
	for n := 1; n < 12; n++ {
		d := backoff(n, max)
		want := 2 * time.Second << (n - 1)
		if want > max {
			want = max
		}
		if d < want/2 || d > want {
			t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
		}
	}
}

// TestRetryWait: a busy server's Retry-After lengthens the back-off
// (jittered up to a fifth more, capped), never shortens it.
func TestRetryWait(t *testing.T) {
	max := time.Minute
	busy := fmt.Errorf("report: %w", &StatusError{Code: 503, RetryAfter: 5 * time.Second})
	for range 100 {
		if d := RetryWait(busy, 1, max); d < 5*time.Second || d > 6*time.Second {
			t.Fatalf("first failure, Retry-After 5s: %v, want 5-6 s", d)
		}
		if d := RetryWait(busy, 4, max); d < 8*time.Second || d > 16*time.Second {
			t.Fatalf("fourth failure, Retry-After 5s: %v, want the back-off, 8-16 s", d)
		}
		if d := RetryWait(errors.New("connection refused"), 1, max); d < time.Second || d > 2*time.Second {
			t.Fatalf("no Retry-After: %v, want the back-off, 1-2 s", d)
		}
		long := &StatusError{Code: 503, RetryAfter: time.Hour}
		if d := RetryWait(long, 1, max); d != max {
			t.Fatalf("Retry-After an hour: %v, want the cap %v", d, max)
		}
	}
}

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
