package server

import (
	"context"
	"sync"
)

// stepQueue lets the job results of one rollout share steps: a result's
// handler waits for a step that starts after its result was stored, and
// every result stored while a step runs is applied by the next one. A
// step reads only the jobs with news and writes only the hosts that
// changed, but each step is a transaction and a pass over the hosts:
// 10,000 results arriving together would make 10,000 steps; here they
// make a few.
type stepQueue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	started  uint64 // steps begun
	finished uint64 // the latest step finished
	running  bool
}

func (s *Server) rolloutQueue(id string) *stepQueue {
	if q, ok := s.rolloutQueues.Load(id); ok {
		return q.(*stepQueue)
	}
	q := &stepQueue{}
	q.cond = sync.NewCond(&q.mu)
	actual, _ := s.rolloutQueues.LoadOrStore(id, q)
	return actual.(*stepQueue)
}

// stepRolloutShared returns once a step of rollout id that started after
// the call has finished: the caller runs it when no step is running,
// else the one running is waited for and the next one shared. The error
// is that of the step the caller ran, if it ran one.
func (s *Server) stepRolloutShared(ctx context.Context, id string) error {
	q := s.rolloutQueue(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	want := q.started + 1
	for q.finished < want {
		if q.running {
			q.cond.Wait()
			continue
		}
		q.started++
		n := q.started
		q.running = true
		q.mu.Unlock()
		_, _, err := s.stepRollout(ctx, id)
		q.mu.Lock()
		q.running, q.finished = false, n
		q.cond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}
