// Package health runs the checks an agent makes after changing a
// machine, each reported with pass, fail or skip and a one-line detail:
// systemd units still active (`systemctl is-active`), `dpkg --audit`
// clean, HTTP probes (status code) and TCP probes, and operator-supplied
// commands. Which checks run is the agent's local configuration, never
// the server's: commands run only when that configuration allows them.
//
// Every command runs chrooted into the system's root unless it is "/";
// probes run from the agent's network namespace.
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Outcome of one check.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip" // could not be checked here; says why, never counts as a failure
)

// Checks are the checks to run, as an agent's local configuration lists them.
type Checks struct {
	// Units are systemd units that must be active afterwards.
	Units []string `yaml:"units" json:"units,omitempty"`
	HTTP  []HTTP   `yaml:"http" json:"http,omitempty"`
	TCP   []TCP    `yaml:"tcp" json:"tcp,omitempty"`
	// Commands run only when the configuration sets allow_commands.
	Commands []Command `yaml:"commands" json:"commands,omitempty"`
}

// HTTP is a GET whose answer must have Status (default 200).
type HTTP struct {
	URL     string        `yaml:"url" json:"url"`
	Status  int           `yaml:"status" json:"status,omitempty"`
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"` // default 5s
}

// TCP is a connection that must be accepted.
type TCP struct {
	Address string        `yaml:"address" json:"address"` // host:port
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Command is a program (no shell) that must exit 0.
type Command struct {
	Name    string        `yaml:"name" json:"name"`
	Argv    []string      `yaml:"argv" json:"argv"`
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"` // default 60s
}

var (
	unitName  = regexp.MustCompile(`^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*\.(service|socket|target|mount|timer|path)$`)
	checkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
)

// ValidUnit reports whether name is a systemd unit name with a suffix,
// which cannot be taken for an option by systemctl.
func ValidUnit(name string) bool { return unitName.MatchString(name) }

// Validate checks the configuration; the error names the first bad entry.
func (c Checks) Validate() error {
	for i, u := range c.Units {
		if !ValidUnit(u) {
			return fmt.Errorf("health.units[%d]: %q is not a unit name (like nginx.service)", i, u)
		}
	}
	for i, h := range c.HTTP {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("health.http[%d]: %q is not an http(s) URL", i, h.URL)
		}
		if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
			return fmt.Errorf("health.http[%d]: status %d is not an HTTP status", i, h.Status)
		}
		if h.Timeout < 0 {
			return fmt.Errorf("health.http[%d]: negative timeout", i)
		}
	}
	for i, t := range c.TCP {
		if _, port, err := net.SplitHostPort(t.Address); err != nil || port == "" {
			return fmt.Errorf("health.tcp[%d]: %q is not host:port", i, t.Address)
		}
		if t.Timeout < 0 {
			return fmt.Errorf("health.tcp[%d]: negative timeout", i)
		}
	}
	seen := map[string]bool{}
	for i, cmd := range c.Commands {
		if !checkName.MatchString(cmd.Name) || seen[cmd.Name] {
			return fmt.Errorf("health.commands[%d]: name %q: want a unique name of letters, digits, . _ -", i, cmd.Name)
		}
		seen[cmd.Name] = true
		if len(cmd.Argv) == 0 || !filepath.IsAbs(cmd.Argv[0]) {
			return fmt.Errorf("health.commands[%d] (%s): argv must start with an absolute path", i, cmd.Name)
		}
		if cmd.Timeout < 0 {
			return fmt.Errorf("health.commands[%d] (%s): negative timeout", i, cmd.Name)
		}
	}
	return nil
}

// Result is one check's outcome.
type Result struct {
	Name   string `json:"name"` // e.g. "unit nginx.service", "dpkg --audit", "http http://...", "command selftest"
	Kind   string `json:"kind"` // unit, dpkg-audit, http, tcp, command
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Duration is in milliseconds.
	Millis int64 `json:"ms"`
}

// Report is the outcome of Run.
type Report struct {
	// Healthy is false when any check failed; skipped checks do not count.
	Healthy bool     `json:"healthy"`
	Checks  []Result `json:"checks"`
}

// Failed lists the names of the checks that failed.
func (r Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c.Name)
		}
	}
	return out
}

// Options say where and how to run checks.
type Options struct {
	// Root is the system ("/" for this machine): commands are chrooted
	// into any other, and systemd units are skipped there (no manager).
	Root string
	// AllowCommands lets Checks.Commands run; otherwise each is skipped.
	AllowCommands bool
	// Client does the HTTP probes; nil a client that does not follow
	// redirects (the status asked for is the first answer's).
	Client *http.Client
}

