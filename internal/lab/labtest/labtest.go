// Package labtest gives tests a real Debian endpoint: one overlay copy of
// internal/lab's cached debootstrap base, unmounted when the test ends.
package labtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/lab"
)

// Host returns a fresh bookworm amd64 endpoint for t. It skips t unless
// PATCHLOOP_LAB=1 (.ci/run sets it), and fails it when that is set but the
// test does not run as root (overlay mounts and chroot need it).
func Host(t testing.TB) *lab.Host {
	t.Helper()
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("lab test: set PATCHLOOP_LAB=1 (needs root, debootstrap and the Debian mirror)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("PATCHLOOP_LAB=1 but not root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	base, err := lab.EnsureBase(ctx, lab.DefaultCacheDir(), "bookworm", "amd64", lab.DefaultMirror)
	if err != nil {
		t.Fatal(err)
	}
	h, err := lab.NewHost(base, t.TempDir(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("unmount %s: %v", h.Root, err)
		}
	})
	return h
}
