package apply

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/lab"
	"github.com/patchloop/patchloop/internal/lab/labtest"
)

// The lab tests change a real Debian 12 root (internal/lab's cached
// debootstrap minbase, one overlay copy per test) with real apt and dpkg
// and packages from Debian's mirror. They need root, debootstrap and the
// mirror, so they run only with PATCHLOOP_LAB=1 (.ci/run sets it).

func labHost(t *testing.T) *lab.Host {
	t.Helper()
	h := labtest.Host(t)
	if err := h.WriteFile("/etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\n"+
		"deb http://deb.debian.org/debian-security bookworm-security main\n"); err != nil {
		t.Fatal(err)
	}
	// No services start in a chroot.
	if err := h.WriteFile("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(h.Root, "usr/sbin/policy-rc.d"), 0o755)
	hrun(t, h, "apt-get", "update")
	return h
}

func hrun(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// upgradable is `apt list --upgradable`: name → [installed, candidate, suites].
func upgradable(t *testing.T, h *lab.Host) map[string][3]string {
	t.Helper()
	re := regexp.MustCompile(`^([^/]+)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$`)
	m := map[string][3]string{}
	for _, line := range strings.Split(hrun(t, h, "apt", "list", "--upgradable"), "\n") {
		if f := re.FindStringSubmatch(line); f != nil {
			m[f[1]] = [3]string{f[5], f[3], f[2]}
		}
	}
	return m
}

// installed is what dpkg-query shows for name: version and status.
func installed(t *testing.T, h *lab.Host, name string) string {
	t.Helper()
	out, _ := h.Run(context.Background(), "dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", name)
	return strings.TrimSpace(out)
}

// securityPins picks up to three security updates the base misses,
// libraries first (they have few dependants and no services).
func securityPins(t *testing.T, up map[string][3]string) []Pin {
	t.Helper()
	var names []string
	for name, v := range up {
		if strings.Contains(v[2], "security") && (strings.HasPrefix(name, "lib") || strings.HasPrefix(name, "zlib")) &&
			!strings.HasPrefix(name, "libpam") && !strings.HasPrefix(name, "libapt") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) < 2 {
		t.Fatalf("a bookworm minbase should miss security updates of libraries; apt lists %v", up)
	}
	if len(names) > 3 {
		names = names[:3]
	}
	var pins []Pin
	for _, n := range names {
		pins = append(pins, Pin{Package: n, Arch: "amd64", Version: up[n][1]})
	}
	return pins
}

// aptSimulation is `apt-get -s install` parsed independently of
// ParseSimulation: "name before after" per Inst line, "name before -"
// per Remv line.
func aptSimulation(t *testing.T, h *lab.Host, set []Pin) []string {
	t.Helper()
	args := []string{"apt-get", "-s", "install"}
	for _, p := range set {
		args = append(args, p.Package+"="+p.Version)
	}
	inst := regexp.MustCompile(`^Inst (\S+) (?:\[(\S+)\] )?\((\S+) `)
	remv := regexp.MustCompile(`^Remv (\S+) \[(\S+)\]`)
	var out []string
	for _, line := range strings.Split(hrun(t, h, args...), "\n") {
		if f := inst.FindStringSubmatch(line); f != nil {
			out = append(out, f[1]+" "+f[2]+" "+f[3])
		} else if f := remv.FindStringSubmatch(line); f != nil {
			out = append(out, f[1]+" "+f[2]+" -")
		}
	}
	sort.Strings(out)
	return out
}

func planLines(p InstallPlan) []string {
	var out []string
	for _, c := range p.Changes {
		after := c.After
		if c.Kind == Remove {
			after = "-"
		}
		out = append(out, c.Package+" "+c.Before+" "+after)
	}
	sort.Strings(out)
	return out
}

func TestLabInstallRollback(t *testing.T) {
	h := labHost(t)
	ctx := context.Background()
	up := upgradable(t, h)
	pins := securityPins(t, up)
	t.Logf("installing %v", pins)

	p, err := Plan(ctx, h.Root, pins)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := planLines(p), aptSimulation(t, h, pins); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan differs from apt-get -s:\n got %q\nwant %q", got, want)
	}
	for _, pin := range pins {
		found := false
		for _, c := range p.Changes {
			if c.Package == pin.Package {
				found = true
				if c.Kind != Upgrade || c.Before != up[pin.Package][0] || c.After != pin.Version || !c.Requested {
					t.Errorf("%s: change %+v, want upgrade %s → %s, requested", pin.Package, c, up[pin.Package][0], pin.Version)
				}
			}
		}
		if !found {
			t.Errorf("%s not in the plan %+v", pin.Package, p.Changes)
		}
	}
	if p.Removes || p.Downgrades || len(p.Held) > 0 {
		t.Errorf("plan flags: %+v", p)
	}

	// A held package is left out of the plan and reported.
	hrun(t, h, "apt-mark", "hold", pins[0].Package)
	ph, err := Plan(ctx, h.Root, pins)
	if err != nil {
		t.Fatal(err)
	}
	if len(ph.Held) != 1 || ph.Held[0] != pins[0] || len(ph.Set) != len(pins)-1 {
		t.Errorf("with %s held: held %v set %v", pins[0].Package, ph.Held, ph.Set)
	}
	for _, c := range ph.Changes {
		if c.Package == pins[0].Package {
			t.Errorf("held %s planned: %+v", c.Package, c)
		}
	}
	hrun(t, h, "apt-mark", "unhold", pins[0].Package)

	// debootstrap leaves the base's .debs in apt's cache: the first
	// package's previous version is kept from there, the others must be
	// downloaded.
	for _, pin := range pins[1:] {
		hrun(t, h, "sh", "-c", "rm /var/cache/apt/archives/"+pin.Package+"_*.deb")
	}
	res, err := Install(ctx, h.Root, pins, Options{LockTimeout: time.Minute})
	if err != nil {
		t.Fatalf("install: %v\n%s", err, res.Log)
	}
	t.Logf("installed in %v, exit %d; kept %+v", res.Duration.Round(time.Millisecond), res.ExitCode, res.Record.Previous)
	if res.Repaired || !res.OK() || len(res.Packages) != len(p.Changes) {
		t.Errorf("result: repaired %v ok %v packages %+v", res.Repaired, res.OK(), res.Packages)
	}
	for _, pin := range pins {
		if got := installed(t, h, pin.Package); got != pin.Version+" ii" {
			t.Errorf("after install dpkg-query shows %s %q, want %s", pin.Package, got, pin.Version)
		}
	}
	after := upgradable(t, h)
	for _, pin := range pins {
		if _, ok := after[pin.Package]; ok {
			t.Errorf("%s still listed by apt list --upgradable", pin.Package)
		}
	}
	if len(after) != len(up)-len(p.Changes) {
		t.Errorf("apt lists %d upgradable after installing %d of %d", len(after), len(p.Changes), len(up))
	}
	rec, err := LoadRecord(h.Root, res.Record.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Previous) != len(p.Changes) || !rec.Complete() {
		t.Fatalf("record %+v", rec)
	}
	for _, k := range rec.Previous {
		want := FromDownload
		if k.Package == pins[0].Package {
			want = FromArchives
		}
		if k.Version != up[k.Package][0] || k.Source != want {
			t.Errorf("kept %#v, want %s %s", k, up[k.Package][0], want)
		}
		if got := hrun(t, h, "dpkg-deb", "--field", k.Deb, "Version"); strings.TrimSpace(got) != k.Version {
			t.Errorf("%s holds version %q", k.Deb, got)
		}
	}

	// Installing the same set again changes nothing and says so.
	again, err := Plan(ctx, h.Root, pins)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes) != 0 {
		t.Errorf("plan after install: %+v", again.Changes)
	}

	rb, err := Rollback(ctx, h.Root, rec, Options{LockTimeout: time.Minute})
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, rb.Log)
	}
	for _, k := range rec.Previous {
		if got := installed(t, h, k.Package); got != k.Version+" ii" {
			t.Errorf("after rollback dpkg-query shows %s %q, want %s", k.Package, got, k.Version)
		}
	}
	back := upgradable(t, h)
	if len(back) != len(up) {
		t.Errorf("after rollback apt lists %d upgradable, %d before the install", len(back), len(up))
	}
	for _, c := range rb.Plan.Changes {
		if c.Kind != Downgrade {
			t.Errorf("rollback change %+v, want a downgrade", c)
		}
	}

	// Rebuild one previous version from the installed files and compare
	// it with the mirror's .deb kept for the rollback: same files, modes,
	// owners and sizes, and dpkg takes it.
	k := rec.Previous[0]
	rebuilt := filepath.Join(h.Root, "tmp", "rebuilt.deb")
	if err := Rebuild(ctx, h.Root, k.Pin, rebuilt); err != nil {
		t.Fatal(err)
	}
	list := func(path string) string {
		out := hrun(t, h, "dpkg-deb", "--contents", path)
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			// mode owner size date time path [-> target]
			lines = append(lines, strings.Join(append([]string{f[0], f[1], f[2]}, f[5:]...), " "))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	if got, want := list("/tmp/rebuilt.deb"), list(k.Deb); got != want {
		t.Errorf("rebuilt %s differs from the mirror's:\n%s\n---\n%s", k.Package, got, want)
	}
	hrun(t, h, "dpkg", "-i", "/tmp/rebuilt.deb")
	if got := installed(t, h, k.Package); got != k.Version+" ii" {
		t.Errorf("after installing the rebuilt .deb: %q", got)
	}
	if out := hrun(t, h, "dpkg", "--verify", k.Package); out != "" {
		t.Errorf("dpkg --verify after the rebuilt .deb:\n%s", out)
	}
}

