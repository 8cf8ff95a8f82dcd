package rollout

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// simulation drives a rollout the way the server and agents would, with
// a seeded generator choosing results, their order, duplicates, delays and
// operator commands, and checks the engine's invariants after every step.
type simulation struct {
	t       *testing.T
	rng     *rand.Rand
	s       State
	now     time.Time
	open    map[string]Action // dispatched, not yet answered
	sent    []Event           // every result delivered, for duplicates
	keys    map[string]bool   // every key ever dispatched
	cmdN    int
	cancels bool // the operator may cancel
}

func randomSpec(rng *rand.Rand, seed uint64) (Spec, []Host) {
	limit := func(maxCount, maxPct int, zeroOK bool) Limit {
		lo := 1
		if zeroOK {
			lo = 0
		}
		if rng.IntN(2) == 0 {
			return Limit{Count: lo + rng.IntN(maxCount)}
		}
		return Limit{Percent: max(lo, rng.IntN(maxPct+1))}
	}
	spec := Spec{ID: fmt.Sprintf("seed-%d", seed), Options: Options{
		Rollback:        rng.IntN(2) == 0,
		JobTimeout:      Duration(time.Duration(rng.IntN(3)) * 3 * time.Hour),
		InstallEstimate: Duration(time.Duration(1+rng.IntN(90)) * time.Minute),
	}}
	if rng.IntN(4) == 0 {
		spec.Options.Reboot = RebootNever
	}
	counts := map[string]int{}
	for _, name := range []string{"canary", "test", "prod"} {
		spec.Rings = append(spec.Rings, ring(name, limit(4, 60, false), limit(3, 30, true), time.Duration(rng.IntN(4))*time.Hour))
		counts[name] = rng.IntN(12)
	}
	zones := []string{"Europe/Berlin", "America/New_York"}
	for _, g := range []string{"test", "prod"} {
		if rng.IntN(3) > 0 {
			w, _ := NewWindow(fmt.Sprintf("%d */%d * * *", rng.IntN(60), 2+rng.IntN(6)), time.Duration(2+rng.IntN(3))*time.Hour, zones[rng.IntN(2)])
			spec.Groups = append(spec.Groups, WindowGroup{Name: g, Hosts: Selector{MatchLabels: map[string]string{"ring": g}}, Windows: []Window{w}})
		}
	}
	hosts := fleet(counts)
	for i := range hosts {
		if rng.IntN(8) == 0 {
			hosts[i].Pins = nil
		}
	}
	return spec, hosts
}

func TestRandomRollouts(t *testing.T) {
	ends := map[string]int{}
	defer func() {
		// The generator must reach every outcome, or the invariants
		// below were checked on too little.
		for _, k := range []string{"completed", "halted", "cancelled", "sim promote", "sim pause", "sim resume", "sim retry", "sim exclude", "sim rejected retry", "sim rejected exclude", "mended", "engine promote", "engine halt", "engine dispatch-reboot", "engine dispatch-rollback", "engine host-lost", "host host-rolled-back"} {
			if ends[k] < 3 {
				t.Errorf("outcome %q reached %d times", k, ends[k])
			}
		}
		t.Log(ends)
	}()
	for seed := uint64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		spec, hosts := randomSpec(rng, seed)
		// Berlin's spring change falls inside the simulated days.
		sim := &simulation{t: t, rng: rng, now: utc("2025-03-28T18:00:00Z"), open: map[string]Action{}, keys: map[string]bool{}}
		var err error
		if sim.s, err = New(spec, hosts, sim.now); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		sim.step([]Event{sim.command(CommandStart)})
		sim.cancels = seed%4 == 0
		run := func() {
			for i := 0; i < 3000 && !(sim.s.Status.final() && len(sim.open) == 0); i++ {
				sim.now = sim.now.Add(time.Duration(1+rng.IntN(60)) * time.Minute)
				sim.step(sim.events(i < 1500 && !sim.s.Status.final()))
			}
		}
		run()
		// An operator mends a halted rollout: every failed host of its
		// ring retried or excluded, then resume; the rollout goes on.
		for round := 0; round < 3 && sim.s.Status == StatusHalted && len(sim.open) == 0 && seed%2 == 0; round++ {
			var evs []Event
			for _, h := range sim.s.Hosts {
				if h.Ring == sim.s.Ring && h.Phase.failed() && h.Phase.terminal() {
					typ := CommandRetry
					if rng.IntN(3) == 0 {
						typ = CommandExclude
					}
					evs = append(evs, sim.hostCommand(typ, h.ID))
				}
			}
			sim.now = sim.now.Add(time.Hour)
			sim.step(append(evs, sim.command(CommandResume)))
			if sim.s.Status != StatusRunning && sim.s.Status != StatusCompleted {
				t.Fatalf("seed %d: halted (%s), every failed host of ring %d retried or excluded, resumed: %s", seed, sim.s.Reason, sim.s.Ring, sim.s.Status)
			}
			ends["mended"]++
			run()
		}
		if !sim.s.Status.final() || len(sim.open) != 0 {
			t.Errorf("seed %d: not finished: %s ring %d, %d jobs open", seed, sim.s.Status, sim.s.Ring, len(sim.open))
		}
		ends[string(sim.s.Status)]++
		for _, a := range sim.s.Audit {
			ends[a.Actor+" "+a.What]++
		}
	}
}

