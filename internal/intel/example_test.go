package intel_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/feeds"
	"github.com/patchloop/patchloop/internal/intel"
)

// A server or a scan loads the feeds once, makes one Assessor, and asks it
// for the findings of each host.
func Example() {
	cache, _ := os.MkdirTemp("", "intel-example-")
	defer os.RemoveAll(cache)
	fd, err := intel.Load(context.Background(), &feeds.Loader{CacheDir: cache},
		intel.Config{KEV: "testdata/kev-cut.json", DSA: "testdata/DSA-list-cut"}, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := intel.NewAssessor(fd, nil) // no changelogs: CVEs from the feeds only

	rel := intel.Release{Distro: "debian", Version: "11", Codename: "bullseye"}
	u := intel.Update{Update: detect.Update{Package: "policykit-1", Arch: "amd64",
		Installed: "0.105-31", Candidate: "0.105-31+deb11u1",
		Source: "policykit-1", SourceVersion: "0.105-31+deb11u1",
		Suite: "bullseye-security", Security: true}}
	f := a.Finding(rel, u)
	fmt.Println(f.Advisories, f.CVEs[0].ID, "KEV since", f.CVEs[0].KEV.DateAdded.Format(time.DateOnly))

	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	items, _ := a.Assess(rel, "web-1", map[string]string{"criticality": "high"}, []intel.Update{u}, nil, now)
	fmt.Printf("%.2f %s\n", items[0].Risk.Score, items[0].Risk)
	// Output:
	// [DSA-5059-1] CVE-2021-4034 KEV since 2022-06-27
	// 114.50 CVE-2021-4034: KEV since 2022-06-27 (due 2022-07-18, overdue), EPSS unknown (1% assumed), CVSS unknown (5.0 assumed), host high
}
