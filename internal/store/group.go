package store

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"
)

// Group commit. The writes of every agent request (a check-in's
// last_seen, a lease, a job result) are a few rows each, and on SQLite
// their cost is mostly the transaction around them: taking the one write
// lock and writing the same few B-tree pages to the WAL again for every
// row. Concurrent callers of such a write queue it here, and one
// goroutine commits whatever is queued in one transaction, then the next
// batch: each caller still returns once its write is committed (or
// failed), as before, and a lone caller waits for no one.
//
// A batch that fails is rolled back and each of its writes run again in
// a transaction of its own, so that one bad write fails its caller only.
// A write is therefore a function that may run twice, the first time in
// a transaction rolled back: it sets its results from scratch each run.

// groupMax bounds the writes of one batch, so that one transaction does
// not hold the write lock (SQLite) for long.
const groupMax = 256

// groupTimeout bounds a batch's transaction. A write's own context is
// checked before it runs, not during: cancelling one caller's statement
// would abort the others' transaction.
const groupTimeout = 30 * time.Second

type group struct {
	mu sync.Mutex
	// first are the writes that hand out jobs (leases), queue the others:
	// a batch takes first what is in first. When a ring starts, thousands
	// of held check-ins lease at once while the results of the hosts
	// that got their jobs come in; handing out first lets every host
	// start, and a result waits a little longer for its answer.
	first, queue []*groupWrite
	running      bool
}

type groupWrite struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{}
}

// grouped runs fn in a transaction shared with the other writes queued
// meanwhile and returns once that transaction is committed or fn failed.
// A lease goes first.
func (s *sqlStore) grouped(ctx context.Context, lease bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &groupWrite{ctx: ctx, fn: fn, done: make(chan struct{})}
	g := &s.group
	g.mu.Lock()
	if lease {
		g.first = append(g.first, w)
	} else {
		g.queue = append(g.queue, w)
	}
	if !g.running {
		g.running = true
		go s.commitGroups()
	}
	g.mu.Unlock()
	<-w.done // a batch is bounded by groupTimeout
	return w.err
}

// commitGroups commits the queued writes a batch at a time until none is
// queued.
func (s *sqlStore) commitGroups() {
	g := &s.group
	for {
		g.mu.Lock()
		batch := take(&g.first, groupMax)
		batch = append(batch, take(&g.queue, groupMax-len(batch))...)
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		s.commitGroup(batch)
	}
}

// take takes up to n writes from the head of q.
func take(q *[]*groupWrite, n int) []*groupWrite {
	n = min(n, len(*q))
	out := slices.Clone((*q)[:n])
	*q = (*q)[n:]
	if len(*q) == 0 {
		*q = nil // let the backing array go
	}
	return out
}

func (s *sqlStore) commitGroup(batch []*groupWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	var live []*groupWrite
	for _, w := range batch {
		if w.err = w.ctx.Err(); w.err != nil {
			close(w.done) // its caller is gone: not written
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, w := range live {
			if err := w.fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(live) > 1 {
		// Each alone, so that the write that failed fails its caller only.
		for _, w := range live {
			w.err = s.inTx(ctx, func(tx *sql.Tx) error { return w.fn(ctx, tx) })
			close(w.done)
		}
		return
	}
	for _, w := range live {
		w.err = err
		close(w.done)
	}
}
