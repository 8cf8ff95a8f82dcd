package advisory

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// feedsDir is the shared copy of real feeds (see /work/shared/feeds/README.md).
const feedsDir = "../../../shared/feeds"

// requireFeeds skips the test when the shared feeds are absent.
func requireFeeds(t testing.TB, sub string) string {
	t.Helper()
	dir := filepath.Join(feedsDir, sub)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real feed data absent (%s): %v", dir, err)
	}
	return dir
}

func TestOSVRealDebianUbuntu(t *testing.T) {
	s, err := LoadOSVDir(os.DirFS("testdata/osv"), ".")
	if err != nil {
		t.Fatal(err)
	}
	// 11 records, one of which (UBUNTU-CVE-2020-36325) is withdrawn.
	if len(s.Records) != 10 || s.Withdrawn != 1 || s.Bad != 0 {
		t.Fatalf("records %d withdrawn %d bad %d (%v), want 10, 1, 0", len(s.Records), s.Withdrawn, s.Bad, s.First)
	}
	var m Matcher
	tests := []struct {
		eco, name, version string
		want               []string
	}{
		{"Debian:7", "nginx", "1.2.1-2.2+wheezy2", []string{"DSA-3029-1"}},
		{"Debian:7", "nginx", "1.2.1-2.2+wheezy3", nil},
		{"Debian:7", "nginx", "1.2.1-2.2+wheezy3~bpo1", []string{"DSA-3029-1"}},
		{"Ubuntu:20.04:LTS", "wayland", "1.18.0-1", []string{"USN-5614-1"}},
		{"Ubuntu:20.04:LTS", "wayland", "1.18.0-1ubuntu0.1", nil},
		{"Ubuntu:Pro:16.04:LTS", "netty", "1:4.0.34-1ubuntu0.1~esm1", []string{"UBUNTU-CVE-2022-24823"}},
		{"Ubuntu:Pro:16.04:LTS", "netty", "1:4.0.34-1ubuntu0.1~esm2", nil},
		{"Ubuntu:25.10", "netty", "1:4.1.48-99", []string{"UBUNTU-CVE-2022-24823"}}, // unfixed: introduced 0 only
		{"Ubuntu:Pro:14.04:LTS", "jansson", "2.5-2", nil},                           // only a withdrawn record
		{"Ubuntu:Pro:14.04:LTS", "linux", "3.13.0-206.257", []string{"UBUNTU-CVE-2025-38094"}},
	}
	for _, tt := range tests {
		got, err := s.Affecting(m, tt.eco, tt.name, tt.version)
		if err != nil {
			t.Errorf("%s %s %s: %v", tt.eco, tt.name, tt.version, err)
			continue
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%s %s %s: affected by %v, want %v", tt.eco, tt.name, tt.version, ids, tt.want)
		}
	}

	cves := map[string][]string{
		"DSA-3029-1":            {"CVE-2014-3616"},
		"USN-5614-1":            {"CVE-2021-3782"},
		"UBUNTU-CVE-2022-24823": {"CVE-2022-24823"},
	}
	for _, r := range s.Records {
		if want, ok := cves[r.ID]; ok && !slices.Equal(r.CVEs(), want) {
			t.Errorf("%s: CVEs %v, want %v", r.ID, r.CVEs(), want)
		}
		if r.ID == "DLA-3623-1" && len(r.CVEs()) != 44 {
			t.Errorf("DLA-3623-1: %d CVEs, want the 44 upstream ones", len(r.CVEs()))
		}
	}
}

