package scan

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/lab"
	"github.com/patchloop/patchloop/internal/lab/labtest"
)

// The lab tests build a real Debian 12 endpoint (debootstrap minbase,
// cached under lab.DefaultCacheDir()) and compare `patchloop scan --root`
// with `apt list --upgradable` run inside it. They need root, debootstrap
// and Debian's mirror, so they run only with PATCHLOOP_LAB=1 (.ci/run sets it).

func labHost(t *testing.T) *lab.Host {
	t.Helper()
	return labtest.Host(t)
}

// bookwormSources writes one-line and deb822 sources: main, updates,
// backports (NotAutomatic, ButAutomaticUpgrades) and security.
func bookwormSources(t *testing.T, h *lab.Host) {
	t.Helper()
	write(t, h, "/etc/apt/sources.list", `# written by patchloop's lab test
deb http://deb.debian.org/debian bookworm main
deb [arch=amd64] http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian bookworm-backports main
`)
	write(t, h, "/etc/apt/sources.list.d/security.sources", `Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`)
}

func write(t *testing.T, h *lab.Host, path, content string) {
	t.Helper()
	if err := h.WriteFile(path, content); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareWithApt scans the host online and offline and checks both
// against `apt list --upgradable` inside it, entry for entry.
func compareWithApt(t *testing.T, h *lab.Host, cacheDir string) []string {
	t.Helper()
	want := parseAptList(t, run(t, h, "apt", "list", "--upgradable"))
	for _, offline := range []bool{false, true} {
		res, err := Run(context.Background(), Options{Root: h.Root, CacheDir: cacheDir, Offline: offline})
		if err != nil {
			t.Fatalf("scan (offline=%v): %v", offline, err)
		}
		got := scanEntries(res.Updates)
		if d := diffLists(want, got); d != "" {
			t.Errorf("scan (offline=%v) differs from apt list --upgradable:\n%s", offline, d)
		}
		// The offline pass must read apt's lists, not our online cache.
		cacheDir = t.TempDir()
	}
	return want
}

func TestLabScanEqualsApt(t *testing.T) {
	h := labHost(t)
	bookwormSources(t, h)
	run(t, h, "apt-get", "update")
	cache := t.TempDir()
	want := compareWithApt(t, h, cache)
	t.Logf("apt and patchloop agree on %d updates", len(want))
	if len(want) == 0 || !strings.Contains(strings.Join(want, "\n"), "security") {
		t.Fatalf("a bookworm minbase should miss real security updates; apt lists %v", want)
	}

	// Pins and holds: hold one package, pin a second to its installed
	// version, forbid the third's candidate suite, and make the fourth's
	// suite the default release's loser.
	names := make([]string, 0, len(want))
	for _, w := range want {
		name, _, _ := strings.Cut(w, ":")
		names = append(names, name)
	}
	if len(names) < 3 {
		t.Fatalf("need 3 updates for the pin cases, have %v", names)
	}
	run(t, h, "apt-mark", "hold", names[0])
	installed := strings.Fields(want[1])[1]
	write(t, h, "/etc/apt/preferences.d/lab.pref", "Explanation: keep "+names[1]+"\nPackage: "+names[1]+
		"\nPin: version "+installed+"\nPin-Priority: 1001\n\nPackage: "+names[2]+
		"\nPin: release n=bookworm-security\nPin-Priority: -1\n")
	got := compareWithApt(t, h, cache)
	if len(got) != len(want)-2 {
		t.Errorf("pins should remove 2 of %d updates (a held package stays listed), apt lists %d", len(want), len(got))
	}

	// A default release raises bookworm to 990: the installed versions,
	// still published there, win over newer ones from other suites.
	write(t, h, "/etc/apt/apt.conf.d/99default-release", `APT::Default-Release "bookworm";`+"\n")
	compareWithApt(t, h, cache)
}

// TestHostScanEqualsApt compares a scan of this machine itself with
// `apt list --upgradable` after a fresh `apt-get update`, online and
// offline (from apt's lists).
func TestHostScanEqualsApt(t *testing.T) {
	if os.Getenv("PATCHLOOP_LAB") != "1" {
		t.Skip("host test: set PATCHLOOP_LAB=1 (runs apt-get update on this machine)")
	}
	if out, err := exec.Command("apt-get", "-q", "update").CombinedOutput(); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	out, err := exec.Command("apt", "list", "--upgradable").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := parseAptList(t, string(out))
	cache := t.TempDir()
	for _, offline := range []bool{false, true} {
		res, err := Run(context.Background(), Options{Root: "/", CacheDir: cache, Offline: offline})
		if err != nil {
			t.Fatalf("scan (offline=%v): %v", offline, err)
		}
		if d := diffLists(want, scanEntries(res.Updates)); d != "" {
			t.Errorf("scan of this machine (offline=%v) differs from apt list --upgradable:\n%s", offline, d)
		}
		t.Logf("offline=%v: %d updates (%d security), same as apt", offline, res.Summary.Updates, res.Summary.Security)
		cache = t.TempDir()
	}
}

// TestLabBadMirrorMetadata uses real bad metadata when the mirror has it:
// bookworm-security's i386 index has been stale (its size differs from
// the signed InRelease). Whatever the mirror serves, patchloop must agree
// with apt: where apt-get update rejects the index, the scan fails naming
// it; where apt accepts it, the scan equals apt list --upgradable.
func TestLabBadMirrorMetadata(t *testing.T) {
	h := labHost(t)
	write(t, h, "/etc/apt/sources.list", "deb http://deb.debian.org/debian-security bookworm-security main\n")
	run(t, h, "dpkg", "--add-architecture", "i386")
	out, aptErr := h.Run(context.Background(), "apt-get", "update")
	_, err := Run(context.Background(), Options{Root: h.Root, CacheDir: t.TempDir()})
	if aptErr == nil && !strings.Contains(out, "Failed to fetch") {
		t.Log("the mirror's i386 index is consistent now; comparing with apt instead")
		compareWithApt(t, h, t.TempDir())
		return
	}
	if !strings.Contains(out, "binary-i386/Packages") {
		t.Fatalf("apt-get update failed for another reason:\n%s", out)
	}
	if err == nil || !strings.Contains(err.Error(), "binary-i386/Packages") {
		t.Fatalf("apt rejected the i386 index, patchloop scan said: %v", err)
	}
	t.Logf("apt and patchloop both reject the stale index: %v", err)
}
