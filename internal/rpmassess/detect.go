package rpmassess

import (
	"fmt"
	"strings"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/rpm"
)

// Ecosystem returns the OSV ecosystem of a system's packages from its
// os-release: "AlmaLinux:9" for ID=almalinux VERSION_ID=9.4, "Rocky
// Linux:9" for ID=rocky. Other distributions are an error: their OSV
// ecosystems (Red Hat's by product stream, SUSE's by product) cannot be
// told from os-release alone.
func Ecosystem(osr rpm.OSRelease) (string, error) {
	major, _, _ := strings.Cut(osr.VersionID, ".")
	if major == "" || strings.Trim(major, "0123456789") != "" {
		return "", fmt.Errorf("%s: VERSION_ID %q has no major release number", osr.Path, osr.VersionID)
	}
	if eco := advisory.RPMEcosystem(osr.ID, major); eco != "" {
		return eco, nil
	}
	return "", fmt.Errorf("%s: no OSV ecosystem known for ID=%q (known: almalinux, rocky)", osr.Path, osr.ID)
}

// Result is the assessment of one system.
type Result struct {
	Ecosystem string // e.g. "AlmaLinux:9"
	OS        string // os-release PRETTY_NAME
	DB        string // the rpm database read
	Installed int    // packages in it
	Findings  []assess.Finding
}

// Detect assesses the system under root against osv once, without
// keeping the results: New(osv).Detect(root).
func Detect(root string, osv *advisory.OSVSet) (*Result, error) {
	return New(osv).Detect(root)
}

// Detect assesses the RPM-based system under root ("/" for this
// machine): its ecosystem from os-release (Ecosystem), its packages from
// the rpm database (rpm.FindDB, rpm.ReadDB), then Findings. A root
// without an rpm database gives an error wrapping rpm.ErrNoDatabase, so a
// caller can try another package manager.
func (a *Assessor) Detect(root string) (*Result, error) {
	db, err := rpm.FindDB(root)
	if err != nil {
		return nil, err
	}
	osr, err := rpm.ReadOSRelease(root)
	if err != nil {
		return nil, err
	}
	eco, err := Ecosystem(osr)
	if err != nil {
		return nil, err
	}
	pkgs, err := rpm.ReadDB(db)
	if err != nil {
		return nil, err
	}
	fs, err := a.Findings(eco, pkgs)
	if err != nil {
		return nil, err
	}
	return &Result{Ecosystem: eco, OS: osr.PrettyName, DB: db, Installed: len(pkgs), Findings: fs}, nil
}
