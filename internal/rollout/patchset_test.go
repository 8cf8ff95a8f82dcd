package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/policy"
)

var (
	bookworm = Target{Distro: "debian", Release: "12", Arch: "amd64"}
	noble    = Target{Distro: "ubuntu", Release: "24.04", Arch: "amd64"}
	freezeAt = utc("2025-03-20T12:00:00Z")
)

func days(n int) time.Time { return freezeAt.Add(-time.Duration(n) * 24 * time.Hour) }

// fleetUpdates is shaped after real bookworm and noble hosts: security
// updates of openssl, libc6 (both architectures on a multiarch host),
// openssh-server (with an epoch) and tzdata (arch all).
func fleetUpdates() []HostUpdates {
	return []HostUpdates{
		{Host: "web1", Target: bookworm, Candidates: []Candidate{
			{"openssl", "amd64", "3.0.15-1~deb12u1", "openssl", "3.0.15-1~deb12u1", days(30), policy.Approved},
			{"libssl3", "amd64", "3.0.15-1~deb12u1", "openssl", "3.0.15-1~deb12u1", days(30), policy.Approved},
			{"openssh-server", "amd64", "1:9.2p1-2+deb12u5", "openssh", "1:9.2p1-2+deb12u5", days(10), policy.Approved},
			{"tzdata", "all", "2025a-0+deb12u1", "tzdata", "2025a-0+deb12u1", days(2), policy.Approved},
			{"linux-image-6.1.0-32-amd64", "amd64", "6.1.129-1", "linux", "6.1.129-1", days(20), policy.Declined},
		}},
		{Host: "web2", Target: bookworm, Candidates: []Candidate{
			// a host that sees a newer openssl, whose libssl3 is not
			// approved: the set keeps both at the older version
			{"openssl", "amd64", "3.0.16-1~deb12u1", "openssl", "3.0.16-1~deb12u1", days(9), policy.Approved},
			{"libssl3", "amd64", "3.0.16-1~deb12u1", "openssl", "3.0.16-1~deb12u1", days(9), policy.Pending},
			{"libc6", "amd64", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", days(15), policy.Approved},
			{"libc6", "i386", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", days(15), policy.Approved},
			{"curl", "amd64", "7.88.1-10+deb12u12", "curl", "7.88.1-10+deb12u12", time.Time{}, policy.Approved},
		}},
		{Host: "db1", Target: noble, Candidates: []Candidate{
			{"openssl", "amd64", "3.0.13-0ubuntu3.5", "openssl", "3.0.13-0ubuntu3.5", days(40), policy.Approved},
			{"libc6", "amd64", "2.39-0ubuntu8.4", "glibc", "2.39-0ubuntu8.4", days(12), policy.Approved},
		}},
	}
}

func TestFreeze(t *testing.T) {
	s, err := Freeze(fleetUpdates(), 7*24*time.Hour, freezeAt)
	if err != nil {
		t.Fatal(err)
	}
	want := []TargetSet{
		{Target: bookworm, Pins: []apply.Pin{
			{Package: "libc6", Arch: "amd64", Version: "2.36-9+deb12u10"},
			{Package: "libc6", Arch: "i386", Version: "2.36-9+deb12u10"},
			{Package: "libssl3", Arch: "amd64", Version: "3.0.15-1~deb12u1"},
			{Package: "openssh-server", Arch: "amd64", Version: "1:9.2p1-2+deb12u5"},
			{Package: "openssl", Arch: "amd64", Version: "3.0.15-1~deb12u1"},
		}, Sources: []Source{{"glibc", "2.36-9+deb12u10"}, {"glibc", "2.36-9+deb12u10"}, {"openssl", "3.0.15-1~deb12u1"},
			{"openssh", "1:9.2p1-2+deb12u5"}, {"openssl", "3.0.15-1~deb12u1"}}},
		{Target: noble, Pins: []apply.Pin{
			{Package: "libc6", Arch: "amd64", Version: "2.39-0ubuntu8.4"},
			{Package: "openssl", Arch: "amd64", Version: "3.0.13-0ubuntu3.5"},
		}, Sources: []Source{{"glibc", "2.39-0ubuntu8.4"}, {"openssl", "3.0.13-0ubuntu3.5"}}},
	}
	if !reflect.DeepEqual(s.Targets, want) {
		t.Errorf("targets:\n%v\nwant\n%v", s.Targets, want)
	}
	left := map[string]string{}
	for _, l := range s.Left {
		left[l.Pin.String()] = l.Reason
	}
	wantLeft := map[string]string{
		"openssl:amd64=3.0.16-1~deb12u1":             "binary libssl3 of source openssl 3.0.16-1~deb12u1 is not approved (pending); the set has 3.0.15-1~deb12u1",
		"libssl3:amd64=3.0.16-1~deb12u1":             "not approved (pending); the set has 3.0.15-1~deb12u1",
		"tzdata=2025a-0+deb12u1":                     "released 2025-03-18, younger than 168h0m0s",
		"linux-image-6.1.0-32-amd64:amd64=6.1.129-1": "not approved (declined)",
		"curl:amd64=7.88.1-10+deb12u12":              "release date unknown",
	}
	if !reflect.DeepEqual(left, wantLeft) {
		t.Errorf("left: %v\nwant %v", left, wantLeft)
	}
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
	if !strings.Contains(s.String(), "debian 12 amd64\tlibc6:i386=2.36-9+deb12u10") {
		t.Errorf("String:\n%s", s)
	}
}

// TestFreezeProperties: the set does not depend on the order of hosts or
// candidates; every pin is approved somewhere, old enough, with every
// binary of its source version so, and the highest such version; the
// hash changes with any version and not with FrozenAt.
func TestFreezeProperties(t *testing.T) {
	base, _ := Freeze(fleetUpdates(), 7*24*time.Hour, freezeAt)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		hosts := fleetUpdates()
		rng.Shuffle(len(hosts), func(a, b int) { hosts[a], hosts[b] = hosts[b], hosts[a] })
		for _, h := range hosts {
			rng.Shuffle(len(h.Candidates), func(a, b int) { h.Candidates[a], h.Candidates[b] = h.Candidates[b], h.Candidates[a] })
		}
		s, err := Freeze(hosts, 7*24*time.Hour, freezeAt)
		if err != nil || !reflect.DeepEqual(s, base) {
			t.Fatalf("order %d changed the set: %v\n%v", i, err, s)
		}
	}
	checkHighestEligible(t, fleetUpdates(), base, 7*24*time.Hour)
	later, _ := Freeze(fleetUpdates(), 7*24*time.Hour, freezeAt.Add(time.Minute))
	if later.Hash != base.Hash {
		t.Error("hash depends on the freeze time")
	}
	changed := fleetUpdates()
	changed[2].Candidates[0].Version = "3.0.13-0ubuntu3.6"
	other, _ := Freeze(changed, 7*24*time.Hour, freezeAt)
	if other.Hash == base.Hash {
		t.Error("hash did not change with a version")
	}
	base.Targets[0].Pins[0].Version = "2.36-9+deb12u9"
	if base.Verify() == nil {
		t.Error("Verify accepted a changed set")
	}
	if _, err := Freeze([]HostUpdates{{Host: "x", Target: bookworm, Candidates: []Candidate{{"--force-yes", "amd64", "1", "", "", days(30), policy.Approved}}}}, 0, freezeAt); err == nil {
		t.Error("an option-like package name was accepted")
	}
}

// TestFreezeSourceGroups: the binaries of one source version go into the
// set together or not at all.
func TestFreezeSourceGroups(t *testing.T) {
	const week = 7 * 24 * time.Hour
	ok, young := days(30), days(2)
	ssl := func(pkg, v string, released time.Time, verdict policy.Verdict) Candidate {
		return Candidate{pkg, "amd64", v, "openssl", v, released, verdict}
	}
	pin := func(pkg, arch, v string) apply.Pin { return apply.Pin{Package: pkg, Arch: arch, Version: v} }
	tests := []struct {
		name  string
		hosts []HostUpdates
		want  []TargetSet
		left  map[string]string
	}{
		{"newer source version blocked, the older taken for all its binaries", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.15-1", ok, policy.Approved), ssl("libssl3", "3.0.15-1", ok, policy.Approved)}},
			{Host: "b", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved), ssl("libssl3", "3.0.16-1", ok, policy.Pending)}},
		}, []TargetSet{{Target: bookworm, Pins: []apply.Pin{pin("libssl3", "amd64", "3.0.15-1"), pin("openssl", "amd64", "3.0.15-1")},
			Sources: []Source{{"openssl", "3.0.15-1"}, {"openssl", "3.0.15-1"}}}},
			map[string]string{
				"openssl:amd64=3.0.16-1": "binary libssl3 of source openssl 3.0.16-1 is not approved (pending); the set has 3.0.15-1",
				"libssl3:amd64=3.0.16-1": "not approved (pending); the set has 3.0.15-1",
			}},
		{"blocked with no older version: nothing of the source", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved), ssl("libssl3", "3.0.16-1", young, policy.Approved)}},
			{Host: "b", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved)}},
		}, nil, map[string]string{
			"openssl:amd64=3.0.16-1": "binary libssl3 of source openssl 3.0.16-1 was released 2025-03-18, younger than 168h0m0s",
			"libssl3:amd64=3.0.16-1": "released 2025-03-18, younger than 168h0m0s",
		}},
		{"unknown release date blocks", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved), ssl("libssl3", "3.0.16-1", time.Time{}, policy.Approved)}},
		}, nil, map[string]string{
			"openssl:amd64=3.0.16-1": "binary libssl3 of source openssl 3.0.16-1 has no known release date",
			"libssl3:amd64=3.0.16-1": "release date unknown",
		}},
		{"same version judged differently by hosts: one approval makes it eligible", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved), ssl("libssl3", "3.0.16-1", ok, policy.Declined)}},
			{Host: "b", Target: bookworm, Candidates: []Candidate{ssl("libssl3", "3.0.16-1", ok, policy.Approved)}},
		}, []TargetSet{{Target: bookworm, Pins: []apply.Pin{pin("libssl3", "amd64", "3.0.16-1"), pin("openssl", "amd64", "3.0.16-1")},
			Sources: []Source{{"openssl", "3.0.16-1"}, {"openssl", "3.0.16-1"}}}}, map[string]string{}},
		{"a binary offered by one host only still blocks the others' binaries", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved)}},
			{Host: "b", Target: bookworm, Candidates: []Candidate{ssl("libssl3", "3.0.16-1", ok, policy.Declined), ssl("libssl3", "3.0.15-1", ok, policy.Approved)}},
		}, []TargetSet{{Target: bookworm, Pins: []apply.Pin{pin("libssl3", "amd64", "3.0.15-1")}, Sources: []Source{{"openssl", "3.0.15-1"}}}},
			map[string]string{
				"openssl:amd64=3.0.16-1": "binary libssl3 of source openssl 3.0.16-1 is not approved (declined)",
				"libssl3:amd64=3.0.16-1": "not approved (declined); the set has 3.0.15-1",
			}},
		// Grouping covers the binaries hosts offered at that version: a
		// host whose candidates lag behind (b) gets libssl3 at the older
		// version. HostPins keeps each host's pins; the mixed set is the
		// caller's to avoid by detecting every host against the same indexes.
		{"a binary whose candidate differs across hosts", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved)}},
			{Host: "b", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.15-1", ok, policy.Approved), ssl("libssl3", "3.0.15-1", ok, policy.Approved)}},
		}, []TargetSet{{Target: bookworm, Pins: []apply.Pin{pin("libssl3", "amd64", "3.0.15-1"), pin("openssl", "amd64", "3.0.16-1")},
			Sources: []Source{{"openssl", "3.0.15-1"}, {"openssl", "3.0.16-1"}}}},
			map[string]string{"openssl:amd64=3.0.15-1": "superseded by 3.0.16-1"}},
		{"source unknown: each binary is its own group, as before", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{
				{"openssl", "amd64", "3.0.16-1", "", "", ok, policy.Approved},
				{"libssl3", "amd64", "3.0.16-1", "", "", ok, policy.Pending},
				{"curl", "amd64", "7.88.1-10+deb12u12", "curl", "", ok, policy.Approved}, // half known is unknown
			}},
		}, []TargetSet{{Target: bookworm, Pins: []apply.Pin{pin("curl", "amd64", "7.88.1-10+deb12u12"), pin("openssl", "amd64", "3.0.16-1")}}},
			map[string]string{"libssl3:amd64=3.0.16-1": "not approved (pending)"}},
		{"source known to one host of two: the binary is in its group", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{{"openssl", "amd64", "3.0.16-1", "", "", ok, policy.Approved}}},
			{Host: "b", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved), ssl("libssl3", "3.0.16-1", ok, policy.Pending)}},
		}, nil, map[string]string{
			"openssl:amd64=3.0.16-1": "binary libssl3 of source openssl 3.0.16-1 is not approved (pending)",
			"libssl3:amd64=3.0.16-1": "not approved (pending)",
		}},
		{"arch all binary blocks the amd64 ones (and a binNMU) of its source", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{
				{"perl", "amd64", "5.36.0-7+deb12u1", "perl", "5.36.0-7+deb12u1", ok, policy.Approved},
				{"perl-modules-5.36", "all", "5.36.0-7+deb12u1", "perl", "5.36.0-7+deb12u1", ok, policy.Approved},
				{"perl", "amd64", "5.36.0-7+deb12u2+b1", "perl", "5.36.0-7+deb12u2", ok, policy.Approved},
				{"libperl5.36", "amd64", "5.36.0-7+deb12u2+b1", "perl", "5.36.0-7+deb12u2", ok, policy.Approved},
				{"perl-modules-5.36", "all", "5.36.0-7+deb12u2", "perl", "5.36.0-7+deb12u2", ok, policy.Pending},
			}},
		}, []TargetSet{{Target: bookworm, Pins: []apply.Pin{pin("perl", "amd64", "5.36.0-7+deb12u1"), pin("perl-modules-5.36", "all", "5.36.0-7+deb12u1")},
			Sources: []Source{{"perl", "5.36.0-7+deb12u1"}, {"perl", "5.36.0-7+deb12u1"}}}},
			map[string]string{
				"perl:amd64=5.36.0-7+deb12u2+b1":        "binary perl-modules-5.36 of source perl 5.36.0-7+deb12u2 is not approved (pending); the set has 5.36.0-7+deb12u1",
				"libperl5.36:amd64=5.36.0-7+deb12u2+b1": "binary perl-modules-5.36 of source perl 5.36.0-7+deb12u2 is not approved (pending)",
				"perl-modules-5.36=5.36.0-7+deb12u2":    "not approved (pending); the set has 5.36.0-7+deb12u1",
			}},
		{"amd64 binary blocks the arch all one; a foreign arch is named", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{
				{"libc6", "amd64", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Approved},
				{"libc6", "i386", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", young, policy.Approved},
				{"locales", "all", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Approved},
				{"libc-bin", "amd64", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Declined},
			}},
		}, nil, map[string]string{
			// two blockers: the first by name and arch is named
			"libc6:amd64=2.36-9+deb12u10":    "binary libc-bin of source glibc 2.36-9+deb12u10 is not approved (declined)",
			"locales=2.36-9+deb12u10":        "binary libc-bin of source glibc 2.36-9+deb12u10 is not approved (declined)",
			"libc6:i386=2.36-9+deb12u10":     "released 2025-03-18, younger than 168h0m0s",
			"libc-bin:amd64=2.36-9+deb12u10": "not approved (declined)",
		}},
		{"foreign arch blocker", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{
				{"libc6", "amd64", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Approved},
				{"libc6", "i386", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Pending},
			}},
		}, nil, map[string]string{
			"libc6:amd64=2.36-9+deb12u10": "binary libc6:i386 of source glibc 2.36-9+deb12u10 is not approved (pending)",
			"libc6:i386=2.36-9+deb12u10":  "not approved (pending)",
		}},
		{"groups are per target", []HostUpdates{
			{Host: "a", Target: bookworm, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved), ssl("libssl3", "3.0.16-1", ok, policy.Pending)}},
			{Host: "b", Target: noble, Candidates: []Candidate{ssl("openssl", "3.0.16-1", ok, policy.Approved)}},
		}, []TargetSet{{Target: noble, Pins: []apply.Pin{pin("openssl", "amd64", "3.0.16-1")}, Sources: []Source{{"openssl", "3.0.16-1"}}}},
			map[string]string{
				"openssl:amd64=3.0.16-1": "binary libssl3 of source openssl 3.0.16-1 is not approved (pending)",
				"libssl3:amd64=3.0.16-1": "not approved (pending)",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Freeze(tt.hosts, week, freezeAt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Targets, tt.want) {
				t.Errorf("targets:\n%+v\nwant\n%+v", s.Targets, tt.want)
			}
			left := map[string]string{}
			for _, l := range s.Left {
				left[l.Pin.String()] = l.Reason
			}
			if !reflect.DeepEqual(left, tt.left) {
				t.Errorf("left:\n%q\nwant\n%q", left, tt.left)
			}
			checkHighestEligible(t, tt.hosts, s, week)
		})
	}
}

