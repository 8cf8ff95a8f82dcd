// Package lab builds real Debian test endpoints: one debootstrap
// --variant=minbase base per (suite, arch), cached on disk and shared,
// and a cheap overlayfs copy of it per host that tests may change freely.
// Network namespaces per host come with the fleet lab (later).
//
// Everything here needs root, debootstrap and overlayfs.
package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Host is one writable overlayfs copy of a base.
type Host struct {
	Name string
	Root string // the merged tree: the host's "/"
	dir  string // holds upper, work and the mount point
}

// NewHost mounts an overlay copy of base under dir (which must exist and
// be empty, e.g. a t.TempDir()). Close unmounts it.
func NewHost(base *Base, dir, name string) (*Host, error) {
	h := &Host{Name: name, dir: dir, Root: filepath.Join(dir, "root")}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base.Dir, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := syscall.Mount("overlay", h.Root, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("mount overlay for %s at %s: %w", name, h.Root, err)
	}
	// Name resolution for apt inside the chroot.
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		os.WriteFile(filepath.Join(h.Root, "etc/resolv.conf"), data, 0o644)
	}
	return h, nil
}

// Close unmounts the host's tree; it is safe to call twice.
func (h *Host) Close() error {
	err := syscall.Unmount(h.Root, 0)
	if errors.Is(err, syscall.EINVAL) { // not mounted (any more)
		return nil
	}
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(h.Root, syscall.MNT_DETACH)
	}
	return err
}

// Run runs a command chrooted into the host and returns its combined
// output; the error includes the output.
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "chroot", append([]string{h.Root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w\n%s", strings.Join(args, " "), h.Name, err, tail(out, 2000))
	}
	return string(out), nil
}

// WriteFile writes a file inside the host's tree.
func (h *Host) WriteFile(path, content string) error {
	full := filepath.Join(h.Root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(content), 0o644)
}