func (m *simulation) command(typ EventType) Event {
	m.cmdN++
	return Event{Type: typ, ID: fmt.Sprintf("cmd-%d", m.cmdN), Actor: "sim"}
}

func (m *simulation) hostCommand(typ EventType, host string) Event {
	e := m.command(typ)
	e.Host = host
	return e
}

// events answers some open jobs in a random order, adds duplicates of
// earlier results and, while chaos is on, operator commands.
func (m *simulation) events(chaos bool) []Event {
	var evs []Event
	for _, key := range sortedKeys(m.open) {
		if m.rng.IntN(3) > 0 {
			continue
		}
		a := m.open[key]
		e := Event{Host: a.Host, Key: a.Key}
		switch r := m.rng.IntN(100); {
		case r < 10:
			e.Type = EventStarted
			evs = append(evs, e)
			continue
		case r < 92:
			e.Type = EventSucceeded
			e.RebootRequired = a.Kind == ActionInstall && m.rng.IntN(3) == 0
		case r < 95:
			e.Type = EventFailed
		case r < 98:
			e.Type = EventHealthFailed
		default:
			e.Type = EventLost
		}
		if a.Kind == ActionRollback && e.Type == EventSucceeded && m.rng.IntN(2) == 0 {
			e.Type = EventRolledBack
		}
		e.At = m.now.Add(-time.Duration(m.rng.IntN(30)) * time.Second)
		delete(m.open, key)
		evs = append(evs, e)
	}
	for i := 0; i < 2 && len(m.sent) > 0; i++ {
		if m.rng.IntN(4) == 0 {
			evs = append(evs, m.sent[m.rng.IntN(len(m.sent))])
		}
	}
	switch r := m.rng.IntN(1000); {
	case !chaos:
		if m.s.Status == StatusPaused {
			evs = append(evs, m.command(CommandResume))
		}
		if m.s.Status == StatusHalted && r < 100 {
			evs = append(evs, m.command(CommandPromote))
		}
	case r < 20:
		evs = append(evs, m.command(CommandPause))
	case r < 120:
		evs = append(evs, m.command(CommandResume))
	case r < 125 && m.cancels:
		evs = append(evs, m.command(CommandCancel))
	case r < 145:
		evs = append(evs, m.command(CommandPromote))
	case r < 175:
		// Retry a failed host of the current ring (or, at times, any
		// host: the engine refuses what it cannot retry).
		var failed []string
		for _, h := range m.s.Hosts {
			if h.Ring == m.s.Ring && h.Phase.failed() && h.Phase.terminal() {
				failed = append(failed, h.ID)
			}
		}
		if len(failed) > 0 && m.rng.IntN(4) > 0 {
			evs = append(evs, m.hostCommand(CommandRetry, failed[m.rng.IntN(len(failed))]))
		} else if len(m.s.Hosts) > 0 {
			evs = append(evs, m.hostCommand(CommandRetry, m.s.Hosts[m.rng.IntN(len(m.s.Hosts))].ID))
		}
	case r < 190 && len(m.s.Hosts) > 0:
		evs = append(evs, m.hostCommand(CommandExclude, m.s.Hosts[m.rng.IntN(len(m.s.Hosts))].ID))
	}
	m.rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	return evs
}

func (m *simulation) step(evs []Event) {
	t := m.t
	before := m.s
	was, _ := json.Marshal(before)
	s, acts := Step(before, evs, m.now)
	m.check(before, s, evs, acts)
	// Step shares unchanged hosts between the states (clone, own): it
	// must never change the state it was given.
	if now, _ := json.Marshal(before); string(now) != string(was) {
		t.Fatalf("%s: Step changed the state it stepped from", s.Spec.ID)
	}

	// Replay: the same events again change nothing and dispatch nothing.
	again, more := Step(s, evs, m.now)
	if len(more) != 0 || !reflect.DeepEqual(again, s) {
		t.Fatalf("%s: replay gave %s", s.Spec.ID, kinds(more))
	}
	// Restart: the state reloaded from JSON and stepped again dispatches
	// nothing; it marshals the same.
	b, _ := json.Marshal(s)
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", s.Spec.ID, err)
	}
	reloaded, more := Step(back, nil, m.now)
	b1, _ := json.Marshal(reloaded)
	b2, _ := json.Marshal(again)
	if len(more) != 0 || string(b1) != string(b2) {
		t.Fatalf("%s: reload dispatched %s", s.Spec.ID, kinds(more))
	}
	for _, e := range evs {
		if !e.Type.command() {
			m.sent = append(m.sent, e)
		}
	}
	for _, a := range acts {
		if a.Key != "" {
			m.open[a.Key] = a
		}
	}
	m.s = s
}

