package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Options tune Install and Rollback. The zero value is the safe default.
type Options struct {
	// KeepDir is where, inside the system, the previous versions' .debs
	// and the Record are kept: one directory per install under it.
	// Default /var/lib/patchloop/rollback.
	KeepDir string
	// LockTimeout is how long to wait for another apt or dpkg to release
	// the dpkg lock. Default 5 minutes.
	LockTimeout time.Duration
	// LogLimit bounds Result.Log (the last LogLimit bytes). Default 64 KiB.
	LogLimit int
	// AllowRemovals lets a plan that removes packages go ahead.
	AllowRemovals bool
	// AllowDowngrades lets a plan that installs older versions go ahead.
	AllowDowngrades bool
	// AllowIrreversible lets the install go ahead when a previous version
	// could not be kept (neither cached, downloadable nor rebuildable).
	AllowIrreversible bool
	Log               *slog.Logger
	// BeforeChange, when set, is given the plan Install is about to
	// carry out, after its checks and before anything is kept or
	// installed (the agent journals it there); an error stops the install.
	BeforeChange func(InstallPlan) error
}

func (o *Options) defaults() {
	if o.KeepDir == "" {
		o.KeepDir = "/var/lib/patchloop/rollback"
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Minute
	}
	if o.LogLimit <= 0 {
		o.LogLimit = 64 << 10
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Record is what Rollback needs to undo an install: the versions it
// replaced, each with a kept .deb, and the packages it added. Install
// writes it as record.json beside the .debs before changing anything.
type Record struct {
	ID       string    `json:"id"`
	Dir      string    `json:"dir"` // inside the system
	Created  time.Time `json:"created"`
	Set      []Pin     `json:"set"`
	Previous []Kept    `json:"previous"`
	Added    []Pin     `json:"added,omitempty"`
}

// Complete reports whether every previous version has a kept .deb.
func (r Record) Complete() bool {
	for _, k := range r.Previous {
		if k.Deb == "" {
			return false
		}
	}
	return true
}

// PackageResult is one package's versions around an install or rollback.
type PackageResult struct {
	Package string `json:"package"`
	Arch    string `json:"arch,omitempty"`
	Kind    Kind   `json:"kind"`
	Before  string `json:"before,omitempty"`
	Want    string `json:"want,omitempty"` // "" when it should be gone
	// Now and Status are what `dpkg-query -W` shows afterwards ("" when
	// not installed); Status is db:Status-Abbrev, e.g. "ii ".
	Now    string `json:"now,omitempty"`
	Status string `json:"status,omitempty"`
	OK     bool   `json:"ok"`
}

// Result is the outcome of Install or Rollback.
type Result struct {
	Plan   InstallPlan `json:"plan"`
	Record *Record     `json:"record,omitempty"` // Install only
	// Repaired is set when an interrupted dpkg was repaired first with
	// `dpkg --configure -a`; Audit is what `dpkg --audit` said then.
	Repaired bool            `json:"repaired,omitempty"`
	Audit    string          `json:"audit,omitempty"`
	Packages []PackageResult `json:"packages"`
	Started  time.Time       `json:"started"`
	Duration time.Duration   `json:"duration_ns"`
	ExitCode int             `json:"exit_code"` // apt-get's (128+N: killed by signal N); -1 when it did not run
	Log      string          `json:"log"`       // the last LogLimit bytes of every command's output
}

// OK reports whether every package ended as planned.
func (r Result) OK() bool {
	if r.ExitCode != 0 {
		return false
	}
	for _, p := range r.Packages {
		if !p.OK {
			return false
		}
	}
	return true
}

// Install installs exactly set on the system at root. In order: repair
// an interrupted dpkg; plan (refusing removals, downgrades and held
// packages unless allowed, see Options); keep a reinstallable .deb of
// every version the plan replaces and write the Record; run
// `apt-get install` noninteractively with the exact versions, keeping
// changed conffiles; check with dpkg-query that every package of the
// plan has its planned version. The error is nil only if all of that
// succeeded; the Result says as much as is known either way.
func Install(ctx context.Context, root string, set []Pin, opts Options) (res Result, err error) {
	opts.defaults()
	res = Result{Started: time.Now(), ExitCode: -1}
	log := newTail(opts.LogLimit)
	defer func() {
		res.Duration = time.Since(res.Started)
		res.Log = log.String()
	}()
	r, err := newRunner(root)
	if err != nil {
		return res, err
	}
	if err = validateSet(set); err != nil {
		return res, err
	}
	if res.Repaired, res.Audit, err = repair(ctx, r, log, opts.LockTimeout); err != nil {
		return res, err
	}
	if res.Plan, err = plan(ctx, r, set, nil, opts.AllowDowngrades); err != nil {
		return res, err
	}
	p := res.Plan
	switch {
	case len(p.Set) == 0 && len(p.Held) > 0:
		return res, fmt.Errorf("nothing to install: every package is held (%s) or already at or above its version", joinPins(p.Held))
	case p.Removes && !opts.AllowRemovals:
		return res, fmt.Errorf("the plan removes packages (%s); not allowed", strings.Join(names(p.Changes, Remove), " "))
	case p.Downgrades && !opts.AllowDowngrades:
		return res, fmt.Errorf("the plan downgrades packages (%s); not allowed", strings.Join(names(p.Changes, Downgrade), " "))
	case len(p.ChangesHeld) > 0:
		return res, fmt.Errorf("the plan changes held packages (%s)", strings.Join(p.ChangesHeld, " "))
	}
	if opts.BeforeChange != nil {
		if err := opts.BeforeChange(p); err != nil {
			return res, err
		}
	}
	rec, err := newRecord(r, opts.KeepDir, p)
	if err != nil {
		return res, err
	}
	if len(p.Set) == 0 { // every package already at or above its version
		// An empty record: a rollback after a failed health gate finds
		// it and has nothing to undo.
		if err := rec.save(r); err != nil {
			return res, err
		}
		res.Record, res.ExitCode = rec, 0
		log.Write([]byte("nothing to install: already at or above the set's versions: " + joinPins(p.AtOrAbove) + "\n"))
		return res, nil
	}
	res.Record = rec
	for _, prev := range p.Previous() {
		k := keep(ctx, r, prev, rec.Dir, log)
		opts.Log.Info("kept previous version", "package", prev.Package, "version", prev.Version, "source", k.Source)
		rec.Previous = append(rec.Previous, k)
	}
	if err := rec.save(r); err != nil {
		return res, err
	}
	if !rec.Complete() && !opts.AllowIrreversible {
		var missing []string
		for _, k := range rec.Previous {
			if k.Deb == "" {
				missing = append(missing, k.Package+" "+k.Version+": "+k.Error)
			}
		}
		return res, fmt.Errorf("cannot keep previous versions, rollback would be impossible: %s", strings.Join(missing, "; "))
	}
	args := aptInstallArgs(opts.LockTimeout, opts.AllowRemovals, opts.AllowDowngrades)
	args = append(args, aptTargets(p.Set, nil)...)
	res.ExitCode, err = runApt(ctx, r, log, opts.LockTimeout, args)
	res.Packages, _ = verify(ctx, r, p.Changes)
	if err != nil {
		return res, err
	}
	if !res.OK() {
		return res, fmt.Errorf("installed versions differ from the plan: %s", mismatches(res.Packages))
	}
	return res, nil
}

// aptInstallArgs is apt-get install, noninteractive, keeping changed
// conffiles, waiting for the lock, never more than asked.
func aptInstallArgs(lock time.Duration, removals, downgrades bool) []string {
	args := []string{"apt-get", "install", "-y", "-q",
		"-o", "DPkg::Lock::Timeout=" + strconv.Itoa(int(lock.Seconds())),
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold",
		"-o", "Dpkg::Use-Pty=0",
		"--no-install-recommends",
	}
	if !removals {
		args = append(args, "--no-remove")
	}
	if downgrades {
		args = append(args, "--allow-downgrades")
	}
	return args
}

// runApt runs apt-get; if apt says dpkg was interrupted (a crash between
// our check and now), it repairs and tries once more.
func runApt(ctx context.Context, r runner, log *tailBuffer, lock time.Duration, args []string) (int, error) {
	start := log.mark()
	code, err := r.combined(ctx, log, "", args...)
	if err != nil && strings.Contains(log.since(start), "dpkg was interrupted") {
		if _, _, rerr := repair(ctx, r, log, lock); rerr != nil {
			return code, errors.Join(err, rerr)
		}
		code, err = r.combined(ctx, log, "", args...)
	}
	return code, err
}

// dpkgLocked matches dpkg's messages for a lock another process holds
// ("dpkg frontend lock was locked by another process with pid N",
// "dpkg status database is locked by another process").
var dpkgLocked = regexp.MustCompile(`lock was locked by another process|database is locked by another process|unable to (acquire|lock) the dpkg`)

// repair runs `dpkg --configure -a` when dpkg was interrupted: its
// journal holds entries or `dpkg --audit` names packages left half-way.
// It waits up to lock for dpkg's lock.
func repair(ctx context.Context, r runner, log *tailBuffer, lock time.Duration) (bool, string, error) {
	journal, err := dpkgJournal(r)
	if err != nil {
		return false, "", err
	}
	audit, _ := r.output(ctx, "dpkg", "--audit")
	audit = strings.TrimSpace(audit)
	if !journal && audit == "" {
		return false, "", nil
	}
	if journal && audit == "" {
		audit = "dpkg was interrupted (journal entries in /var/lib/dpkg/updates)"
	}
	deadline := time.Now().Add(lock)
	for {
		start := log.mark()
		_, err := r.combined(ctx, log, "", "dpkg", "--force-confdef", "--force-confold", "--configure", "-a")
		if err == nil {
			break
		}
		if !dpkgLocked.MatchString(log.since(start)) || time.Now().After(deadline) {
			return true, audit, fmt.Errorf("dpkg --configure -a: %w", err)
		}
		select {
		case <-ctx.Done():
			return true, audit, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	if rest, _ := r.output(ctx, "dpkg", "--audit"); strings.TrimSpace(rest) != "" {
		return true, audit, fmt.Errorf("dpkg --configure -a left problems: %s", strings.TrimSpace(rest))
	}
	return true, audit, nil
}

func dpkgJournal(r runner) (bool, error) {
	entries, err := os.ReadDir(r.host("/var/lib/dpkg/updates"))
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if n := e.Name(); n != "tmp.i" && strings.Trim(n, "0123456789") == "" {
			return true, nil
		}
	}
	return false, nil
}

func newRecord(r runner, keepDir string, p InstallPlan) (*Record, error) {
	var b [4]byte
	rand.Read(b[:])
	now := time.Now().UTC()
	id := now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	rec := &Record{ID: id, Dir: filepath.Join(keepDir, id), Created: now, Set: p.Set, Added: p.Added()}
	// 0700: kept packages may be rebuilt from installed conffiles that
	// only root may read (sudoers, secrets).
	if err := os.MkdirAll(r.host(rec.Dir), 0o700); err != nil {
		return nil, fmt.Errorf("keep directory: %w", err)
	}
	return rec, nil
}

func (rec *Record) save(r runner) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	path := r.host(filepath.Join(rec.Dir, "record.json"))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadRecord reads the record an Install kept under dir (inside root).
func LoadRecord(root, dir string) (Record, error) {
	r, err := newRunner(root)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	data, err := os.ReadFile(r.host(filepath.Join(dir, "record.json")))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", dir, err)
	}
	return rec, nil
}

// verify compares what dpkg-query shows with the planned changes.
func verify(ctx context.Context, r runner, changes []Change) ([]PackageResult, error) {
	names := make([]string, 0, len(changes))
	for _, c := range changes {
		names = append(names, Pin{Package: c.Package, Arch: c.Arch}.name())
	}
	now, err := query(ctx, r, names)
	out := make([]PackageResult, 0, len(changes))
	for _, c := range changes {
		pr := PackageResult{Package: c.Package, Arch: c.Arch, Kind: c.Kind, Before: c.Before, Want: c.After}
		if q, ok := now[Pin{Package: c.Package, Arch: c.Arch}.name()]; ok {
			pr.Now, pr.Status = q.version, q.status
		}
		installed := pr.Status == "ii "
		if c.Kind == Remove {
			pr.OK = !installed
		} else {
			pr.OK = installed && pr.Now == c.After
		}
		out = append(out, pr)
	}
	return out, err
}

type queried struct{ version, status string }

// query runs dpkg-query -W on names and maps name[:arch] to what it
// shows; packages dpkg does not know are absent (dpkg-query exits 1 for
// them, which is not an error here).
func query(ctx context.Context, r runner, names []string) (map[string]queried, error) {
	args := append([]string{"dpkg-query", "-W", "-f=${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n"}, names...)
	out, err := r.output(ctx, args...)
	m := map[string]queried{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		q := queried{version: f[2], status: f[3]}
		if f[3] == "un " || f[3] == "" {
			q = queried{}
		}
		m[Pin{Package: f[0], Arch: f[1]}.name()] = q
	}
	if err != nil && !strings.Contains(err.Error(), "no packages found") {
		return m, err
	}
	return m, nil
}

func names(cs []Change, k Kind) []string {
	var out []string
	for _, c := range cs {
		if c.Kind == k {
			out = append(out, c.Package)
		}
	}
	return out
}

func mismatches(ps []PackageResult) string {
	var out []string
	for _, p := range ps {
		if !p.OK {
			want := p.Want
			if want == "" {
				want = "(removed)"
			}
			out = append(out, fmt.Sprintf("%s want %s have %q %s", p.Package, want, p.Now, strings.TrimSpace(p.Status)))
		}
	}
	return strings.Join(out, "; ")
}
