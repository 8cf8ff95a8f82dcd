package store

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCheckIn measures the hot path: check-ins (an UPDATE by primary
// key) from many agents at once, on a store of 1000 hosts.
func BenchmarkCheckIn(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchCheckIn(b, openSQLiteT(b)) })
	b.Run("postgres", func(b *testing.B) { benchCheckIn(b, openPostgresT(b)) })
}

// enrollBench enrolls n hosts, id(i) the ID of the i-th.
func enrollBench(b *testing.B, s Store, n int, id func(i int) string) {
	tok := EnrollToken{ID: "bench", SecretHash: hash("bench"), CreatedAt: t0}
	if err := s.CreateEnrollToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		h := Host{ID: id(i), MachineID: fmt.Sprint("m", i), Hostname: fmt.Sprint("host", i), SecretHash: hash("c")}
		if _, err := s.Enroll(ctx, tok.ID, tok.SecretHash, h, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCheckIn(b *testing.B, s Store) {
	const hosts = 1000
	enrollBench(b, s, hosts, func(i int) string { return fmt.Sprint("h", i) })
	var n atomic.Int64
	b.SetParallelism(8) // agents outnumber cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			c := CheckIn{HostID: fmt.Sprint("h", i%hosts), At: t0.Add(time.Duration(i) * time.Millisecond)}
			if err := s.CheckIn(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPromote measures the step that starts a ring of 10,000 hosts
// (a rollout's promotion): one transaction that rewrites the hosts' rows,
// queues a job for each (sharing one job's params, as a ring's hosts with
// the same pins do) and appends an audit line for each.
func BenchmarkPromote(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchPromote(b, openSQLiteT(b)) })
	b.Run("postgres", func(b *testing.B) { benchPromote(b, openPostgresT(b)) })
}

func benchPromote(b *testing.B, s Store) {
	const hosts = 10000
	id := func(i int) string { return fmt.Sprintf("%016x", i*7919) }
	enrollBench(b, s, hosts, id)
	var rows []RolloutHost
	for i := range hosts {
		rows = append(rows, RolloutHost{Idx: i, HostID: id(i), Pins: "p1", Phase: "pending", State: []byte(`{"id":"` + id(i) + `"}`)})
	}
	pins := []RolloutPins{{Hash: "p1", Pins: []byte(`[{"package":"a","version":"1"}]`)}}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprint("r", i)
		r := Rollout{ID: id, Name: id, Spec: []byte(`{}`), PatchSet: []byte(`{}`), SetHash: "ab",
			State: []byte(`{}`), Status: "running", CreatedAt: t0, CreatedBy: "bench"}
		if err := s.CreateRollout(ctx, r, rows, pins, nil); err != nil {
			b.Fatal(err)
		}
		step := RolloutStep{Version: 1, State: []byte(`{}`), Status: "running", At: t0}
		for _, h := range rows {
			h.Phase, h.State = "installing", []byte(`{"id":"`+h.HostID+`","phase":"installing"}`)
			step.Hosts = append(step.Hosts, h)
			key := id + "/prod/" + h.HostID + "/install"
			step.Jobs = append(step.Jobs, RolloutJob{Key: key, HostID: h.HostID, Ring: "prod",
				Job: Job{ID: id + "-install", Kind: "install", Params: []byte(`{"packages":[]}`), CreatedAt: t0, CreatedBy: "rollout " + id}})
			step.Audit = append(step.Audit, RolloutAudit{At: t0, Actor: "engine", What: "dispatch-install", Ring: "prod", Host: h.HostID, Detail: key})
		}
		b.StartTimer()
		if _, queued, err := s.SaveRolloutStep(ctx, id, step); err != nil || len(queued) != hosts {
			b.Fatal(len(queued), err)
		}
	}
}

// BenchmarkActiveHosts compares what the changelog reader's rounds list
// the active hosts with, at 20,000 hosts: every host read and decoded
// (ListHosts, the baseline) and their IDs alone (ActiveHostIDs).
func BenchmarkActiveHosts(b *testing.B) {
	s := openSQLiteT(b)
	enrollBench(b, s, 20000, func(i int) string { return fmt.Sprintf("%016x", i*7919) })
	b.Run("ListHosts", func(b *testing.B) {
		for b.Loop() {
			if hs, err := s.ListHosts(ctx, HostFilter{}); err != nil || len(hs) != 20000 {
				b.Fatal(len(hs), err)
			}
		}
	})
	b.Run("ActiveHostIDs", func(b *testing.B) {
		for b.Loop() {
			if ids, err := s.ActiveHostIDs(ctx); err != nil || len(ids) != 20000 {
				b.Fatal(len(ids), err)
			}
		}
	})
}
