package loadgen

import (
	"container/heap"
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
)

// phase measures one phase of a run.
type phase struct {
	g     *gen
	rep   *PhaseReport
	start time.Time
	srv   *procWatch
	db    *procWatch
	cpu0  float64
}

// namedRecorder is one kind of request of a phase.
type namedRecorder struct {
	op  string
	rec *recorder
}

func (g *gen) begin(name string) *phase {
	g.newConns.Store(0)
	g.resumed.Store(0)
	return &phase{g: g, rep: &PhaseReport{Name: name}, start: time.Now(), srv: watchProc(g.cfg.ServerPID, false),
		db: watchProc(g.cfg.DatabasePID, true), cpu0: selfCPU()}
}

// end completes the phase's report: request figures, the server's CPU
// and memory, and then (so as not to count its cost) the server's store
// gauges.
func (p *phase) end(ctx context.Context, ops ...namedRecorder) *PhaseReport {
	r := p.rep
	r.Seconds = time.Since(p.start).Seconds()
	r.Server, r.Database = p.srv.done(), p.db.done()
	r.LoadgenCPU = (selfCPU() - p.cpu0) / r.Seconds
	r.NewConns, r.Resumed = p.g.newConns.Load(), p.g.resumed.Load()
	for _, o := range ops {
		r.Ops = append(r.Ops, o.rec.report(o.op, r.Seconds))
	}
	if st, err := scrapeMetrics(ctx, p.g.metrics, p.g.cfg.Server); err != nil {
		r.StoreError = err.Error()
	} else {
		r.ServerStore = &st
	}
	p.g.cfg.Log.Info("phase done", "phase", r.Name, "seconds", r.Seconds)
	return r
}

// turn runs one host's requests with a trace that counts the connections
// they open and those of them that resumed a TLS session; with closeConn
// it closes the connection afterwards, so that the host's next turn opens
// a new one.
func (g *gen) turn(ctx context.Context, closeConn bool, fn func(context.Context)) {
	var conn net.Conn
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		conn = info.Conn
		if !info.Reused {
			g.newConns.Add(1)
			if tc, ok := conn.(*tls.Conn); ok && tc.ConnectionState().DidResume {
				g.resumed.Add(1)
			}
		}
	}})
	fn(ctx)
	if closeConn && conn != nil {
		conn.Close()
	}
}

// forEach calls fn once for each host, with Concurrency workers.
func (g *gen) forEach(ctx context.Context, hosts []*simHost, fn func(*simHost)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(g.cfg.Concurrency, len(hosts)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(hosts) {
					return
				}
				fn(hosts[k])
			}
		}()
	}
	wg.Wait()
}

// enrollPhase enrolls the hosts that have no credential, each over a
// connection of its own (as a newly installed agent does), and saves the
// state. It returns nil when every host is enrolled already.
func (g *gen) enrollPhase(ctx context.Context) (*PhaseReport, error) {
	var todo []*simHost
	for _, h := range g.hosts {
		if h.cred == "" {
			todo = append(todo, h)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	if g.cfg.NewToken == nil {
		return nil, errors.New("loadgen: hosts to enroll and no way to make an enrollment token")
	}
	token, err := g.cfg.NewToken(ctx, len(todo))
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	ph := g.begin("enroll")
	g.forEach(ctx, todo, func(h *simHost) {
		c, err := agent.NewClient(g.cfg.Server, g.cfg.CAFingerprint, "", g.cfg.Timeout)
		if err != nil {
			rec.add(0, err)
			return
		}
		g.turn(ctx, true, func(ctx context.Context) {
			t0 := time.Now()
			resp, err := c.Enroll(ctx, token, h.facts)
			rec.add(time.Since(t0), err)
			if err == nil {
				h.id, h.cred = resp.HostID, resp.Credential
			}
		})
	})
	rep := ph.end(ctx, namedRecorder{"enroll", rec})
	return rep, g.saveState()
}

// ready returns the hosts that are enrolled.
func (g *gen) ready() []*simHost {
	var out []*simHost
	for _, h := range g.hosts {
		if h.client != nil {
			out = append(out, h)
		}
	}
	return out
}

// checkIn is one agent turn: a check-in with the host's inventory hash,
// and the inventory itself when the server asks for it.
func (g *gen) checkIn(ctx context.Context, h *simHost, ci, put *recorder) {
	g.turn(ctx, g.cfg.Reconnect, func(ctx context.Context) {
		f := h.facts
		f.UptimeSeconds += int64(time.Since(g.start).Seconds())
		t0 := time.Now()
		resp, err := h.client.CheckIn(ctx, api.CheckInRequest{Facts: f, InventoryHash: h.inv.Hash})
		ci.add(time.Since(t0), err)
		if err != nil || !resp.SendInventory {
			return
		}
		t0 = time.Now()
		err = h.client.PutInventory(ctx, h.inv.Inv)
		put.add(time.Since(t0), err)
	})
}

// inventoryPhase has every enrolled host check in once, sending its
// inventory when the server lacks it.
func (g *gen) inventoryPhase(ctx context.Context) *PhaseReport {
	ci, put := newRecorder(), newRecorder()
	ph := g.begin("inventory")
	g.forEach(ctx, g.ready(), func(h *simHost) { g.checkIn(ctx, h, ci, put) })
	return ph.end(ctx, namedRecorder{"checkin", ci}, namedRecorder{"inventory", put})
}

// checkInPhase runs check-ins with unchanged inventories for Duration,
// paced or as fast as possible.
func (g *gen) checkInPhase(ctx context.Context) *PhaseReport {
	ci, put := newRecorder(), newRecorder()
	hosts := g.ready()
	ph := g.begin(g.cfg.Mode)
	deadline := ph.start.Add(g.cfg.Duration)
	do := func(h *simHost) { g.checkIn(ctx, h, ci, put) }
	switch {
	case len(hosts) == 0:
	case g.cfg.Mode == ModeMax:
		g.closedLoop(ctx, hosts, deadline, do)
	case g.cfg.Mode == ModeRate:
		ph.rep.TargetRate = g.cfg.Rate
		k := 0
		g.paced(ctx, ph, deadline, func() (time.Time, *simHost) {
			at := ph.start.Add(time.Duration(float64(k) / g.cfg.Rate * float64(time.Second)))
			h := hosts[k%len(hosts)]
			k++
			return at, h
		}, do)
	case g.cfg.Mode == ModeSteady:
		ph.rep.TargetRate = float64(len(hosts)) / g.cfg.Interval.Seconds()
		g.paced(ctx, ph, deadline, newSchedule(hosts, ph.start, g.cfg.Interval, g.cfg.Seed).next, do)
	}
	return ph.end(ctx, namedRecorder{"checkin", ci}, namedRecorder{"inventory", put})
}

// closedLoop keeps Concurrency turns in flight until the deadline, going
// round the hosts.
func (g *gen) closedLoop(ctx context.Context, hosts []*simHost, deadline time.Time, do func(*simHost)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < g.cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				h := hosts[int((next.Add(1)-1)%int64(len(hosts)))]
				if !h.busy.CompareAndSwap(false, true) {
					continue
				}
				do(h)
				h.busy.Store(false)
			}
		}()
	}
	wg.Wait()
}

