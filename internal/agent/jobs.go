package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/health"
)

// Limits on what a job result carries: the server takes at most
// api.MaxBody bytes per result.
const (
	maxResult   = api.MaxBody - 4<<10
	logLimit    = 8 << 10
	outputLimit = 2 << 10
	maxProcs    = 50
	// jobTimeout bounds a job that changes the machine; it is not cut
	// short by the agent being stopped (SIGTERM), so that apt is not
	// killed half-way.
	jobTimeout = 2 * time.Hour
	// rebootWait is how long a reboot job waits to be stopped by the
	// shutdown before it reports that the machine did not go down.
	rebootWait = 10 * time.Minute
)

// run executes one job. An error means the job cannot be finished now
// (the server could not be reached, or the machine is going down) and
// should be run again later; it is then answered from the journal. A job
// that fails on its own returns a "failed" result.
func (a *Agent) run(ctx context.Context, j api.Job) (api.JobResult, error) {
	if j.Kind == api.JobScan {
		return a.scan(ctx)
	}
	params, err := api.ParseJobParams(j.Kind, j.Params)
	if err != nil {
		return failed(err, nil), nil
	}
	if p, ok := params.(*api.PlanParams); ok {
		plan, err := apply.Plan(ctx, a.cfg.Root, p.Packages)
		plan.Output = tailString(plan.Output, outputLimit)
		if err != nil {
			return failed(err, plan), nil
		}
		return succeeded(plan), nil
	}
	if !api.ValidJobID(j.ID) {
		return failed(fmt.Errorf("job ID %q: not usable as a journal key", j.ID), nil), nil
	}
	e, err := a.journal.get(j.ID)
	if err != nil {
		// Never run a job twice on a guess.
		return failed(fmt.Errorf("journal: %w; not running the job", err), nil), nil
	}
	if e != nil && e.Result != nil {
		return *e.Result, nil
	}
	if e != nil && j.Kind != api.JobRestartServices {
		res, err := a.recover(ctx, e)
		if err != nil {
			return res, err
		}
		a.finish(e, res)
		return res, nil
	}
	e = &journalEntry{Job: j, State: jobStarted, Started: time.Now().UTC(), BootID: bootID()}
	var res api.JobResult
	switch p := params.(type) {
	case *api.InstallParams:
		res = a.install(ctx, e, p)
	case *api.RollbackParams:
		res = a.rollback(ctx, e, p)
	case *api.RebootParams:
		if res, err = a.reboot(ctx, e, p); err != nil {
			return res, err
		}
	case *api.RestartServicesParams:
		res = a.restartServices(ctx, e, p)
	default:
		return failed(fmt.Errorf("this agent does not run %s jobs", j.Kind), nil), nil
	}
	a.finish(e, res)
	return res, nil
}

// finish journals the result, so that the job is answered from it if it
// is handed out again.
func (a *Agent) finish(e *journalEntry, res api.JobResult) {
	e.State, e.Result = jobDone, &res
	if err := a.journal.put(e); err != nil {
		a.cfg.Log.Warn("journal job result", "job", e.Job.ID, "err", err)
	}
}

// reported marks a journaled job's result as stored by the server.
func (a *Agent) reported(id string) {
	e, err := a.journal.get(id)
	if err != nil || e == nil || e.State == jobReported {
		return
	}
	e.State = jobReported
	if err := a.journal.put(e); err != nil {
		a.cfg.Log.Warn("journal job reported", "job", id, "err", err)
	}
}

func (a *Agent) scan(ctx context.Context) (api.JobResult, error) {
	inv, _, err := Collect(a.cfg.Root)
	if err != nil {
		return failed(err, nil), nil
	}
	if err := a.client.PutInventory(ctx, inv); err != nil {
		return api.JobResult{}, err
	}
	return succeeded(map[string]any{"inventory_hash": inv.Hash(), "packages": len(inv.Packages)}), nil
}

