package apply

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/patchloop/patchloop/internal/deb"
)

func TestDeletedMappings(t *testing.T) {
	// /proc/PID/maps lines as the kernel writes them (an sshd after a
	// libssl upgrade, with the mappings needrestart ignores).
	maps := `55d0c5a00000-55d0c5a2c000 r--p 00000000 fd:01 1835066                    /usr/sbin/sshd
7f1c2a000000-7f1c2a08a000 r--p 00000000 fd:01 1837514                    /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)
7f1c2a08a000-7f1c2a0e6000 r-xp 0008a000 fd:01 1837514                    /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)
7f1c2b000000-7f1c2b001000 rw-s 00000000 00:01 4096                       /memfd:pulseaudio (deleted)
7f1c2b100000-7f1c2b101000 rw-s 00000000 00:05 32768                      /SYSV00000000 (deleted)
7f1c2b200000-7f1c2b201000 rw-s 00000000 00:19 77                         /run/user/1000/x (deleted)
7f1c2b300000-7f1c2b301000 rw-p 00000000 00:00 0                          [heap]
7f1c2b400000-7f1c2b401000 r--p 00000000 fd:01 1837999                    /usr/lib/x86_64-linux-gnu/libc.so.6
`
	got := DeletedMappings(strings.NewReader(maps), "/")
	if want := []string{"/usr/lib/x86_64-linux-gnu/libssl.so.3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	got = DeletedMappings(strings.NewReader(strings.ReplaceAll(maps, " /usr/", " /srv/lab/usr/")), "/srv/lab")
	if want := []string{"/usr/lib/x86_64-linux-gnu/libssl.so.3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("under a root: got %v want %v", got, want)
	}
	if got := DeletedMappings(strings.NewReader(maps), "/srv/lab"); len(got) != 0 {
		t.Errorf("mappings outside the root counted: %v", got)
	}
}

// TestDeletedMappingsRealProc maps a file of a fake system tree, replaces
// it as dpkg does (a new file renamed over it) and reads this process's
// real /proc/self/maps.
func TestDeletedMappingsRealProc(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "usr/lib/libpltest.so.1")
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 8192, syscall.PROT_READ, syscall.MAP_PRIVATE)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	read := func() []string {
		m, err := os.Open("/proc/self/maps")
		if err != nil {
			t.Skip("no /proc:", err)
		}
		defer m.Close()
		return DeletedMappings(m, root)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("before the upgrade: %v", got)
	}
	if err := os.WriteFile(lib+".dpkg-new", make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(lib+".dpkg-new", lib); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), []string{"/usr/lib/libpltest.so.1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after the upgrade: got %v want %v", got, want)
	}
}

func TestCgroupUnit(t *testing.T) {
	tests := []struct {
		in     string
		unit   string
		system bool
	}{
		{"0::/system.slice/ssh.service\n", "ssh.service", true},
		{"0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope", false},
		{"0::/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service\n", "pipewire.service", false},
		{"12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n0::/\n", "cron.service", true},
		{"0::/system.slice/docker-3f2a.scope/init.scope\n", "init.scope", true},
		{"0::/\n", "", false},
		{"4:memory:/process_api/ac69\n0::/\n", "", false},
	}
	for _, tt := range tests {
		unit, system := CgroupUnit(strings.NewReader(tt.in))
		if unit != tt.unit || system != tt.system {
			t.Errorf("%q: got %q %v want %q %v", tt.in, unit, system, tt.unit, tt.system)
		}
	}
}