// TestLabRemovalRefused plans a package that conflicts with an installed
// one: the plan must say it removes, and Install must refuse it.
func TestLabRemovalRefused(t *testing.T) {
	h := labHost(t)
	ctx := context.Background()
	candidate := func(name string) string {
		m := regexp.MustCompile(`Candidate: (\S+)`).FindStringSubmatch(hrun(t, h, "apt-cache", "policy", name))
		if m == nil {
			t.Fatalf("no candidate for %s", name)
		}
		return m[1]
	}
	// A new package: recorded as added, and removed again by Rollback.
	bb := Pin{Package: "busybox", Arch: "amd64", Version: candidate("busybox")}
	res, err := Install(ctx, h.Root, []Pin{bb}, Options{})
	if err != nil {
		t.Fatalf("install busybox: %v\n%s", err, res.Log)
	}
	if len(res.Record.Added) != 1 || res.Record.Added[0] != bb || len(res.Record.Previous) != 0 || installed(t, h, "busybox") != bb.Version+" ii" {
		t.Fatalf("install of a new package: record %+v, dpkg %q", res.Record, installed(t, h, "busybox"))
	}
	if rb, err := Rollback(ctx, h.Root, *res.Record, Options{}); err != nil {
		t.Fatalf("rollback: %v\n%s", err, rb.Log)
	}
	if got := installed(t, h, "busybox"); strings.HasSuffix(got, " ii") {
		t.Fatalf("busybox still installed after rollback: %q", got)
	}

	hrun(t, h, "apt-get", "install", "-y", "-q", "busybox")
	cand := []string{"", candidate("busybox-static")}
	set := []Pin{{Package: "busybox-static", Arch: "amd64", Version: cand[1]}}
	p, err := Plan(ctx, h.Root, set)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Removes || len(p.Changes) != 2 || p.Changes[0].Package != "busybox" || p.Changes[0].Kind != Remove || p.Changes[0].Arch != "amd64" {
		t.Fatalf("plan %+v, want busybox removed", p)
	}
	if got, want := planLines(p), aptSimulation(t, h, set); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan differs from apt-get -s:\n got %q\nwant %q", got, want)
	}
	before := installed(t, h, "busybox")
	if _, err := Install(ctx, h.Root, set, Options{}); err == nil || !strings.Contains(err.Error(), "removes") {
		t.Fatalf("install of a removing plan: %v", err)
	}
	if got := installed(t, h, "busybox"); got != before || !strings.HasSuffix(got, " ii") {
		t.Errorf("busybox after the refused install: %q, before %q", got, before)
	}
	if got := installed(t, h, "busybox-static"); strings.HasSuffix(got, " ii") {
		t.Errorf("busybox-static installed anyway: %q", got)
	}
}

