package apply

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSimulation(t *testing.T) {
	const sec = "Debian-Security:12/oldstable-security"
	tests := []struct {
		file    string
		changes []Change
		held    []string
		errs    []string
	}{
		{file: "host-upgrade-expat.txt", changes: []Change{
			{Package: "libexpat1-dev", Arch: "amd64", Before: "2.5.0-1+deb12u1", After: "2.5.0-1+deb12u2", Kind: Upgrade, Releases: "Debian:12.14/oldstable"},
			{Package: "libexpat1", Arch: "amd64", Before: "2.5.0-1+deb12u1", After: "2.5.0-1+deb12u2", Kind: Upgrade, Releases: "Debian:12.14/oldstable"},
		}},
		{file: "host-upgrade-security.txt", changes: []Change{
			{Package: "libcups2", Arch: "amd64", Before: "2.4.2-3+deb12u8", After: "2.4.2-3+deb12u9", Kind: Upgrade, Releases: "Debian:12.14/oldstable, " + sec},
			{Package: "libgdk-pixbuf2.0-common", Arch: "all", Before: "2.42.10+dfsg-1+deb12u2", After: "2.42.10+dfsg-1+deb12u4", Kind: Upgrade, Releases: "Debian:12.14/oldstable, " + sec},
			{Package: "libgdk-pixbuf-2.0-0", Arch: "amd64", Before: "2.42.10+dfsg-1+deb12u2", After: "2.42.10+dfsg-1+deb12u4", Kind: Upgrade, Releases: "Debian:12.14/oldstable, " + sec},
			{Package: "libgdk-pixbuf2.0-bin", Arch: "amd64", Before: "2.42.10+dfsg-1+deb12u2", After: "2.42.10+dfsg-1+deb12u4", Kind: Upgrade, Releases: "Debian:12.14/oldstable, " + sec},
		}},
		{file: "host-new-deps.txt", changes: []Change{
			{Package: "nginx-common", Arch: "all", After: "1.22.1-9+deb12u7", Kind: New, Releases: sec},
			{Package: "nginx", Arch: "amd64", After: "1.22.1-9+deb12u7", Kind: New, Releases: sec},
		}},
		{file: "host-removal.txt", changes: []Change{
			{Package: "systemd-timesyncd", Before: "252.38-1~deb12u1", Kind: Remove},
			{Package: "python3-ntp", Arch: "amd64", After: "1.2.2+dfsg1-1+deb12u1", Kind: New, Releases: "Debian:12.14/oldstable, " + sec},
			{Package: "ntpsec", Arch: "amd64", After: "1.2.2+dfsg1-1+deb12u1", Kind: New, Releases: "Debian:12.14/oldstable, " + sec},
		}},
		{file: "host-error-version.txt", errs: []string{"Version '9.9' for 'libexpat1' was not found"}},
		{file: "host-error-package.txt", errs: []string{"Unable to locate package nosuchpkg-xyz"}},
		{file: "lab-upgrade-3.txt", changes: []Change{
			{Package: "liblzma5", Arch: "amd64", Before: "5.4.1-1+deb12u1", After: "5.4.1-1+deb12u2", Kind: Upgrade, Releases: sec},
			{Package: "libzstd1", Arch: "amd64", Before: "1.5.4+dfsg2-5", After: "1.5.4+dfsg2-5+deb12u1", Kind: Upgrade, Releases: sec},
			{Package: "zlib1g", Arch: "amd64", Before: "1:1.2.13.dfsg-1", After: "1:1.2.13.dfsg-1+deb12u1", Kind: Upgrade, Releases: sec},
		}},
		{file: "lab-held.txt", held: []string{"liblzma5"}, changes: []Change{
			{Package: "liblzma5", Arch: "amd64", Before: "5.4.1-1+deb12u1", After: "5.4.1-1+deb12u2", Kind: Upgrade, Releases: sec},
			{Package: "zlib1g", Arch: "amd64", Before: "1:1.2.13.dfsg-1", After: "1:1.2.13.dfsg-1+deb12u1", Kind: Upgrade, Releases: sec},
		}},
		{file: "lab-downgrade.txt", changes: []Change{
			{Package: "zlib1g", Arch: "amd64", Before: "1:1.2.13.dfsg-1+deb12u1", After: "1:1.2.13.dfsg-1", Kind: Downgrade, Releases: "Debian:12.15/oldstable"},
		}},
		{file: "lab-unpacked.txt", changes: []Change{
			{Package: "libzstd1", Arch: "amd64", After: "1.5.4+dfsg2-5+deb12u1", Kind: Configure, Releases: sec},
			{Package: "liblzma5", Arch: "amd64", Before: "5.4.1-1+deb12u1", After: "5.4.1-1+deb12u2", Kind: Upgrade, Releases: sec},
		}},
		{file: "lab-removal-conflict.txt", changes: []Change{
			{Package: "busybox", Before: "1:1.35.0-4+deb12u1+b1", Kind: Remove},
			{Package: "busybox-static", Arch: "amd64", After: "1:1.35.0-4+deb12u1+b1", Kind: New, Releases: "Debian:12.15/oldstable"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sim, err := ParseSimulation(f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sim.Changes, tt.changes) {
				t.Errorf("changes:\n got %+v\nwant %+v", sim.Changes, tt.changes)
			}
			if !reflect.DeepEqual(sim.HeldChanged, tt.held) {
				t.Errorf("held: got %v want %v", sim.HeldChanged, tt.held)
			}
			if !reflect.DeepEqual(sim.Errors, tt.errs) {
				t.Errorf("errors: got %q want %q", sim.Errors, tt.errs)
			}
		})
	}
}

func TestParseSimulationForeignArch(t *testing.T) {
	f, err := os.Open("testdata/lab-foreign-arch.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sim, err := ParseSimulation(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range sim.Changes {
		if c.Arch != "i386" || c.Kind != New {
			t.Errorf("%+v: want a new i386 package", c)
		}
		got = append(got, c.Package+"="+c.After)
	}
	want := "gcc-12-base=12.2.0-14+deb12u1 libgcc-s1=12.2.0-14+deb12u1 libc6=2.36-9+deb12u14 libunistring2=1.0-2 libidn2-0=2.3.3-1+b1 zlib1g=1:1.2.13.dfsg-1+deb12u1"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestParseSimulationBad(t *testing.T) {
	for _, in := range []string{
		"Inst foo [1.0 (2.0 Debian:12/stable [amd64])",
		"Inst foo [1.0] 2.0 Debian:12/stable [amd64]",
		"Inst foo [1.0] (2.0 Debian:12/stable [amd64]",
		"Inst Foo_bar (1.0 Debian:12/stable [amd64])",
		"Inst foo (1.0:: x [amd64])",
		"Remv foo",
		"Inst foo (1.0 x [amd64])\nInst foo (1.0 x [amd64])",
	} {
		if sim, err := ParseSimulation(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error, got %+v", in, sim)
		}
	}
	// Reinstall and a Purg line.
	sim, err := ParseSimulation(strings.NewReader("Inst foo [1.0] (1.0 Debian:12/stable [amd64])\nPurg bar:i386 [2:3.4]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Package: "foo", Arch: "amd64", Before: "1.0", After: "1.0", Kind: Reinstall, Releases: "Debian:12/stable"},
		{Package: "bar", Arch: "i386", Before: "2:3.4", Kind: Remove},
	}
	if !reflect.DeepEqual(sim.Changes, want) {
		t.Errorf("got %+v\nwant %+v", sim.Changes, want)
	}
}

func FuzzParseSimulation(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, in string) {
		sim, err := ParseSimulation(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, c := range sim.Changes {
			if c.Package == "" || (c.Kind == Remove) != (c.After == "") {
				t.Fatalf("inconsistent change %+v from %q", c, in)
			}
		}
	})
}

func TestPinValidate(t *testing.T) {
	good := []Pin{{Package: "zlib1g", Version: "1:1.2.13.dfsg-1+deb12u1"}, {Package: "libc6", Arch: "i386", Version: "2.36-9"}}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
	bad := []Pin{{Package: "-o", Version: "1"}, {Package: "foo", Version: ""}, {Package: "foo", Version: "1 2"},
		{Package: "foo", Arch: "amd64 x", Version: "1"}, {Package: "Foo", Version: "1"}}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: accepted", p)
		}
	}
	if err := validateSet([]Pin{good[0], good[0]}); err == nil {
		t.Error("a set naming a package twice was accepted")
	}
	if got := (Pin{Package: "libc6", Arch: "i386", Version: "2.36-9"}).String(); got != "libc6:i386=2.36-9" {
		t.Errorf("String: %s", got)
	}
	if got := (Pin{Package: "tzdata", Arch: "all", Version: "2024a"}).String(); got != "tzdata=2024a" {
		t.Errorf("String: %s", got)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTail(10)
	for i := 0; i < 100; i++ {
		tb.Write([]byte("0123456789"[i%10 : i%10+1]))
	}
	if got := tb.String(); got != "[... 90 bytes cut ...]\n0123456789" {
		t.Errorf("got %q", got)
	}
	small := newTail(10)
	small.Write([]byte("abc"))
	if small.String() != "abc" {
		t.Errorf("got %q", small.String())
	}
}

// The tail buffer keeps what a command wrote after a mark even when
// earlier output was cut, and dpkgLocked knows dpkg's lock messages.
func TestTailSinceAndLockMessages(t *testing.T) {
	log := newTail(24)
	log.Write([]byte(strings.Repeat("x", 60))) // cut down to 24 bytes
	m := log.mark()
	// The command's own output is cut too while it runs; its end is kept.
	log.Write([]byte("Reading...E: dpkg was interrupted"))
	if got := log.since(m); !strings.HasSuffix(got, "E: dpkg was interrupted") {
		t.Errorf("since after a cut = %q", got)
	}
	if got := log.since(log.mark()); got != "" {
		t.Errorf("since now = %q", got)
	}
	for _, msg := range []string{
		"dpkg: error: dpkg frontend lock was locked by another process with pid 4242",
		"dpkg: error: dpkg status database is locked by another process",
	} {
		if !dpkgLocked.MatchString(msg) {
			t.Errorf("not a lock message: %q", msg)
		}
	}
	if dpkgLocked.MatchString("Setting up clock-utils (1.0-1) ...") {
		t.Error("a package named clock is not a lock")
	}
}
