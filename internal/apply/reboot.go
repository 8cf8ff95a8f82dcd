package apply

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
)

// Reboot says whether a system needs a reboot, and why.
type Reboot struct {
	Required bool     `json:"required"`
	Reasons  []string `json:"reasons,omitempty"`
	// Packages are those /run/reboot-required.pkgs names.
	Packages []string `json:"packages,omitempty"`
	// Running and Newest are kernel releases (uname -r), compared only
	// when the system is this machine (root "/").
	Running string `json:"running_kernel,omitempty"`
	Newest  string `json:"newest_kernel,omitempty"`
}

// RebootRequired reads /run/reboot-required (and .pkgs) under root, as
// Debian's and Ubuntu's packages leave them, and when root is "/" also
// compares the running kernel with the newest installed linux-image:
// a newer kernel release installed, or the running release's package
// upgraded in place (its version differs from the one /proc/version
// names), needs a reboot.
func RebootRequired(root string) (Reboot, error) {
	var rb Reboot
	r, err := newRunner(root)
	if err != nil {
		return rb, err
	}
	if _, err := os.Stat(r.host("/run/reboot-required")); err == nil {
		rb.Required = true
		rb.Reasons = append(rb.Reasons, "/run/reboot-required exists")
		if data, err := os.ReadFile(r.host("/run/reboot-required.pkgs")); err == nil {
			seen := map[string]bool{}
			for _, p := range strings.Fields(string(data)) {
				if !seen[p] {
					seen[p] = true
					rb.Packages = append(rb.Packages, p)
				}
			}
		}
	} else if !os.IsNotExist(err) {
		return rb, err
	}
	if r.chrooted() {
		return rb, nil
	}
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return rb, err
	}
	version, _ := os.ReadFile("/proc/version")
	pkgs, err := deb.ReadStatus("/")
	if err != nil {
		return rb, err
	}
	k := KernelCheck(strings.TrimSpace(string(release)), string(version), pkgs)
	rb.Running, rb.Newest = k.Running, k.Newest
	if k.Reason != "" {
		rb.Required = true
		rb.Reasons = append(rb.Reasons, k.Reason)
	}
	return rb, nil
}

// Kernel is the outcome of KernelCheck.
type Kernel struct {
	Running, Newest string
	// Reason is empty when the running kernel is the newest installed.
	Reason string
}

// KernelCheck compares the running kernel release (uname -r) and
// /proc/version's text with the installed linux-image-RELEASE packages.
// Releases are ordered as Debian versions ("6.1.0-21-amd64" after
// "6.1.0-9-amd64"). Meta packages (linux-image-amd64) are not kernels.
func KernelCheck(running, procVersion string, pkgs []deb.InstalledPackage) Kernel {
	k := Kernel{Running: running}
	var releases []string
	var runningPkg *deb.InstalledPackage
	flavour, known := kernelFlavour(running)
	for i, p := range pkgs {
		rel, ok := strings.CutPrefix(p.Name, "linux-image-")
		if !ok || !p.Current() || p.State != "installed" || !kernelRelease.MatchString(rel) || strings.HasSuffix(rel, "-dbg") {
			continue
		}
		rel = strings.TrimSuffix(rel, "-unsigned")
		// Only kernels of the running flavour replace it at boot: a -cloud
		// or -rt kernel installed beside -amd64 is not "newer".
		if f, ok := kernelFlavour(rel); known && ok && f != flavour {
			continue
		}
		releases = append(releases, rel)
		if rel == running {
			runningPkg = &pkgs[i]
		}
	}
	if len(releases) == 0 {
		return k
	}
	sort.Slice(releases, func(i, j int) bool { return deb.CompareValid(releases[i], releases[j]) < 0 })
	k.Newest = releases[len(releases)-1]
	switch {
	case deb.CompareValid(k.Newest, running) > 0:
		k.Reason = fmt.Sprintf("kernel %s installed, %s running", k.Newest, running)
	case runningPkg != nil:
		// Debian's /proc/version: "... #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)".
		if m := debianKernelVersion.FindStringSubmatch(procVersion); m != nil && m[1] != runningPkg.Version {
			k.Reason = fmt.Sprintf("kernel %s upgraded in place to %s, %s running", running, runningPkg.Version, m[1])
		}
	}
	return k
}

// kernelFlavour is what follows the version and ABI number of a kernel
// release: "amd64" of 6.1.0-21-amd64, "cloud-amd64" of
// 6.1.0-21-cloud-amd64, "generic" of Ubuntu's 6.8.0-45-generic.
func kernelFlavour(release string) (string, bool) {
	m := kernelABI.FindStringSubmatch(release)
	if m == nil {
		return "", false
	}
	return m[1], true
}

var (
	kernelABI = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)+-[0-9]+(?:\.[0-9]+)?-(.+)$`)
	// A release starts with a digit: 6.1.0-21-amd64, not "amd64".
	kernelRelease       = regexp.MustCompile(`^[0-9]+\.[0-9]+`)
	debianKernelVersion = regexp.MustCompile(`Debian ([0-9][^ ]*) \(`)
)
