package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Checks
		err  string // "" valid
	}{
		{"empty", Checks{}, ""},
		{"all kinds", Checks{Units: []string{"nginx.service", "getty@tty1.service"},
			HTTP:     []HTTP{{URL: "http://127.0.0.1:8080/healthz", Status: 204}},
			TCP:      []TCP{{Address: "[::1]:5432"}},
			Commands: []Command{{Name: "selftest", Argv: []string{"/usr/local/bin/selftest", "--quick"}}}}, ""},
		{"unit without suffix", Checks{Units: []string{"nginx"}}, "units[0]"},
		{"unit as option", Checks{Units: []string{"--all.service"}}, "units[0]"},
		{"unit with space", Checks{Units: []string{"a b.service"}}, "units[0]"},
		{"ftp url", Checks{HTTP: []HTTP{{URL: "ftp://x/"}}}, "http[0]"},
		{"bad status", Checks{HTTP: []HTTP{{URL: "http://x/", Status: 42}}}, "status 42"},
		{"tcp no port", Checks{TCP: []TCP{{Address: "127.0.0.1"}}}, "tcp[0]"},
		{"relative argv", Checks{Commands: []Command{{Name: "x", Argv: []string{"selftest"}}}}, "absolute"},
		{"no argv", Checks{Commands: []Command{{Name: "x"}}}, "absolute"},
		{"duplicate name", Checks{Commands: []Command{{Name: "x", Argv: []string{"/bin/true"}}, {Name: "x", Argv: []string{"/bin/true"}}}}, "unique"},
	} {
		err := tc.c.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

func find(t *testing.T, rep Report, name string) Result {
	t.Helper()
	for _, r := range rep.Checks {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return Result{}
}

// TestProbesAgainstRealServices runs the probes against a real HTTP
// server and TCP listener on loopback, and closed ones.
func TestProbesAgainstRealServices(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer ln.Close()
	// A port nobody listens on: listen, note it, close.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	c := Checks{
		HTTP: []HTTP{{URL: srv.URL + "/ok"}, {URL: srv.URL + "/down"}, {URL: srv.URL + "/down", Status: 503},
			{URL: srv.URL + "/moved"}, {URL: "http://" + deadAddr + "/", Timeout: time.Second}},
		TCP: []TCP{{Address: ln.Addr().String()}, {Address: deadAddr, Timeout: time.Second}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), c, Options{Root: "/"})
	want := map[string]string{
		"http " + srv.URL + "/ok":       Pass,
		"http " + srv.URL + "/down":     Fail, // twice: 503 wanted 200, then 503 wanted 503
		"http " + srv.URL + "/moved":    Fail, // a redirect is not followed: 302, want 200
		"http http://" + deadAddr + "/": Fail,
		"tcp " + ln.Addr().String():     Pass,
		"tcp " + deadAddr:               Fail,
	}
	for name, status := range want {
		if r := find(t, rep, name); r.Status != status {
			t.Errorf("%s: %+v, want %s", name, r, status)
		}
	}
	if r := rep.Checks[3]; r.Status != Pass || r.Detail != "status 503" {
		t.Errorf("503 wanted: %+v", r)
	}
	if r := find(t, rep, "http "+srv.URL+"/moved"); !strings.Contains(r.Detail, "302") {
		t.Errorf("redirect detail: %q", r.Detail)
	}
	if rep.Healthy {
		t.Error("report with failed probes is healthy")
	}
	// dpkg --audit always runs; on this machine it may fail (another
	// apt at work), so it is left out of the counts.
	auditFailed := find(t, rep, "dpkg --audit").Status == Fail
	if got := rep.Failed(); len(got) != 4+map[bool]int{true: 1}[auditFailed] {
		t.Errorf("failed: %v", got)
	}

	ok := Run(context.Background(), Checks{HTTP: c.HTTP[:1], TCP: c.TCP[:1]}, Options{Root: "/"})
	if ok.Healthy != (find(t, ok, "dpkg --audit").Status == Pass) || len(ok.Failed()) > 1 {
		t.Errorf("only passing probes: %+v", ok)
	}
}

func TestCommandsOnlyWhenAllowed(t *testing.T) {
	for _, p := range []string{"/bin/true", "/bin/false", "/bin/sleep", "/bin/sh"} {
		if _, err := os.Stat(p); err != nil {
			t.Skip(p + " missing")
		}
	}
	c := Checks{Commands: []Command{
		{Name: "true", Argv: []string{"/bin/true"}},
		{Name: "false", Argv: []string{"/bin/sh", "-c", "echo broken >&2; exit 3"}},
		{Name: "slow", Argv: []string{"/bin/sleep", "30"}, Timeout: 300 * time.Millisecond},
	}}
	off := Run(context.Background(), c, Options{Root: "/"})
	for _, name := range []string{"command true", "command false", "command slow"} {
		if r := find(t, off, name); r.Status != Skip || !strings.Contains(r.Detail, "allow_commands") {
			t.Errorf("%s without allow_commands: %+v", name, r)
		}
	}
	start := time.Now()
	on := Run(context.Background(), c, Options{Root: "/", AllowCommands: true})
	if time.Since(start) > 10*time.Second {
		t.Errorf("a 300ms timeout took %v", time.Since(start))
	}
	if r := find(t, on, "command true"); r.Status != Pass {
		t.Errorf("true: %+v", r)
	}
	if r := find(t, on, "command false"); r.Status != Fail || r.Detail != "exit status 3: broken" {
		t.Errorf("false: %+v", r)
	}
	if r := find(t, on, "command slow"); r.Status != Fail || !strings.Contains(r.Detail, "timed out") {
		t.Errorf("slow: %+v", r)
	}
	if on.Healthy {
		t.Error("healthy with failing commands")
	}
}

// TestDpkgAuditAndUnitsHere runs dpkg --audit on this machine's real dpkg
// database (the test machine is Debian-based) and checks units are
// skipped, with the reason, where systemd is not the manager.
func TestDpkgAuditAndUnitsHere(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg on this machine")
	}
	want := Pass
	if out, _ := exec.Command("dpkg", "--audit").CombinedOutput(); len(strings.TrimSpace(string(out))) > 0 {
		want = Fail
	}
	rep := Run(context.Background(), Checks{Units: []string{"ssh.service"}}, Options{Root: "/"})
	if r := find(t, rep, "dpkg --audit"); r.Status != want {
		t.Errorf("dpkg --audit: %+v, want %s", r, want)
	}
	u := find(t, rep, "unit ssh.service")
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		if u.Status != Skip || !strings.Contains(u.Detail, "systemd is not running") {
			t.Errorf("unit without systemd: %+v", u)
		}
	} else if u.Status == Skip {
		t.Errorf("unit with systemd running was skipped: %+v", u)
	}
	// A chroot has no manager of its own.
	if r := unitCheck(context.Background(), "/srv/x", "a.service", SystemdRunning("/srv/x")); r.Status != Skip || !strings.Contains(r.Detail, "chroot") {
		t.Errorf("unit in a chroot: %+v", r)
	}
}