// eligibleNaive is Freeze's rule written out plainly: some host of the
// target offers the version approved and old enough, and for each source
// version any host gave it, so is every binary version some host gave
// that source version.
func eligibleNaive(hosts []HostUpdates, t Target, pkg, arch, version string, minAge time.Duration) bool {
	ok := func(pkg, arch, version string) bool {
		for _, h := range hosts {
			for _, c := range h.Candidates {
				if h.Target == t && c.Package == pkg && c.Arch == arch && c.Version == version && c.Verdict == policy.Approved &&
					!c.Released.IsZero() && freezeAt.Sub(c.Released) >= minAge {
					return true
				}
			}
		}
		return false
	}
	if !ok(pkg, arch, version) {
		return false
	}
	for _, h := range hosts {
		for _, c := range h.Candidates {
			if h.Target != t || c.Package != pkg || c.Arch != arch || c.Version != version || c.Source == "" || c.SourceVersion == "" {
				continue
			}
			for _, h2 := range hosts {
				for _, d := range h2.Candidates {
					if h2.Target == t && d.Source == c.Source && d.SourceVersion == c.SourceVersion && !ok(d.Package, d.Arch, d.Version) {
						return false
					}
				}
			}
		}
	}
	return true
}

// checkHighestEligible checks the set against eligibleNaive: per target
// and (package, arch) offered, the set has the highest eligible version,
// or nothing when none is; every offered version not in the set is in
// Left; every pin's source is one a host gave for it.
func checkHighestEligible(t *testing.T, hosts []HostUpdates, s PatchSet, minAge time.Duration) {
	t.Helper()
	type slot struct {
		t         Target
		pkg, arch string
	}
	want := map[slot]string{}
	offered := map[string]bool{}
	sources := map[string]map[Source]bool{}
	for _, h := range hosts {
		for _, c := range h.Candidates {
			k := slot{h.Target, c.Package, c.Arch}
			key := h.Target.String() + " " + apply.Pin{Package: c.Package, Arch: c.Arch, Version: c.Version}.String()
			offered[key] = true
			if sources[key] == nil {
				sources[key] = map[Source]bool{{}: true}
			}
			if c.Source != "" && c.SourceVersion != "" {
				sources[key][Source{c.Source, c.SourceVersion}] = true
			}
			if eligibleNaive(hosts, h.Target, c.Package, c.Arch, c.Version, minAge) && (want[k] == "" || deb.CompareValid(c.Version, want[k]) > 0) {
				want[k] = c.Version
			}
		}
	}
	got := map[slot]string{}
	accounted := map[string]bool{}
	for _, ts := range s.Targets {
		for i, p := range ts.Pins {
			got[slot{ts.Target, p.Package, p.Arch}] = p.Version
			key := ts.Target.String() + " " + p.String()
			accounted[key] = true
			if !sources[key][ts.source(i)] {
				t.Errorf("%s: source %v was not given by any host", key, ts.source(i))
			}
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %s:%s: set has %q, want %q", k.t, k.pkg, k.arch, got[k], v)
		}
	}
	for k, v := range got {
		if want[k] != v {
			t.Errorf("%s %s:%s: set has %q, no eligible version", k.t, k.pkg, k.arch, v)
		}
	}
	for _, l := range s.Left {
		accounted[l.Target.String()+" "+l.Pin.String()] = true
	}
	if !reflect.DeepEqual(accounted, offered) {
		t.Errorf("set and left %v, offered %v", accounted, offered)
	}
}

