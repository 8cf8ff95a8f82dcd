package rpmassess

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/rpm"
)

// feedDir holds the real AlmaLinux 9 errata (see
// /work/shared/feeds/README.md); tests that need it skip without it.
const feedDir = "../../../shared/feeds/almalinux-osv/advisories/almalinux9"

// loadFeed loads the AlmaLinux 9 feed once for all tests and benchmarks.
var loadFeed = sync.OnceValues(func() (*advisory.OSVSet, error) {
	return advisory.LoadOSVDir(os.DirFS(feedDir), ".")
})

func feedOrSkip(tb testing.TB) *advisory.OSVSet {
	tb.Helper()
	if _, err := os.Stat(feedDir); err != nil {
		tb.Skipf("real AlmaLinux feed absent (%s): %v", feedDir, err)
	}
	s, err := loadFeed()
	if err != nil {
		tb.Fatal(err)
	}
	if s.Bad != 0 {
		tb.Fatalf("feed: %d bad records: %v", s.Bad, s.First)
	}
	return s
}

// rpmPython finds a python3 that can import rpm (python3-rpm): the first
// python3 on PATH may be another installation than the system's.
var rpmPython = sync.OnceValues(func() (string, error) {
	var tried []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "import rpm").CombinedOutput()
		if err == nil {
			return path, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %s", path, strings.TrimSpace(string(out))))
	}
	return "", fmt.Errorf("no python3 with the rpm module (apt-get install python3-rpm): tried %v", tried)
})

// oracle runs testdata/oracle.py (python3-rpm's labelCompare over the OSV
// JSON files of dir) on the packages, skipping the test when python3-rpm
// is missing unless PATCHLOOP_REQUIRE_ORACLES=1.
func oracle(tb testing.TB, ecosystem, dir string, pkgs []rpm.Package) []string {
	tb.Helper()
	py, err := rpmPython()
	if err != nil {
		if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
			tb.Fatalf("PATCHLOOP_REQUIRE_ORACLES=1 but the oracle is unavailable: %v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "oracle.py"), ecosystem, dir)
	cmd.Stdin = strings.NewReader(strings.Join(qaLines(pkgs), "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("oracle: %v\n%s", err, stderr.Bytes())
	}
	return splitLines(out)
}

// qaLines writes packages as rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n'.
func qaLines(pkgs []rpm.Package) []string {
	var out []string
	for _, p := range pkgs {
		arch, src := p.Arch, p.SourceRPM
		if arch == "" {
			arch = "(none)"
		}
		if src == "" {
			src = "(none)"
		}
		out = append(out, fmt.Sprintf("%s %d:%s-%s %s %s", p.Name, p.Epoch, p.Version, p.Release, arch, src))
	}
	return out
}

func splitLines(b []byte) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// findingLines writes findings as the oracle prints them, sorted.
func findingLines(fs []assess.Finding) []string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var out []string
	for _, f := range fs {
		released := "-"
		if !f.Released.IsZero() {
			released = f.Released.Format("2006-01-02")
		}
		var cves []string
		for _, c := range f.CVEs {
			cves = append(cves, c.ID)
		}
		out = append(out, strings.Join([]string{f.Package, dash(f.Arch), f.Installed, f.Candidate,
			string(f.Classification), released, dash(strings.Join(f.Advisories, ",")),
			dash(strings.Join(cves, ","))}, " "))
	}
	slices.Sort(out)
	return out
}

// sameLines fails the test with the lines only one side has.
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Errorf("%s: only ours:   %s", what, l)
		}
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("%s: only oracle: %s", what, l)
		}
	}
	if !t.Failed() {
		t.Errorf("%s: same lines in another order", what)
	}
}
