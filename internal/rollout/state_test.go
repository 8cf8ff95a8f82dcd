package rollout

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestChangedHosts: a step's changed hosts are exactly those whose state
// moved, so that the server writes those rows only; a state's hosts
// survive a round trip through per-host JSON plus shared pins.
func TestChangedHosts(t *testing.T) {
	spec := Spec{ID: "r1", Rings: []Ring{ring("canary", Limit{Count: 2}, Limit{}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"canary": 5}))
	if got := ChangedHosts(s, s); len(got) != 0 {
		t.Fatalf("ChangedHosts(s, s) = %v", got)
	}
	s1, acts := Step(s, []Event{cmd(CommandStart, "c1")}, t0)
	if got := ChangedHosts(s, s1); !slices.Equal(got, []int{0, 1}) || len(acts) != 2 {
		t.Fatalf("start: changed %v, actions %v", got, kinds(acts))
	}
	// A started event changes one host; a stale result none.
	s2, _ := Step(s1, []Event{{Type: EventStarted, Host: "canary-02", Key: s1.Hosts[1].Jobs[0].Key}}, t0.Add(1))
	if got := ChangedHosts(s1, s2); !slices.Equal(got, []int{1}) {
		t.Fatalf("started: changed %v", got)
	}
	s3, _ := Step(s2, []Event{{Type: EventSucceeded, Host: "canary-05", Key: "r1/canary/canary-05/install"}}, t0.Add(2))
	if got := ChangedHosts(s2, s3); len(got) != 0 {
		t.Fatalf("a result for a job never dispatched changed %v", got)
	}
	// A result finishes one host and starts the next.
	s4, _ := Step(s3, []Event{res(EventSucceeded, s3, "canary-01")}, t0.Add(3))
	if got := ChangedHosts(s3, s4); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("result: changed %v", got)
	}
	// Hosts as rows: each host's JSON without pins, the pins apart.
	back := s4
	back.Hosts = nil
	for _, h := range s4.Hosts {
		h := *h
		h.Pins = nil
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var g HostState
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		g.Pins = libc
		back.Hosts = append(back.Hosts, &g)
	}
	if got := ChangedHosts(s4, back); len(got) != 0 {
		t.Fatalf("round trip changed %v", got)
	}
	if h, ok := back.Lookup("canary-03"); !ok || h.Phase != PhaseInstalling {
		t.Fatalf("Lookup(canary-03) = %+v %v", h, ok)
	}
	if _, ok := back.Lookup("nope"); ok {
		t.Fatal("Lookup(nope) found a host")
	}
	// Stepping the round-tripped state decides what stepping the
	// original does.
	a, actsA := Step(s4, []Event{res(EventSucceeded, s4, "canary-02")}, t0.Add(4))
	b, actsB := Step(back, []Event{res(EventSucceeded, back, "canary-02")}, t0.Add(4))
	if kinds(actsA) != kinds(actsB) || len(ChangedHosts(a, b)) != 0 {
		t.Fatalf("round-tripped state steps differently: %v vs %v", kinds(actsA), kinds(actsB))
	}
}