// TestFreezeRandom checks Freeze against eligibleNaive on random fleets
// of binaries of a few source packages (with a binNMU, arch all and a
// foreign architecture), some hosts not knowing the source.
func TestFreezeRandom(t *testing.T) {
	type bin struct{ pkg, arch, binNMU string }
	sources := map[string][]bin{
		"openssl": {{"openssl", "amd64", ""}, {"libssl3", "amd64", ""}, {"openssl-doc", "all", ""}},
		"glibc":   {{"libc6", "amd64", ""}, {"libc6", "i386", ""}, {"libc-bin", "amd64", ""}, {"locales", "all", ""}},
		"foo":     {{"libfoo1", "amd64", "+b1"}, {"foo-data", "all", ""}},
	}
	names := []string{"foo", "glibc", "openssl"}
	versions := []string{"1.0-1", "1.0-2", "1.1-1"}
	verdicts := []policy.Verdict{policy.Approved, policy.Approved, policy.Approved, policy.Pending, policy.Declined}
	dates := []time.Time{{}, days(1), days(10), days(30), days(30)}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 300; i++ {
		var hosts []HostUpdates
		for h := range 1 + rng.IntN(4) {
			hu := HostUpdates{Host: fmt.Sprint("h", h), Target: []Target{bookworm, noble}[rng.IntN(2)]}
			for _, src := range names {
				sv := versions[rng.IntN(len(versions))]
				for _, b := range sources[src] {
					if rng.IntN(10) < 3 {
						continue
					}
					c := Candidate{Package: b.pkg, Arch: b.arch, Version: sv + b.binNMU, Source: src, SourceVersion: sv,
						Released: dates[rng.IntN(len(dates))], Verdict: verdicts[rng.IntN(len(verdicts))]}
					if rng.IntN(10) == 0 {
						c.Source, c.SourceVersion = "", ""
					}
					hu.Candidates = append(hu.Candidates, c)
				}
			}
			hosts = append(hosts, hu)
		}
		s, err := Freeze(hosts, 7*24*time.Hour, freezeAt)
		if err != nil {
			t.Fatal(err)
		}
		checkHighestEligible(t, hosts, s, 7*24*time.Hour)
		// HostPins with a random skip keeps no pin of a source version
		// of which it dropped one, and drops no other.
		for _, h := range hosts {
			var inst []Installed
			has := map[[2]string]bool{}
			for _, c := range h.Candidates {
				inst = append(inst, Installed{c.Package, c.Arch, "0.9-1"})
				has[[2]string{c.Package, c.Arch}] = true
			}
			skipped := map[string]bool{}
			skip := func(p apply.Pin) bool {
				if rng.IntN(5) > 0 {
					return false
				}
				skipped[p.String()] = true
				return true
			}
			got := map[string]bool{}
			for _, p := range s.HostPins(h.Target, inst, skip) {
				got[p.String()] = true
			}
			var ts TargetSet
			if i := slices.IndexFunc(s.Targets, func(ts TargetSet) bool { return ts.Target == h.Target }); i >= 0 {
				ts = s.Targets[i]
			}
			dropped := map[Source]bool{}
			for i, p := range ts.Pins {
				if skipped[p.String()] && ts.source(i) != (Source{}) {
					dropped[ts.source(i)] = true
				}
			}
			for i, p := range ts.Pins {
				if want := has[[2]string{p.Package, p.Arch}] && !skipped[p.String()] && !dropped[ts.source(i)]; got[p.String()] != want {
					t.Errorf("host %s: %s kept %v, want %v (skipped %v)", h.Host, p, got[p.String()], want, skipped)
				}
			}
		}
		if t.Failed() {
			t.Fatalf("fleet %d: %+v\n%v", i, hosts, s)
		}
	}
}

