package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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

func TestRolloutUpdatesOrderSQLite(t *testing.T)   { testRolloutUpdatesOrder(t, openSQLiteT(t)) }
func TestRolloutUpdatesOrderPostgres(t *testing.T) { testRolloutUpdatesOrder(t, openPostgresT(t)) }

func TestRolloutBatchesSQLite(t *testing.T)   { testRolloutBatches(t, openSQLiteT(t)) }
func TestRolloutBatchesPostgres(t *testing.T) { testRolloutBatches(t, openPostgresT(t)) }

// testRolloutBatches checks a step that writes more rows than one
// statement takes (insertRows): every host row (the last of one given
// twice), job and audit line in order, a key given twice queued once, a
// revoked host's job news at once, and a missing host named.
func testRolloutBatches(t *testing.T, s Store) {
	const n = 2*rowsPerInsert + 3
	var hosts []RolloutHost
	for i := range n {
		h := fmt.Sprintf("h%04d", i)
		enrollHost(t, s, h, h, nil)
		hosts = append(hosts, RolloutHost{Idx: i, HostID: h, Pins: "p1", Phase: "pending", State: []byte(`{}`)})
	}
	if err := s.RevokeHost(ctx, "h0007", t0); err != nil {
		t.Fatal(err)
	}
	r := Rollout{ID: "r1", Name: "batches", Spec: []byte(`{}`), PatchSet: []byte(`{}`), SetHash: "ab",
		State: []byte(`{}`), Status: "running", CreatedAt: t0, CreatedBy: "alice"}
	if err := s.CreateRollout(ctx, r, hosts, []RolloutPins{{Hash: "p1", Pins: []byte(`[]`)}}, []RolloutAudit{{At: t0, Actor: "alice", What: "create"}}); err != nil {
		t.Fatal(err)
	}
	step := RolloutStep{Version: 1, State: []byte(`{}`), Status: "running", At: t0}
	for i, h := range hosts {
		h.Phase = "installing"
		step.Hosts = append(step.Hosts, h)
		key := "r1/prod/" + h.HostID + "/install"
		step.Jobs = append(step.Jobs, RolloutJob{Key: key, HostID: h.HostID, Ring: "prod",
			Job: Job{ID: fmt.Sprint("ro-", i%3), Kind: "install", Params: []byte(`{"packages":[]}`), CreatedAt: t0, CreatedBy: "rollout r1"}})
		step.Audit = append(step.Audit, RolloutAudit{At: t0, Actor: "engine", What: "dispatch-install", Ring: "prod", Host: h.HostID, Detail: key})
	}
	// (Each given twice in one statement's rows.)
	twice := step.Hosts[5]
	twice.Phase = "succeeded"
	step.Hosts = slices.Insert(step.Hosts, 6, twice)
	step.Jobs = slices.Insert(step.Jobs, 10, step.Jobs[9])
	_, queued, err := s.SaveRolloutStep(ctx, "r1", step)
	if err != nil || len(queued) != n || queued[0] != step.Jobs[0].Key || queued[n-1] != step.Jobs[n].Key {
		t.Fatalf("SaveRolloutStep queued %d jobs (%v), want %d", len(queued), err, n)
	}
	stored, _, err := s.RolloutHosts(ctx, "r1")
	if err != nil || len(stored) != n {
		t.Fatalf("RolloutHosts = %d rows, %v", len(stored), err)
	}
	for i, h := range stored {
		want := "installing"
		if i == 5 {
			want = "succeeded"
		}
		if h.Idx != i || h.HostID != hosts[i].HostID || h.Phase != want {
			t.Fatalf("host row %d = %+v, want %s %s", i, h, hosts[i].HostID, want)
		}
	}
	jobs, err := s.RolloutJobs(ctx, "r1")
	if err != nil || len(jobs) != n {
		t.Fatalf("RolloutJobs = %d, %v", len(jobs), err)
	}
	audit, err := s.RolloutAudit(ctx, "r1")
	if err != nil || len(audit) != n+1 {
		t.Fatalf("RolloutAudit = %d lines, %v", len(audit), err)
	}
	for i, a := range audit[1:] {
		if a.Host != hosts[i].HostID {
			t.Fatalf("audit line %d names %s, want %s", i+1, a.Host, hosts[i].HostID)
		}
	}
	ups, err := s.RolloutJobUpdates(ctx, "r1")
	if err != nil || len(ups) != 1 || ups[0].HostJob.HostID != "h0007" {
		t.Fatalf("RolloutJobUpdates = %+v, %v; want the revoked host's job alone", ups, err)
	}
	_, err = s.QueueRolloutJobs(ctx, "r1", []RolloutJob{rolloutJob("r1/test/h0001/x", "h0001"), rolloutJob("r1/test/gone/x", "gone")}, nil)
	wantErr(t, err, ErrNotFound, "r1/test/gone/x", "host gone")
	if jobs, err := s.RolloutJobs(ctx, "r1"); err != nil || len(jobs) != n {
		t.Fatalf("after a refused queue: %d jobs, %v", len(jobs), err)
	}
}