// TestLabInterruptedDpkg leaves a package unpacked but not configured, as
// an interrupted dpkg does: Install must repair it first and say so.
func TestLabInterruptedDpkg(t *testing.T) {
	h := labHost(t)
	ctx := context.Background()
	up := upgradable(t, h)
	pins := securityPins(t, up)
	broken, other := pins[0], pins[1]
	hrun(t, h, "sh", "-c", "cd /tmp && apt-get download -q "+broken.String()+" && dpkg --unpack /tmp/"+broken.Package+"_*.deb")
	if got := installed(t, h, broken.Package); got != broken.Version+" iU" {
		t.Fatalf("after dpkg --unpack: %q", got)
	}
	if audit := hrun(t, h, "dpkg", "--audit"); !strings.Contains(audit, broken.Package) {
		t.Fatalf("dpkg --audit does not name %s:\n%s", broken.Package, audit)
	}
	res, err := Install(ctx, h.Root, []Pin{other}, Options{LockTimeout: time.Minute})
	if err != nil {
		t.Fatalf("install: %v\n%s", err, res.Log)
	}
	if !res.Repaired || !strings.Contains(res.Audit, broken.Package) || !strings.Contains(res.Log, "dpkg --force-confdef --force-confold --configure -a") {
		t.Errorf("repaired %v, audit %q", res.Repaired, res.Audit)
	}
	if got := installed(t, h, broken.Package); got != broken.Version+" ii" {
		t.Errorf("%s after the repair: %q", broken.Package, got)
	}
	if got := installed(t, h, other.Package); got != other.Version+" ii" {
		t.Errorf("%s: %q", other.Package, got)
	}
	if audit := hrun(t, h, "dpkg", "--audit"); audit != "" {
		t.Errorf("dpkg --audit after Install:\n%s", audit)
	}
}