func TestHostPins(t *testing.T) {
	s, _ := Freeze(fleetUpdates(), 7*24*time.Hour, freezeAt)
	installed := []Installed{
		{"libc6", "amd64", "2.36-9+deb12u9"},             // lower: pinned
		{"libc6", "i386", "2.36-9+deb12u10"},             // equal: not
		{"libssl3", "amd64", "3.0.15-1~deb12u1"},         // equal: not
		{"openssh-server", "amd64", "1:9.2p1-2+deb12u3"}, // lower, with epoch
		{"openssl", "amd64", "3.0.17-1~deb12u1"},         // higher (installed by hand): never a downgrade
		{"curl", "amd64", "7.88.1-10+deb12u8"},           // not in the set
	}
	got := s.HostPins(bookworm, installed, nil)
	want := []apply.Pin{{Package: "libc6", Arch: "amd64", Version: "2.36-9+deb12u10"}, {Package: "openssh-server", Arch: "amd64", Version: "1:9.2p1-2+deb12u5"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pins %v, want %v", got, want)
	}
	skipSSH := func(p apply.Pin) bool { return p.Package == "openssh-server" }
	if got := s.HostPins(bookworm, installed, skipSSH); len(got) != 1 || got[0].Package != "libc6" {
		t.Errorf("with skip: %v", got)
	}
	// The same installed set on the other target gets that target's pins.
	if got := s.HostPins(noble, []Installed{{"openssl", "amd64", "3.0.13-0ubuntu3.4"}}, nil); len(got) != 1 || got[0].Version != "3.0.13-0ubuntu3.5" {
		t.Errorf("noble: %v", got)
	}
	if got := s.HostPins(Target{"debian", "11", "amd64"}, installed, nil); got != nil {
		t.Errorf("unknown target: %v", got)
	}
	// Property: every pin is for an installed package at a lower version.
	rng := rand.New(rand.NewPCG(3, 4))
	versions := []string{"2.36-9+deb12u8", "2.36-9+deb12u10", "2.36-9+deb12u11", "3.0.11-1~deb12u2", "3.0.16-1~deb12u1", "1:9.2p1-2+deb12u5", "9.9-1"}
	for i := 0; i < 500; i++ {
		var inst []Installed
		for _, ts := range s.Targets[:1] {
			for _, p := range ts.Pins {
				if rng.IntN(3) > 0 {
					inst = append(inst, Installed{p.Package, p.Arch, versions[rng.IntN(len(versions))]})
				}
			}
		}
		have := map[string]string{}
		for _, p := range inst {
			have[p.Package+":"+p.Arch] = p.Version
		}
		pins := s.HostPins(bookworm, inst, nil)
		n := 0
		for _, p := range s.For(bookworm) {
			v, ok := have[p.Package+":"+p.Arch]
			if ok && deb.CompareValid(v, p.Version) < 0 {
				n++
			}
		}
		if len(pins) != n {
			t.Fatalf("%v: %d pins, want %d", inst, len(pins), n)
		}
		for _, p := range pins {
			if v := have[p.Package+":"+p.Arch]; deb.CompareValid(v, p.Version) >= 0 {
				t.Fatalf("pin %s over installed %s", p, v)
			}
		}
	}
}

// TestHostPinsSourceGroups: a pin skip drops takes the host's other pins
// of its source version with it.
func TestHostPinsSourceGroups(t *testing.T) {
	ok := days(30)
	hosts := []HostUpdates{{Host: "a", Target: bookworm, Candidates: []Candidate{
		{"openssl", "amd64", "3.0.16-1", "openssl", "3.0.16-1", ok, policy.Approved},
		{"libssl3", "amd64", "3.0.16-1", "openssl", "3.0.16-1", ok, policy.Approved},
		{"libc6", "amd64", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Approved},
		{"libc6", "i386", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Approved},
		{"locales", "all", "2.36-9+deb12u10", "glibc", "2.36-9+deb12u10", ok, policy.Approved},
		{"curl", "amd64", "7.88.1-10+deb12u12", "", "", ok, policy.Approved},
		{"libcurl4", "amd64", "7.88.1-10+deb12u12", "", "", ok, policy.Approved},
	}}}
	set, err := Freeze(hosts, 7*24*time.Hour, freezeAt)
	if err != nil {
		t.Fatal(err)
	}
	// A set stored before sources were recorded: the same JSON without them.
	var old PatchSet
	raw, _ := json.Marshal(set)
	var m map[string]any
	json.Unmarshal(raw, &m)
	for _, ts := range m["targets"].([]any) {
		delete(ts.(map[string]any), "sources")
	}
	raw, _ = json.Marshal(m)
	if strings.Contains(string(raw), "sources") {
		t.Fatalf("sources left in %s", raw)
	}
	if err := json.Unmarshal(raw, &old); err != nil || old.Verify() != nil || old.Hash != set.Hash {
		t.Fatalf("old set: %v, %v", err, old.Verify())
	}
	lower := []Installed{
		{"openssl", "amd64", "3.0.15-1"}, {"libssl3", "amd64", "3.0.15-1"},
		{"libc6", "amd64", "2.36-9+deb12u9"}, {"libc6", "i386", "2.36-9+deb12u9"}, {"locales", "all", "2.36-9+deb12u9"},
		{"curl", "amd64", "7.88.1-10+deb12u8"}, {"libcurl4", "amd64", "7.88.1-10+deb12u8"},
	}
	all := "[curl:amd64=7.88.1-10+deb12u12 libc6:amd64=2.36-9+deb12u10 libc6:i386=2.36-9+deb12u10 libcurl4:amd64=7.88.1-10+deb12u12 " +
		"libssl3:amd64=3.0.16-1 locales=2.36-9+deb12u10 openssl:amd64=3.0.16-1]"
	tests := []struct {
		name      string
		set       *PatchSet
		installed []Installed
		skip      []string // package:arch
		want      string
	}{
		{"no skip", &set, lower, nil, all},
		{"skipping libssl3 drops openssl", &set, lower, []string{"libssl3:amd64"},
			"[curl:amd64=7.88.1-10+deb12u12 libc6:amd64=2.36-9+deb12u10 libc6:i386=2.36-9+deb12u10 libcurl4:amd64=7.88.1-10+deb12u12 locales=2.36-9+deb12u10]"},
		{"skipping a foreign arch drops the native and arch all binaries", &set, lower, []string{"libc6:i386"},
			"[curl:amd64=7.88.1-10+deb12u12 libcurl4:amd64=7.88.1-10+deb12u12 libssl3:amd64=3.0.16-1 openssl:amd64=3.0.16-1]"},
		{"source unknown: only the skipped pin", &set, lower, []string{"curl:amd64"},
			"[libc6:amd64=2.36-9+deb12u10 libc6:i386=2.36-9+deb12u10 libcurl4:amd64=7.88.1-10+deb12u12 libssl3:amd64=3.0.16-1 locales=2.36-9+deb12u10 openssl:amd64=3.0.16-1]"},
		{"skipped binary already at the set's version: the others stay", &set,
			[]Installed{{"openssl", "amd64", "3.0.15-1"}, {"libssl3", "amd64", "3.0.16-1"}}, []string{"libssl3:amd64"},
			"[openssl:amd64=3.0.16-1]"},
		{"skipped binary not installed: the others stay", &set,
			[]Installed{{"openssl", "amd64", "3.0.15-1"}}, []string{"libssl3:amd64"}, "[openssl:amd64=3.0.16-1]"},
		{"set stored without sources: each pin its own group", &old, lower, []string{"libssl3:amd64", "libc6:i386"},
			"[curl:amd64=7.88.1-10+deb12u12 libc6:amd64=2.36-9+deb12u10 libcurl4:amd64=7.88.1-10+deb12u12 locales=2.36-9+deb12u10 openssl:amd64=3.0.16-1]"},
		{"everything skipped", &set, lower, []string{"libssl3:amd64", "libc6:amd64", "curl:amd64", "libcurl4:amd64"}, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skip := func(p apply.Pin) bool { return slices.Contains(tt.skip, p.Package+":"+p.Arch) }
			if got := fmt.Sprint(tt.set.HostPins(bookworm, tt.installed, skip)); got != tt.want {
				t.Errorf("pins\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestComputeHashDefinition: the hash is the documented one, over pins
// only, so hashes stored before sources were recorded still verify.
func TestComputeHashDefinition(t *testing.T) {
	s, _ := Freeze(fleetUpdates(), 7*24*time.Hour, freezeAt)
	h := sha256.New()
	for _, ts := range s.Targets {
		for _, p := range ts.Pins {
			fmt.Fprintf(h, "%s %s %s\t%s\t%s\t%s\n", ts.Target.Distro, ts.Target.Release, ts.Target.Arch, p.Package, p.Arch, p.Version)
		}
	}
	if want := hex.EncodeToString(h.Sum(nil)); s.Hash != want {
		t.Errorf("hash %s, want %s", s.Hash, want)
	}
	s.Targets[0].Sources = nil
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
}

func TestFromStatus(t *testing.T) {
	st := `Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u9

Package: openssl
Status: deinstall ok config-files
Architecture: amd64
Version: 3.0.11-1~deb12u2
`
	pkgs, err := deb.ParseStatus(strings.NewReader(st), "status")
	if err != nil {
		t.Fatal(err)
	}
	if got := FromStatus(pkgs); !reflect.DeepEqual(got, []Installed{{"libc6", "amd64", "2.36-9+deb12u9"}}) {
		t.Errorf("%v", got)
	}
}
