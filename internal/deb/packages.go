package deb

import (
	"fmt"
	"io"
)

// IndexRecord is the part of a Packages index stanza that candidate
// selection needs.
type IndexRecord struct {
	Name, Arch, Version   string
	Source, SourceVersion string
}

var packagesFields = set("Package", "Architecture", "Version", "Source")

// ParsePackages reads a Packages index and calls fn for every stanza. A
// stanza without Package, Version or Architecture, or with a version dpkg
// would reject, is an error naming the file and line.
func ParsePackages(r io.Reader, name string, fn func(IndexRecord) error) error {
	cr := NewControlReader(r, name)
	cr.Keep = func(field []byte) bool { return packagesFields[string(field)] }
	for {
		p, err := cr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rec := IndexRecord{Name: p.Get("Package"), Arch: p.Get("Architecture"), Version: p.Get("Version")}
		if rec.Name == "" || rec.Version == "" || rec.Arch == "" {
			return fmt.Errorf("%s:%d: stanza lacks Package, Version or Architecture", name, p.Line)
		}
		if err := ValidVersion(rec.Version); err != nil {
			return fmt.Errorf("%s:%d: package %s: %w", name, p.Line, rec.Name, err)
		}
		rec.Source, rec.SourceVersion, err = ParseSourceField(p.Get("Source"), rec.Name, rec.Version)
		if err != nil {
			return fmt.Errorf("%s:%d: package %s: %w", name, p.Line, rec.Name, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