func TestKernelCheck(t *testing.T) {
	img := func(rel, ver string) deb.InstalledPackage {
		return deb.InstalledPackage{Name: "linux-image-" + rel, Version: ver, Want: "install", Flag: "ok", State: "installed"}
	}
	meta := deb.InstalledPackage{Name: "linux-image-amd64", Version: "6.1.90-1", Want: "install", Flag: "ok", State: "installed"}
	gone := img("6.1.0-30-amd64", "6.1.124-1")
	gone.State = "config-files"
	proc := "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n"
	tests := []struct {
		name    string
		running string
		pkgs    []deb.InstalledPackage
		newest  string
		reboot  bool
	}{
		{"same", "6.1.0-18-amd64", []deb.InstalledPackage{meta, img("6.1.0-18-amd64", "6.1.76-1")}, "6.1.0-18-amd64", false},
		{"newer installed", "6.1.0-18-amd64", []deb.InstalledPackage{img("6.1.0-9-amd64", "6.1.27-1"), img("6.1.0-18-amd64", "6.1.76-1"), img("6.1.0-21-amd64", "6.1.90-1")}, "6.1.0-21-amd64", true},
		{"older ones only removed", "6.1.0-18-amd64", []deb.InstalledPackage{img("6.1.0-18-amd64", "6.1.76-1"), gone}, "6.1.0-18-amd64", false},
		{"upgraded in place", "6.1.0-18-amd64", []deb.InstalledPackage{img("6.1.0-18-amd64", "6.1.76-2")}, "6.1.0-18-amd64", true},
		{"no kernel package (container)", "6.8.0-1-generic", []deb.InstalledPackage{meta}, "", false},
		{"unsigned", "6.1.0-18-amd64", []deb.InstalledPackage{img("6.1.0-18-amd64", "6.1.76-1"), img("6.1.0-25-amd64-unsigned", "6.1.106-3")}, "6.1.0-25-amd64", true},
		{"other flavours beside", "6.1.0-18-amd64", []deb.InstalledPackage{img("6.1.0-18-amd64", "6.1.76-1"), img("6.1.0-18-cloud-amd64", "6.1.76-1"), img("6.1.0-18-rt-amd64", "6.1.76-1")}, "6.1.0-18-amd64", false},
		{"newer of the running flavour among others", "6.1.0-18-cloud-amd64", []deb.InstalledPackage{img("6.1.0-18-cloud-amd64", "6.1.76-1"), img("6.1.0-21-amd64", "6.1.90-1"), img("6.1.0-21-cloud-amd64", "6.1.90-1")}, "6.1.0-21-cloud-amd64", true},
		{"debug symbols", "6.1.0-18-amd64", []deb.InstalledPackage{img("6.1.0-18-amd64", "6.1.76-1"), img("6.1.0-18-amd64-dbg", "6.1.76-1")}, "6.1.0-18-amd64", false},
		{"ubuntu", "6.8.0-45-generic", []deb.InstalledPackage{img("6.8.0-45-generic", "6.8.0-45.45"), img("6.8.0-48-generic", "6.8.0-48.48"), img("6.8.0-50-lowlatency", "6.8.0-50.51")}, "6.8.0-48-generic", true},
	}
	for _, tt := range tests {
		k := KernelCheck(tt.running, proc, tt.pkgs)
		if k.Newest != tt.newest || (k.Reason != "") != tt.reboot {
			t.Errorf("%s: got %+v, want newest %q reboot %v", tt.name, k, tt.newest, tt.reboot)
		}
	}
}

func TestRebootRequiredFlagFile(t *testing.T) {
	root := t.TempDir()
	rb, err := RebootRequired(root)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Required {
		t.Fatalf("empty root: %+v", rb)
	}
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.WriteFile(filepath.Join(root, "run/reboot-required"), []byte("*** System restart required ***\n"), 0o644)
	os.WriteFile(filepath.Join(root, "run/reboot-required.pkgs"), []byte("libc6\nlinux-image-6.1.0-21-amd64\nlibc6\n"), 0o644)
	rb, err = RebootRequired(root)
	if err != nil {
		t.Fatal(err)
	}
	if !rb.Required || !reflect.DeepEqual(rb.Packages, []string{"libc6", "linux-image-6.1.0-21-amd64"}) {
		t.Fatalf("got %+v", rb)
	}
}

// TestRebootRequiredThisMachine reads this machine's real kernel and
// dpkg database: whatever it says, the running release must be uname's.
func TestRebootRequiredThisMachine(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("not a dpkg system")
	}
	rb, err := RebootRequired("/")
	if err != nil {
		t.Fatal(err)
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	if rb.Running != string(rel) {
		t.Errorf("running kernel %q, uname says %q", rb.Running, rel)
	}
	t.Logf("this machine: %+v", rb)
}