// TestWithdrawn: jobs the server took back on pause put their hosts back
// where they were; resume dispatches them again under new keys, and an
// answer to a withdrawn key changes nothing.
func TestWithdrawn(t *testing.T) {
	spec := Spec{ID: "r1", Rings: []Ring{ring("canary", Limit{Count: 2}, Limit{}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"canary": 3}))
	s, _ = Step(s, []Event{cmd(CommandStart, "c1")}, t0)
	s, _ = Step(s, []Event{cmd(CommandPause, "c2")}, t0.Add(1))
	old := s.Hosts[0].Jobs[0].Key
	s, acts := Step(s, []Event{{Type: EventWithdrawn, Host: "canary-01", Key: old, Reason: "rollout paused"},
		{Type: EventWithdrawn, Host: "canary-02", Key: s.Hosts[1].Jobs[0].Key, Reason: "rollout paused"}}, t0.Add(2))
	if len(acts) != 0 || s.Hosts[0].Phase != PhasePending || s.Hosts[1].Phase != PhasePending || s.Hosts[0].Wave != 0 {
		t.Fatalf("after withdrawing: %v, hosts %+v", kinds(acts), s.Hosts[:2])
	}
	s, acts = Step(s, []Event{cmd(CommandResume, "c3")}, t0.Add(3))
	if kinds(acts) != "install canary-01, install canary-02" || acts[0].Key != old+"#2" {
		t.Fatalf("resume: %v (keys %q)", kinds(acts), acts[0].Key)
	}
	// The withdrawn key's answer is stale; the new key's counts.
	s2, _ := Step(s, []Event{{Type: EventSucceeded, Host: "canary-01", Key: old}}, t0.Add(4))
	if len(ChangedHosts(s, s2)) != 0 {
		t.Fatalf("an answer to a withdrawn key changed the state: %+v", s2.Hosts[0])
	}
	s, acts = Step(s, []Event{{Type: EventSucceeded, Host: "canary-01", Key: old + "#2"}}, t0.Add(5))
	if s.Hosts[0].Phase != PhaseSucceeded || kinds(acts) != "install canary-03" {
		t.Fatalf("answer to the new key: %s, %v", s.Hosts[0].Phase, kinds(acts))
	}
	// A rollback is never withdrawn.
	spec.Options.Rollback = true
	r := newState(t, spec, fleet(map[string]int{"canary": 1}))
	r, _ = Step(r, []Event{cmd(CommandStart, "c1")}, t0)
	r, _ = Step(r, []Event{res(EventHealthFailed, r, "canary-01")}, t0.Add(1))
	r2, _ := Step(r, []Event{{Type: EventWithdrawn, Host: "canary-01", Key: r.Hosts[0].Jobs[1].Key}}, t0.Add(2))
	if r2.Hosts[0].Phase != PhaseRollingBack || len(ChangedHosts(r, r2)) != 0 {
		t.Fatalf("a withdrawn rollback: %+v", r2.Hosts[0])
	}
}

// TestIdle: a rollout is idle when only an operator can move it; a
// cancelled one never reboots, so a host awaiting a reboot keeps it busy
// only while halted.
func TestIdle(t *testing.T) {
	spec := Spec{ID: "r1", Rings: []Ring{ring("canary", Limit{Count: 2}, Limit{Count: 5}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"canary": 2}))
	s, _ = Step(s, []Event{cmd(CommandStart, "c1")}, t0)
	if s.Idle() {
		t.Fatal("a running rollout is idle")
	}
	s, _ = Step(s, []Event{{Type: EventSucceeded, Host: "canary-01", Key: s.Hosts[0].Jobs[0].Key, RebootRequired: true},
		{Type: EventFailed, Host: "canary-02", Key: s.Hosts[1].Jobs[0].Key}}, t0.Add(1))
	if s.Hosts[0].Phase != PhaseRebooting && s.Hosts[0].Phase != PhaseAwaitingReboot {
		t.Fatalf("canary-01 %s", s.Hosts[0].Phase)
	}
	h := *s.Hosts[0]              // states share their hosts: change a copy
	h.Phase = PhaseAwaitingReboot // as when its window is closed
	s.Hosts = slices.Clone(s.Hosts)
	s.Hosts[0] = &h
	c, _ := Step(s, []Event{cmd(CommandCancel, "c2")}, t0.Add(2))
	if c.Status != StatusCancelled || !c.Idle() {
		t.Fatalf("cancelled with a host awaiting a reboot: %s idle %v", c.Status, c.Idle())
	}
	if !PhaseAwaitingReboot.Waits(StatusHalted) || PhaseAwaitingReboot.Waits(StatusCancelled) || !PhaseInstalling.Waits(StatusCancelled) {
		t.Fatal("Waits")
	}
}
