package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/server"
	"github.com/patchloop/patchloop/internal/store"
)

// testFleet builds inventories from the minbase status file of package
// deb's testdata and its versions list.
func testFleet(t testing.TB, variants int) []*Inventory {
	t.Helper()
	img, err := ReadImage("../deb/testdata/status-bookworm-minbase")
	if err != nil {
		t.Fatal(err)
	}
	pool := VersionPool{}
	if err := pool.ReadVersions("../deb/testdata/versions.txt"); err != nil {
		t.Fatal(err)
	}
	base := &api.Inventory{NativeArch: "amd64", Sources: []api.Source{
		{URI: "http://deb.debian.org/debian", Suite: "bookworm", Components: []string{"main"}, Archs: []string{"amd64"}}}}
	return Inventories(base, []*Image{img}, pool, variants, 1)
}

func TestInventories(t *testing.T) {
	invs := testFleet(t, 20)
	if len(invs) < 15 {
		t.Fatalf("%d distinct inventories of 20 variants", len(invs))
	}
	if n := len(invs[0].Inv.Packages); n != 88 {
		t.Errorf("variant 0 has %d packages, want the image's 88", n)
	}
	again := testFleet(t, 20)
	for i := range invs {
		if err := invs[i].Inv.Validate(); err != nil {
			t.Errorf("inventory %d: %v", i, err)
		}
		if invs[i].Hash != invs[i].Inv.Hash() || invs[i].Hash != again[i].Hash {
			t.Errorf("inventory %d: hash not stable", i)
		}
		names := map[string]bool{}
		for _, p := range invs[i].Inv.Packages {
			names[p.Name] = true
		}
		for _, needed := range []string{"dpkg", "libc6", "base-files", "apt"} { // required, or depended on
			if !names[needed] {
				t.Errorf("inventory %d lost %s", i, needed)
			}
		}
	}
}

// testServer runs a real server over TLS on loopback with a SQLite store
// and an engine that mirrors nothing (detection fails fast, and the
// failure is stored as the host's result).
func testServer(t testing.TB) (url, fingerprint string, st store.Store, newToken func(context.Context, int) (string, error)) {
	t.Helper()
	return testServerHold(t, 0)
}

// testServerHold is testServer holding check-ins up to hold, and speaking
// HTTP/2 when it does (as patchloop server does).
func testServerHold(t testing.TB, hold time.Duration) (url, fingerprint string, st store.Store, newToken func(context.Context, int) (string, error)) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "patchloop.db"))
	if err != nil {
		t.Fatal(err)
	}
	eng := central.New(central.Config{CacheDir: filepath.Join(dir, "cache"), Offline: true})
	srv, err := server.New(ctx, server.Config{Store: st, Engine: eng, Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = hold > 0
	if ts.TLS, err = srv.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	ts.StartTLS()
	t.Cleanup(func() { srv.Drain(); ts.Close(); st.Close() }) // Drain: held check-ins answer at once
	newToken = func(ctx context.Context, n int) (string, error) {
		b := make([]byte, 8)
		rand.Read(b)
		id, secret := hex.EncodeToString(b), rand.Text()
		sum := sha256.Sum256([]byte(secret))
		err := st.CreateEnrollToken(ctx, store.EnrollToken{ID: id, SecretHash: sum[:], MaxUses: n, CreatedAt: time.Now()})
		return api.EnrollTokenPrefix + id + "_" + secret, err
	}
	return ts.URL, pki.Fingerprint(srv.CA().Cert), st, newToken
}

// runOK runs cfg and fails the test on an error or any failed request.
func runOK(t *testing.T, cfg Config) *Report {
	t.Helper()
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, r)
	return r
}

// noErrors fails the test on any failed request.
func noErrors(t *testing.T, r *Report) {
	t.Helper()
	for _, p := range r.Phases {
		for _, o := range p.Ops {
			if len(o.Errors) > 0 {
				t.Errorf("%s %s: errors %v: %v", p.Name, o.Op, o.Errors, o.ErrorText)
			}
		}
	}
}

