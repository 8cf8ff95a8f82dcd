package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Networks use 10.231.X.0/24 with X in 1..254; X is owned by whoever holds
// the flock on runDir/net-X.lock, across processes.
const (
	subnetPrefix = "10.231."
	runDir       = "/run/patchloop-lab"
)

// labName matches the names of the links and namespaces the lab makes:
// bridge plbX-name, host-side veth plvX-N, namespace plnsX-N.
var labName = regexp.MustCompile(`^(plb|plv|plns)([0-9]+)-`)

// Network is a Linux bridge on the test machine with the address
// 10.231.X.1/24, to which hosts are attached, each in its own network
// namespace. Nothing is forwarded or NATed: attached hosts reach the test
// machine and nothing else, not even each other.
type Network struct {
	Bridge string // the bridge's interface name
	x      int

	mu     sync.Mutex
	lock   *os.File // held while the network exists
	next   int      // last octet of the next host's address
	closed bool
}

// NewNetwork creates a bridge named after name (shortened to fit the 15
// characters of an interface name) on the first /24 of 10.231.0.0/16 that
// no other live network, of this process or another, holds and that no
// interface of the test machine uses. Close removes it.
func NewNetwork(ctx context.Context, name string) (*Network, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: new network %s: %w", name, err)
	}
	for x := 1; x <= 254; x++ {
		lock, err := lockFile(filepath.Join(runDir, fmt.Sprintf("net-%d.lock", x)), false)
		if err != nil {
			continue // a live network has it
		}
		// Whatever plbX/plvX/plnsX exists now was left by a crashed run.
		if err := cleanNet(ctx, x); err != nil {
			lock.Close()
			return nil, err
		}
		if used, err := subnetUsed(ctx, x); err != nil || used {
			lock.Close()
			if err != nil {
				return nil, err
			}
			continue
		}
		n := &Network{Bridge: bridgeName(x, name), x: x, lock: lock, next: 2}
		if err := n.create(ctx); err != nil {
			n.Close()
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("lab: new network %s: no free subnet in %s0.0/16", name, subnetPrefix)
}

func (n *Network) create(ctx context.Context) error {
	if err := ip(ctx, "add bridge "+n.Bridge, "link", "add", n.Bridge, "type", "bridge"); err != nil {
		return err
	}
	// Never route what the hosts send elsewhere, even if the test machine
	// forwards for others; keep IPv6 (link-local) off the bridge.
	if err := sysctl("ipv4/conf/"+n.Bridge+"/forwarding", "0"); err != nil {
		return err
	}
	if err := sysctl("ipv6/conf/"+n.Bridge+"/disable_ipv6", "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err // no IPv6 in this kernel is fine
	}
	if err := ip(ctx, "address bridge "+n.Bridge, "addr", "add", n.Addr()+"/24", "dev", n.Bridge); err != nil {
		return err
	}
	return ip(ctx, "set bridge "+n.Bridge+" up", "link", "set", n.Bridge, "up")
}

// Addr returns the bridge's address, where a server for the hosts listens.
func (n *Network) Addr() string { return fmt.Sprintf("%s%d.1", subnetPrefix, n.x) }

// Close deletes the bridge and, if their hosts were not closed first, the
// hosts' namespaces and veths. It is safe to call twice.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cleanNet(ctx, n.x)
	n.lock.Close()
	return err
}

