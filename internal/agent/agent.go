// Package agent is the endpoint side of patchloop: it enrolls with the
// server, then checks in on an interval (with jitter, and exponential
// back-off while the server is unreachable), sends its inventory when the
// server lacks it, and runs the jobs the server hands out, reporting each
// result under the job's ID so that a job run twice is stored once.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/pki"
)

// Config configures an agent.
type Config struct {
	StateDir string // where State lives
	Root     string // the system to report; "/" normally
	Log      *slog.Logger
	Timeout  time.Duration // per request; 0: 30s
	// MaxBackoff caps the wait between failed check-ins; 0:
	// DefaultMaxBackoff.
	MaxBackoff time.Duration
	// ConfigFile is the local configuration (LocalConfig): what this
	// machine allows jobs to do and its health gates. "" or a missing
	// file allows no reboot and no commands.
	ConfigFile string
	// KeepDir is where, inside Root, installs keep the previous versions
	// for rollback, one directory per install job; "": apply's default.
	KeepDir string
}

func (c *Config) defaults() {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.KeepDir == "" {
		c.KeepDir = "/var/lib/patchloop/rollback"
	}
}

// Enroll trades token for a host credential at server, trusting the
// server only if its CA has the given fingerprint, and saves the state.
func Enroll(ctx context.Context, cfg Config, server, caFingerprint, token string) (*State, error) {
	cfg.defaults()
	fpr, err := pki.NormalizeFingerprint(caFingerprint)
	if err != nil {
		return nil, err
	}
	_, facts, err := Collect(cfg.Root)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(server, fpr, "", cfg.Timeout)
	if err != nil {
		return nil, err
	}
	resp, err := c.Enroll(ctx, token, facts)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	st := &State{Server: server, CAFingerprint: fpr, HostID: resp.HostID, Credential: resp.Credential}
	if err := st.Save(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("save state: %w", err)
	}
	cfg.Log.Info("enrolled", "host", resp.HostID, "server", server)
	return st, nil
}

// Agent is an enrolled agent.
type Agent struct {
	cfg    Config
	st     *State
	client *Client
	// interval is the server's check-in interval, as last told.
	interval time.Duration
	// pending are jobs handed out but not yet reported, oldest first,
	// with their result once run: a job whose run or report failed for
	// want of the server is kept and finished at the next check-in, so a
	// server restart between hand-out and result loses nothing.
	pending []*pendingJob
	// journal keeps the jobs that change the machine (journal.go).
	journal journal
	local   LocalConfig
	// lastQuick is when an inventory sent last made the agent check in
	// again at once.
	lastQuick time.Time
	// noWaitUntil: until then, check-ins do not ask to be held (the
	// server refused the field).
	noWaitUntil time.Time
}

type pendingJob struct {
	job    api.Job
	result *api.JobResult
}

// New loads the state and returns an agent ready to Run.
func New(cfg Config) (*Agent, error) {
	cfg.defaults()
	st, err := LoadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(st.Server, st.CAFingerprint, st.Credential, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, st: st, client: c, interval: time.Minute, journal: journal{dir: filepath.Join(cfg.StateDir, "jobs")}}
	if cfg.ConfigFile != "" {
		if a.local, err = LoadLocalConfig(cfg.ConfigFile); err != nil {
			return nil, err
		}
	}
	// Jobs started or finished before a restart whose result the server
	// may lack are reported first, from the journal or from what the
	// machine shows; never run again.
	unfinished, err := a.journal.unfinished()
	if err != nil {
		return nil, err
	}
	for _, j := range unfinished {
		a.pending = append(a.pending, &pendingJob{job: j})
	}
	return a, nil
}