func TestRunAgainstServer(t *testing.T) {
	url, fpr, st, newToken := testServer(t)
	invs := testFleet(t, 8)
	const hosts = 50
	cfg := Config{Server: url, CAFingerprint: fpr, NewToken: newToken, Hosts: hosts, Seed: 1,
		StatePath: filepath.Join(t.TempDir(), "state.json"), Inventories: invs,
		Facts:       api.Facts{OS: "Debian GNU/Linux 12 (bookworm)", Distro: "debian", Release: "12", Codename: "bookworm", Arch: "amd64"},
		Concurrency: 8, Mode: ModeSteady, Interval: 400 * time.Millisecond, Duration: 1200 * time.Millisecond}
	ctx := context.Background()
	r := runOK(t, cfg)
	if len(r.Phases) != 3 || r.Phases[0].Name != "enroll" || r.Phases[2].Name != ModeSteady {
		t.Fatalf("phases %+v", r.Phases)
	}
	if ok := r.Phases[0].Ops[0].OK; ok != hosts {
		t.Errorf("%d enrolled, want %d", ok, hosts)
	}
	inv := r.Phases[1]
	if inv.Ops[0].OK != hosts || inv.Ops[1].OK != hosts {
		t.Errorf("inventory phase: %d check-ins and %d inventories, want %d of each", inv.Ops[0].OK, inv.Ops[1].OK, hosts)
	}
	steady := r.Phases[2]
	// 50 hosts every 0.4 s ±10% for 1.2 s: about 150 check-ins
	if n := steady.Ops[0].OK; n < 100 || n > 200 || steady.Ops[1].OK != 0 || steady.NewConns != 0 {
		t.Errorf("steady: %d check-ins (want about 150), %d inventories and %d new connections (want 0)", n, steady.Ops[1].OK, steady.NewConns)
	}
	used := map[string]bool{}
	for i := 0; i < hosts; i++ {
		used[invs[pick(cfg.Seed, i, len(invs))].Hash] = true
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Hosts != hosts || stats.Inventories != len(used) {
		t.Errorf("server store holds %d hosts and %d inventories, want %d and %d", stats.Hosts, stats.Inventories, hosts, len(used))
	}
	if s := steady.ServerStore; s == nil || s.Hosts != hosts || s.Inventories != int64(len(used)) || s.DatabaseBytes <= 0 {
		t.Errorf("server /metrics: %+v (%s)", s, steady.StoreError)
	}

	// Again from the state file, reconnecting for every request, as fast
	// as possible: no enrollment, no inventory sent, a connection each.
	cfg.NewToken, cfg.Mode, cfg.Reconnect, cfg.Duration = nil, ModeMax, true, 500*time.Millisecond
	r, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, r)
	if len(r.Phases) != 2 || r.Phases[0].Ops[1].OK != 0 {
		t.Fatalf("rerun: phases %+v", r.Phases)
	}
	max := r.Phases[1]
	if max.Ops[0].OK == 0 || max.NewConns != int64(max.Ops[0].OK) {
		t.Errorf("max with reconnect: %d check-ins over %d new connections, want one each", max.Ops[0].OK, max.NewConns)
	}
	// Each host's first connection of the run is a full handshake (hosts
	// share no sessions), and each later one resumes that host's session.
	if inv := r.Phases[0]; inv.NewConns != hosts || inv.Resumed != 0 {
		t.Errorf("first connections: %d new, %d resumed; want %d, none resumed", inv.NewConns, inv.Resumed, hosts)
	}
	if max.Resumed != max.NewConns {
		t.Errorf("max with reconnect: %d of %d new connections resumed, want all", max.Resumed, max.NewConns)
	}
	if stats, _ := st.Stats(ctx); stats.Hosts != hosts {
		t.Errorf("rerun: %d hosts on the server, want %d", stats.Hosts, hosts)
	}
}

// BenchmarkCheckIn measures unchanged-inventory check-ins against an
// in-process server on SQLite, 200 hosts, 32 in flight, for 3 s per
// iteration; it reports check-ins per second. For a CPU profile of the
// server's share: go test -run XXX -bench CheckIn -benchtime 1x
// -cpuprofile cpu.out ./internal/loadgen, then go tool pprof -focus
// internal/server cpu.out.
func BenchmarkCheckIn(b *testing.B) {
	url, fpr, _, newToken := testServer(b)
	cfg := Config{Server: url, CAFingerprint: fpr, NewToken: newToken, Hosts: 200, Seed: 1,
		StatePath: filepath.Join(b.TempDir(), "state.json"), Inventories: testFleet(b, 8), Concurrency: 32}
	if _, err := Run(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	cfg.Mode, cfg.Duration = ModeMax, 3*time.Second
	b.ResetTimer()
	var ok, secs float64
	for i := 0; i < b.N; i++ {
		r, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		p := r.Phases[len(r.Phases)-1]
		ok, secs = ok+float64(p.Ops[0].OK), secs+p.Seconds
	}
	b.ReportMetric(ok/secs, "checkins/s")
}
