package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireTool skips the test when a tool is missing, or fails it where CI
// promises the oracles (PATCHLOOP_REQUIRE_ORACLES=1).
func requireTool(t *testing.T, cmd string, args ...string) {
	t.Helper()
	if err := exec.Command(cmd, args...).Run(); err != nil {
		if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
			t.Fatalf("%s %s: %v (PATCHLOOP_REQUIRE_ORACLES=1)", cmd, strings.Join(args, " "), err)
		}
		t.Skipf("%s not usable here (%v): apt-get install rpm python3-rpm", cmd, err)
	}
}

// scan --root on an RPM system: a real rpmdb written by the real rpm, with
// packages built by rpmbuild after real AlmaLinux 9 packages, assessed
// against the real AlmaLinux OSV errata. The updates must be what the
// independent oracle (python3-rpm's labelCompare over the same OSV JSON,
// internal/rpmassess/testdata/oracle.py) says, and each CVE's KEV flag what
// the KEV catalog lists.
func TestScanRPMRoot(t *testing.T) {
	requireTool(t, "rpmbuild", "--version")
	py := "/usr/bin/python3" // the system's, which python3-rpm serves; PATH may name another
	requireTool(t, py, "-c", "import rpm")
	osvDir := "../../../shared/feeds/almalinux-osv/advisories/almalinux9"
	kevFile := "../../../shared/feeds/kev/known_exploited_vulnerabilities.json"
	if _, err := os.Stat(osvDir); err != nil {
		osvDir = "../../internal/rpmassess/testdata/osv" // a real cut of the feed
		t.Logf("../shared/feeds absent: using %s", osvDir)
	}
	osvDir, _ = filepath.Abs(osvDir)
	testdata, _ := filepath.Abs("../../internal/rpmassess/testdata")

	root := t.TempDir()
	mk := exec.Command("bash", filepath.Join(testdata, "mkroot.sh"), root)
	mk.Env = append(os.Environ(), "HOME="+t.TempDir()) // Debian's rpm writes ~/.rpmdb otherwise
	qa, err := mk.Output()
	if err != nil {
		t.Fatalf("mkroot.sh: %v\n%s", err, stderrOf(err))
	}

	oracleCmd := exec.Command(py, filepath.Join(testdata, "oracle.py"), "AlmaLinux:9", osvDir)
	oracleCmd.Stdin = bytes.NewReader(qa)
	want, err := oracleCmd.Output()
	if err != nil {
		t.Fatalf("oracle.py: %v\n%s", err, stderrOf(err))
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	if len(wantLines) < 3 {
		t.Fatalf("the oracle finds only %d updates on the built root: %q", len(wantLines), want)
	}

	args := []string{"scan", "--root", root, "--cache-dir", t.TempDir(), "--osv", osvDir, "--format", "json"}
	haveKEV := false
	if _, err := os.Stat(kevFile); err == nil {
		haveKEV = true
		args = append(args, "--kev", kevFile)
	}
	out, err := exec.Command(binary, args...).Output()
	if err != nil {
		t.Fatalf("scan: %v\n%s", err, stderrOf(err))
	}
	var got struct {
		Schema  string
		Host    struct{ OS, Distro, Release string }
		Summary struct {
			Installed, Updates, Security int
		}
		Updates []struct {
			Package, Arch, Installed, Candidate, Classification, Released string
			Security                                                      bool
			Advisories                                                    []string
			CVEs                                                          []struct {
				ID  string
				KEV *struct {
					DateAdded string `json:"date_added"`
				}
			}
			KEV  bool
			Risk struct{ Score float64 }
		}
		Assessment struct{ Ecosystem string }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("scan JSON: %v\n%s", err, out)
	}
	if got.Schema != "patchloop.scan/v1" || got.Host.Distro != "almalinux" || got.Assessment.Ecosystem != "AlmaLinux:9" ||
		got.Summary.Installed != len(strings.Split(strings.TrimSpace(string(qa)), "\n")) || got.Summary.Updates != len(got.Updates) {
		t.Errorf("host/summary: %s %+v %+v %q", got.Schema, got.Host, got.Summary, got.Assessment.Ecosystem)
	}

	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var gotLines []string
	security := 0
	for _, u := range got.Updates {
		var ids []string
		for _, c := range u.CVEs {
			ids = append(ids, c.ID)
		}
		released := "-"
		if u.Released != "" {
			released = u.Released[:10]
		}
		gotLines = append(gotLines, strings.Join([]string{u.Package, dash(u.Arch), u.Installed, u.Candidate,
			u.Classification, released, dash(strings.Join(u.Advisories, ",")), dash(strings.Join(ids, ","))}, " "))
		if u.Security != (u.Classification == "security") {
			t.Errorf("%s: security %v but classification %s", u.Package, u.Security, u.Classification)
		}
		if u.Security {
			security++
		}
	}
	slices.Sort(gotLines)
	slices.Sort(wantLines)
	if !slices.Equal(gotLines, wantLines) {
		t.Errorf("scan and oracle differ:\nscan:\n  %s\noracle:\n  %s", strings.Join(gotLines, "\n  "), strings.Join(wantLines, "\n  "))
	}
	if security != got.Summary.Security {
		t.Errorf("summary.security %d, %d security updates listed", got.Summary.Security, security)
	}

	if haveKEV {
		raw, err := os.ReadFile(kevFile)
		if err != nil {
			t.Fatal(err)
		}
		var catalog struct {
			Vulnerabilities []struct {
				CveID     string `json:"cveID"`
				DateAdded string `json:"dateAdded"`
			} `json:"vulnerabilities"`
		}
		if err := json.Unmarshal(raw, &catalog); err != nil {
			t.Fatal(err)
		}
		added := map[string]string{}
		for _, v := range catalog.Vulnerabilities {
			added[v.CveID] = v.DateAdded
		}
		kevSeen := 0
		for _, u := range got.Updates {
			anyKEV := false
			for _, c := range u.CVEs {
				date, listed := added[c.ID]
				switch {
				case listed != (c.KEV != nil):
					t.Errorf("%s %s: KEV %v, catalog lists it: %v", u.Package, c.ID, c.KEV != nil, listed)
				case listed && !strings.HasPrefix(c.KEV.DateAdded, date):
					t.Errorf("%s %s: KEV date added %s, catalog %s", u.Package, c.ID, c.KEV.DateAdded, date)
				}
				if listed {
					anyKEV = true
					kevSeen++
				}
			}
			if u.KEV != anyKEV {
				t.Errorf("%s: kev %v, its CVEs say %v", u.Package, u.KEV, anyKEV)
			}
		}
		t.Logf("%d updates, %d CVEs in KEV", len(got.Updates), kevSeen)
	}

	// --fail-on security exits 100 when a security update is missing.
	cmd := exec.Command(binary, "scan", "--root", root, "--cache-dir", t.TempDir(), "--osv", osvDir, "--fail-on", "security")
	if err := cmd.Run(); security > 0 && cmd.ProcessState.ExitCode() != exitUpdates {
		t.Errorf("--fail-on security: exit %d (%v), want %d", cmd.ProcessState.ExitCode(), err, exitUpdates)
	}

	// Without OSV data an RPM root is refused with a reason, not reported clean.
	o, err := exec.Command(binary, "scan", "--root", root, "--cache-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(o), "OSV") {
		t.Errorf("scan of an RPM root without --osv: %v\n%s", err, o)
	}
}
