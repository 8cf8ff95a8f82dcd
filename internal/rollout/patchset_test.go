package rollout

import (
	"math/rand/v2"
	"reflect"
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
			{"openssl", "amd64", "3.0.15-1~deb12u1", days(30), policy.Approved},
			{"libssl3", "amd64", "3.0.15-1~deb12u1", days(30), policy.Approved},
			{"openssh-server", "amd64", "1:9.2p1-2+deb12u5", days(10), policy.Approved},
			{"tzdata", "all", "2025a-0+deb12u1", days(2), policy.Approved},
			{"linux-image-6.1.0-32-amd64", "amd64", "6.1.129-1", days(20), policy.Declined},
		}},
		{Host: "web2", Target: bookworm, Candidates: []Candidate{
			// a host that sees a newer openssl: the set takes the highest
			{"openssl", "amd64", "3.0.16-1~deb12u1", days(9), policy.Approved},
			{"libssl3", "amd64", "3.0.16-1~deb12u1", days(9), policy.Pending},
			{"libc6", "amd64", "2.36-9+deb12u10", days(15), policy.Approved},
			{"libc6", "i386", "2.36-9+deb12u10", days(15), policy.Approved},
			{"curl", "amd64", "7.88.1-10+deb12u12", time.Time{}, policy.Approved},
		}},
		{Host: "db1", Target: noble, Candidates: []Candidate{
			{"openssl", "amd64", "3.0.13-0ubuntu3.5", days(40), policy.Approved},
			{"libc6", "amd64", "2.39-0ubuntu8.4", days(12), policy.Approved},
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
			{Package: "openssl", Arch: "amd64", Version: "3.0.16-1~deb12u1"},
		}},
		{Target: noble, Pins: []apply.Pin{
			{Package: "libc6", Arch: "amd64", Version: "2.39-0ubuntu8.4"},
			{Package: "openssl", Arch: "amd64", Version: "3.0.13-0ubuntu3.5"},
		}},
	}
	if !reflect.DeepEqual(s.Targets, want) {
		t.Errorf("targets:\n%v\nwant\n%v", s.Targets, want)
	}
	left := map[string]string{}
	for _, l := range s.Left {
		left[l.Pin.String()] = l.Reason
	}
	wantLeft := map[string]string{
		"openssl:amd64=3.0.15-1~deb12u1":             "superseded by 3.0.16-1~deb12u1",
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
// candidates; every pin is approved somewhere, old enough and the highest
// such version; the hash changes with any version and not with FrozenAt.
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
	for _, ts := range base.Targets {
		for _, p := range ts.Pins {
			for _, h := range fleetUpdates() {
				for _, c := range h.Candidates {
					if h.Target == ts.Target && c.Package == p.Package && c.Arch == p.Arch && c.Verdict == policy.Approved &&
						!c.Released.IsZero() && freezeAt.Sub(c.Released) >= 7*24*time.Hour && deb.CompareValid(c.Version, p.Version) > 0 {
						t.Errorf("%s: %s is eligible and higher than %s", ts.Target, c.Version, p)
					}
				}
			}
		}
	}
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
	if _, err := Freeze([]HostUpdates{{Host: "x", Target: bookworm, Candidates: []Candidate{{"--force-yes", "amd64", "1", days(30), policy.Approved}}}}, 0, freezeAt); err == nil {
		t.Error("an option-like package name was accepted")
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