// TestOSVRealVersionsAgreeWithRanges checks dpkg ordering and the walk on
// real data: OSV.dev fills versions[] from the ranges, so every listed
// version must lie in a range, and no fixed version may.
func TestOSVRealVersionsAgreeWithRanges(t *testing.T) {
	s, err := LoadOSVDir(os.DirFS("testdata/osv/ubuntu"), ".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range s.Records {
		for _, a := range r.Affected {
			cmp, ok := ComparatorFor(a.Package.Ecosystem)
			if !ok {
				t.Fatalf("%s: no comparator for %s", r.ID, a.Package.Ecosystem)
			}
			for _, rg := range a.Ranges {
				for _, v := range a.Versions {
					checked++
					if !rg.Includes(v, cmp) {
						t.Errorf("%s %s: listed version %s not in range %v", r.ID, a.Package.Ecosystem, v, rg.Events)
					}
				}
				for _, e := range rg.Events {
					if e.Kind == Fixed && rg.Includes(e.Version, cmp) {
						t.Errorf("%s %s: fixed version %s in its own range", r.ID, a.Package.Ecosystem, e.Version)
					}
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d versions checked", checked)
	}
}

func TestOSVRealAlmaLinux(t *testing.T) {
	s, err := LoadOSVDir(os.DirFS("testdata/osv/almalinux"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 5 || s.Bad != 0 {
		t.Fatalf("records %d bad %d (%v)", len(s.Records), s.Bad, s.First)
	}
	openssl := s.ForPackage("AlmaLinux:9", "openssl")
	if len(openssl) != 1 || openssl[0].ID != "ALSA-2023:0946" {
		t.Fatalf("ForPackage(AlmaLinux:9, openssl) = %v", openssl)
	}
	if got := openssl[0].CVEs(); len(got) == 0 || got[0] != "CVE-2022-4203" {
		t.Errorf("ALSA-2023:0946 CVEs = %v, want them from related", got)
	}
	if got := s.ForCVE("CVE-2022-4450"); len(got) != 1 || got[0] != openssl[0] {
		t.Errorf("ForCVE(CVE-2022-4450) = %v", got)
	}
	if p := openssl[0].Published; p == nil || !p.Equal(time.Date(2023, 2, 28, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("published = %v", p)
	}
	testAlmaLinuxMatching(t, s)
}

// TestOSVZip loads the real records through an all.zip built from them.
func TestOSVZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	fsys := os.DirFS("testdata/osv")
	n := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		w, err := zw.Create(filepath.Base(p))
		if err != nil {
			return err
		}
		n++
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := zw.Create("broken.json")
	w.Write([]byte(`{"id": "BROKEN-1", "affected": "nope"}`))
	zw.Create("README.txt")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := ParseOSVZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records)+s.Withdrawn != n || s.Bad != 1 || !strings.Contains(s.First[0].Error(), "broken.json") {
		t.Errorf("records %d withdrawn %d bad %d (%v) from %d members", len(s.Records), s.Withdrawn, s.Bad, s.First, n)
	}

	if _, err := ParseOSVZip(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), int64(buf.Len()/2)); err == nil {
		t.Error("truncated zip: no error")
	}
}

// TestOSVAlmaLinuxFeed parses the whole AlmaLinux feed (5,680 records),
// from its directories and as one all.zip.
func TestOSVAlmaLinuxFeed(t *testing.T) {
	dir := requireFeeds(t, "almalinux-osv/advisories")
	start := time.Now()
	s, err := LoadOSVDir(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AlmaLinux OSV: %d records, %d withdrawn, %d bad in %v", len(s.Records), s.Withdrawn, s.Bad, time.Since(start))
	if len(s.Records) != 5680 || s.Bad != 0 {
		t.Fatalf("got %d records, %d bad (%v); want 5680, 0", len(s.Records), s.Bad, s.First)
	}
	ecosystems := map[string]int{}
	affected, ranges, cves := 0, 0, 0
	for _, r := range s.Records {
		cves += len(r.CVEs())
		for _, a := range r.Affected {
			affected++
			ranges += len(a.Ranges)
			ecosystems[a.Package.Ecosystem]++
		}
	}
	t.Logf("affected entries %d, ranges %d, CVE references %d, per ecosystem %v", affected, ranges, cves, ecosystems)
	// Every range is "introduced 0, fixed F": under RPM ordering F itself
	// is not affected and a lowest EVR is. ("0:0-0" is not lowest: lshw's
	// "B.02.19.2" sorts below it, letters being older than digits.)
	var m Matcher
	for _, r := range s.Records {
		for i := range r.Affected {
			a := &r.Affected[i]
			fixed := a.Ranges[0].Events[1].Version
			if ok, err := m.Includes(a, fixed); ok || err != nil {
				t.Fatalf("%s %s: fixed %s affected: %v %v", r.ID, a.Package.Name, fixed, ok, err)
			}
			if ok, err := m.Includes(a, "0:~-~"); !ok || err != nil {
				t.Fatalf("%s %s: 0:~-~ not affected: %v", r.ID, a.Package.Name, err)
			}
		}
	}
	if affected != 71329 || ecosystems["AlmaLinux:8"] != 40867 || cves != 16621 {
		t.Errorf("affected %d (want 71329), AlmaLinux:8 %d (want 40867), CVEs %d (want 16621, duplicates within a record counted once)",
			affected, ecosystems["AlmaLinux:8"], cves)
	}
}

// testAlmaLinuxMatching evaluates real AlmaLinux ranges with RPM ordering.
func testAlmaLinuxMatching(t *testing.T, s *OSVSet) {
	var m Matcher
	tests := []struct {
		eco, name, version string
		want               []string
	}{
		{"AlmaLinux:9", "openssl", "1:3.0.1-46.el9_1", []string{"ALSA-2023:0946"}},
		{"AlmaLinux:9", "openssl", "1:3.0.1-47.el9_1", nil},
		{"AlmaLinux:9", "openssl", "1:3.0.7-16.el9_2", nil},
		{"AlmaLinux:9", "openssl", "3.0.7-16.el9_2", []string{"ALSA-2023:0946"}}, // no epoch is epoch 0
		{"AlmaLinux:9", "openssl-libs", "1:3.0.1-43.el9_0", []string{"ALSA-2023:0946"}},
		{"AlmaLinux:8", "openssl", "1:1.0.0-1.el8", nil}, // another release's ecosystem
		{"AlmaLinux:9", "thunderbird", "115.5.0-1.el9_3.alma", []string{"ALSA-2024:0001"}},
		{"AlmaLinux:9", "thunderbird", "115.6.0-1.el9_3", []string{"ALSA-2024:0001"}}, // "" < ".alma" release suffix
		{"AlmaLinux:9", "thunderbird", "115.6.0-1.el9_3.alma", nil},
		{"AlmaLinux:10", "podman-docker", "6:5.4.0-11.el10_0", []string{"ALSA-2025:10549"}},
		{"AlmaLinux:10", "podman-docker", "6:5.4.0-12.el10_0", nil},
		{"AlmaLinux:9", "qatzip-libs", "1.0.7-1.el9", []string{"ALBA-2022:8256"}},
		// Several affected entries for one package (module streams): the
		// version is affected when it lies in any of them, so below the
		// highest fixed EVR (el8.5.0+119 > el8.4.0+2496 > el8.3.0+2044).
		{"AlmaLinux:8", "oci-systemd-hook", "1:0.1.15-2.git2d0b8a3.module_el8.4.0+2496+12421f43", []string{"ALBA-2019:0973"}},
		{"AlmaLinux:8", "oci-systemd-hook", "1:0.1.15-2.git2d0b8a3.module_el8.5.0+119+9a9ec082", nil},
		{"AlmaLinux:8", "oci-umount", "2:2.3.4-2.git87f9237.module_el8.3.0+2044+12421f43", []string{"ALBA-2019:0973"}},
	}
	for _, tt := range tests {
		got, err := s.Affecting(m, tt.eco, tt.name, tt.version)
		if err != nil {
			t.Errorf("%s %s %s: %v", tt.eco, tt.name, tt.version, err)
			continue
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%s %s %s: affected by %v, want %v", tt.eco, tt.name, tt.version, ids, tt.want)
		}
	}
}