// install installs, journaling the plan Install carries out before it
// changes anything, runs the health gates and rolls back when asked to
// and something failed.
func (a *Agent) install(ctx context.Context, e *journalEntry, p *api.InstallParams) api.JobResult {
	var out api.InstallResult
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobTimeout)
	defer cancel()
	keepDir := path.Join(a.cfg.KeepDir, "job-"+e.Job.ID)
	opts := apply.Options{KeepDir: keepDir, LockTimeout: p.LockTimeout(), LogLimit: logLimit,
		AllowRemovals: p.AllowRemovals, Log: a.cfg.Log,
		BeforeChange: func(plan apply.InstallPlan) error {
			e.Plan, e.KeepDir = &plan, keepDir
			if err := a.journal.put(e); err != nil {
				return fmt.Errorf("journal: %w; not installing", err)
			}
			return nil
		}}
	res, ierr := apply.Install(jctx, a.cfg.Root, p.Packages, opts)
	out.ChangeResult = change(res, ierr)
	if res.Record != nil {
		out.Record = res.Record.ID
	}
	out.Healthy = ierr == nil
	aptRan := res.ExitCode != -1
	if ierr == nil || aptRan {
		a.afterChange(jctx, &out)
	}
	var problems []string
	if ierr != nil {
		problems = append(problems, ierr.Error())
	}
	if out.Health != nil && !out.Health.Healthy {
		problems = append(problems, "health gates failed: "+strings.Join(out.Health.Failed(), ", "))
	}
	if !out.Healthy && p.RollbackOnFailure && aptRan && res.Record != nil {
		rb, rerr := apply.Rollback(jctx, a.cfg.Root, *res.Record, apply.Options{LockTimeout: p.LockTimeout(), LogLimit: logLimit, Log: a.cfg.Log})
		cr := change(rb, rerr)
		out.Rollback = &cr
		if rerr != nil {
			problems = append(problems, "rollback failed: "+rerr.Error())
		} else {
			problems = append(problems, "rolled back to the previous versions")
		}
	}
	a.cfg.Log.Info("install", "job", e.Job.ID, "packages", len(p.Packages), "healthy", out.Healthy,
		"exit", res.ExitCode, "duration", res.Duration.Round(time.Millisecond))
	if !out.Healthy {
		return failed(errors.New(strings.Join(problems, "; ")), &out)
	}
	return succeeded(&out)
}

// afterChange runs the health gates and says what needs a reboot or a
// restart.
func (a *Agent) afterChange(ctx context.Context, out *api.InstallResult) {
	rep := health.Run(ctx, a.local.Health, health.Options{Root: a.cfg.Root, AllowCommands: a.local.AllowCommands})
	out.Health = &rep
	if !rep.Healthy {
		out.Healthy = false
	}
	if rb, err := apply.RebootRequired(a.cfg.Root); err == nil {
		out.Reboot = &rb
	} else {
		a.cfg.Log.Warn("reboot check", "err", err)
	}
	if rs, err := apply.RestartNeeded("/proc", a.cfg.Root); err == nil {
		if len(rs.Processes) > maxProcs {
			rs.Processes = rs.Processes[:maxProcs]
		}
		out.Restart = &rs
	} else {
		a.cfg.Log.Warn("restart check", "err", err)
	}
}

// findRecord returns the record an install job kept under keepDir
// (inside the system), or of the given record ID under any job's.
func (a *Agent) findRecord(installJob, record string) (apply.Record, error) {
	pattern := filepath.Join(a.cfg.Root, a.cfg.KeepDir, "job-"+installJob, "*", "record.json")
	if record != "" {
		pattern = filepath.Join(a.cfg.Root, a.cfg.KeepDir, "*", record, "record.json")
	}
	matches, _ := filepath.Glob(pattern)
	switch len(matches) {
	case 0:
		if installJob != "" {
			return apply.Record{}, fmt.Errorf("no rollback record of install job %s on this host", installJob)
		}
		return apply.Record{}, fmt.Errorf("no rollback record %s on this host", record)
	case 1:
	default:
		return apply.Record{}, fmt.Errorf("%d rollback records match; name one with record", len(matches))
	}
	dir, err := filepath.Rel(filepath.Join(a.cfg.Root), filepath.Dir(matches[0]))
	if err != nil {
		return apply.Record{}, err
	}
	return apply.LoadRecord(a.cfg.Root, "/"+dir)
}