// Run runs every check in c, then `dpkg --audit`, in order, and reports
// each. It returns when all are done; ctx bounds the whole run.
func Run(ctx context.Context, c Checks, o Options) Report {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var rep Report
	add := func(r Result, start time.Time) {
		r.Millis = time.Since(start).Milliseconds()
		rep.Checks = append(rep.Checks, r)
	}
	manager := SystemdRunning(o.Root)
	for _, u := range c.Units {
		start := time.Now()
		add(unitCheck(ctx, o.Root, u, manager), start)
	}
	start := time.Now()
	add(dpkgAudit(ctx, o.Root), start)
	for _, h := range c.HTTP {
		start := time.Now()
		add(httpCheck(ctx, o.Client, h), start)
	}
	for _, t := range c.TCP {
		start := time.Now()
		add(tcpCheck(ctx, t), start)
	}
	for _, cmd := range c.Commands {
		start := time.Now()
		if !o.AllowCommands {
			add(Result{Name: "command " + cmd.Name, Kind: "command", Status: Skip,
				Detail: "commands are not allowed by the agent's configuration (allow_commands: false)"}, start)
			continue
		}
		add(commandCheck(ctx, o.Root, cmd), start)
	}
	rep.Healthy = true
	for _, r := range rep.Checks {
		if r.Status == Fail {
			rep.Healthy = false
		}
	}
	return rep
}

// SystemdRunning says whether systemd manages the system at root: only
// for "/" and only when /run/systemd/system exists (sd_booted(3)). An
// empty string means it does; otherwise it is the reason it does not.
func SystemdRunning(root string) string {
	if filepath.Clean(root) != "/" {
		return "the system is a chroot (" + root + "); no service manager runs its units"
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return "systemd is not running (no /run/systemd/system)"
	}
	return ""
}

func unitCheck(ctx context.Context, root, unit, noManager string) Result {
	r := Result{Name: "unit " + unit, Kind: "unit"}
	if noManager != "" {
		r.Status, r.Detail = Skip, noManager
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := command(ctx, root, "systemctl", "is-active", "--", unit).Output()
	state := strings.TrimSpace(string(out))
	switch {
	case err == nil && state == "active":
		r.Status, r.Detail = Pass, "active"
	case state != "":
		r.Status, r.Detail = Fail, state
	default:
		r.Status, r.Detail = Fail, fmt.Sprintf("systemctl is-active: %v", err)
	}
	return r
}

func dpkgAudit(ctx context.Context, root string) Result {
	r := Result{Name: "dpkg --audit", Kind: "dpkg-audit"}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := command(ctx, root, "dpkg", "--audit")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	switch {
	case err == nil && text == "":
		r.Status, r.Detail = Pass, "no packages half-installed or unconfigured"
	case text != "":
		r.Status, r.Detail = Fail, tail(text, 2000)
	default:
		r.Status, r.Detail = Fail, err.Error()
	}
	return r
}

func httpCheck(ctx context.Context, client *http.Client, h HTTP) Result {
	r := Result{Name: "http " + h.URL, Kind: "http"}
	want := h.Status
	if want == 0 {
		want = http.StatusOK
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(h.Timeout, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	resp, err := client.Do(req)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		r.Status, r.Detail = Fail, fmt.Sprintf("status %d, want %d", resp.StatusCode, want)
		return r
	}
	r.Status, r.Detail = Pass, fmt.Sprintf("status %d", resp.StatusCode)
	return r
}

func tcpCheck(ctx context.Context, t TCP) Result {
	r := Result{Name: "tcp " + t.Address, Kind: "tcp"}
	d := net.Dialer{Timeout: orDefault(t.Timeout, 5*time.Second)}
	c, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	c.Close()
	r.Status, r.Detail = Pass, "connected"
	return r
}

func commandCheck(ctx context.Context, root string, c Command) Result {
	r := Result{Name: "command " + c.Name, Kind: "command"}
	ctx, cancel := context.WithTimeout(ctx, orDefault(c.Timeout, time.Minute))
	defer cancel()
	cmd := command(ctx, root, c.Argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := tail(strings.TrimSpace(out.String()), 2000)
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.Status, r.Detail = Pass, text
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.Status, r.Detail = Fail, strings.TrimSpace(fmt.Sprintf("exit status %d: %s", ee.ExitCode(), text))
	case ctx.Err() != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("timed out after %v: %s", orDefault(c.Timeout, time.Minute), text)
	default:
		r.Status, r.Detail = Fail, err.Error()
	}
	return r
}

// command runs args on the system at root: chrooted unless it is "/",
// in the C locale.
func command(ctx context.Context, root string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if filepath.Clean(root) == "/" {
		cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	} else {
		cmd = exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