// TestLabRestartNeeded runs a process in the lab root, replaces the C
// library it maps as dpkg does (a new file renamed over the old), and
// reads the real /proc.
func TestLabRestartNeeded(t *testing.T) {
	h := labHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proc, err := h.Start(ctx, nil, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Stop()
	time.Sleep(300 * time.Millisecond)
	lib := "/usr/lib/x86_64-linux-gnu/libc.so.6"
	r, err := RestartNeeded("/proc", h.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Processes) != 0 {
		t.Fatalf("before the upgrade: %+v", r)
	}
	hrun(t, h, "sh", "-c", "cp -p "+lib+" "+lib+".dpkg-new && mv "+lib+".dpkg-new "+lib)
	r, err = RestartNeeded("/proc", h.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Processes) != 1 || r.Processes[0].Command != "sleep" || strings.Join(r.Processes[0].Deleted, " ") != lib {
		t.Fatalf("after the upgrade: %+v", r)
	}
}

// TestLabAtOrAbove: a pin whose package is already at that version or a
// later one (upgraded since the set was frozen) is left out, never
// downgraded; the other pins install; a set of only such pins installs
// nothing and succeeds.
func TestLabAtOrAbove(t *testing.T) {
	h := labHost(t)
	ctx := context.Background()
	pins := securityPins(t, upgradable(t, h))
	first, rest := pins[0], pins[1:]
	base := upgradable(t, h)[first.Package][0]
	// An operator upgrades the first package by hand.
	hrun(t, h, "apt-get", "install", "-y", "-q", first.Package+"="+first.Version)
	old := Pin{Package: first.Package, Arch: first.Arch, Version: base}
	res, err := Install(ctx, h.Root, append([]Pin{old}, rest...), Options{})
	if err != nil {
		t.Fatalf("install: %v\n%s", err, res.Log)
	}
	if len(res.Plan.AtOrAbove) != 1 || res.Plan.AtOrAbove[0] != old || len(res.Plan.Set) != len(rest) || res.Plan.Downgrades {
		t.Fatalf("plan %+v", res.Plan)
	}
	if got := installed(t, h, first.Package); got != first.Version+" ii" {
		t.Errorf("%s after the install: %q, want %s kept", first.Package, got, first.Version)
	}
	for _, p := range rest {
		if got := installed(t, h, p.Package); got != p.Version+" ii" {
			t.Errorf("%s after the install: %q, want %s", p.Package, got, p.Version)
		}
	}
	// Only pins at or above: nothing to do, no apt run, success, and an
	// empty record whose rollback changes nothing.
	res, err = Install(ctx, h.Root, pins, Options{})
	if err != nil || res.ExitCode != 0 || res.Record == nil || len(res.Record.Previous)+len(res.Record.Added) != 0 ||
		len(res.Plan.AtOrAbove) != len(pins) || !strings.Contains(res.Log, "nothing to install") {
		t.Fatalf("install of a set already in place: %v, exit %d, record %+v, plan %+v", err, res.ExitCode, res.Record, res.Plan)
	}
	if rb, err := Rollback(ctx, h.Root, *res.Record, Options{}); err != nil {
		t.Fatalf("rollback of a no-op install: %v\n%s", err, rb.Log)
	}
	if got := installed(t, h, first.Package); got != first.Version+" ii" {
		t.Errorf("%s after rolling back a no-op install: %q", first.Package, got)
	}
}
