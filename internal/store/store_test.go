package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
		{"UpdateListsShared", testUpdateListsShared},
		{"Jobs", testJobs},
		{"LeaseJobs", testLeaseJobs},
		{"QueuedSince", testQueuedSince},
		{"CompleteJob", testCompleteJob},
		{"StoredResults", testStoredResults},
		{"Settings", testSettings},
		{"Policies", testPolicies},
		{"Stats", testStats},
		{"ConcurrentEnroll", testConcurrentEnroll},
		{"ConcurrentLease", testConcurrentLease},
		{"ConcurrentSettings", testConcurrentSettings},
		{"ConcurrentLoad", testConcurrentLoad},
		{"GroupCommit", testGroupCommit},
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
	if ids, err := s.ActiveHostIDs(ctx); err != nil || !reflect.DeepEqual(slices.Sorted(slices.Values(ids)), []string{"a", "b", "c"}) {
		t.Errorf("ActiveHostIDs = %v, %v; want a, b, c", ids, err)
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

// Hosts with the same list of updates share one stored copy; a list no
// host names any more is pruned, one still named is kept; a row written
// inline before lists were shared is still read.
func testUpdateListsShared(t *testing.T, s Store) {
	for _, id := range []string{"a", "b", "c", "old"} {
		enrollHost(t, s, id, "host-"+id, nil)
	}
	list1 := []byte(`[{"package":"curl","candidate":"7.88.1-10+deb12u14"}]`)
	list2 := []byte(`[{"package":"openssl","candidate":"3.0.17-1~deb12u3"}]`)
	put := func(id string, list []byte) HostUpdates {
		t.Helper()
		u := HostUpdates{HostID: id, ComputedAt: t0, Basis: "inv+" + id, Updates: list, Count: 1}
		if err := s.PutHostUpdates(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	prune := func(want int64) {
		t.Helper()
		if n, err := s.PruneUpdateLists(ctx); err != nil || n != want {
			t.Fatalf("PruneUpdateLists = %d, %v; want %d", n, err, want)
		}
	}
	check := func(u HostUpdates) {
		t.Helper()
		if got, err := s.HostUpdates(ctx, u.HostID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("HostUpdates(%s) = %+v, %v; want %+v", u.HostID, got, err, u)
		}
	}
	a, b, c := put("a", list1), put("b", list1), put("c", list2)
	check(a)
	check(b)
	check(c)
	prune(0)
	b = put("b", list2) // list1 is still a's
	prune(0)
	check(a)
	check(b)
	a = put("a", list2) // now no host names list1
	prune(1)
	prune(0)
	check(a)
	check(c)
	none := put("c", nil) // a result without a list (an error) names none
	check(none)
	prune(0)

	// A row as written before version 4: the list inline, no hash.
	db := s.(*sqlStore).db
	if _, err := db.ExecContext(ctx, s.(*sqlStore).q(`INSERT INTO host_updates (host_id, computed_at, basis, updates, count, security, error)
		VALUES (?, ?, ?, ?, 1, 0, '')`), "old", ms(t0), "inv+old", string(list1)); err != nil {
		t.Fatal(err)
	}
	check(HostUpdates{HostID: "old", ComputedAt: t0, Basis: "inv+old", Updates: list1, Count: 1})

	// The refs name each host's list by hash (the inline one by none),
	// and the hash reads the list back.
	refs, err := s.UpdateRefs(ctx)
	if err != nil || len(refs) != 4 {
		t.Fatalf("UpdateRefs = %+v, %v", refs, err)
	}
	byHost := map[string]UpdateRef{}
	for _, r := range refs {
		byHost[r.HostID] = r
	}
	if byHost["a"].Hash == "" || byHost["a"].Hash != byHost["b"].Hash || byHost["old"].Hash != "" || byHost["c"].Hash != "" ||
		byHost["a"].Basis != "inv+a" {
		t.Fatalf("UpdateRefs = %+v", byHost)
	}
	if got, err := s.UpdateList(ctx, byHost["a"].Hash); err != nil || string(got) != string(list2) {
		t.Errorf("UpdateList = %s, %v", got, err)
	}
	_, err = s.UpdateList(ctx, "nope")
	wantErr(t, err, ErrNotFound, "update list nope")
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