// Run checks in until ctx ends. Failures are logged and retried with
// back-off; Run returns only when ctx is done.
//
// Each check-in asks the server to hold its answer for about an interval
// until a job comes (a long poll), so that jobs start within a second of
// being queued. After an answer the server held, after sending the
// inventory, or after running jobs (a rollout often queues the next step
// at once), the agent checks in again after about a second; otherwise (a
// server that does not hold) after the interval, ±10%.
func (a *Agent) Run(ctx context.Context) error {
	failures := 0
	for {
		again, err := a.once(ctx, jitter(a.interval))
		wait := jitter(a.interval)
		if again {
			wait = jitter(time.Second)
		}
		if err != nil {
			failures++
			wait = RetryWait(err, failures, a.cfg.MaxBackoff)
			level := slog.LevelWarn
			var se *StatusError
			if errors.As(err, &se) && se.Refused() {
				level = slog.LevelError // revoked or unknown: an operator must act
			}
			a.cfg.Log.Log(ctx, level, "check-in failed", "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			a.cfg.Log.Debug("checked in", "next_in", wait.Round(time.Millisecond))
			if failures > 0 {
				a.cfg.Log.Info("check-in recovered", "after_failures", failures)
			}
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Once does one check-in, answered at once: report, send the inventory
// if asked, run jobs.
func (a *Agent) Once(ctx context.Context) error {
	_, err := a.once(ctx, 0)
	return err
}

// once does one check-in that the server may hold up to wait while it
// has no job (never while jobs of an earlier check-in are unreported).
// again is whether to check in again soon: the server held the answer,
// asked for the inventory, or handed out jobs.
func (a *Agent) once(ctx context.Context, wait time.Duration) (again bool, err error) {
	inv, facts, err := Collect(a.cfg.Root)
	if err != nil {
		return false, fmt.Errorf("read inventory: %w", err)
	}
	hash := inv.Hash()
	req := api.CheckInRequest{Facts: facts, InventoryHash: hash}
	if len(a.pending) == 0 && time.Now().After(a.noWaitUntil) {
		req.WaitSeconds = int(wait / time.Second)
	}
	resp, err := a.client.CheckIn(ctx, req)
	if req.WaitSeconds > 0 && refusedWait(err) {
		// A server older than held check-ins refuses the field: check in
		// without it, and ask again in an hour (it may be upgraded).
		a.cfg.Log.Info("server does not hold check-ins; checking in every interval", "err", err)
		a.noWaitUntil = time.Now().Add(time.Hour)
		req.WaitSeconds = 0
		resp, err = a.client.CheckIn(ctx, req)
	}
	if err != nil {
		return false, err
	}
	if resp.IntervalSeconds > 0 {
		a.interval = time.Duration(resp.IntervalSeconds) * time.Second
	}
	if resp.SendInventory {
		if err := a.client.PutInventory(ctx, inv); err != nil {
			return false, fmt.Errorf("send inventory: %w", err)
		}
		a.cfg.Log.Info("inventory sent", "packages", len(inv.Packages), "hash", hash[:12])
	}
	for _, j := range resp.Jobs {
		if !a.isPending(j.ID) {
			a.pending = append(a.pending, &pendingJob{job: j})
		}
	}
	// A held answer, an inventory sent (the server held nothing) or jobs
	// to run: check in again soon, to be held again. (After an inventory,
	// at most once an interval: one that changes at every check-in, as
	// during a long dpkg run, is sent once an interval, as before.)
	quickInventory := resp.SendInventory && time.Since(a.lastQuick) >= a.interval
	again = resp.Held || quickInventory || len(a.pending) > 0
	if quickInventory {
		a.lastQuick = time.Now()
	}
	for len(a.pending) > 0 {
		p := a.pending[0]
		if p.result == nil {
			res, err := a.run(ctx, p.job)
			if err != nil {
				return false, fmt.Errorf("job %s: %w", p.job.ID, err)
			}
			p.result = &res
		}
		if err := a.client.JobResult(ctx, p.job.ID, *p.result); err != nil {
			var se *StatusError
			if !errors.As(err, &se) || se.Code >= 500 {
				return false, fmt.Errorf("report job %s: %w", p.job.ID, err)
			}
			// The server refused this result for good (e.g. the job is
			// gone): drop it rather than block the queue.
			a.cfg.Log.Warn("job result refused", "job", p.job.ID, "err", err)
			a.reported(p.job.ID)
		} else {
			a.reported(p.job.ID)
			a.cfg.Log.Info("job done", "job", p.job.ID, "kind", p.job.Kind, "status", p.result.Status)
		}
		a.pending = a.pending[1:]
	}
	return again, nil
}

// refusedWait reports whether err is a server's refusal of the
// wait_seconds field: a server older than held check-ins decodes requests
// strictly (400, unknown field).
func refusedWait(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusBadRequest && strings.Contains(se.Reason, `"wait_seconds"`)
}

func (a *Agent) isPending(id string) bool {
	for _, p := range a.pending {
		if p.job.ID == id {
			return true
		}
	}
	return false
}

// jitter spreads check-ins: interval ±10%.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// DefaultMaxBackoff is the longest an agent waits after failures in a
// row, unless configured otherwise.
const DefaultMaxBackoff = 5 * time.Minute

// RetryWait is how long the agent waits after err, its n-th failure in
// a row: its back-off, or the server's Retry-After (a busy server's 503)
// when that is longer, plus up to a fifth of it so that the agents
// refused together do not come back together; at most max.
func RetryWait(err error, n int, max time.Duration) time.Duration {
	d := backoff(n, max)
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = min(se.RetryAfter+rand.N(se.RetryAfter/5+1), max)
	}
	return d
}

// backoff is how long the agent waits after its n-th failure in a row:
// 2s·2^(n-1), capped at max, with full jitter on its upper half.
func backoff(n int, max time.Duration) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}
