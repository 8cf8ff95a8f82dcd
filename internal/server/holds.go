package server

import (
	"context"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/store"
)

// Held check-ins (long polls). An agent asks the server to hold its
// check-in while there is no job for it (api.CheckInRequest.WaitSeconds);
// the server answers as soon as a job is queued for the host, so a job
// reaches its agent within about a second instead of at the agent's next
// check-in, an interval later.
//
// A queued job wakes the hosts' held check-ins two ways:
//   - the code of this process that queues jobs (the jobs API, rollout
//     steps) wakes their hosts at once (holds.wake);
//   - while any check-in is held, a sweep reads every sweepEvery the hosts
//     of the jobs queued since its last read (store.QueuedSince), which
//     finds the jobs other replicas sharing the database queued.
//
// A woken check-in leases the host's jobs; finding none (another check-in
// of the host took them), it goes on waiting. Holding is never required:
// a job nothing wakes for is handed out at the host's next check-in, as
// without holds.

const (
	// sweepEvery is how often the sweep reads the newly queued jobs.
	sweepEvery = time.Second
	// sweepSkew is how far back each sweep reads before the previous
	// one's start: jobs carry their queueing server's clock and reach the
	// database when the transaction queueing them commits, both of which
	// may lag.
	sweepSkew = 5 * time.Second
)

// leasingAtOnce is how many woken check-ins lease their jobs at once.
const leasingAtOnce = 128

// holds are the check-ins this process holds, by host ID.
type holds struct {
	s        *Server
	mu       sync.Mutex
	waiting  map[string]map[*holdWait]struct{}
	sweeping bool
	draining bool
	drained  chan struct{} // closed by drain
	every    time.Duration // of the sweep: sweepEvery (tests change it)
	// leasing has a slot per woken check-in leasing its jobs.
	leasing chan struct{}
}

// holdWait is one held check-in: woken by a send on c (buffer 1).
type holdWait struct{ c chan struct{} }

func newHolds(s *Server) *holds {
	return &holds{s: s, waiting: map[string]map[*holdWait]struct{}{}, drained: make(chan struct{}), every: sweepEvery,
		leasing: make(chan struct{}, leasingAtOnce)}
}

// add registers a held check-in of host, starting the sweep if none runs.
// It returns nil once the server drains.
func (h *holds) add(host string) *holdWait {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return nil
	}
	w := &holdWait{c: make(chan struct{}, 1)}
	if h.waiting[host] == nil {
		h.waiting[host] = map[*holdWait]struct{}{}
	}
	h.waiting[host][w] = struct{}{}
	if !h.sweeping {
		h.sweeping = true
		go h.sweep(h.s.cfg.Now())
	}
	h.s.metrics.held.Inc()
	return w
}

// remove unregisters w.
func (h *holds) remove(host string, w *holdWait) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.waiting[host], w)
	if len(h.waiting[host]) == 0 {
		delete(h.waiting, host)
	}
	h.s.metrics.held.Dec()
}

// wake wakes the held check-ins of these hosts.
func (h *holds) wake(hosts ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, host := range hosts {
		for w := range h.waiting[host] {
			select {
			case w.c <- struct{}{}:
			default: // already woken
			}
		}
	}
}

// queueRolloutJobs queues jobs outside a step (store.QueueRolloutJobs)
// and wakes their hosts' held check-ins.
func (s *Server) queueRolloutJobs(ctx context.Context, id string, jobs []store.RolloutJob, audit []store.RolloutAudit) ([]string, error) {
	queued, err := s.store.QueueRolloutJobs(ctx, id, jobs, audit)
	if len(queued) > 0 {
		s.wakeJobs(jobs)
	}
	return queued, err
}

// wakeJobs wakes the held check-ins of the hosts of these rollout jobs.
func (s *Server) wakeJobs(jobs []store.RolloutJob) {
	hosts := make([]string, len(jobs))
	for i, j := range jobs {
		hosts[i] = j.HostID
	}
	s.holds.wake(hosts...)
}

// count is the number of held check-ins.
func (h *holds) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ws := range h.waiting {
		n += len(ws)
	}
	return n
}

// drain answers every held check-in now and holds none from now on: for
// a server shutting down, which would otherwise wait for them.
func (h *holds) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.draining {
		h.draining = true
		close(h.drained)
	}
}

// sweep wakes, every sweepEvery while check-ins are held, the hosts of
// the jobs queued since from (less sweepSkew), and stops when none is
// held. A read that fails is logged and retried at the next tick from the
// same point.
func (h *holds) sweep(from time.Time) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-h.drained:
		}
		h.mu.Lock()
		if len(h.waiting) == 0 || h.draining {
			h.sweeping = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		now := h.s.cfg.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		hosts, err := h.s.store.QueuedSince(ctx, from.Add(-sweepSkew))
		cancel()
		if err != nil {
			h.s.log.Warn("held check-ins: read the jobs queued lately", "err", err)
			continue
		}
		h.wake(hosts...)
		from = now
	}
}
