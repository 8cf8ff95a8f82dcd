package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serve serves msg and the client's address over HTTP on addr until the
// test ends and returns the address it listens on.
func serve(t *testing.T, addr, msg string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s to %s\n", msg, r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// get fetches http://addr/ from inside h with bash's /dev/tcp: minbase
// has neither curl nor wget.
func get(ctx context.Context, h *Host, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3`, host, port)
	return h.Run(ctx, "timeout", "3", "bash", "-c", script)
}

func attached(t *testing.T, base *Base, n *Network, name string) *Host {
	t.Helper()
	h := newHost(t, base, name)
	if err := n.Attach(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNetwork(t *testing.T) {
	base := labBase(t)
	ctx := context.Background()
	n := newNetwork(t, t.Name())
	other := newNetwork(t, t.Name())
	if n.Addr() == other.Addr() || n.Bridge == other.Bridge {
		t.Fatalf("two networks share %s %s", n.Addr(), n.Bridge)
	}
	h1, h2 := attached(t, base, n, "h1"), attached(t, base, n, "h2")
	if h1.IP() == h2.IP() || !strings.HasPrefix(h1.IP(), strings.TrimSuffix(n.Addr(), "1")) {
		t.Fatalf("addresses: network %s, hosts %s and %s", n.Addr(), h1.IP(), h2.IP())
	}
	srv := serve(t, n.Addr()+":0", "hello from the server")
	local := serve(t, "127.0.0.1:0", "hello from loopback")

	for _, h := range []*Host{h1, h2} {
		out, err := get(ctx, h, srv)
		if want := "hello from the server to " + h.IP() + ":"; err != nil || !strings.Contains(out, want) {
			t.Errorf("%s: GET %s = %q, %v; want %q", h.Name, srv, out, err, want)
		}
		if out, err := get(ctx, h, local); err == nil {
			t.Errorf("%s reached the test machine's loopback %s: %q", h.Name, local, out)
		}
	}
	// Hosts are isolated: no ARP answer, so no "Connection refused" either.
	out, err := h1.Run(ctx, "timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/"+h2.IP()+"/9")
	if err == nil || strings.Contains(out, "refused") {
		t.Errorf("h1 reached h2: %q, %v", out, err)
	}
	// Nothing is forwarded beyond the test machine.
	if ip := debianIP(ctx); ip == "" {
		t.Log("deb.debian.org not resolvable here: outside check skipped")
	} else if _, err := get(ctx, h1, net.JoinHostPort(ip, "80")); err == nil {
		t.Errorf("h1 reached %s (deb.debian.org)", ip)
	} else if out, err := h1.RunHostNet(ctx, "timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/"+ip+"/80"); err != nil {
		t.Errorf("RunHostNet cannot reach %s (deb.debian.org) either: %v %s", ip, err, out)
	}

	if err := h1.LinkDown(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := get(ctx, h1, srv); err == nil {
		t.Errorf("h1 reached the server with its link down: %q", out)
	}
	if out, err := get(ctx, h2, srv); err != nil {
		t.Errorf("h2 lost the server when h1's link went down: %v %s", err, out)
	}
	if err := h1.LinkUp(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := get(ctx, h1, srv)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h1 does not reach the server after LinkUp: %v %s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// debianIP returns an IPv4 address of deb.debian.org, "" if unknown.
func debianIP(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, _ := net.DefaultResolver.LookupIP(ctx, "ip4", "deb.debian.org")
	if len(ips) == 0 {
		return ""
	}
	return ips[0].String()
}

func TestStart(t *testing.T) {
	base := labBase(t)
	ctx := context.Background()
	h := attached(t, base, newNetwork(t, "start"), "agent")
	version, err := os.ReadFile(filepath.Join(base.Dir, "etc/debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	// Ignores SIGTERM, and so does its child: Stop must come to SIGKILL.
	p, err := h.Start(ctx, []string{"GREETING=hello"}, "bash", "-c",
		`trap "" TERM; echo "$GREETING $(cat /etc/debian_version)"; test -e /proc/self/ns/net && echo proc ok; sleep 1000 & wait`)
	if err != nil {
		t.Fatal(err)
	}
	want := "hello " + string(version) + "proc ok\n"
	waitFor(t, func() bool { return p.Log() == want }, func() string { return fmt.Sprintf("log %q, want %q", p.Log(), want) })
	root, _ := filepath.EvalSymlinks(h.Root)
	if r, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", p.Pid())); r != root {
		t.Errorf("process root %q, want %q", r, root)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(netnsPath(h.Netns()), &st); err != nil {
		t.Fatal(err)
	}
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.Pid())); ns != fmt.Sprintf("net:[%d]", st.Ino) {
		t.Errorf("process in network namespace %s, want %s's (inode %d)", ns, h.Netns(), st.Ino)
	}
	if len(inside(h.Root)) != 2 {
		t.Errorf("processes in the chroot: %v, want bash and sleep", inside(h.Root))
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.Err() == nil {
		t.Error("Err() = nil after a kill")
	}
	if pids := inside(h.Root); len(pids) > 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}

	// Cancelling ctx stops the process.
	ctx2, cancel := context.WithCancel(ctx)
	p2, err := h.Start(ctx2, nil, "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-p2.Done():
	case <-time.After(3 * time.Second):
		t.Errorf("sleep still running 3s after its context was cancelled")
	}
}

func waitFor(t *testing.T, ok func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	base := labBase(t)
	ctx := context.Background()
	n, err := NewNetwork(ctx, "close")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h, err := NewHost(base, dir, "closing")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Attach(ctx, h); err != nil {
		t.Fatal(err)
	}
	// A daemon that left its process group: Close must find it anyway.
	p, err := h.Start(ctx, nil, "bash", "-c", "setsid sleep 1000 & sleep 1000")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(inside(h.Root)) == 3 }, func() string { return fmt.Sprintf("processes in the chroot: %v", inside(h.Root)) })
	ns, veth := h.Netns(), h.veth
	for i := 0; i < 2; i++ {
		if err := h.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
	select {
	case <-p.Done():
	default:
		t.Error("process running after Close")
	}
	if pids := inside(h.Root); len(pids) > 0 {
		t.Errorf("processes left after Close: %v", pids)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
		t.Errorf("netns %s left after Close:\n%s", ns, out)
	}
	if exists("/sys/class/net/" + veth) {
		t.Errorf("veth %s left after Close", veth)
	}
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Errorf("still mounted after Close: %v", m)
	}
	for i := 0; i < 2; i++ {
		if err := n.Close(); err != nil {
			t.Fatalf("close network #%d: %v", i+1, err)
		}
	}
	if exists("/sys/class/net/" + n.Bridge) {
		t.Errorf("bridge %s left after Close", n.Bridge)
	}
	if _, err := h.Start(ctx, nil, "true"); err == nil {
		t.Error("Start on a closed host succeeded")
	}
}

func TestAttachFailureLeavesNothing(t *testing.T) {
	base := labBase(t)
	ctx := context.Background()
	n := newNetwork(t, "fail")
	h := newHost(t, base, "unlucky")
	// Without its bridge, Attach fails half-way: after the netns and veth.
	if err := ip(ctx, "delete bridge", "link", "del", n.Bridge); err != nil {
		t.Fatal(err)
	}
	err := n.Attach(ctx, h)
	if err == nil || !strings.Contains(err.Error(), "enslave") {
		t.Fatalf("Attach without bridge: %v", err)
	}
	if h.Netns() != "" || h.IP() != "" {
		t.Errorf("failed Attach left netns %q ip %q on the host", h.Netns(), h.IP())
	}
	for _, left := range append(labNames("/run/netns", n.x), labNames("/sys/class/net", n.x)...) {
		t.Errorf("left behind on network %s: %s", n.Bridge, left)
	}
	if out, err := h.Run(ctx, "true"); err != nil {
		t.Errorf("host unusable after a failed Attach: %v %s", err, out)
	}
}