func (a *Agent) rollback(ctx context.Context, e *journalEntry, p *api.RollbackParams) api.JobResult {
	out := api.RollbackResult{Record: p.Record}
	rec, err := a.findRecord(p.InstallJob, p.Record)
	if err != nil {
		out.ChangeResult = change(apply.Result{ExitCode: -1, Started: e.Started}, err)
		return failed(err, &out)
	}
	out.Record, e.Record = rec.ID, &rec
	if err := a.journal.put(e); err != nil {
		err = fmt.Errorf("journal: %w; not rolling back", err)
		out.ChangeResult = change(apply.Result{ExitCode: -1, Started: e.Started}, err)
		return failed(err, &out)
	}
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobTimeout)
	defer cancel()
	res, err := apply.Rollback(jctx, a.cfg.Root, rec, apply.Options{LockTimeout: p.LockTimeout(), LogLimit: logLimit, Log: a.cfg.Log})
	out.ChangeResult = change(res, err)
	if err != nil {
		return failed(err, &out)
	}
	return succeeded(&out)
}

// recover answers a job the agent started but did not finish (it was
// killed, or the machine went down) from what the machine shows now,
// without running it again.
func (a *Agent) recover(ctx context.Context, e *journalEntry) (api.JobResult, error) {
	a.cfg.Log.Warn("job interrupted; reporting what the machine shows", "job", e.Job.ID, "kind", e.Job.Kind, "started", e.Started)
	switch e.Job.Kind {
	case api.JobInstall, api.JobRollback:
		// apt may still be running if only the agent was killed.
		if err := waitDpkgIdle(ctx, a.cfg.Root, api.DefaultLockTimeout); err != nil {
			return api.JobResult{}, err
		}
		var changes []apply.Change
		if e.Job.Kind == api.JobInstall && e.Plan != nil {
			changes = e.Plan.Changes
		}
		if e.Job.Kind == api.JobRollback && e.Record != nil {
			changes = rollbackChanges(*e.Record)
		}
		pkgs, verr := apply.Verify(ctx, a.cfg.Root, changes)
		cr := api.ChangeResult{Packages: pkgs, Started: e.Started, ExitCode: -1,
			DurationMS: time.Since(e.Started).Milliseconds()}
		// An install whose plan changed nothing is done when it was planned.
		allOK := verr == nil && (len(changes) > 0 || (e.Job.Kind == api.JobInstall && e.Plan != nil))
		for _, p := range pkgs {
			allOK = allOK && p.OK
		}
		why := fmt.Sprintf("the agent stopped during this %s (started %s); nothing was run again; dpkg-query shows %s",
			e.Job.Kind, e.Started.Format(time.RFC3339), summary(pkgs))
		if verr != nil {
			why += "; dpkg-query: " + verr.Error()
		}
		if e.Job.Kind == api.JobRollback {
			out := api.RollbackResult{ChangeResult: cr, Interrupted: true}
			if e.Record != nil {
				out.Record = e.Record.ID
			}
			if allOK {
				return succeeded(&out), nil
			}
			out.Error = why
			return failed(errors.New(why), &out), nil
		}
		out := api.InstallResult{ChangeResult: cr, Interrupted: true, Healthy: allOK}
		if e.Plan != nil {
			out.Plan = *e.Plan
			out.Plan.Output = tailString(out.Plan.Output, outputLimit)
		}
		if rec, err := a.findRecord(e.Job.ID, ""); err == nil {
			out.Record = rec.ID
		}
		a.afterChange(ctx, &out)
		if out.Healthy {
			return succeeded(&out), nil
		}
		if out.Health != nil && !out.Health.Healthy {
			why += "; health gates failed: " + strings.Join(out.Health.Failed(), ", ")
		}
		out.Error = why
		return failed(errors.New(why), &out), nil
	case api.JobReboot:
		out := api.RebootResult{BootIDBefore: e.BootID, BootIDAfter: bootID()}
		if out.BootIDAfter != "" && out.BootIDAfter != out.BootIDBefore {
			out.Rebooted = true
			return succeeded(&out), nil
		}
		return failed(errors.New("a reboot was asked for, but the machine is still in the same boot"), &out), nil
	}
	return failed(fmt.Errorf("%s job interrupted", e.Job.Kind), nil), nil
}

