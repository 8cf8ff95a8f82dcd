package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRolloutsSQLite(t *testing.T)   { testRollouts(t, openSQLiteT(t)) }
func TestRolloutsPostgres(t *testing.T) { testRollouts(t, openPostgresT(t)) }

func TestRolloutStepsRaceSQLite(t *testing.T) { testRolloutStepsRace(t, openSQLiteT(t)) }
func TestRolloutStepsRacePostgres(t *testing.T) {
	testRolloutStepsRace(t, openPostgresT(t))
}

func rolloutJob(key, host string) RolloutJob {
	return RolloutJob{Key: key, HostID: host, Ring: "test",
		Job: Job{ID: "ro-" + host + "-" + key[len(key)-1:], Kind: "install", Params: []byte(`{"packages":[]}`), CreatedAt: t0, CreatedBy: "rollout r1"}}
}

func testRollouts(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	enrollHost(t, s, "h2", "b", nil)
	r := Rollout{ID: "r1", Name: "november", Spec: []byte(`{"rings":[]}`), PatchSet: []byte(`{"hash":"ab"}`), SetHash: "ab",
		State: []byte(`{"status":"created"}`), Status: "created", CreatedAt: t0, CreatedBy: "alice"}
	if err := s.CreateRollout(ctx, r, []RolloutAudit{{At: t0, Actor: "alice", What: "create"}}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateRollout(ctx, r, nil), ErrConflict, "rollout r1")
	got, err := s.Rollout(ctx, "r1")
	if err != nil || got.Version != 1 || got.Status != "created" || string(got.State) != `{"status":"created"}` ||
		got.CreatedBy != "alice" || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) || got.SetHash != "ab" {
		t.Fatalf("Rollout = %+v, %v", got, err)
	}
	_, err = s.Rollout(ctx, "nope")
	wantErr(t, err, ErrNotFound, "rollout nope")

	// A step with two jobs: both queued, in the same transaction.
	v, queued, err := s.SaveRolloutStep(ctx, "r1", 1, []byte(`{"status":"running"}`), "running", t0.Add(time.Minute),
		[]RolloutJob{rolloutJob("r1/test/h1/a", "h1"), rolloutJob("r1/test/h2/a", "h2")},
		[]RolloutAudit{{At: t0.Add(time.Minute), Actor: "engine", What: "dispatch-install", Ring: "test", Host: "h1"}})
	if err != nil || v != 2 || !slices.Equal(queued, []string{"r1/test/h1/a", "r1/test/h2/a"}) {
		t.Fatalf("SaveRolloutStep = %d %v %v", v, queued, err)
	}
	// A step from the old version is refused and changes nothing.
	_, _, err = s.SaveRolloutStep(ctx, "r1", 1, []byte(`{"status":"paused"}`), "paused", t0.Add(2*time.Minute),
		[]RolloutJob{rolloutJob("r1/test/h1/b", "h1")}, []RolloutAudit{{At: t0, Actor: "x", What: "lost"}})
	wantErr(t, err, ErrConflict, "rollout r1")
	_, _, err = s.SaveRolloutStep(ctx, "nope", 1, []byte(`{}`), "running", t0, nil, nil)
	wantErr(t, err, ErrNotFound, "rollout nope")
	// The same keys again (a re-step after a restart) queue nothing.
	v, queued, err = s.SaveRolloutStep(ctx, "r1", 2, []byte(`{"status":"running","n":2}`), "running", t0.Add(3*time.Minute),
		[]RolloutJob{rolloutJob("r1/test/h1/a", "h1")}, nil)
	if err != nil || v != 3 || len(queued) != 0 {
		t.Fatalf("re-step = %d %v %v", v, queued, err)
	}
	queued, err = s.QueueRolloutJobs(ctx, "r1", []RolloutJob{rolloutJob("r1/test/h2/a", "h2"), rolloutJob("r1/test/h2/p", "h2")},
		[]RolloutAudit{{At: t0.Add(4 * time.Minute), Actor: "bob", What: "plan"}})
	if err != nil || !slices.Equal(queued, []string{"r1/test/h2/p"}) {
		t.Fatalf("QueueRolloutJobs = %v %v", queued, err)
	}
	// An unknown host leaves nothing behind.
	_, err = s.QueueRolloutJobs(ctx, "r1", []RolloutJob{rolloutJob("r1/test/zz/a", "zz")}, nil)
	wantErr(t, err, ErrNotFound, "host zz")

	// Each host leases its job once.
	for _, h := range []string{"h1", "h2"} {
		hjs, err := s.LeaseJobs(ctx, h, t0.Add(5*time.Minute), time.Minute, 10)
		want := map[string]int{"h1": 1, "h2": 2}[h]
		if err != nil || len(hjs) != want || hjs[0].Kind != "install" {
			t.Fatalf("LeaseJobs(%s) = %+v, %v; want %d", h, hjs, err, want)
		}
	}
	if _, err := s.CompleteJob(ctx, "ro-h1-a", "h1", "ok", []byte(`{"status":"ok"}`), t0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ref, err := s.RolloutJobOf(ctx, "ro-h1-a")
	if err != nil || ref.Key != "r1/test/h1/a" || ref.RolloutID != "r1" || ref.Ring != "test" || ref.Kind != "install" ||
		ref.HostJob.HostID != "h1" || ref.HostJob.State != JobDone || string(ref.HostJob.Result) != `{"status":"ok"}` {
		t.Fatalf("RolloutJobOf = %+v, %v", ref, err)
	}
	_, err = s.RolloutJobOf(ctx, "j-unknown")
	wantErr(t, err, ErrNotFound, "rollout job j-unknown")
	jobs, err := s.RolloutJobs(ctx, "r1")
	var keys []string
	for _, j := range jobs {
		keys = append(keys, j.Key)
	}
	if err != nil || !slices.Equal(keys, []string{"r1/test/h1/a", "r1/test/h2/a", "r1/test/h2/p"}) {
		t.Fatalf("RolloutJobs = %v, %v", keys, err)
	}
	audit, err := s.RolloutAudit(ctx, "r1")
	var whats []string
	for i, a := range audit {
		if a.Seq != i+1 {
			t.Errorf("audit %d has seq %d", i, a.Seq)
		}
		whats = append(whats, a.Actor+" "+a.What)
	}
	if err != nil || !slices.Equal(whats, []string{"alice create", "engine dispatch-install", "bob plan"}) {
		t.Fatalf("RolloutAudit = %v, %v", whats, err)
	}
	got, _ = s.Rollout(ctx, "r1")
	if got.Version != 3 || got.Status != "running" || string(got.State) != `{"status":"running","n":2}` || !got.UpdatedAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("after the steps: %+v", got)
	}
	if err := s.CreateRollout(ctx, Rollout{ID: "r2", Spec: []byte(`{}`), PatchSet: []byte(`{}`), State: []byte(`{}`), Status: "completed",
		CreatedAt: t0.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListRollouts(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "r2" || all[1].ID != "r1" {
		t.Errorf("ListRollouts() = %+v, %v", all, err)
	}
	running, err := s.ListRollouts(ctx, "running", "paused")
	if err != nil || len(running) != 1 || running[0].ID != "r1" {
		t.Errorf("ListRollouts(running, paused) = %+v, %v", running, err)
	}
}

// testRolloutStepsRace: replicas stepping one rollout at once from the
// same version: exactly one step is saved, its job queued once.
func testRolloutStepsRace(t *testing.T, s Store) {
	enrollHost(t, s, "h1", "a", nil)
	if err := s.CreateRollout(ctx, Rollout{ID: "r1", Spec: []byte(`{}`), PatchSet: []byte(`{}`), State: []byte(`{}`), Status: "running", CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		saved, conflicts int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := rolloutJob("r1/test/h1/a", "h1")
			_, _, err := s.SaveRolloutStep(ctx, "r1", 1, fmt.Appendf(nil, `{"by":%d}`, i), "running", t0, []RolloutJob{j}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				saved++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if saved != 1 || conflicts != n-1 {
		t.Fatalf("%d saved, %d conflicts; want 1 and %d", saved, conflicts, n-1)
	}
	hjs, err := s.LeaseJobs(ctx, "h1", t0, time.Minute, 10)
	if err != nil || len(hjs) != 1 {
		t.Fatalf("jobs queued: %+v, %v", hjs, err)
	}
}
