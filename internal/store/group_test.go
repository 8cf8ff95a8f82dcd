package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testGroupCommit checks, on SQLite, that writes queued while a batch
// runs are committed together, a lease first, that a write that fails
// fails its caller only (and is not committed), and that a write whose
// caller is gone is not run. On PostgreSQL it checks that writes are not
// grouped: one held does not hold up another.
func testGroupCommit(t *testing.T, s Store) {
	ss := s.(*sqlStore)
	const n = 40
	for i := range n {
		enrollHost(t, s, fmt.Sprint("h", i), fmt.Sprint("host", i), nil)
	}
	seen, err := ss.prepared(ctx, ss.db, "UPDATE hosts SET last_seen = ? WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	if ss.d.name != "sqlite" {
		release := holdWrite(ss, func(ctx context.Context, tx *sql.Tx) error {
			_, err := txExec(ctx, tx, seen, ms(t0), "h0")
			return err
		})
		err := ss.grouped(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
			_, err := txExec(ctx, tx, seen, ms(t0), "h1")
			return err
		})
		if err := errors.Join(err, release()); err != nil {
			t.Fatal(err)
		}
		return
	}
	var (
		mu    sync.Mutex
		txs   = map[*sql.Tx]int{} // writes run in each transaction, failed batches included
		order []string            // of the writes run
	)
	at := t0.Add(time.Hour)
	write := func(host string, fail bool) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			mu.Lock()
			txs[tx]++
			order = append(order, host)
			mu.Unlock()
			if _, err := txExec(ctx, tx, seen, ms(at), host); err != nil {
				return err
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		}
	}

	// The first write holds its batch until the others are queued.
	release := holdWrite(ss, write("h0", false))
	gone, cancel := context.WithCancel(ctx)
	goneBack := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	// Queued in order behind the held batch: the write of a gone caller
	// second, a lease next to last, the failing write last.
	const goneAt, leaseAt, failAt = 2, n - 2, n - 1
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ctx
			if i == goneAt {
				c = gone
			}
			errs[i] = ss.grouped(c, i == leaseAt, write(fmt.Sprint("h", i), i == failAt))
			if i == goneAt {
				close(goneBack)
			}
		}()
		for deadline := time.Now().Add(10 * time.Second); ; {
			ss.group.mu.Lock()
			q := len(ss.group.first) + len(ss.group.queue)
			ss.group.mu.Unlock()
			if q == i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", q, i)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	// A caller whose context ends returns at once, while the batch ahead
	// still holds the writer.
	cancel()
	select {
	case <-goneBack:
	case <-time.After(10 * time.Second):
		t.Fatal("a write's caller gone did not return while queued")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for i := range n {
		err := errs[i]
		h, herr := s.Host(ctx, fmt.Sprint("h", i))
		if herr != nil {
			t.Fatal(herr)
		}
		written := h.LastSeen.Equal(at)
		switch i {
		case failAt:
			if err == nil || err.Error() != "boom" || written {
				t.Errorf("the failing write: error %v, written %v; want boom, not written", err, written)
			}
		case goneAt:
			if !errors.Is(err, context.Canceled) || written {
				t.Errorf("the write of a gone caller: error %v, written %v; want context.Canceled, not written", err, written)
			}
		default:
			if err != nil || !written {
				t.Errorf("write %d: error %v, written %v", i, err, written)
			}
		}
	}
	// The first batch held h0 alone; the other 38 live writes ran in one
	// batch, which the last one failed, then each alone: 1 + 1 + 38.
	mu.Lock()
	defer mu.Unlock()
	var most int
	for _, k := range txs {
		most = max(most, k)
	}
	if len(txs) != 1+1+(n-2) || most != n-2 {
		t.Errorf("%d transactions, the largest with %d writes; want %d, the largest with %d", len(txs), most, n, n-2)
	}
	if len(order) < 3 || order[0] != "h0" || order[1] != fmt.Sprint("h", leaseAt) || order[2] != "h1" {
		t.Errorf("writes run in the order %v, want h0, then the lease h%d, then h1", order, leaseAt)
	}
}

// holdWrite starts a grouped write that runs fn only once released, and
// returns when its batch holds the writer. release lets it go on and
// returns its error.
func holdWrite(ss *sqlStore, fn func(context.Context, *sql.Tx) error) (release func() error) {
	held, proceed := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- ss.grouped(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
			close(held)
			<-proceed
			return fn(ctx, tx)
		})
	}()
	<-held
	return func() error {
		close(proceed)
		return <-done
	}
}