func (m *simulation) check(before, s State, evs []Event, acts []Action) {
	t := m.t
	id := s.Spec.ID
	for _, a := range acts {
		if a.Key == "" {
			continue
		}
		if m.keys[a.Key] {
			t.Fatalf("%s: %s dispatched twice", id, a.Key)
		}
		m.keys[a.Key] = true
		h := s.Hosts[s.host(a.Host)]
		want := Key(id, s.Spec.Rings[h.Ring].Name, h.ID, JobKind(a.Kind))
		if n := h.superseded(JobKind(a.Kind)); n > 0 {
			want += fmt.Sprintf("#%d", n+1)
		}
		if a.Key != want {
			t.Fatalf("%s: key %s, want %s", id, a.Key, want)
		}
		switch a.Kind {
		case ActionInstall:
			if s.Status != StatusRunning {
				t.Fatalf("%s: install %s while %s", id, a.Host, s.Status)
			}
			if p := before.Hosts[before.host(a.Host)].Phase; p == PhaseExcluded {
				t.Fatalf("%s: install %s, which was excluded", id, a.Host)
			}
			if h.Ring != s.Ring || (h.Ring > 0 && (s.Rings[h.Ring-1].Promoted.IsZero() || s.Rings[h.Ring-1].Promoted.After(m.now))) {
				t.Fatalf("%s: install %s of ring %d, current %d, previous promoted %s", id, a.Host, h.Ring, s.Ring, s.Rings[max(0, h.Ring-1)].Promoted)
			}
			if !s.windowOK(h, m.now, time.Duration(s.Spec.Options.InstallEstimate)) {
				t.Fatalf("%s: install %s outside its window at %s", id, a.Host, m.now)
			}
			if f, b := s.failed(h.Ring), s.Rings[h.Ring].Budget; f > b {
				t.Fatalf("%s: install %s with %d failed over budget %d", id, a.Host, f, b)
			}
		case ActionReboot:
			if s.Status == StatusCancelled || s.Status == StatusPaused {
				t.Fatalf("%s: reboot while %s", id, s.Status)
			}
			if !s.windowOK(h, m.now, time.Duration(s.Spec.Options.RebootEstimate)) {
				t.Fatalf("%s: reboot %s outside its window at %s", id, a.Host, m.now)
			}
		}
	}
	for r := range s.Rings {
		inflight := 0
		for i := range s.Hosts {
			h := s.Hosts[i]
			if h.Ring == r && h.Phase.inFlight() {
				inflight++
			}
			if h.Ring > s.Ring && h.Phase != PhasePending && h.Phase != PhaseSkipped && h.Phase != PhaseExcluded {
				t.Fatalf("%s: host %s of ring %d is %s while ring %d is current", id, h.ID, h.Ring, h.Phase, s.Ring)
			}
			if i < len(before.Hosts) && before.Hosts[i].Phase == PhaseExcluded && h.Phase != PhaseExcluded {
				t.Fatalf("%s: host %s excluded, now %s", id, h.ID, h.Phase)
			}
			kinds := map[JobKind]bool{}
			for _, j := range h.Jobs {
				if j.superseded() {
					continue
				}
				if kinds[j.Kind] {
					t.Fatalf("%s: host %s has two %s jobs", id, h.ID, j.Kind)
				}
				kinds[j.Kind] = true
			}
		}
		if limit := s.Spec.Rings[r].Concurrency.Concurrency(s.Rings[r].Hosts); inflight > limit {
			t.Fatalf("%s: ring %d has %d in flight, concurrency %d", id, r, inflight, limit)
		}
	}
	if s.Status == StatusHalted && s.Reason == "" {
		t.Fatalf("%s: halted without a reason", id)
	}
	// Only an operator's promote or resume takes a stopped rollout back
	// to running.
	if before.Status.final() && s.Status == StatusRunning {
		if before.Status != StatusHalted || !hasCommand(evs, CommandPromote) && !hasCommand(evs, CommandResume) {
			t.Fatalf("%s: %s rollout running again", id, before.Status)
		}
	}
}

func hasCommand(evs []Event, typ EventType) bool {
	for _, e := range evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]Action) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// sort for determinism: map order is random
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