// paced starts the turns next gives at the times it gives, until the
// deadline, on at most Concurrency workers. When all are busy the next
// turn starts late: the schedule lag in the report says by how much (the
// latencies alone would hide it), and the turns due before the deadline
// that had not started by then are counted as missed. A host whose turn
// comes while its last one still runs skips it (an overrun).
func (g *gen) paced(ctx context.Context, ph *phase, deadline time.Time, next func() (time.Time, *simHost), do func(*simHost)) {
	type item struct {
		at time.Time
		h  *simHost
	}
	work := make(chan item)
	lag := newRecorder()
	var wg sync.WaitGroup
	for w := 0; w < g.cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				lag.add(time.Since(it.at), nil)
				do(it.h)
				it.h.busy.Store(false)
			}
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		at, h := next()
		if !at.Before(deadline) {
			break
		}
		if !time.Now().Before(deadline) {
			// Late past the end: count what never started.
			for ph.rep.Missed++; ; ph.rep.Missed++ {
				if at, _ = next(); !at.Before(deadline) {
					break
				}
			}
			break
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if !h.busy.CompareAndSwap(false, true) {
			ph.rep.Overruns++
			continue
		}
		work <- item{at, h}
	}
	close(work)
	wg.Wait()
	q := quantiles(lag.lat)
	ph.rep.LagMS = &q
}

// schedule is a min-heap of the hosts' next check-in times: each host
// starts at a random point of the first interval (agents start at any
// time) and then comes back every interval ±10%, as package agent does.
type schedule struct {
	items    []scheduled
	interval time.Duration
	rng      *rand.Rand
}

type scheduled struct {
	at time.Time
	h  *simHost
}

func newSchedule(hosts []*simHost, start time.Time, interval time.Duration, seed uint64) *schedule {
	s := &schedule{interval: interval, rng: rand.New(rand.NewPCG(seed, 7))}
	for _, h := range hosts {
		s.items = append(s.items, scheduled{start.Add(time.Duration(s.rng.Int64N(int64(interval)))), h})
	}
	heap.Init(s)
	return s
}

// next returns the earliest turn and schedules that host's following one.
func (s *schedule) next() (time.Time, *simHost) {
	it := s.items[0]
	d := s.interval - s.interval/10 + time.Duration(s.rng.Int64N(int64(s.interval/5)+1))
	s.items[0].at = it.at.Add(d)
	heap.Fix(s, 0)
	return it.at, it.h
}

func (s *schedule) Len() int           { return len(s.items) }
func (s *schedule) Less(i, j int) bool { return s.items[i].at.Before(s.items[j].at) }
func (s *schedule) Swap(i, j int)      { s.items[i], s.items[j] = s.items[j], s.items[i] }
func (s *schedule) Push(x any)         { s.items = append(s.items, x.(scheduled)) }
func (s *schedule) Pop() any {
	it := s.items[len(s.items)-1]
	s.items = s.items[:len(s.items)-1]
	return it
}
