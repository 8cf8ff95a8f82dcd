package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mountSource names every mount the lab makes, so that Sweep can tell
// them apart in /proc/mounts.
const mountSource = "patchloop-lab"

// Host is one writable overlayfs copy of a base.
type Host struct {
	Name string
	Root string // the merged tree: the host's "/"
	dir  string // holds upper, work, the mount point, logs and the lock
	lock *os.File

	mu     sync.Mutex
	procs  []*Process
	nprocs int  // processes started so far, to name their logs
	proc   bool // /proc mounted inside Root
	closed bool
	// Set by Network.Attach; nil and empty when the host uses the
	// machine's network.
	net             *Network
	netns, veth, ip string
}

// NewHost mounts an overlay copy of base under dir (which must exist and
// be empty, e.g. a t.TempDir()). Close unmounts it.
func NewHost(base *Base, dir, name string) (*Host, error) {
	h := &Host{Name: name, dir: dir, Root: filepath.Join(dir, "root")}
	for _, d := range []string{"upper", "work", "root", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Held until Close: Sweep leaves hosts alone whose lock is taken.
	lock, err := lockFile(filepath.Join(dir, "lock"), true)
	if err != nil {
		return nil, fmt.Errorf("lab: lock host %s: %w", name, err)
	}
	h.lock = lock
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base.Dir, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := syscall.Mount(mountSource, h.Root, "overlay", 0, opts); err != nil {
		lock.Close()
		return nil, fmt.Errorf("mount overlay for %s at %s: %w", name, h.Root, err)
	}
	// Name resolution for apt inside the chroot.
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		os.WriteFile(filepath.Join(h.Root, "etc/resolv.conf"), data, 0o644)
	}
	return h, nil
}

// IP returns the host's address on its Network, "" when not attached.
func (h *Host) IP() string { h.mu.Lock(); defer h.mu.Unlock(); return h.ip }

// Netns returns the name of the host's network namespace (under
// /run/netns), "" when not attached.
func (h *Host) Netns() string { h.mu.Lock(); defer h.mu.Unlock(); return h.netns }

// Close stops the host's processes (and kills anything else still running
// in its chroot or namespace), deletes its namespace and veth, and
// unmounts its tree. It is safe to call twice.
func (h *Host) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.mu.Lock()
	procs := h.procs
	h.procs, h.closed = nil, true
	h.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Stop())
	}
	ns, _, _ := h.attachment()
	killInside(h.Root, netnsPath(ns))
	errs = append(errs, h.detach(ctx))
	errs = append(errs, unmount(filepath.Join(h.Root, "proc")), unmount(h.Root))
	h.mu.Lock()
	if h.lock != nil {
		h.lock.Close()
		h.lock = nil
	}
	h.mu.Unlock()
	return errors.Join(errs...)
}

// Run runs a command chrooted into the host and returns its combined
// output; the error includes the output. On an attached host the command
// also runs in the host's network namespace, as on the real endpoint.
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	cmd, err := h.command(ctx, false, args)
	if err != nil {
		return "", err
	}
	return h.run(cmd, args)
}

// RunHostNet is Run with the test machine's network even on an attached
// host, e.g. to apt-get update from Debian's mirror before the host is
// cut off.
func (h *Host) RunHostNet(ctx context.Context, args ...string) (string, error) {
	cmd, err := h.command(ctx, true, args)
	if err != nil {
		return "", err
	}
	return h.run(cmd, args)
}

func (h *Host) run(cmd *exec.Cmd, args []string) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w\n%s", strings.Join(args, " "), h.Name, err, tail(out, 2000))
	}
	return string(out), nil
}

// command returns a command running args chrooted into the host and, if
// attached and not hostNet, in its network namespace.
func (h *Host) command(ctx context.Context, hostNet bool, args []string) (*exec.Cmd, error) {
	ns, _, err := h.attachment()
	if err != nil && !hostNet {
		return nil, err
	}
	var cmd *exec.Cmd
	if ns != "" && !hostNet {
		pre := []string{"--net=" + netnsPath(ns), "--root=" + h.Root, "--wd=" + h.Root, "--"}
		cmd = exec.CommandContext(ctx, "nsenter", append(pre, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, "chroot", append([]string{h.Root}, args...)...)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	return cmd, nil
}

// WriteFile writes a file inside the host's tree.
func (h *Host) WriteFile(path, content string) error {
	full := filepath.Join(h.Root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(content), 0o644)
}

// mountProc mounts /proc inside the host's tree once; Close unmounts it.
func (h *Host) mountProc() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc {
		return nil
	}
	dir := filepath.Join(h.Root, "proc")
	if err := syscall.Mount(mountSource, dir, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("lab: mount proc at %s: %w", dir, err)
	}
	h.proc = true
	return nil
}

// unmount unmounts dir, detaching it lazily if busy; not mounted is fine.
func unmount(dir string) error {
	err := syscall.Unmount(dir, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	if err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return fmt.Errorf("lab: unmount %s: %w", dir, err)
}

// lockFile opens (creating) path and takes an exclusive flock on it,
// waiting for it if wait, else failing at once when it is taken. The lock
// lasts until the file is closed or the process dies.
func lockFile(path string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// killInside SIGKILLs every process whose root directory is root or whose
// network namespace is the one bound at nsPath (either may be ""), and
// waits up to five seconds for them to be gone.
func killInside(root, nsPath string) {
	var nsLink string
	if nsPath != "" {
		var st syscall.Stat_t
		if syscall.Stat(nsPath, &st) == nil {
			nsLink = fmt.Sprintf("net:[%d]", st.Ino)
		}
	}
	if root != "" {
		if r, err := filepath.EvalSymlinks(root); err == nil {
			root = r
		}
	}
	if root == "" && nsLink == "" {
		return
	}
	for try := 0; try < 50; try++ {
		found := false
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			r, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
			n, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
			if (root != "" && r == root) || (nsLink != "" && n == nsLink) {
				syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
