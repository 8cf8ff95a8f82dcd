package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// Group commit (SQLite). The writes of every agent request (a check-in's
// last_seen, a lease, a job result) are a few rows each, and on SQLite
// their cost is mostly the transaction around them: taking the one write
// lock and writing the same few B-tree pages to the WAL again for every
// row. Concurrent callers of such a write queue it here, and one
// goroutine commits whatever is queued in one transaction, then the next
// batch: each caller still returns once its write is committed (or
// failed), as before, and a lone caller waits for no one.
//
// When a write's function fails, the batch is rolled back and each of
// its other writes run again in a transaction of its own, so that one bad
// write fails its caller only. A write is therefore a function that may
// run twice, the first time in a transaction rolled back: it sets its
// results from scratch each run. A batch that fails to begin or to commit
// fails every write in it (a commit that failed may have committed: its
// writes are not run again).
//
// PostgreSQL has many writers, and there a batch would only add waits:
// one write waiting on a row lock would hold up every agent's, and a
// batch locking rows of many jobs in arrival order can deadlock with a
// rollout step locking them in key order. Each write runs on its own
// there, as before (groupedExec: one statement; grouped: a transaction).

// groupMax bounds the writes of one batch, so that one transaction does
// not hold the write lock for long.
const groupMax = 256

// groupTimeout bounds a batch's transaction, and each write run again
// alone. A write's own context is checked before it runs, not during:
// cancelling one caller's statement would abort the others' transaction.
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
	// taken is set (under group.mu) when a batch takes the write, gone
	// when its caller stopped waiting before that: a batch skips it.
	taken, gone bool
}

// grouped runs fn in a transaction shared with the other writes queued
// meanwhile (SQLite; in one of its own on PostgreSQL) and returns once
// that transaction is committed or fn failed. A lease goes first. A
// caller whose context ends before a batch takes its write returns at
// once, its write not run.
func (s *sqlStore) grouped(ctx context.Context, lease bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.d.name != "sqlite" {
		return s.inTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
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
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	if !w.taken {
		w.gone = true
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	<-w.done // its batch runs it: bounded by groupTimeout
	return w.err
}

// groupedExec runs st, a one-statement write prepared on db (before: see
// txExec), grouped on SQLite and on its own, without a transaction
// around it, on PostgreSQL. It returns the rows changed.
func (s *sqlStore) groupedExec(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	if s.d.name != "sqlite" {
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	var n int64
	err := s.grouped(ctx, false, func(ctx context.Context, tx *sql.Tx) (err error) {
		n, err = txExec(ctx, tx, st, args...)
		return err
	})
	return n, err
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

// take takes up to n writes from the head of q whose callers still wait,
// marking them taken (under group.mu). A write whose caller's context has
// ended is dropped: its caller returns the context's error.
func take(q *[]*groupWrite, n int) []*groupWrite {
	var out []*groupWrite
	i := 0
	for ; i < len(*q) && len(out) < n; i++ {
		if w := (*q)[i]; !w.gone && w.ctx.Err() == nil {
			w.taken = true
			out = append(out, w)
		}
	}
	clear((*q)[:i]) // let the taken go
	*q = (*q)[i:]
	if len(*q) == 0 {
		*q = nil // and the array
	}
	return out
}

// errWrite marks the error of a write's own function in a batch.
type errWrite struct{ err error }

func (e errWrite) Error() string { return e.err.Error() }

func (s *sqlStore) commitGroup(batch []*groupWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, w := range batch {
			if err := w.fn(ctx, tx); err != nil {
				return errWrite{err}
			}
		}
		return nil
	})
	var we errWrite
	if !errors.As(err, &we) || len(batch) == 1 {
		if errors.As(err, &we) {
			err = we.err
		}
		for _, w := range batch {
			w.err = err
			close(w.done)
		}
		return
	}
	// A write failed: each alone, so that it fails its caller only.
	for _, w := range batch {
		w.err = w.ctx.Err() // its caller gone: not run
		if w.err == nil {
			w.err = s.runAlone(w)
		}
		close(w.done)
	}
}

// runAlone runs w in a transaction of its own.
func (s *sqlStore) runAlone(w *groupWrite) error {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	return s.inTx(ctx, func(tx *sql.Tx) error { return w.fn(ctx, tx) })
}
