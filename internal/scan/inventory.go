package scan

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/deb"
)

// Host describes the scanned system.
type Host struct {
	Hostname  string `json:"hostname"`
	MachineID string `json:"machine_id,omitempty"`
	Root      string `json:"root"`
	OS        string `json:"os"`               // PRETTY_NAME of os-release
	Distro    string `json:"distro"`           // ID of os-release, e.g. debian
	Release   string `json:"release"`          // VERSION_ID, e.g. 12
	Codename  string `json:"codename"`         // VERSION_CODENAME, e.g. bookworm
	Arch      string `json:"arch"`             // dpkg's native architecture
	Kernel    string `json:"kernel,omitempty"` // running kernel (only when Root is "/")
	// RebootRequired is /run/reboot-required on the running machine.
	RebootRequired  bool      `json:"reboot_required"`
	DpkgInterrupted bool      `json:"dpkg_interrupted"`
	ScannedAt       time.Time `json:"scanned_at"`
}

// Inventory is what is installed on a system, as dpkg records it.
type Inventory struct {
	Host         Host
	NativeArch   string
	ForeignArchs []string
	Packages     []deb.InstalledPackage
}

// ReadInventory reads the dpkg database and host facts under root.
func ReadInventory(root string) (*Inventory, error) {
	pkgs, err := deb.ReadStatus(root)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{Packages: pkgs}
	for i := range pkgs {
		if pkgs[i].Name == "dpkg" && pkgs[i].Current() {
			inv.NativeArch = pkgs[i].Arch // dpkg is always built for the native architecture
		}
	}
	if inv.NativeArch == "" {
		return nil, fmt.Errorf("%s: dpkg itself is not installed, cannot tell the native architecture", filepath.Join(root, deb.StatusPath))
	}
	if inv.ForeignArchs, err = deb.ReadDpkgArch(root); err != nil {
		return nil, err
	}
	inv.Host = hostFacts(root)
	inv.Host.Arch = inv.NativeArch
	if inv.Host.DpkgInterrupted, err = deb.DpkgInterrupted(root); err != nil {
		return nil, err
	}
	return inv, nil
}

func hostFacts(root string) Host {
	h := Host{Root: root}
	osr := readKeyValues(filepath.Join(root, "etc/os-release"))
	if len(osr) == 0 {
		osr = readKeyValues(filepath.Join(root, "usr/lib/os-release"))
	}
	h.OS, h.Distro, h.Release, h.Codename = osr["PRETTY_NAME"], osr["ID"], osr["VERSION_ID"], osr["VERSION_CODENAME"]
	h.MachineID = firstLine(filepath.Join(root, "etc/machine-id"))
	h.Hostname = firstLine(filepath.Join(root, "etc/hostname"))
	if filepath.Clean(root) == "/" {
		if name, err := os.Hostname(); err == nil {
			h.Hostname = name
		}
		h.Kernel = firstLine("/proc/sys/kernel/osrelease")
		_, err := os.Stat("/run/reboot-required")
		h.RebootRequired = err == nil
	}
	return h
}

func firstLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

// readKeyValues reads an os-release style KEY=value file.
func readKeyValues(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		m[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return m
}
