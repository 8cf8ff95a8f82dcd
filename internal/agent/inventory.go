package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/scan"
)

// Version is reported to the server in the facts.
var Version = "dev"

// Collect reads what the server needs about the system under root: its
// facts and its inventory (dpkg records and apt's configuration: sources,
// architectures, pins, default release), as package scan reads them.
func Collect(root string) (*api.Inventory, api.Facts, error) {
	inv, err := scan.ReadInventory(root)
	if err != nil {
		return nil, api.Facts{}, err
	}
	conf, err := deb.LoadAptConfig(root)
	if err != nil {
		return nil, api.Facts{}, err
	}
	entries, err := deb.LoadSources(root, conf)
	if err != nil {
		return nil, api.Facts{}, err
	}
	pins, err := deb.LoadPreferences(root, conf)
	if err != nil {
		return nil, api.Facts{}, err
	}
	out := &api.Inventory{
		NativeArch:     inv.NativeArch,
		ForeignArchs:   inv.ForeignArchs,
		DefaultRelease: conf.Find("APT::Default-Release", ""),
	}
	for _, p := range inv.Packages {
		out.Packages = append(out.Packages, api.Package{Name: p.Name, Arch: p.Arch, Version: p.Version,
			Source: omitSame(p.Source, p.Name), SourceVersion: omitSame(p.SourceVersion, p.Version),
			MultiArch: p.MultiArch, Status: p.Want + " " + p.Flag + " " + p.State})
	}
	for _, s := range scan.RepoSources(entries, conf.Architectures(inv.NativeArch, inv.ForeignArchs)) {
		out.Sources = append(out.Sources, api.Source{URI: s.URI, Suite: s.Suite, Components: s.Components, Archs: s.Archs})
	}
	for _, p := range pins {
		out.Pins = append(out.Pins, api.Pin{Packages: p.Packages, Type: p.Type, Data: p.Data, Priority: p.Priority, Never: p.Never})
	}
	h := inv.Host
	facts := api.Facts{Hostname: h.Hostname, MachineID: h.MachineID, OS: h.OS, Distro: h.Distro, Release: h.Release,
		Codename: h.Codename, Arch: h.Arch, Kernel: firstLine("/proc/sys/kernel/osrelease"),
		RebootRequired: exists(filepath.Join(root, "run/reboot-required")), AgentVersion: Version}
	if up := strings.Fields(firstLine("/proc/uptime")); len(up) > 0 {
		if f, err := strconv.ParseFloat(up[0], 64); err == nil {
			facts.UptimeSeconds = int64(f)
		}
	}
	// /etc/hostname first: a chroot or container shares the kernel's
	// hostname with its host machine but names itself there.
	if name := firstLine(filepath.Join(root, "etc/hostname")); name != "" {
		facts.Hostname = name
	} else if name, err := os.Hostname(); err == nil {
		facts.Hostname = name
	}
	return out, facts, nil
}

func omitSame(v, same string) string {
	if v == same {
		return ""
	}
	return v
}

func firstLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
