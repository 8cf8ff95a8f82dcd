package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// run calls fn(i) for i in [0, n) on n goroutines started together and
// returns their errors.
func run(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentEnroll(t *testing.T, s Store) {
	once := mustCreateToken(t, s, EnrollToken{ID: "once", MaxUses: 1})
	errs := run(8, func(i int) error {
		_, err := s.Enroll(ctx, "once", once.SecretHash, Host{
			ID: fmt.Sprint("h", i), MachineID: fmt.Sprint("m", i), SecretHash: hash("c"),
		}, t0)
		return err
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrTokenInvalid):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d enrollments with a one-use token succeeded, want 1", ok)
	}

	// One machine enrolling several times at once ends as one host.
	many := mustCreateToken(t, s, EnrollToken{ID: "many"})
	errs = run(8, func(i int) error {
		_, err := s.Enroll(ctx, "many", many.SecretHash, Host{
			ID: fmt.Sprint("same-", i), MachineID: "same", SecretHash: hash(fmt.Sprint(i)),
		}, t0)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	hosts, _ := s.ListHosts(ctx, HostFilter{})
	if len(hosts) != 2 {
		t.Errorf("%d hosts, want 2: %+v", len(hosts), hosts)
	}
}

func testConcurrentLease(t *testing.T, s Store) {
	enrollHost(t, s, "h", "web", nil)
	const jobs = 40
	for i := range jobs {
		if err := s.CreateJob(ctx, Job{ID: fmt.Sprintf("j%02d", i), Kind: "scan", CreatedAt: t0}, []string{"h"}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu     sync.Mutex
		leased = map[string]int{}
	)
	errs := run(10, func(int) error {
		for {
			hjs, err := s.LeaseJobs(ctx, "h", t0, time.Hour, 3)
			if err != nil || len(hjs) == 0 {
				return err
			}
			mu.Lock()
			for _, hj := range hjs {
				leased[hj.JobID]++
			}
			mu.Unlock()
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(leased) != jobs {
		t.Errorf("%d jobs leased, want %d", len(leased), jobs)
	}
	for id, n := range leased {
		if n != 1 {
			t.Errorf("job %s handed out %d times within one lease", id, n)
		}
	}
}

func testConcurrentSettings(t *testing.T, s Store) {
	vals := make([]string, 10)
	errs := run(len(vals), func(i int) error {
		v, err := s.PutSettingIfAbsent(ctx, "ca", []byte(fmt.Sprint("value-", i)))
		vals[i] = string(v)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if v != vals[0] {
			t.Fatalf("replicas disagree: %q", vals)
		}
	}
}

// testConcurrentLoad runs the server's hot paths from 50 goroutines at
// once: none may fail (on SQLite: no SQLITE_BUSY).
func testConcurrentLoad(t *testing.T, s Store) {
	const workers, rounds = 50, 6
	for i := range workers {
		enrollHost(t, s, fmt.Sprint("h", i), fmt.Sprint("host", i), nil)
	}
	for i := range 3 {
		hosts := make([]string, workers)
		for w := range workers {
			hosts[w] = fmt.Sprint("h", w)
		}
		if err := s.CreateJob(ctx, Job{ID: fmt.Sprint("j", i), Kind: "scan", CreatedAt: t0}, hosts); err != nil {
			t.Fatal(err)
		}
	}
	errs := run(workers, func(w int) error {
		id := fmt.Sprint("h", w)
		for r := range rounds {
			now := t0.Add(time.Duration(r) * time.Minute)
			if err := s.CheckIn(ctx, CheckIn{HostID: id, At: now, Facts: []byte(`{"r":1}`)}); err != nil {
				return err
			}
			// Hosts share inventories: half report the same one.
			inv := fmt.Sprintf("inv-%d-%d", w%2, r)
			if err := s.PutInventory(ctx, id, inv, []byte(inv), now); err != nil {
				return err
			}
			hjs, err := s.LeaseJobs(ctx, id, now, time.Minute, 1)
			if err != nil {
				return err
			}
			for _, hj := range hjs {
				if _, err := s.CompleteJob(ctx, hj.JobID, id, "ok", []byte(`{}`), nil, now); err != nil {
					return err
				}
			}
			if _, err := s.Host(ctx, id); err != nil {
				return err
			}
			if _, err := s.Stats(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	if st.QueuedJobs != 0 || st.Inventories != 2*rounds {
		t.Errorf("after the load: %+v", st)
	}
}
