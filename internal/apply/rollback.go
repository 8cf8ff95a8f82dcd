package apply

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Rollback puts back exactly the versions rec says an Install replaced,
// from the .debs it kept (checked against their SHA256), allowing the
// downgrades that takes, then removes the packages the install added if
// removing them removes nothing else (otherwise they stay, named in the
// log). Held packages are left alone and listed in Result.Plan.Held. It
// repairs an interrupted dpkg first, like Install, and the result
// compares every package with dpkg-query afterwards.
func Rollback(ctx context.Context, root string, rec Record, opts Options) (res Result, err error) {
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
	var set []Pin
	files := map[Pin]string{}
	for _, k := range rec.Previous {
		if k.Deb == "" {
			return res, fmt.Errorf("rollback %s: no kept .deb for %s %s (%s)", rec.ID, k.Package, k.Version, k.Error)
		}
		sum, err := fileSHA256(r.host(k.Deb))
		if err != nil {
			return res, fmt.Errorf("rollback %s: %w", rec.ID, err)
		}
		if sum != k.SHA256 {
			return res, fmt.Errorf("rollback %s: %s changed since it was kept (sha256 %s, recorded %s)", rec.ID, k.Deb, sum, k.SHA256)
		}
		set = append(set, k.Pin)
		files[k.Pin] = k.Deb
	}
	if res.Repaired, res.Audit, err = repair(ctx, r, log, opts.LockTimeout); err != nil {
		return res, err
	}
	if len(set) > 0 {
		if res.Plan, err = plan(ctx, r, set, files, true); err != nil {
			return res, err
		}
		p := res.Plan
		switch {
		case p.Removes && !opts.AllowRemovals:
			return res, fmt.Errorf("rolling back removes packages (%s); not allowed", strings.Join(names(p.Changes, Remove), " "))
		case len(p.ChangesHeld) > 0:
			return res, fmt.Errorf("rolling back changes held packages (%s)", strings.Join(p.ChangesHeld, " "))
		}
		if len(p.Set) > 0 {
			args := aptInstallArgs(opts.LockTimeout, opts.AllowRemovals, true)
			args = append(args, aptTargets(p.Set, files)...)
			if res.ExitCode, err = runApt(ctx, r, log, opts.LockTimeout, args); err != nil {
				res.Packages, _ = verify(ctx, r, p.Changes)
				return res, err
			}
		}
	} else {
		res.ExitCode = 0
	}
	removed, err := removeAdded(ctx, r, log, opts.LockTimeout, rec.Added)
	if err != nil {
		return res, err
	}
	changes := append([]Change(nil), res.Plan.Changes...)
	changes = append(changes, removed...)
	res.Packages, err = verify(ctx, r, changes)
	if err != nil {
		return res, err
	}
	if !res.OK() {
		return res, fmt.Errorf("versions after rollback differ from the record: %s", mismatches(res.Packages))
	}
	return res, nil
}

// removeAdded removes added if apt would remove exactly those packages
// and nothing else, and returns the removals done.
func removeAdded(ctx context.Context, r runner, log *tailBuffer, lock time.Duration, added []Pin) ([]Change, error) {
	if len(added) == 0 {
		return nil, nil
	}
	targets := make([]string, len(added))
	want := map[string]bool{}
	for i, p := range added {
		targets[i] = Pin{Package: p.Package, Arch: p.Arch}.name()
		want[p.Package] = true
	}
	out, err := r.output(ctx, append([]string{"apt-get", "-s", "-q", "remove"}, targets...)...)
	if err != nil {
		fmt.Fprintf(log, "added packages left installed: %v\n", err)
		return nil, nil
	}
	sim, err := ParseSimulation(strings.NewReader(out))
	if err != nil {
		return nil, err
	}
	for _, c := range sim.Changes {
		if c.Kind != Remove || !want[c.Package] {
			fmt.Fprintf(log, "added packages left installed: removing them would also %s %s\n", c.Kind, c.Package)
			return nil, nil
		}
	}
	args := []string{"apt-get", "remove", "-y", "-q", "-o", fmt.Sprintf("DPkg::Lock::Timeout=%d", int(lock.Seconds())), "-o", "Dpkg::Use-Pty=0"}
	if _, err := runApt(ctx, r, log, lock, append(args, targets...)); err != nil {
		return nil, err
	}
	return sim.Changes, nil
}