// rollbackChanges are what a rollback of rec must leave: the previous
// versions back. Packages the install added are not judged: a live
// rollback leaves them when removing them would remove more (see
// apply.Rollback), so a resumed one is judged by the same rule.
func rollbackChanges(rec apply.Record) []apply.Change {
	var out []apply.Change
	for _, k := range rec.Previous {
		out = append(out, apply.Change{Package: k.Package, Arch: k.Arch, After: k.Version, Kind: apply.Downgrade})
	}
	return out
}

func summary(pkgs []apply.PackageResult) string {
	if len(pkgs) == 0 {
		return "nothing to compare"
	}
	var s []string
	for _, p := range pkgs {
		now := p.Now
		if now == "" {
			now = "not installed"
		}
		s = append(s, fmt.Sprintf("%s %s %s (want %s)", p.Package, now, strings.TrimSpace(p.Status), orGone(p.Want)))
	}
	return strings.Join(s, ", ")
}

func orGone(v string) string {
	if v == "" {
		return "removed"
	}
	return v
}

func (a *Agent) reboot(ctx context.Context, e *journalEntry, p *api.RebootParams) (api.JobResult, error) {
	out := api.RebootResult{BootIDBefore: e.BootID}
	if rb, err := apply.RebootRequired(a.cfg.Root); err == nil {
		out.Required, out.Reasons = rb.Required, rb.Reasons
	} else if p.IfRequired {
		return failed(fmt.Errorf("reboot check: %w", err), &out), nil
	}
	switch {
	case !a.local.AllowReboot:
		return failed(fmt.Errorf("this machine's agent configuration (%s) does not allow reboots (allow_reboot: false)", a.configFile()), &out), nil
	case p.IfRequired && !out.Required:
		out.Note = "no reboot required"
		return succeeded(&out), nil
	case filepath.Clean(a.cfg.Root) != "/":
		out.Note = "the system is a chroot (" + a.cfg.Root + "): reboot intent recorded, systemctl reboot not run"
		return succeeded(&out), nil
	}
	if why := health.SystemdRunning("/"); why != "" {
		return failed(errors.New("cannot reboot: "+why), &out), nil
	}
	if err := a.journal.put(e); err != nil {
		return failed(fmt.Errorf("journal: %w; not rebooting", err), &out), nil
	}
	a.cfg.Log.Warn("rebooting", "job", e.Job.ID, "reasons", out.Reasons)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(sctx, "systemctl", "reboot")
	if data, err := cmd.CombinedOutput(); err != nil {
		return failed(fmt.Errorf("systemctl reboot: %w: %s", err, strings.TrimSpace(string(data))), &out), nil
	}
	select {
	case <-ctx.Done():
		// Stopped by the shutdown: the result is made after the boot.
		return api.JobResult{}, fmt.Errorf("rebooting: %w", ctx.Err())
	case <-time.After(rebootWait):
		return failed(fmt.Errorf("systemctl reboot was accepted %v ago but the machine is still up", rebootWait), &out), nil
	}
}

func (a *Agent) restartServices(ctx context.Context, e *journalEntry, p *api.RestartServicesParams) api.JobResult {
	var out api.RestartResult
	rs, err := apply.RestartNeeded("/proc", a.cfg.Root)
	if err != nil {
		return failed(fmt.Errorf("find services to restart: %w", err), &out)
	}
	out.Needed = append([]string{}, rs.Services...)
	want := p.Units
	if len(want) == 0 {
		want = rs.Services
	}
	noManager := health.SystemdRunning(a.cfg.Root)
	var todo []string
	for _, u := range want {
		switch {
		case !slices.Contains(rs.Services, u):
			out.Skipped = append(out.Skipped, api.UnitOutcome{Unit: u, Detail: "maps no replaced file; not restarted"})
		case slices.Contains(a.local.NeverRestart, u):
			out.Skipped = append(out.Skipped, api.UnitOutcome{Unit: u, Detail: "never_restart in " + a.configFile()})
		case noManager != "":
			out.Skipped = append(out.Skipped, api.UnitOutcome{Unit: u, Detail: noManager})
		default:
			todo = append(todo, u)
		}
	}
	if len(todo) > 0 {
		if err := a.journal.put(e); err != nil {
			return failed(fmt.Errorf("journal: %w; not restarting", err), &out)
		}
	}
	for _, u := range todo {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		data, err := exec.CommandContext(uctx, "systemctl", "try-restart", "--", u).CombinedOutput()
		cancel()
		if err != nil {
			out.Failed = append(out.Failed, api.UnitOutcome{Unit: u, Detail: strings.TrimSpace(fmt.Sprintf("%v: %s", err, data))})
			continue
		}
		out.Restarted = append(out.Restarted, u)
	}
	if after, err := apply.RestartNeeded("/proc", a.cfg.Root); err == nil {
		for _, u := range after.Services {
			if slices.Contains(todo, u) {
				out.Still = append(out.Still, u)
			}
		}
	}
	if len(out.Failed) > 0 {
		return failed(fmt.Errorf("%d of %d units failed to restart", len(out.Failed), len(todo)), &out)
	}
	return succeeded(&out)
}