// testRolloutUpdatesOrder checks that the jobs with news come by host,
// then key, whatever the order they were queued in.
func testRolloutUpdatesOrder(t *testing.T, s Store) {
	ids := []string{"h3", "h1", "h2"}
	var hosts []RolloutHost
	for i, h := range ids {
		enrollHost(t, s, h, h, nil)
		hosts = append(hosts, RolloutHost{Idx: i, HostID: h, Pins: "p1", Phase: "pending", State: []byte(`{}`)})
	}
	r := Rollout{ID: "r1", Name: "order", Spec: []byte(`{}`), PatchSet: []byte(`{}`), SetHash: "ab",
		State: []byte(`{}`), Status: "running", CreatedAt: t0, CreatedBy: "alice"}
	if err := s.CreateRollout(ctx, r, hosts, []RolloutPins{{Hash: "p1", Pins: []byte(`[]`)}}, nil); err != nil {
		t.Fatal(err)
	}
	var jobs []RolloutJob
	for _, h := range ids {
		jobs = append(jobs, rolloutJob("r1/test/"+h+"/b", h), rolloutJob("r1/test/"+h+"/a", h))
	}
	if _, err := s.QueueRolloutJobs(ctx, "r1", jobs, nil); err != nil {
		t.Fatal(err)
	}
	for _, h := range ids {
		if _, err := s.LeaseJobs(ctx, h, t0, time.Minute, 10); err != nil {
			t.Fatal(err)
		}
	}
	ups, err := s.RolloutJobUpdates(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range ups {
		got = append(got, u.Key)
	}
	want := []string{"r1/test/h1/a", "r1/test/h1/b", "r1/test/h2/a", "r1/test/h2/b", "r1/test/h3/a", "r1/test/h3/b"}
	if !slices.Equal(got, want) {
		t.Fatalf("RolloutJobUpdates = %v, want %v", got, want)
	}
}

// TestRolloutUpdatesPlan checks that SQLite finds the jobs with news by
// their partial index, not by reading every job of the rollout (what it
// did when the query asked for an order).
func TestRolloutUpdatesPlan(t *testing.T) {
	s := openSQLiteT(t).(*sqlStore)
	rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+updatesQuery, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) == 0 || !strings.Contains(plan[0], "rollout_jobs_news") {
		t.Errorf("query plan %q: want the jobs read first by the index rollout_jobs_news", plan)
	}
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
	hosts := []RolloutHost{{Idx: 0, HostID: "h1", Pins: "p1", Phase: "pending", State: []byte(`{"id":"h1"}`)},
		{Idx: 1, HostID: "h2", Pins: "p1", Phase: "pending", State: []byte(`{"id":"h2"}`)}}
	pins := []RolloutPins{{Hash: "p1", Pins: []byte(`[{"package":"a","version":"1"}]`)}}
	if err := s.CreateRollout(ctx, r, hosts, pins, []RolloutAudit{{At: t0, Actor: "alice", What: "create"}}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateRollout(ctx, r, nil, nil, nil), ErrConflict, "rollout r1")
	gotHosts, gotPins, err := s.RolloutHosts(ctx, "r1")
	if err != nil || len(gotHosts) != 2 || gotHosts[1].HostID != "h2" || gotHosts[1].Pins != "p1" || string(gotHosts[1].State) != `{"id":"h2"}` ||
		len(gotPins) != 1 || string(gotPins[0].Pins) != string(pins[0].Pins) {
		t.Fatalf("RolloutHosts = %+v %+v, %v", gotHosts, gotPins, err)
	}
	got, err := s.Rollout(ctx, "r1")
	if err != nil || got.Version != 1 || got.Status != "created" || string(got.State) != `{"status":"created"}` ||
		got.CreatedBy != "alice" || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) || got.SetHash != "ab" {
		t.Fatalf("Rollout = %+v, %v", got, err)
	}
	_, err = s.Rollout(ctx, "nope")
	wantErr(t, err, ErrNotFound, "rollout nope")

	// A step with two jobs: both queued, in the same transaction, with
	// the changed host's row.
	v, queued, err := s.SaveRolloutStep(ctx, "r1", RolloutStep{Version: 1, State: []byte(`{"status":"running"}`), Status: "running",
		At: t0.Add(time.Minute), Jobs: []RolloutJob{rolloutJob("r1/test/h1/a", "h1"), rolloutJob("r1/test/h2/a", "h2")},
		Hosts: []RolloutHost{{Idx: 0, HostID: "h1", Pins: "p2", Phase: "installing", State: []byte(`{"id":"h1","n":1}`)}},
		Pins:  []RolloutPins{{Hash: "p2", Pins: []byte(`[]`)}, {Hash: "p1", Pins: []byte(`"not written again"`)}},
		Audit: []RolloutAudit{{At: t0.Add(time.Minute), Actor: "engine", What: "dispatch-install", Ring: "test", Host: "h1"}}})
	if err != nil || v != 2 || !slices.Equal(queued, []string{"r1/test/h1/a", "r1/test/h2/a"}) {
		t.Fatalf("SaveRolloutStep = %d %v %v", v, queued, err)
	}
	gotHosts, gotPins, err = s.RolloutHosts(ctx, "r1")
	if err != nil || len(gotHosts) != 2 || gotHosts[0].Phase != "installing" || gotHosts[0].Pins != "p2" || string(gotHosts[0].State) != `{"id":"h1","n":1}` ||
		gotHosts[1].Phase != "pending" || len(gotPins) != 2 || string(gotPins[0].Pins) != string(pins[0].Pins) {
		t.Fatalf("RolloutHosts after a step = %+v %+v, %v", gotHosts, gotPins, err)
	}
	if phases, err := s.RolloutPhases(ctx, "r1"); err != nil || phases["installing"] != 1 || phases["pending"] != 1 || len(phases) != 2 {
		t.Fatalf("RolloutPhases = %v, %v", phases, err)
	}
	// A step from the old version is refused and changes nothing.
	_, _, err = s.SaveRolloutStep(ctx, "r1", RolloutStep{Version: 1, State: []byte(`{"status":"paused"}`), Status: "paused", At: t0.Add(2 * time.Minute),
		Jobs:  []RolloutJob{rolloutJob("r1/test/h1/b", "h1")},
		Hosts: []RolloutHost{{Idx: 1, HostID: "h2", Pins: "p1", Phase: "failed", State: []byte(`{}`)}},
		Audit: []RolloutAudit{{At: t0, Actor: "x", What: "lost"}}})
	wantErr(t, err, ErrConflict, "rollout r1")
	if phases, _ := s.RolloutPhases(ctx, "r1"); phases["failed"] != 0 {
		t.Fatalf("a refused step wrote a host: %v", phases)
	}
	_, _, err = s.SaveRolloutStep(ctx, "nope", RolloutStep{Version: 1, State: []byte(`{}`), Status: "running", At: t0})
	wantErr(t, err, ErrNotFound, "rollout nope")
	// The same keys again (a re-step after a restart) queue nothing.
	v, queued, err = s.SaveRolloutStep(ctx, "r1", RolloutStep{Version: 2, State: []byte(`{"status":"running","n":2}`), Status: "running",
		At: t0.Add(3 * time.Minute), Jobs: []RolloutJob{rolloutJob("r1/test/h1/a", "h1")}})
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
	if _, err := s.CompleteJob(ctx, "ro-h1-a", "h1", "ok", []byte(`{"status":"ok"}`), nil, t0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if id, kind, err := s.RolloutOfJob(ctx, "ro-h1-a", "h1"); err != nil || id != "r1" || kind != "install" {
		t.Fatalf("RolloutOfJob = %q, %q, %v", id, kind, err)
	}
	_, _, err = s.RolloutOfJob(ctx, "j-unknown", "h1")
	wantErr(t, err, ErrNotFound, "rollout job j-unknown")
	_, _, err = s.RolloutOfJob(ctx, "ro-h1-a", "h2")
	wantErr(t, err, ErrNotFound, "rollout job ro-h1-a")

	// News for the engine: every change of a job's state is counted (by
	// triggers): h1's job handed out and answered, h2's two handed out.
	// Once a step saves what it saw, a job is listed again only with more.
	updates := func() map[string]int {
		t.Helper()
		ups, err := s.RolloutJobUpdates(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, u := range ups {
			m[u.Key+" "+u.HostJob.State] = u.News
		}
		return m
	}
	want := map[string]int{"r1/test/h1/a done": 2, "r1/test/h2/a leased": 1, "r1/test/h2/p leased": 1}
	if got := updates(); !maps.Equal(got, want) {
		t.Fatalf("RolloutJobUpdates = %v, want %v", got, want)
	}
	// A result stored without a summary reads as itself.
	if ups, _ := s.RolloutJobUpdates(ctx, "r1"); len(ups) == 0 || ups[0].HostJob.HostID != "h1" || string(ups[0].HostJob.Result) != `{"status":"ok"}` {
		t.Fatalf("RolloutJobUpdates = %+v, want h1's result first", ups)
	}
	if _, _, err := s.SaveRolloutStep(ctx, "r1", RolloutStep{Version: 3, State: []byte(`{}`), Status: "running", At: t0.Add(7 * time.Minute),
		Seen: map[string]int{"r1/test/h1/a": 2, "r1/test/h2/a": 1, "r1/test/h2/p": 1}}); err != nil {
		t.Fatal(err)
	}
	if got := updates(); len(got) != 0 {
		t.Fatalf("RolloutJobUpdates after seeing = %v, want none", got)
	}
	if _, err := s.CompleteJob(ctx, "ro-h2-a", "h2", "failed", []byte(`{"status":"failed","log":"long"}`), []byte(`{"error":"short"}`), t0.Add(8*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, want := updates(), map[string]int{"r1/test/h2/a done": 2}; !maps.Equal(got, want) {
		t.Fatalf("RolloutJobUpdates after a result = %v, want %v", got, want)
	}
	// The engine reads a result's summary; everything else, the result.
	if ups, err := s.RolloutJobUpdates(ctx, "r1"); err != nil || len(ups) != 1 || string(ups[0].HostJob.Result) != `{"error":"short"}` {
		t.Fatalf("RolloutJobUpdates = %+v, %v; want the summary as the result", ups, err)
	}
	if _, hjs, err := s.Job(ctx, "ro-h2-a"); err != nil || len(hjs) != 1 || string(hjs[0].Result) != `{"status":"failed","log":"long"}` {
		t.Fatalf("Job = %+v, %v; want the whole result", hjs, err)
	}
	// A step that read less (news 1) does not hide the result.
	if _, _, err := s.SaveRolloutStep(ctx, "r1", RolloutStep{Version: 4, State: []byte(`{}`), Status: "running", At: t0.Add(8 * time.Minute),
		Seen: map[string]int{"r1/test/h2/a": 1}}); err != nil {
		t.Fatal(err)
	}
	if got, want := updates(), map[string]int{"r1/test/h2/a done": 2}; !maps.Equal(got, want) {
		t.Fatalf("RolloutJobUpdates after a stale mark = %v, want %v", got, want)
	}
	// Two hosts share one job: one job row, a host part each, and the
	// job's parameters from the first.
	shared := []RolloutJob{rolloutJob("r1/test/h1/r", "h1"), rolloutJob("r1/test/h2/r", "h2")}
	for i := range shared {
		shared[i].Job.ID = "ro-shared"
	}
	shared[1].Job.Params = nil
	if queued, err := s.QueueRolloutJobs(ctx, "r1", shared, nil); err != nil || len(queued) != 2 {
		t.Fatalf("QueueRolloutJobs(shared) = %v, %v", queued, err)
	}
	for _, h := range []string{"h1", "h2"} {
		hjs, err := s.LeaseJobs(ctx, h, t0.Add(9*time.Minute), time.Minute, 10)
		i := slices.IndexFunc(hjs, func(hj HostJob) bool { return hj.JobID == "ro-shared" })
		if err != nil || i < 0 || string(hjs[i].Params) != `{"packages":[]}` {
			t.Fatalf("LeaseJobs(%s) of the shared job = %+v, %v", h, hjs, err)
		}
	}
	// Taking back: only a job no agent got; it becomes news.
	shared = []RolloutJob{rolloutJob("r1/test/h1/w", "h1")}
	if _, err := s.QueueRolloutJobs(ctx, "r1", shared, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.WithdrawRolloutJobs(ctx, "r1", []string{"r1/test/h1/w", "r1/test/h1/a", "r1/test/h2/r", "nope"}); err != nil || n != 1 {
		t.Fatalf("WithdrawRolloutJobs = %d, %v; want 1 (the others were handed out)", n, err)
	}
	if got := updates(); got["r1/test/h1/w withdrawn"] != 1 {
		t.Fatalf("RolloutJobUpdates after a withdrawal = %v", got)
	}
	// Revoking a host is news for each of its jobs.
	if err := s.RevokeHost(ctx, "h2", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ups, err := s.RolloutJobUpdates(ctx, "r1")
	revoked := 0
	for _, u := range ups {
		if u.HostJob.HostID == "h2" && !u.HostRevokedAt.IsZero() {
			revoked++
		}
	}
	if err != nil || revoked != 3 {
		t.Fatalf("jobs of the revoked host listed: %d, %v (%+v)", revoked, err, ups)
	}
	jobs, err := s.RolloutJobs(ctx, "r1")
	var keys []string
	for _, j := range jobs {
		keys = append(keys, j.Key)
	}
	if err != nil || !slices.Equal(keys, []string{"r1/test/h1/a", "r1/test/h1/r", "r1/test/h1/w", "r1/test/h2/a", "r1/test/h2/p", "r1/test/h2/r"}) {
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
	if got.Version != 5 || got.Status != "running" || string(got.State) != `{}` || !got.UpdatedAt.Equal(t0.Add(8*time.Minute)) {
		t.Errorf("after the steps: %+v", got)
	}
	if err := s.CreateRollout(ctx, Rollout{ID: "r2", Spec: []byte(`{}`), PatchSet: []byte(`{}`), State: []byte(`{}`), Status: "completed",
		CreatedAt: t0.Add(time.Hour)}, nil, nil, nil); err != nil {
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
	if err := s.CreateRollout(ctx, Rollout{ID: "r1", Spec: []byte(`{}`), PatchSet: []byte(`{}`), State: []byte(`{}`), Status: "running", CreatedAt: t0}, nil, nil, nil); err != nil {
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
			_, _, err := s.SaveRolloutStep(ctx, "r1", RolloutStep{Version: 1, State: fmt.Appendf(nil, `{"by":%d}`, i), Status: "running", At: t0,
				Jobs: []RolloutJob{j}, Hosts: []RolloutHost{{Idx: 0, HostID: "h1", Phase: "installing", State: fmt.Appendf(nil, `{"by":%d}`, i)}}})
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
