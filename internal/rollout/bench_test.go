package rollout

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
)

// benchState is a started rollout of n hosts with pins pins each in rings
// canary (one host in ten) and prod, 100% concurrency: every canary host
// is installing.
func benchState(b *testing.B, n, pins int) State {
	b.Helper()
	var set []apply.Pin
	for k := range pins {
		set = append(set, apply.Pin{Package: fmt.Sprintf("libexample%03d", k), Arch: "amd64", Version: "1.2.3-4+deb12u1"})
	}
	hosts := make([]Host, n)
	for i := range hosts {
		ring := "prod"
		if i%10 == 0 {
			ring = "canary"
		}
		hosts[i] = Host{ID: fmt.Sprintf("%016x", i), Labels: map[string]string{"ring": ring}, Pins: set}
	}
	all := Limit{Percent: 100}
	spec := Spec{ID: "bench", SetHash: "h", Rings: []Ring{
		{Name: "canary", Hosts: Selector{MatchLabels: map[string]string{"ring": "canary"}}, Concurrency: all},
		{Name: "prod", Hosts: Selector{MatchLabels: map[string]string{"ring": "prod"}}, Concurrency: all}}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s, err := New(spec, hosts, now)
	if err != nil {
		b.Fatal(err)
	}
	s, acts := Step(s, []Event{{Type: CommandStart, ID: "c1", Actor: "bench"}}, now)
	if len(acts) != n/10 {
		b.Fatalf("start dispatched %d, want %d", len(acts), n/10)
	}
	return s
}

// BenchmarkRolloutStep measures what the server does per step of a
// rollout with every canary host installing: Step with one result, and
// the state's JSON both ways (the server loads and saves it whole), at
// 10,000 and 100,000 hosts of 90 pins each (the security updates of the
// fleet benchmark's hosts). The state's host index is built before the
// step is timed, as the server's cached state keeps it from step to step.
// go test -run XXX -bench RolloutStep -benchtime 3x ./internal/rollout
func BenchmarkRolloutStep(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		s := benchState(b, n, 90)
		data, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		key := s.Hosts[0].Jobs[0].Key
		now := time.Date(2026, 12, 1, 12, 1, 0, 0, time.UTC)
		b.Run(fmt.Sprintf("hosts=%d/step", n), func(b *testing.B) {
			s.host(s.Hosts[0].ID) // built once, as in the server's cached state
			for range b.N {
				Step(s, []Event{{Type: EventSucceeded, Host: s.Hosts[0].ID, Key: key}}, now)
			}
		})
		b.Run(fmt.Sprintf("hosts=%d/marshal", n), func(b *testing.B) {
			b.ReportMetric(float64(len(data))/float64(n), "bytes/host")
			for range b.N {
				if _, err := json.Marshal(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("hosts=%d/unmarshal", n), func(b *testing.B) {
			for range b.N {
				var st State
				if err := json.Unmarshal(data, &st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
