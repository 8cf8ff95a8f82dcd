package server

import (
	"context"
	"fmt"
	"runtime/debug"
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
	// wanted is the latest step a result waits for: it starts once the
	// running one finishes, even if that result's POST stopped waiting.
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

// resultSteps are the steps run for job results, apart from requests:
// their context ends, and StopSteps waits for them, when the server
// shuts down.
type resultSteps struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // over stopped and wg.Add
	// stopped: no step starts any more.
	stopped bool
	wg      sync.WaitGroup
}

// StopSteps ends the rollout steps run for job results and waits for
// them: call it once the HTTP server has shut down, before the store is
// closed. A step cut short rolls back, and the next tick, or the server's
// next start, applies what it would have.
func (s *Server) StopSteps() {
	s.steps.mu.Lock()
	s.steps.stopped = true
	s.steps.mu.Unlock()
	s.steps.cancel()
	s.steps.wg.Wait()
}

// stepRolloutShared waits, up to wait, for a step of rollout id that
// started after the call to finish: it starts one when none is running,
// else the next one starts when the running one finishes. It returns
// that step's (or a later one's) error, errStepLate if wait passed first
// or the server is shutting down (the step still runs, and applies what
// was stored before it), or ctx's error if ctx ended first.
func (s *Server) stepRolloutShared(ctx context.Context, id string, wait time.Duration) error {
	q := s.rolloutQueue(id)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	q.mu.Lock()
	want := q.started + 1
	q.wanted = max(q.wanted, want)
	for q.finished < want {
		if q.done == nil && !s.startStep(q, id) {
			q.mu.Unlock()
			return errStepLate
		}
		done := q.done
		q.mu.Unlock()
		select {
		case <-done:
		case <-timer.C:
			return errStepLate
		case <-s.holds.drained:
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
// running), and the one after it as long as results wait for one; false
// if the server is shutting down.
func (s *Server) startStep(q *stepQueue, id string) bool {
	s.steps.mu.Lock()
	defer s.steps.mu.Unlock()
	if s.steps.stopped {
		return false
	}
	s.steps.wg.Add(1)
	q.started++
	n, done := q.started, make(chan struct{})
	q.done = done
	go func() {
		defer s.steps.wg.Done()
		for {
			err := s.resultStep(id)
			q.mu.Lock()
			q.finished, q.err = n, err
			close(done)
			if q.wanted <= n || s.steps.ctx.Err() != nil {
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
	return true
}

// resultStep runs one step of rollout id for job results. A panic fails
// the step, as it would have failed the request that ran it.
func (s *Server) resultStep(id string) (err error) {
	ctx, cancel := context.WithTimeout(s.steps.ctx, stepTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rollout step panicked", "rollout", id, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("rollout %s: step panicked: %v", id, p)
		}
	}()
	_, _, err = s.stepRollout(ctx, id)
	return err
}
