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

func benchCheckIn(b *testing.B, s Store) {
	const hosts = 1000
	tok := EnrollToken{ID: "bench", SecretHash: hash("bench"), CreatedAt: t0}
	if err := s.CreateEnrollToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	for i := range hosts {
		h := Host{ID: fmt.Sprint("h", i), MachineID: fmt.Sprint("m", i), Hostname: fmt.Sprint("host", i), SecretHash: hash("c")}
		if _, err := s.Enroll(ctx, tok.ID, tok.SecretHash, h, t0); err != nil {
			b.Fatal(err)
		}
	}
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