func (a *Agent) configFile() string {
	if a.cfg.ConfigFile == "" {
		return "no configuration file"
	}
	return a.cfg.ConfigFile
}

// waitDpkgIdle waits until nobody holds dpkg's frontend lock in root
// (an apt that outlived a killed agent), up to timeout.
func waitDpkgIdle(ctx context.Context, root string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		held, err := lockHeld(filepath.Join(root, "var/lib/dpkg/lock-frontend"))
		if err != nil || !held {
			return nil // no lock file: nothing holds it
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dpkg's lock is still held after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// lockHeld reports whether another process holds an fcntl lock on path,
// as apt and dpkg take it.
func lockHeld(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != syscall.F_UNLCK, nil
}

// change is the wire form of an apply.Result.
func change(r apply.Result, err error) api.ChangeResult {
	r.Plan.Output = tailString(r.Plan.Output, outputLimit)
	cr := api.ChangeResult{Plan: r.Plan, Packages: r.Packages, Repaired: r.Repaired, Audit: tailString(r.Audit, outputLimit),
		Started: r.Started, DurationMS: r.Duration.Milliseconds(), ExitCode: r.ExitCode, Log: r.Log}
	if err != nil {
		cr.Error = err.Error()
	}
	return cr
}

func succeeded(v any) api.JobResult { return api.JobResult{Status: "ok", Result: encodeResult(v)} }

func failed(err error, v any) api.JobResult {
	res := api.JobResult{Status: "failed", Error: tailString(err.Error(), 4<<10)}
	if v != nil {
		res.Result = encodeResult(v)
	}
	return res
}

// encodeResult is v as JSON, shrunk to fit the server's limit: first the
// logs and apt's output go, then the plan's changes (the packages keep
// before, wanted and now), then the packages that ended as planned.
func encodeResult(v any) json.RawMessage {
	data, _ := json.Marshal(v)
	if len(data) <= maxResult {
		return data
	}
	var crs []*api.ChangeResult
	switch r := v.(type) {
	case *api.InstallResult:
		crs = append(crs, &r.ChangeResult)
		if r.Rollback != nil {
			crs = append(crs, r.Rollback)
		}
	case *api.RollbackResult:
		crs = append(crs, &r.ChangeResult)
	}
	shrinks := []func(*api.ChangeResult){
		func(c *api.ChangeResult) { c.Log, c.Plan.Output = tailString(c.Log, 1<<10), "" },
		func(c *api.ChangeResult) { c.Plan.Changes, c.Plan.Set = nil, nil },
		func(c *api.ChangeResult) {
			var bad []apply.PackageResult
			for _, p := range c.Packages {
				if !p.OK {
					bad = append(bad, p)
				}
			}
			if len(bad) < len(c.Packages) {
				c.Error = strings.TrimSpace(c.Error + fmt.Sprintf(" (%d packages as planned left out of this result)", len(c.Packages)-len(bad)))
			}
			c.Packages = bad
		},
	}
	for _, shrink := range shrinks {
		for _, c := range crs {
			shrink(c)
		}
		if data, _ = json.Marshal(v); len(data) <= maxResult {
			return data
		}
	}
	data, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("result of %d bytes too large to report", len(data))})
	return data
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "[...]" + s[len(s)-n:]
	}
	return s
}
