package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// realResult is an install result of the agent's format and size for a
// patch set of 91 packages: every package's versions, with names and
// versions as varied as a real one's (random), and the tail of apt's
// output the agent keeps (8 KB), about 25 KB of JSON.
func realResult() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
		}
		return string(b)
	}
	var b, log strings.Builder
	b.WriteString(`{"status":"ok","result":{"packages":[`)
	for j := range 91 {
		if j > 0 {
			b.WriteByte(',')
		}
		name, up := "lib"+word(4+r.IntN(12)), fmt.Sprintf("%d.%d.%d", r.IntN(20), r.IntN(30), r.IntN(10))
		before, after := up+"-"+fmt.Sprint(1+r.IntN(5)), up+"-"+fmt.Sprint(1+r.IntN(5))+"+deb12u"+fmt.Sprint(1+r.IntN(9))
		fmt.Fprintf(&b, `{"package":%q,"arch":"amd64","kind":"upgrade","before":%q,"want":%q,"now":%q,"status":"ii ","ok":true,"releases":["bookworm-security"]}`,
			name, before, after, after)
		fmt.Fprintf(&log, "Preparing to unpack .../%s_%s_amd64.deb ...\nUnpacking %s:amd64 (%s) over (%s) ...\nSetting up %s:amd64 (%s) ...\n",
			name, after, name, after, before, name, after)
	}
	tail := log.String()
	tail = tail[max(0, len(tail)-8<<10):]
	fmt.Fprintf(&b, `],"started":"2026-12-02T09:00:00Z","duration_ms":81234,"log":%q,"record":"20261202T090000Z-x","healthy":true,`+
		`"health":{"healthy":true,"checks":[{"name":"dpkg --audit","kind":"dpkg","status":"pass"}]}}}`, tail)
	return []byte(b.String())
}

// BenchmarkCompleteJob stores the results of 64 agents at once, each a
// real-sized install result, as the server does with a burst of them:
// one host job's result an operation.
func BenchmarkCompleteJob(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchComplete(b, openSQLiteT(b)) })
	b.Run("postgres", func(b *testing.B) { benchComplete(b, openPostgresT(b)) })
}

func benchComplete(b *testing.B, s Store) {
	result, hosts := realResult(), b.N
	id := func(i int) string { return fmt.Sprintf("%016x", i*7919) }
	enrollBench(b, s, hosts, id)
	var ids []string
	for i := range hosts {
		ids = append(ids, id(i))
	}
	if err := s.CreateJob(ctx, Job{ID: "j", Kind: "install", Params: []byte(`{}`), CreatedAt: t0, CreatedBy: "bench"}, ids); err != nil {
		b.Fatal(err)
	}
	for _, h := range ids {
		if _, err := s.LeaseJobs(ctx, h, t0, time.Hour, 1); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetBytes(int64(len(result)))
	b.SetParallelism(32) // 64 on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			ok, err := s.CompleteJob(ctx, "j", ids[i], "ok", result, []byte(`{"result":{"packages":[{"ok":true}]}}`), t0)
			if err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
}