// Attach puts h into a new network namespace with lo up and an eth0 at
// 10.231.X.N/24, default route via Addr(), linked by a veth pair to the
// bridge, and mounts /proc in its tree. From then on h.Run and h.Start
// run inside the namespace. If Attach fails it leaves nothing behind.
func (n *Network) Attach(ctx context.Context, h *Host) (err error) {
	n.mu.Lock()
	i, closed := n.next, n.closed
	n.next++
	n.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("lab: attach %s to %s: network closed", h.Name, n.Bridge)
	case i > 254:
		return fmt.Errorf("lab: attach %s to %s: network full", h.Name, n.Bridge)
	}
	h.mu.Lock()
	if h.netns != "" || h.closed {
		h.mu.Unlock()
		return fmt.Errorf("lab: attach %s to %s: host closed or already attached", h.Name, n.Bridge)
	}
	ns, veth, addr := fmt.Sprintf("plns%d-%d", n.x, i), fmt.Sprintf("plv%d-%d", n.x, i), fmt.Sprintf("%s%d.%d", subnetPrefix, n.x, i)
	h.net, h.netns, h.veth, h.ip = n, ns, veth, addr
	h.mu.Unlock()
	defer func() {
		if err != nil {
			h.detach(context.Background())
		}
	}()
	steps := []struct {
		what string
		args []string
	}{
		{"add netns " + ns, []string{"netns", "add", ns}},
		{"add veth " + veth, []string{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns}},
		{"address eth0 in " + ns, []string{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"}},
		{"set eth0 up in " + ns, []string{"-n", ns, "link", "set", "eth0", "up"}},
		{"set lo up in " + ns, []string{"-n", ns, "link", "set", "lo", "up"}},
		{"enslave " + veth + " to " + n.Bridge, []string{"link", "set", veth, "master", n.Bridge}},
		{"isolate " + veth, []string{"link", "set", veth, "type", "bridge_slave", "isolated", "on"}},
		{"set " + veth + " up", []string{"link", "set", veth, "up"}},
		{"add default route in " + ns, []string{"-n", ns, "route", "add", "default", "via", n.Addr()}},
	}
	for _, s := range steps {
		if err := ip(ctx, s.what, s.args...); err != nil {
			return err
		}
	}
	return h.mountProc()
}

// detach deletes the host's veth and namespace, if any and if its network
// has not done so: once closed, the network's names may be someone else's.
func (h *Host) detach(ctx context.Context) error {
	h.mu.Lock()
	n, ns, veth := h.net, h.netns, h.veth
	h.net, h.netns, h.veth, h.ip = nil, "", "", ""
	h.mu.Unlock()
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	return errors.Join(deleteLink(ctx, veth), deleteNetns(ctx, ns))
}

// LinkDown cuts the host off the network, as if its cable were pulled:
// the host-side veth goes down, the host keeps its address and routes.
func (h *Host) LinkDown(ctx context.Context) error { return h.setLink(ctx, "down") }

// LinkUp restores the link cut by LinkDown.
func (h *Host) LinkUp(ctx context.Context) error { return h.setLink(ctx, "up") }

func (h *Host) setLink(ctx context.Context, state string) error {
	_, veth, err := h.attachment()
	if err == nil && veth == "" {
		err = fmt.Errorf("lab: %s not attached", h.Name)
	}
	if err != nil {
		return fmt.Errorf("lab: set link %s: %w", state, err)
	}
	return ip(ctx, "set "+veth+" "+state, "link", "set", veth, state)
}

// attachment returns the host's namespace and veth, "" if not attached,
// and an error if its network was closed: the names may be someone else's
// by now.
func (h *Host) attachment() (ns, veth string, err error) {
	h.mu.Lock()
	n, ns, veth := h.net, h.netns, h.veth
	h.mu.Unlock()
	if n == nil {
		return "", "", nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", "", fmt.Errorf("lab: network %s of %s closed", n.Bridge, h.Name)
	}
	return ns, veth, nil
}

// cleanNet removes the links and namespaces of subnet x, killing the
// processes inside the namespaces; the caller holds x's lock. Links go
// first: deleting a namespace frees its end of a veth only later.
func cleanNet(ctx context.Context, x int) error {
	var errs []error
	for _, prefix := range []string{"plv", "plb"} { // ports before bridges
		for _, link := range labNames("/sys/class/net", x) {
			if strings.HasPrefix(link, prefix) {
				errs = append(errs, deleteLink(ctx, link))
			}
		}
	}
	for _, ns := range labNames("/run/netns", x) {
		killInside("", netnsPath(ns))
		errs = append(errs, deleteNetns(ctx, ns))
	}
	return errors.Join(errs...)
}

// labNames lists the lab's names in dir (/run/netns or /sys/class/net),
// for subnet x, or all of them if x is 0.
func labNames(dir string, x int) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		m := labName.FindStringSubmatch(e.Name())
		if m != nil && (x == 0 || m[2] == strconv.Itoa(x)) {
			names = append(names, e.Name())
		}
	}
	return names
}

func deleteLink(ctx context.Context, link string) error {
	return deleteIfThere(ctx, "link", link, filepath.Join("/sys/class/net", link))
}

func deleteNetns(ctx context.Context, ns string) error {
	return deleteIfThere(ctx, "netns", ns, netnsPath(ns))
}

// deleteIfThere runs ip OBJECT del NAME unless path shows it gone already,
// or gone meanwhile (the peer of a deleted veth goes with it).
func deleteIfThere(ctx context.Context, object, name, path string) error {
	if name == "" || !exists(path) {
		return nil
	}
	if err := ip(ctx, "delete "+object+" "+name, object, "del", name); err != nil && exists(path) {
		return err
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func netnsPath(ns string) string {
	if ns == "" {
		return ""
	}
	return "/run/netns/" + ns
}

// subnetUsed reports whether an interface has an address in 10.231.x.0/24.
func subnetUsed(ctx context.Context, x int) (bool, error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("lab: list addresses: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.Contains(string(out), fmt.Sprintf(" inet %s%d.", subnetPrefix, x)), nil
}

// bridgeName is "plbX-" followed by as much of name (letters and digits)
// as fits in an interface name.
func bridgeName(x int, name string) string {
	short := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return -1
	}, name)
	if short == "" {
		short = "net"
	}
	b := fmt.Sprintf("plb%d-%s", x, short)
	if len(b) > 15 {
		b = b[:15]
	}
	return b
}

// sysctl writes value to /proc/sys/net/key.
func sysctl(key, value string) error {
	if err := os.WriteFile("/proc/sys/net/"+key, []byte(value), 0o644); err != nil {
		return fmt.Errorf("lab: sysctl net/%s: %w", key, err)
	}
	return nil
}

// ip runs ip(8); the error says what failed and what ip printed.
func ip(ctx context.Context, what string, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s: %w: %s", what, err, strings.TrimSpace(string(out)))
	}
	return nil
}
