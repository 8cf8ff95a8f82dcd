package rpm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// almaOSRelease is modelled on AlmaLinux 9.4's /usr/lib/os-release
// (almalinux-release): the same keys and quoting.
const almaOSRelease = `NAME="AlmaLinux"
VERSION="9.4 (Seafoam Ocelot)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.4 (Seafoam Ocelot)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
HOME_URL="https://almalinux.org/"
DOCUMENTATION_URL="https://wiki.almalinux.org/"
BUG_REPORT_URL="https://bugs.almalinux.org/"

ALMALINUX_MANTISBT_PROJECT="AlmaLinux-9"
ALMALINUX_MANTISBT_PROJECT_VERSION="9.4"
REDHAT_SUPPORT_PRODUCT="AlmaLinux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadOSRelease(t *testing.T) {
	root := t.TempDir()
	// AlmaLinux links etc/os-release to ../usr/lib/os-release; an absolute
	// link here checks that it is resolved inside root, not on this machine.
	writeFile(t, filepath.Join(root, "usr/lib/os-release"), almaOSRelease)
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	o, err := ReadOSRelease(root)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "almalinux" || o.VersionID != "9.4" || o.PrettyName != "AlmaLinux 9.4 (Seafoam Ocelot)" ||
		!slices.Equal(o.IDLike, []string{"rhel", "centos", "fedora"}) {
		t.Errorf("got %+v", o)
	}
	if o.Path != filepath.Join(root, "usr/lib/os-release") {
		t.Errorf("path %s, want the file inside root", o.Path)
	}
}

func TestReadOSReleaseFallbackAndErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := ReadOSRelease(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty root: %v, want fs.ErrNotExist", err)
	}
	writeFile(t, filepath.Join(root, "usr/lib/os-release"), "ID=rocky\nVERSION_ID='9.5'\nPRETTY_NAME=\"Say \\\"hi\\\" \\$x\"\n")
	o, err := ReadOSRelease(root)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "rocky" || o.VersionID != "9.5" || o.PrettyName != `Say "hi" $x` {
		t.Errorf("got %+v", o)
	}
	for _, bad := range []string{"ID=almalinux\nthis is not a pair\n", "ID=\"almalinux\n", "ID =x\n"} {
		writeFile(t, filepath.Join(root, "etc/os-release"), bad)
		_, err := ReadOSRelease(root)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "etc/os-release")+" line ") {
			t.Errorf("%q: error %v, want one naming file and line", bad, err)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add(almaOSRelease)
	f.Add("ID='x'\n#c\n\nA=\"\\\\\"\n")
	f.Fuzz(func(t *testing.T, data string) {
		o, err := parseOSRelease("os-release", strings.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "os-release line ") && !strings.HasPrefix(err.Error(), "read os-release") {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		if strings.ContainsAny(o.ID, "\n") {
			t.Fatalf("ID %q spans lines", o.ID)
		}
	})
}
