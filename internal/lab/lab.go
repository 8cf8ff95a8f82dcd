// Package lab builds real Debian test endpoints: one debootstrap
// --variant=minbase base per (suite, arch), cached on disk and shared,
// and a cheap overlayfs copy of it per host that tests may change freely
// (host.go).
//
// For fleet tests a host can be attached to a Network (net.go): a Linux
// bridge with a private /24 on the test machine, and per host a network
// namespace wired to it by a veth pair. An attached host reaches the test
// machine's addresses (where the server under test listens on
// Network.Addr()) and nothing beyond it: no NAT, no forwarding, hosts
// isolated from each other. Host.Start runs long-lived processes (the
// agent) inside the chroot and the namespace (process.go); LinkDown and
// LinkUp simulate losing the network.
//
// Everything is named with a "pl" prefix (bridges plbX-*, veths plvX-*,
// namespaces plnsX-*, mounts of source "patchloop-lab") and guarded by a
// lock held while it is in use, so that Sweep (sweep.go) can remove what
// crashed runs left behind without touching live tests of other processes.
//
// Everything here needs root, debootstrap, iproute2, nsenter and overlayfs.
package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultMirror is Debian's package mirror.
const DefaultMirror = "http://deb.debian.org/debian"

// DefaultCacheDir is where bases are kept between runs unless
// PATCHLOOP_LAB_CACHE says otherwise.
func DefaultCacheDir() string {
	if d := os.Getenv("PATCHLOOP_LAB_CACHE"); d != "" {
		return d
	}
	return "/var/cache/patchloop-lab"
}

// Base is a debootstrapped root directory, never modified after it is built.
type Base struct {
	Suite, Arch, Dir string
}

// EnsureBase returns the cached base for suite and arch, building it with
// debootstrap (about a minute) when absent. Concurrent callers wait on a
// lock instead of building twice; a half-built base is never used.
func EnsureBase(ctx context.Context, cacheDir, suite, arch, mirror string) (*Base, error) {
	dir := filepath.Join(cacheDir, fmt.Sprintf("%s-%s-minbase", suite, arch))
	b := &Base{Suite: suite, Arch: arch, Dir: dir}
	if complete(dir) {
		return b, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if complete(dir) {
		return b, nil
	}
	tmp := dir + ".building"
	os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--arch="+arch, suite, tmp, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("debootstrap %s %s: %w\n%s", suite, arch, err, tail(out, 2000))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".patchloop-base-complete"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return b, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".patchloop-base-complete"))
	return err == nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
