package store

import (
	"bytes"
	"database/sql"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

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

func testQueuedSince(t *testing.T, s Store) {
	for _, h := range []string{"h1", "h2", "h3"} {
		enrollHost(t, s, h, h, nil)
	}
	for _, j := range []struct {
		id    string
		at    time.Time
		hosts []string
	}{
		{"old", t0.Add(-time.Second), []string{"h1"}},
		{"new", t0, []string{"h2", "h3"}},
		{"newer", t0.Add(time.Second), []string{"h3"}},
		{"taken", t0.Add(time.Second), []string{"h1"}},
	} {
		if err := s.CreateJob(ctx, Job{ID: j.id, Kind: "scan", CreatedAt: j.at}, j.hosts); err != nil {
			t.Fatal(err)
		}
	}
	if hjs, err := s.LeaseJobs(ctx, "h1", t0, time.Minute, 10); err != nil || len(hjs) != 2 {
		t.Fatalf("lease h1: %+v, %v", hjs, err)
	}
	got, err := s.QueuedSince(ctx, t0)
	slices.Sort(got)
	if err != nil || !reflect.DeepEqual(got, []string{"h2", "h3"}) {
		t.Fatalf("QueuedSince(t0) = %v, %v; want h2, h3 once each (h1's jobs leased or older)", got, err)
	}
	if got, err := s.QueuedSince(ctx, t0.Add(2*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("QueuedSince(later) = %v, %v", got, err)
	}
}

// TestSQLiteQueuedSinceUsesIndex: the sweep of held check-ins runs this
// read every second, so it must not scan every job ever queued.
func TestSQLiteQueuedSinceUsesIndex(t *testing.T) {
	s := openSQLiteT(t).(*sqlStore)
	var id, parent, unused int
	var detail string
	err := s.rdb.QueryRowContext(ctx, "EXPLAIN QUERY PLAN "+queuedSince, 0).Scan(&id, &parent, &unused, &detail)
	if err != nil || !strings.Contains(detail, "host_jobs_created") {
		t.Fatalf("plan of %q: %q, %v; want a search of host_jobs_created", queuedSince, detail, err)
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
	if _, err := s.CompleteJob(ctx, "j-b", "h1", "ok", nil, nil, now); err != nil {
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

	// A woken check-in's lease: as LeaseJobs, unless the host was revoked
	// (or is unknown), which leases nothing.
	if got, revoked, err := s.LeaseWoken(ctx, "h2", now, time.Minute, 10); err != nil || revoked || !reflect.DeepEqual(ids(got), []string{"j-other", "j-a", "j-b", "j-0"}) {
		t.Fatalf("LeaseWoken of h2 = %v, revoked %v, %v", ids(got), revoked, err)
	}
	if err := s.CreateJob(ctx, Job{ID: "j-late", Kind: "scan", CreatedAt: t0}, []string{"h2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeHost(ctx, "h2", now); err != nil {
		t.Fatal(err)
	}
	if got, revoked, err := s.LeaseWoken(ctx, "h2", now, time.Minute, 10); err != nil || !revoked || len(got) != 0 {
		t.Fatalf("LeaseWoken of revoked h2 = %v, revoked %v, %v", ids(got), revoked, err)
	}
	if _, hjs, _ := s.Job(ctx, "j-late"); hjs[0].State != JobQueued {
		t.Errorf("a revoked host's job was leased: %+v", hjs[0])
	}
	if got, revoked, err := s.LeaseWoken(ctx, "nope", now, time.Minute, 10); err != nil || !revoked || len(got) != 0 {
		t.Fatalf("LeaseWoken of an unknown host = %v, revoked %v, %v", ids(got), revoked, err)
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
	first, err := s.CompleteJob(ctx, "j", "h1", "ok", []byte(`{"updates":3}`), nil, t0.Add(3*time.Minute))
	if err != nil || !first {
		t.Fatalf("CompleteJob = %v, %v", first, err)
	}
	first, err = s.CompleteJob(ctx, "j", "h1", "failed", []byte(`{}`), nil, t0.Add(4*time.Minute))
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
	_, err = s.CompleteJob(ctx, "j", "h2", "ok", nil, nil, t0)
	wantErr(t, err, ErrNotFound, "job j of host h2")
	_, err = s.CompleteJob(ctx, "zz", "h1", "ok", nil, nil, t0)
	wantErr(t, err, ErrNotFound)
	// A result for a job never handed out is refused and not stored.
	if err := s.CreateJob(ctx, Job{ID: "q", Kind: "scan", CreatedAt: t0}, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.CompleteJob(ctx, "q", "h1", "ok", []byte(`{}`), nil, t0)
	wantErr(t, err, ErrConflict, "job q of host h1: never handed out")
	if _, hjs, _ := s.Job(ctx, "q"); len(hjs) != 1 || hjs[0].State != JobQueued || hjs[0].Result != nil {
		t.Errorf("a result for a job never handed out changed it: %+v", hjs)
	}
}

// testStoredResults checks that a result is stored compressed and reads
// back whole, that a result stored before compression (in the text
// column) still reads, and that a corrupt stored result is an error
// naming the job and host, not a result.
func testStoredResults(t *testing.T, s Store) {
	ss := s.(*sqlStore)
	for _, h := range []string{"h1", "h2", "h3"} {
		enrollHost(t, s, h, h, nil)
	}
	if err := s.CreateJob(ctx, Job{ID: "j", Kind: "install", CreatedAt: t0}, []string{"h1", "h2", "h3"}); err != nil {
		t.Fatal(err)
	}
	big := realResult()
	for _, h := range []string{"h1", "h2", "h3"} {
		if _, err := s.LeaseJobs(ctx, h, t0, time.Minute, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteJob(ctx, "j", h, "ok", big, []byte(`{}`), t0); err != nil {
			t.Fatal(err)
		}
	}
	var text sql.NullString
	var packed []byte
	if err := ss.db.QueryRowContext(ctx, ss.q("SELECT result, result_zstd FROM host_jobs WHERE host_id = ?"), "h1").Scan(&text, &packed); err != nil {
		t.Fatal(err)
	}
	if text.Valid || len(packed) == 0 || len(packed) > len(big)/3 {
		t.Fatalf("stored result: text %v, %d bytes compressed of %d", text.Valid, len(packed), len(big))
	}
	// h2's result as a server before compression stored it.
	if _, err := ss.db.ExecContext(ctx, ss.q("UPDATE host_jobs SET result = ?, result_zstd = NULL WHERE host_id = ?"), `{"status":"ok"}`, "h2"); err != nil {
		t.Fatal(err)
	}
	_, hjs, err := s.Job(ctx, "j")
	if err != nil || len(hjs) != 3 {
		t.Fatalf("Job = %v, %v", hjs, err)
	}
	if !bytes.Equal(hjs[0].Result, big) || string(hjs[1].Result) != `{"status":"ok"}` || !bytes.Equal(hjs[2].Result, big) {
		t.Fatalf("results read back: %d bytes, %q, %d bytes; want %d, the text, %d", len(hjs[0].Result), hjs[1].Result, len(hjs[2].Result), len(big), len(big))
	}
	// h3's stored result cut short.
	if _, err := ss.db.ExecContext(ctx, ss.q("UPDATE host_jobs SET result_zstd = ? WHERE host_id = ?"), packed[:len(packed)/2], "h3"); err != nil {
		t.Fatal(err)
	}
	// The listing still reads; the bad row says why it has no result.
	if _, hjs, err = s.Job(ctx, "j"); err != nil || len(hjs) != 3 || hjs[2].Result != nil || hjs[2].ResultErr == nil ||
		!strings.Contains(hjs[2].ResultErr.Error(), "job j of host h3: stored result") || !bytes.Equal(hjs[0].Result, big) {
		t.Fatalf("Job with a corrupt stored result: %v, %+v", err, hjs)
	}
}
