package server

import (
	"context"
	"sync"
	"time"
)

// stepQueue lets the job results of one rollout share steps: a result's
// handler waits for a step that starts after its result was stored, and
// every result stored while a step runs is applied by the next one. A
// step reads only the jobs with news and writes only the hosts that
// changed, but each step is a transaction and a pass over the hosts:
// 10,000 results arriving together would make 10,000 steps; here they
// make a few.
//
// A step runs in a goroutine of its own, apart from the request that
// started it: an agent that stops waiting (its time-out, a lost
// connection) does not cancel the step that applies its result and
// every other result stored before it. (When requests' contexts ran
// the steps, 90,000 results arriving within half a minute made steps
// long enough for agents to time out, which cancelled the steps, so
// that none finished and every agent tried again: the rollout stalled.)
type stepQueue struct {
	mu       sync.Mutex
	started  uint64 // steps begun
	finished uint64 // the latest step finished
	err      error  // its error
	// wanted is the latest step a result waits for: started again once
	// the running one finishes, even if that result's POST stopped
	// waiting.
	wanted uint64
	// done is closed when the running step finishes (nil when none runs).
	done chan struct{}
}

func (s *Server) rolloutQueue(id string) *stepQueue {
	if q, ok := s.rolloutQueues.Load(id); ok {
		return q.(*stepQueue)
	}
	actual, _ := s.rolloutQueues.LoadOrStore(id, &stepQueue{})
	return actual.(*stepQueue)
}

// stepTimeout bounds a step run for job results.
const stepTimeout = 2 * time.Minute

// stepRolloutShared waits, up to wait, for a step of rollout id that
// started after the call to finish: it starts one when none is running,
// else the next one starts when the running one finishes. It returns
// that step's error, errStepLate if wait passed first (the step still
// runs, and applies what was stored before it), or ctx's error if ctx
// ended first.
func (s *Server) stepRolloutShared(ctx context.Context, id string, wait time.Duration) error {
	q := s.rolloutQueue(id)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	q.mu.Lock()
	want := q.started + 1
	q.wanted = max(q.wanted, want)
	for q.finished < want {
		if q.done == nil {
			s.startStep(ctx, q, id)
		}
		done := q.done
		q.mu.Unlock()
		select {
		case <-done:
		case <-timer.C:
			return errStepLate
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	err := q.err
	q.mu.Unlock()
	return err
}

// startStep starts the next step of rollout id (q.mu held, no step
// running), and the one after it as long as results wait for one, in a
// context that keeps ctx's values but not its end.
func (s *Server) startStep(ctx context.Context, q *stepQueue, id string) {
	ctx = context.WithoutCancel(ctx)
	q.started++
	n, done := q.started, make(chan struct{})
	q.done = done
	go func() {
		for {
			sctx, cancel := context.WithTimeout(ctx, stepTimeout)
			_, _, err := s.stepRollout(sctx, id)
			cancel()
			q.mu.Lock()
			q.finished, q.err = n, err
			close(done)
			if q.wanted <= n {
				q.done = nil
				q.mu.Unlock()
				return
			}
			q.started++
			n, done = q.started, make(chan struct{})
			q.done = done
			q.mu.Unlock()
		}
	}()
}
