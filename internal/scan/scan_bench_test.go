package scan

import (
	"context"
	"os"
	"testing"
)

// BenchmarkScanOfflineHost scans this machine offline (apt's lists, a warm
// compact cache): the hot path of a repeated scan. Skipped off Debian.
func BenchmarkScanOfflineHost(b *testing.B) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		b.Skip("no dpkg status on this machine")
	}
	opts := Options{Root: "/", CacheDir: b.TempDir(), Offline: true}
	if _, err := Run(context.Background(), opts); err != nil {
		b.Skip("offline scan of this machine failed (run apt-get update?):", err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Run(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
