package deb

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// InstalledPackage is one package record of the dpkg status database.
type InstalledPackage struct {
	Name    string
	Arch    string // as dpkg records it: amd64, i386, all, ...
	Version string
	// Source and SourceVersion name the source package; they default to
	// Name and Version when the record has no Source field.
	Source        string
	SourceVersion string
	MultiArch     string
	// Want, Flag and State are the three words of the Status field,
	// e.g. "install", "ok", "installed".
	Want, Flag, State string
	Line              int // line of the record in the status file
}

// Current reports whether dpkg has this version on the system in any
// form, which is when apt treats it as the package's current version:
// every state but not-installed and config-files.
func (p *InstalledPackage) Current() bool {
	return p.State != "not-installed" && p.State != "config-files"
}

// Held reports whether the package is on hold (apt-mark hold, or
// "hold" in dpkg --set-selections).
func (p *InstalledPackage) Held() bool { return p.Want == "hold" }

var (
	statusWant  = set("unknown", "install", "hold", "deinstall", "purge")
	statusFlag  = set("ok", "reinstreq")
	statusState = set("not-installed", "config-files", "half-installed", "unpacked",
		"half-configured", "triggers-awaited", "triggers-pending", "installed")
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// StatusPath is where dpkg keeps its status database, relative to a root.
const StatusPath = "var/lib/dpkg/status"

// ReadStatus parses the dpkg status database under root ("/" for this machine).
func ReadStatus(root string) ([]InstalledPackage, error) {
	path := filepath.Join(root, StatusPath)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read dpkg status: %w", err)
	}
	defer f.Close()
	return ParseStatus(f, path)
}

// statusFields are the only fields ParseStatus keeps.
var statusFields = set("Package", "Status", "Architecture", "Version", "Source", "Multi-Arch")

// ParseStatus parses a dpkg status file. Any malformed record is an error
// naming the file and line: a status database that cannot be read exactly
// must not produce a partial inventory.
func ParseStatus(r io.Reader, name string) ([]InstalledPackage, error) {
	cr := NewControlReader(r, name)
	cr.Keep = func(field []byte) bool { return statusFields[string(field)] }
	var pkgs []InstalledPackage
	for {
		p, err := cr.Next()
		if err == io.EOF {
			return pkgs, nil
		}
		if err != nil {
			return nil, err
		}
		pkg, err := statusRecord(p)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, p.Line, err)
		}
		pkgs = append(pkgs, pkg)
	}
}

func statusRecord(p *Paragraph) (InstalledPackage, error) {
	pkg := InstalledPackage{
		Name:      p.Get("Package"),
		Arch:      p.Get("Architecture"),
		Version:   p.Get("Version"),
		MultiArch: p.Get("Multi-Arch"),
		Line:      p.Line,
	}
	if pkg.Name == "" {
		return pkg, fmt.Errorf("record has no Package field")
	}
	words := strings.Fields(p.Get("Status"))
	if len(words) != 3 || !statusWant[words[0]] || !statusFlag[words[1]] || !statusState[words[2]] {
		return pkg, fmt.Errorf("package %s: bad Status field %q", pkg.Name, p.Get("Status"))
	}
	pkg.Want, pkg.Flag, pkg.State = words[0], words[1], words[2]
	if pkg.State == "not-installed" {
		return pkg, nil
	}
	if pkg.Version == "" {
		return pkg, fmt.Errorf("package %s: %s but no Version field", pkg.Name, pkg.State)
	}
	if err := ValidVersion(pkg.Version); err != nil {
		return pkg, fmt.Errorf("package %s: %w", pkg.Name, err)
	}
	if pkg.Arch == "" && pkg.Current() {
		return pkg, fmt.Errorf("package %s: %s but no Architecture field", pkg.Name, pkg.State)
	}
	var err error
	pkg.Source, pkg.SourceVersion, err = ParseSourceField(p.Get("Source"), pkg.Name, pkg.Version)
	if err != nil {
		return pkg, fmt.Errorf("package %s: %w", pkg.Name, err)
	}
	return pkg, nil
}

// ParseSourceField splits a binary package's Source field ("glibc" or
// "glibc (2.36-9)") into source name and version, defaulting to the
// binary's own name and version.
func ParseSourceField(field, name, version string) (src, srcVersion string, err error) {
	field = strings.TrimSpace(field)
	if field == "" {
		return name, version, nil
	}
	src, rest, hasVer := strings.Cut(field, " ")
	if !hasVer {
		return src, version, nil
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", "", fmt.Errorf("bad Source field %q", field)
	}
	return src, strings.TrimSpace(rest[1 : len(rest)-1]), nil
}

// DpkgInterrupted reports whether dpkg left unapplied journal entries
// (ROOT/var/lib/dpkg/updates), the state in which apt refuses to work
// until `dpkg --configure -a` has run.
func DpkgInterrupted(root string) (bool, error) {
	entries, err := os.ReadDir(filepath.Join(root, "var/lib/dpkg/updates"))
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if name := e.Name(); name != "tmp.i" && strings.Trim(name, "0123456789") == "" {
			return true, nil
		}
	}
	return false, nil
}
