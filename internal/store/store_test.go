package store

import (
	"context"
	"crypto/sha256"
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

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openSQLiteT(t testing.TB) Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db", "patchloop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgresT(t testing.TB) Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) { runStoreTests(t, func(t *testing.T) Store { return openSQLiteT(t) }) }
func TestPostgres(t *testing.T) {
	runStoreTests(t, func(t *testing.T) Store { return openPostgresT(t) })
}

// runStoreTests is the suite every implementation passes; open returns
// a new, empty store.
func runStoreTests(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"EnrollTokens", testEnrollTokens},
		{"Enroll", testEnroll},
		{"EnrollRefused", testEnrollRefused},
		{"ReEnroll", testReEnroll},
		{"Hosts", testHosts},
		{"CheckIn", testCheckIn},
		{"Inventory", testInventory},
		{"AdminTokens", testAdminTokens},
		{"HostUpdates", testHostUpdates},
		{"Jobs", testJobs},
		{"LeaseJobs", testLeaseJobs},
		{"CompleteJob", testCompleteJob},
		{"Settings", testSettings},
		{"Stats", testStats},
		{"ConcurrentEnroll", testConcurrentEnroll},
		{"ConcurrentLease", testConcurrentLease},
		{"ConcurrentSettings", testConcurrentSettings},
		{"ConcurrentLoad", testConcurrentLoad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func mustCreateToken(t *testing.T, s Store, tok EnrollToken) EnrollToken {
	t.Helper()
	if tok.SecretHash == nil {
		tok.SecretHash = hash(tok.ID + "-secret")
	}
	if tok.CreatedAt.IsZero() {
		tok.CreatedAt = t0
	}
	if err := s.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// enrollHost enrolls a new host with machine ID "m-"+id through a token
// of its own and returns it.
func enrollHost(t *testing.T, s Store, id, hostname string, labels map[string]string) Host {
	t.Helper()
	tok := mustCreateToken(t, s, EnrollToken{ID: "tok-" + id, Labels: labels})
	h, err := s.Enroll(ctx, tok.ID, tok.SecretHash, Host{
		ID: id, MachineID: "m-" + id, Hostname: hostname, SecretHash: hash("host-" + id),
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func wantErr(t *testing.T, err, target error, contains ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

func testEnrollTokens(t *testing.T, s Store) {
	a := mustCreateToken(t, s, EnrollToken{
		ID: "a", Labels: map[string]string{"env": "prod", "ring": "1"},
		CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(48 * time.Hour).Add(123 * time.Millisecond),
		MaxUses: 5, Note: "for the web servers",
	})
	b := mustCreateToken(t, s, EnrollToken{ID: "b", CreatedAt: t0})
	err := s.CreateEnrollToken(ctx, EnrollToken{ID: "a", SecretHash: hash("x"), CreatedAt: t0})
	wantErr(t, err, ErrConflict, "enroll token a")

	got, err := s.ListEnrollTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []EnrollToken{b, a}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ListEnrollTokens:\n got %+v\nwant %+v", got, want)
	}
	if !got[0].ExpiresAt.IsZero() || !got[0].RevokedAt.IsZero() || got[0].Labels != nil {
		t.Errorf("zero values did not round-trip: %+v", got[0])
	}

	if err := s.RevokeEnrollToken(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeEnrollToken(ctx, "a", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RevokeEnrollToken(ctx, "nope", t0), ErrNotFound, "nope")
	got, _ = s.ListEnrollTokens(ctx)
	if !got[1].RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokedAt = %v, want the first revocation %v", got[1].RevokedAt, t0.Add(time.Hour))
	}
}

func testEnroll(t *testing.T, s Store) {
	tok := mustCreateToken(t, s, EnrollToken{ID: "t1", Labels: map[string]string{"env": "prod"}, MaxUses: 2})
	in := Host{
		ID: "h1", MachineID: "m1", Hostname: "web1", SecretHash: hash("cred"),
		Labels: map[string]string{"env": "dev", "team": "web"}, Facts: []byte(`{"os":"debian"}`),
	}
	h, err := s.Enroll(ctx, "t1", tok.SecretHash, in, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Labels = map[string]string{"env": "prod", "team": "web"} // the token's win
	want.EnrolledAt = t0
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("Enroll:\n got %+v\nwant %+v", h, want)
	}
	stored, err := s.Host(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, want) {
		t.Fatalf("Host:\n got %+v\nwant %+v", stored, want)
	}
	toks, _ := s.ListEnrollTokens(ctx)
	if toks[0].Uses != 1 {
		t.Errorf("Uses = %d, want 1", toks[0].Uses)
	}
	_, err = s.Enroll(ctx, "t1", tok.SecretHash, Host{MachineID: "m2"}, t0)
	if err == nil || errors.Is(err, ErrTokenInvalid) {
		t.Errorf("enroll without a host ID: %v", err)
	}
}

func testEnrollRefused(t *testing.T, s Store) {
	now := t0.Add(24 * time.Hour)
	mustCreateToken(t, s, EnrollToken{ID: "revoked", RevokedAt: t0})
	mustCreateToken(t, s, EnrollToken{ID: "expired", ExpiresAt: now.Add(-time.Millisecond)})
	mustCreateToken(t, s, EnrollToken{ID: "edge", ExpiresAt: now, MaxUses: 1})
	mustCreateToken(t, s, EnrollToken{ID: "usedup", MaxUses: 2, Uses: 2})
	tests := []struct {
		id, secret string
		wantErr    string // "" succeeds
	}{
		{"unknown", "unknown-secret", "store: enroll token unknown: unknown: enrollment token not valid"},
		{"revoked", "wrong", "store: enroll token revoked: wrong secret: enrollment token not valid"},
		{"revoked", "revoked-secret", "store: enroll token revoked: revoked at 2026-03-01T12:00:00Z: enrollment token not valid"},
		{"expired", "expired-secret", "store: enroll token expired: expired at 2026-03-02T11:59:59Z: enrollment token not valid"},
		{"usedup", "usedup-secret", "store: enroll token usedup: used up (2 of 2 uses): enrollment token not valid"},
		{"edge", "edge-secret", ""}, // expires at now: still valid
		{"edge", "edge-secret", "used up (1 of 1 uses)"},
	}
	for i, tc := range tests {
		h := Host{ID: fmt.Sprint("h", i), MachineID: fmt.Sprint("m", i), SecretHash: hash("c")}
		_, err := s.Enroll(ctx, tc.id, hash(tc.secret), h, now)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(fmt.Sprint(err), tc.wantErr) {
			t.Errorf("%s: error %v, want %q wrapping ErrTokenInvalid", tc.id, err, tc.wantErr)
		}
	}
	hosts, _ := s.ListHosts(ctx, HostFilter{IncludeRevoked: true})
	if len(hosts) != 1 {
		t.Errorf("%d hosts, want 1", len(hosts))
	}
	toks, _ := s.ListEnrollTokens(ctx)
	for _, tok := range toks {
		if want := map[string]int{"edge": 1, "usedup": 2}[tok.ID]; tok.Uses != want {
			t.Errorf("token %s: Uses = %d, want %d", tok.ID, tok.Uses, want)
		}
	}
}

func testReEnroll(t *testing.T, s Store) {
	first := enrollHost(t, s, "h1", "old-name", map[string]string{"env": "dev", "team": "db"})
	if err := s.PutInventory(ctx, "h1", "inv1", []byte("pkgs"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeHost(ctx, "h1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tok := mustCreateToken(t, s, EnrollToken{ID: "t2", Labels: map[string]string{"env": "prod", "ring": "2"}})
	later := t0.Add(2 * time.Hour)
	h, err := s.Enroll(ctx, "t2", tok.SecretHash, Host{
		ID: "ignored-new-id", MachineID: first.MachineID, Hostname: "new-name", SecretHash: hash("new-cred"),
	}, later)
	if err != nil {
		t.Fatal(err)
	}
	want := first
	want.Hostname, want.SecretHash = "new-name", hash("new-cred")
	want.Labels = map[string]string{"env": "prod", "team": "db", "ring": "2"}
	want.InventoryHash, want.InventoryAt = "inv1", t0
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("re-enrolled:\n got %+v\nwant %+v", h, want)
	}
	if stored, _ := s.Host(ctx, "h1"); !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored:\n got %+v\nwant %+v", stored, want)
	}
	wantErr(t, func() error { _, err := s.Host(ctx, "ignored-new-id"); return err }(), ErrNotFound)
}

func testHosts(t *testing.T, s Store) {
	enrollHost(t, s, "c", "beta", map[string]string{"env": "prod", "role": "db"})
	enrollHost(t, s, "a", "beta", map[string]string{"env": "prod"})
	enrollHost(t, s, "b", "alpha", map[string]string{"env": "dev"})
	enrollHost(t, s, "d", "gamma", map[string]string{"env": "prod", "role": "db"})
	if err := s.RevokeHost(ctx, "d", t0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RevokeHost(ctx, "zz", t0), ErrNotFound, "host zz")
	_, err := s.Host(ctx, "zz")
	wantErr(t, err, ErrNotFound, "store: host zz: not found")

	tests := []struct {
		f    HostFilter
		want []string
	}{
		{HostFilter{}, []string{"b", "a", "c"}},
		{HostFilter{IncludeRevoked: true}, []string{"b", "a", "c", "d"}},
		{HostFilter{Label: map[string]string{"env": "prod"}}, []string{"a", "c"}},
		{HostFilter{Label: map[string]string{"env": "prod", "role": "db"}, IncludeRevoked: true}, []string{"c", "d"}},
		{HostFilter{Label: map[string]string{"role": ""}}, nil},
	}
	for _, tc := range tests {
		hs, err := s.ListHosts(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range hs {
			ids = append(ids, h.ID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("ListHosts(%+v) = %v, want %v", tc.f, ids, tc.want)
		}
	}
	d, _ := s.Host(ctx, "d")
	if !d.RevokedAt.Equal(t0) {
		t.Errorf("RevokedAt = %v", d.RevokedAt)
	}
}

func testCheckIn(t *testing.T, s Store) {
	enrollHost(t, s, "h", "web", nil)
	if h, _ := s.Host(ctx, "h"); !h.LastSeen.IsZero() || h.Facts != nil {
		t.Fatalf("new host: LastSeen %v, Facts %q", h.LastSeen, h.Facts)
	}
	steps := []struct {
		c         CheckIn
		wantFacts string
	}{
		{CheckIn{HostID: "h", At: t0.Add(time.Minute), Facts: []byte(`{"kernel":"6.1"}`)}, `{"kernel":"6.1"}`},
		{CheckIn{HostID: "h", At: t0.Add(2 * time.Minute)}, `{"kernel":"6.1"}`},
		{CheckIn{HostID: "h", At: t0.Add(3*time.Minute + 7*time.Millisecond), Facts: []byte(`{}`)}, `{}`},
	}
	for _, st := range steps {
		if err := s.CheckIn(ctx, st.c); err != nil {
			t.Fatal(err)
		}
		h, _ := s.Host(ctx, "h")
		if !h.LastSeen.Equal(st.c.At) || string(h.Facts) != st.wantFacts {
			t.Errorf("after %+v: LastSeen %v, Facts %s", st.c, h.LastSeen, h.Facts)
		}
	}
	wantErr(t, s.CheckIn(ctx, CheckIn{HostID: "nope", At: t0}), ErrNotFound, "host nope")
}

func testInventory(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	enrollHost(t, s, "h2", "b", nil)
	data := []byte{0, 1, 2, 0xff, 'x'} // opaque bytes, not text
	for _, h := range []string{"h1", "h2"} {
		if err := s.PutInventory(ctx, h, "abc", data, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Inventory(ctx, "abc")
	if err != nil || string(got) != string(data) {
		t.Fatalf("Inventory = %q, %v", got, err)
	}
	h, _ := s.Host(ctx, "h2")
	if h.InventoryHash != "abc" || !h.InventoryAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("host: %q at %v", h.InventoryHash, h.InventoryAt)
	}
	// An unknown host changes nothing: the inventory is not stored either.
	wantErr(t, s.PutInventory(ctx, "nope", "def", data, t0), ErrNotFound, "host nope")
	_, err = s.Inventory(ctx, "def")
	wantErr(t, err, ErrNotFound, "inventory def")
	if st, _ := s.Stats(ctx); st.Inventories != 1 {
		t.Errorf("%d inventories stored, want 1", st.Inventories)
	}
}

func testAdminTokens(t *testing.T, s Store) {
	a := AdminToken{ID: "a", SecretHash: hash("a"), Name: "alice", CreatedAt: t0}
	b := AdminToken{ID: "b", SecretHash: hash("b"), Name: "bob", CreatedAt: t0.Add(-time.Hour)}
	for _, tok := range []AdminToken{a, b} {
		if err := s.CreateAdminToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, s.CreateAdminToken(ctx, a), ErrConflict, "admin token a")
	if got, err := s.AdminToken(ctx, "a"); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("AdminToken = %+v, %v", got, err)
	}
	_, err := s.AdminToken(ctx, "zz")
	wantErr(t, err, ErrNotFound, "admin token zz")
	if got, _ := s.ListAdminTokens(ctx); !reflect.DeepEqual(got, []AdminToken{b, a}) {
		t.Errorf("ListAdminTokens = %+v", got)
	}
	if err := s.RevokeAdminToken(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RevokeAdminToken(ctx, "zz", t0), ErrNotFound)
	if got, _ := s.AdminToken(ctx, "a"); !got.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokedAt = %v", got.RevokedAt)
	}
}

func testHostUpdates(t *testing.T, s Store) {
	enrollHost(t, s, "h", "web", nil)
	_, err := s.HostUpdates(ctx, "h")
	wantErr(t, err, ErrNotFound)
	u := HostUpdates{HostID: "h", ComputedAt: t0, Basis: "inv1+idx1", Updates: []byte(`[{"package":"curl"}]`), Count: 1, Security: 1}
	if err := s.PutHostUpdates(ctx, u); err != nil {
		t.Fatal(err)
	}
	u2 := HostUpdates{HostID: "h", ComputedAt: t0.Add(time.Hour), Basis: "inv2+idx1", Error: "no index for trixie"}
	if err := s.PutHostUpdates(ctx, u2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.HostUpdates(ctx, "h"); err != nil || !reflect.DeepEqual(got, u2) {
		t.Errorf("HostUpdates = %+v, %v; want %+v", got, err, u2)
	}
	wantErr(t, s.PutHostUpdates(ctx, HostUpdates{HostID: "zz", ComputedAt: t0}), ErrNotFound, "host zz")
}

func testJobs(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	enrollHost(t, s, "h2", "b", nil)
	j := Job{ID: "j1", Kind: "scan", Params: []byte(`{"full":true}`), CreatedAt: t0, CreatedBy: "alice"}
	if err := s.CreateJob(ctx, j, []string{"h2", "h1", "h2"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateJob(ctx, j, []string{"h1"}), ErrConflict, "job j1")
	wantErr(t, s.CreateJob(ctx, Job{ID: "j2", Kind: "scan", CreatedAt: t0}, []string{"h1", "zz"}), ErrNotFound, "host zz")
	_, _, err := s.Job(ctx, "j2")
	wantErr(t, err, ErrNotFound, "job j2") // the failed create left nothing
	if err := s.CreateJob(ctx, Job{ID: "j3", Kind: "scan", CreatedAt: t0.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}

	got, hjs, err := s.Job(ctx, "j1")
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Fatalf("Job = %+v, %v", got, err)
	}
	want := []HostJob{
		{JobID: "j1", HostID: "h1", Kind: "scan", Params: j.Params, State: JobQueued, CreatedAt: t0},
		{JobID: "j1", HostID: "h2", Kind: "scan", Params: j.Params, State: JobQueued, CreatedAt: t0},
	}
	if !reflect.DeepEqual(hjs, want) {
		t.Fatalf("HostJobs:\n got %+v\nwant %+v", hjs, want)
	}
	js, err := s.ListJobs(ctx, 0)
	if err != nil || len(js) != 2 || js[0].ID != "j3" || js[1].ID != "j1" || js[0].Params != nil {
		t.Errorf("ListJobs = %+v, %v", js, err)
	}
	if js, _ := s.ListJobs(ctx, 1); len(js) != 1 || js[0].ID != "j3" {
		t.Errorf("ListJobs(1) = %+v", js)
	}
}

func testLeaseJobs(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	enrollHost(t, s, "h2", "b", nil)
	for _, j := range []Job{
		{ID: "j-b", Kind: "scan", Params: []byte(`{"n":1}`), CreatedAt: t0},
		{ID: "j-a", Kind: "scan", Params: []byte(`{"n":2}`), CreatedAt: t0},
		{ID: "j-0", Kind: "reboot", CreatedAt: t0.Add(time.Minute)},
	} {
		if err := s.CreateJob(ctx, j, []string{"h1", "h2"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateJob(ctx, Job{ID: "j-other", Kind: "scan", CreatedAt: t0.Add(-time.Hour)}, []string{"h2"}); err != nil {
		t.Fatal(err)
	}
	lease := func(now time.Time, max int) []HostJob {
		t.Helper()
		hjs, err := s.LeaseJobs(ctx, "h1", now, 5*time.Minute, max)
		if err != nil {
			t.Fatal(err)
		}
		return hjs
	}
	ids := func(hjs []HostJob) (ids []string) {
		for _, hj := range hjs {
			ids = append(ids, hj.JobID)
		}
		return ids
	}
	now := t0.Add(time.Hour)
	got := lease(now, 2)
	if !reflect.DeepEqual(ids(got), []string{"j-a", "j-b"}) {
		t.Fatalf("first lease: %v", ids(got))
	}
	want := HostJob{JobID: "j-a", HostID: "h1", Kind: "scan", Params: []byte(`{"n":2}`), State: JobLeased,
		Attempts: 1, LeaseUntil: now.Add(5 * time.Minute), CreatedAt: t0}
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("leased:\n got %+v\nwant %+v", got[0], want)
	}
	if got := lease(now, 10); !reflect.DeepEqual(ids(got), []string{"j-0"}) || got[0].Kind != "reboot" || got[0].Params != nil {
		t.Fatalf("second lease: %+v", got)
	}
	if got := lease(now.Add(5*time.Minute), 10); len(got) != 0 {
		t.Fatalf("lease within the lease (it ends at, not before, now) handed out %v", ids(got))
	}
	if _, err := s.CompleteJob(ctx, "j-b", "h1", "ok", nil, now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(5*time.Minute + time.Millisecond)
	got = lease(later, 10)
	if !reflect.DeepEqual(ids(got), []string{"j-a", "j-0"}) || got[0].Attempts != 2 || !got[0].LeaseUntil.Equal(later.Add(5*time.Minute)) {
		t.Fatalf("lease after expiry: %+v", got)
	}
	if got, err := s.LeaseJobs(ctx, "h1", later.Add(time.Hour), time.Minute, 0); err != nil || len(got) != 0 {
		t.Fatalf("max 0: %v, %v", got, err)
	}
	_, hjs, _ := s.Job(ctx, "j-a")
	if hjs[1].HostID != "h2" || hjs[1].State != JobQueued || hjs[1].Attempts != 0 {
		t.Errorf("another host's part changed: %+v", hjs[1])
	}
}

func testCompleteJob(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	if err := s.CreateJob(ctx, Job{ID: "j", Kind: "scan", CreatedAt: t0}, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeaseJobs(ctx, "h1", t0, time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	// The lease runs out and the job is leased again; the first run's
	// result arrives after that and is kept.
	if got, err := s.LeaseJobs(ctx, "h1", t0.Add(2*time.Minute), time.Minute, 1); err != nil || len(got) != 1 {
		t.Fatalf("re-lease: %v, %v", got, err)
	}
	first, err := s.CompleteJob(ctx, "j", "h1", "ok", []byte(`{"updates":3}`), t0.Add(3*time.Minute))
	if err != nil || !first {
		t.Fatalf("CompleteJob = %v, %v", first, err)
	}
	first, err = s.CompleteJob(ctx, "j", "h1", "failed", []byte(`{}`), t0.Add(4*time.Minute))
	if err != nil || first {
		t.Fatalf("repeated CompleteJob = %v, %v", first, err)
	}
	_, hjs, _ := s.Job(ctx, "j")
	want := HostJob{JobID: "j", HostID: "h1", Kind: "scan", State: JobDone, Attempts: 2, Status: "ok",
		Result: []byte(`{"updates":3}`), FinishedAt: t0.Add(3 * time.Minute), CreatedAt: t0}
	if !reflect.DeepEqual(hjs, []HostJob{want}) {
		t.Fatalf("stored:\n got %+v\nwant %+v", hjs, want)
	}
	if got, _ := s.LeaseJobs(ctx, "h1", t0.Add(time.Hour), time.Minute, 5); len(got) != 0 {
		t.Errorf("a done job was leased: %+v", got)
	}
	_, err = s.CompleteJob(ctx, "j", "h2", "ok", nil, t0)
	wantErr(t, err, ErrNotFound, "job j of host h2")
	_, err = s.CompleteJob(ctx, "zz", "h1", "ok", nil, t0)
	wantErr(t, err, ErrNotFound)
}

func testSettings(t *testing.T, s Store) {
	_, err := s.Setting(ctx, "ca")
	wantErr(t, err, ErrNotFound, "setting ca")
	v, err := s.PutSettingIfAbsent(ctx, "ca", []byte("first\x00"))
	if err != nil || string(v) != "first\x00" {
		t.Fatalf("PutSettingIfAbsent = %q, %v", v, err)
	}
	v, err = s.PutSettingIfAbsent(ctx, "ca", []byte("second"))
	if err != nil || string(v) != "first\x00" {
		t.Fatalf("second PutSettingIfAbsent = %q, %v", v, err)
	}
	if v, err := s.Setting(ctx, "ca"); err != nil || string(v) != "first\x00" {
		t.Fatalf("Setting = %q, %v", v, err)
	}
}

func testStats(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	enrollHost(t, s, "h2", "b", nil)
	s.RevokeHost(ctx, "h2", t0)
	s.PutInventory(ctx, "h1", "i1", []byte("x"), t0)
	s.PutInventory(ctx, "h2", "i2", []byte("y"), t0)
	s.CreateJob(ctx, Job{ID: "j1", Kind: "scan", CreatedAt: t0}, []string{"h1", "h2"})
	s.CreateJob(ctx, Job{ID: "j2", Kind: "scan", CreatedAt: t0}, []string{"h1"})
	s.LeaseJobs(ctx, "h1", t0, time.Minute, 1)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SizeBytes <= 0 {
		t.Errorf("SizeBytes = %d", st.SizeBytes)
	}
	st.SizeBytes = 0
	if want := (Stats{Hosts: 2, RevokedHosts: 1, Inventories: 2, QueuedJobs: 2}); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}
