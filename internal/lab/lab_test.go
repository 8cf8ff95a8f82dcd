package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lab tests build real endpoints: they need root, debootstrap (or the
// cached base) and iproute2, so they run only with PATCHLOOP_LAB=1.

func labBase(t *testing.T) *Base {
	t.Helper()
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("lab test: set PATCHLOOP_LAB=1 (needs root, debootstrap and the Debian mirror)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("PATCHLOOP_LAB=1 but not root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	base, err := EnsureBase(ctx, DefaultCacheDir(), "bookworm", "amd64", DefaultMirror)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func newHost(t *testing.T, base *Base, name string) *Host {
	t.Helper()
	h, err := NewHost(base, t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return h
}

func newNetwork(t *testing.T, name string) *Network {
	t.Helper()
	n, err := NewNetwork(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close network %s: %v", n.Bridge, err)
		}
	})
	return n
}

// inside lists the processes chrooted into root.
func inside(root string) []int {
	root, _ = filepath.EvalSymlinks(root)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if r, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); r == root {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder lists the mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(unescapeMount(f[1]), dir) {
			found = append(found, f[1])
		}
	}
	return found
}

func TestHostRunAndClose(t *testing.T) {
	base := labBase(t)
	dir := t.TempDir()
	h, err := NewHost(base, dir, "plain")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, err := os.ReadFile(filepath.Join(base.Dir, "etc/debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []func(context.Context, ...string) (string, error){h.Run, h.RunHostNet} {
		if out, err := run(ctx, "cat", "/etc/debian_version"); err != nil || out != string(want) {
			t.Errorf("cat /etc/debian_version = %q, %v; want %q", out, err, want)
		}
	}
	if err := h.WriteFile("/etc/lab-test", "changed\n"); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(base.Dir, "etc/lab-test")) {
		t.Error("WriteFile changed the base")
	}
	if _, err := h.Run(ctx, "false"); err == nil || !strings.Contains(err.Error(), "false in plain") {
		t.Errorf("Run(false) error = %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := h.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Errorf("still mounted after Close: %v", m)
	}
}

func TestSweep(t *testing.T) {
	base := labBase(t)
	ctx := context.Background()
	// Made first so that the crashed network below does not free its subnet
	// for it.
	live := newHost(t, base, "live") // of a test still running: must survive
	liveNet := newNetwork(t, "live")
	if err := liveNet.Attach(ctx, live); err != nil {
		t.Fatal(err)
	}
	n := newNetwork(t, "sweep")
	dir := t.TempDir()
	h, err := NewHost(base, dir, "crashed")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := n.Attach(ctx, h); err != nil {
		t.Fatal(err)
	}
	// An orphan, as if its parent test process had died.
	if _, err := h.Run(ctx, "bash", "-c", "setsid sleep 1000 >/dev/null 2>&1 </dev/null &"); err != nil {
		t.Fatal(err)
	}
	if len(inside(h.Root)) != 1 {
		t.Fatalf("processes in %s: %v, want the one sleep", h.Root, inside(h.Root))
	}
	// Crash: the locks go, everything else stays.
	ns, veth := h.Netns(), "/sys/class/net/"+h.veth
	h.lock.Close()
	n.lock.Close()
	// From here on, Close must not touch names another network may take.
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()

	if err := Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	// Polled: a Sweep of another test process may be the one cleaning up.
	waitFor(t, func() bool {
		return !exists(netnsPath(ns)) && !exists(veth) && !exists("/sys/class/net/"+n.Bridge) &&
			len(mountsUnder(t, dir)) == 0 && len(inside(h.Root)) == 0
	}, func() string {
		return fmt.Sprintf("after Sweep: netns %s %v, %s %v, bridge %s %v, mounts %v, processes %v",
			ns, exists(netnsPath(ns)), veth, exists(veth), n.Bridge, exists("/sys/class/net/"+n.Bridge),
			mountsUnder(t, dir), inside(h.Root))
	})
	if !exists(netnsPath(live.Netns())) || !exists("/sys/class/net/"+liveNet.Bridge) || len(mountsUnder(t, live.Root)) == 0 {
		t.Error("Sweep removed a live network or host")
	}
	if out, err := live.Run(ctx, "true"); err != nil {
		t.Errorf("live host after Sweep: %v %s", err, out)
	}
}

func TestBridgeName(t *testing.T) {
	for _, tc := range []struct {
		x          int
		name, want string
	}{
		{7, "fleet", "plb7-fleet"},
		{254, "TestFleet/Rollout_waves", "plb254-testflee"},
		{12, "", "plb12-net"},
		{3, "---", "plb3-net"},
	} {
		if got := bridgeName(tc.x, tc.name); got != tc.want || len(got) > 15 {
			t.Errorf("bridgeName(%d, %q) = %q, want %q", tc.x, tc.name, got, tc.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b/root`: "/tmp/a b/root",
		`/plain`:           "/plain",
		`/end\04`:          `/end\04`,
		`/tab\011x`:        "/tab\tx",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
