package apply

import (
	"fmt"
	"regexp"

	"github.com/patchloop/patchloop/internal/deb"
)

// Pin is one exact package version to install.
type Pin struct {
	Package string `json:"package"`
	// Arch is the dpkg architecture (amd64, i386, all); empty means the
	// native one, as apt understands a bare name.
	Arch    string `json:"arch,omitempty"`
	Version string `json:"version"`
}

// String is the pin as apt-get takes it: name[:arch]=version.
func (p Pin) String() string {
	return p.name() + "=" + p.Version
}

// name is name[:arch] as apt and dpkg-query take it.
func (p Pin) name() string {
	if p.Arch == "" || p.Arch == "all" {
		return p.Package
	}
	return p.Package + ":" + p.Arch
}

var (
	pkgName  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	archName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Validate refuses pins that are not a package name, architecture and
// Debian version, so that none can be taken for an option by apt.
func (p Pin) Validate() error {
	if !pkgName.MatchString(p.Package) {
		return fmt.Errorf("bad package name %q", p.Package)
	}
	if p.Arch != "" && !archName.MatchString(p.Arch) {
		return fmt.Errorf("%s: bad architecture %q", p.Package, p.Arch)
	}
	if err := deb.ValidVersion(p.Version); err != nil {
		return fmt.Errorf("%s: %w", p.Package, err)
	}
	return nil
}

func validateSet(set []Pin) error {
	if len(set) == 0 {
		return fmt.Errorf("no packages given")
	}
	seen := map[string]bool{}
	for _, p := range set {
		if err := p.Validate(); err != nil {
			return err
		}
		if seen[p.name()] {
			return fmt.Errorf("%s given twice", p.name())
		}
		seen[p.name()] = true
	}
	return nil
}
