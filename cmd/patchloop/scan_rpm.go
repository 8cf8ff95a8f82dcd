package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/feeds"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/rpm"
	"github.com/patchloop/patchloop/internal/rpmassess"
	"github.com/patchloop/patchloop/internal/scan"
)

// rpmNotice says what an RPM scan's list of updates is.
const rpmNotice = "RPM system: the updates are the versions the advisories name as fixes " +
	"(what dnf upgrade-minimal --security installs); repository metadata is not read, " +
	"so updates no advisory names are not listed"

// scanRPM is scan on a root that holds an rpm database and no dpkg status:
// installed packages from the rpmdb, matched against the OSV feeds
// (package rpmassess), then risk and policy as for Debian. Its output has
// the same schema as a Debian scan (docs/scan-json.md).
func scanRPM(ctx context.Context, root string, fl assessFlags, labels map[string]string, env assessEnv) (*scan.Result, *scan.Assessment, error) {
	cfg, err := feedConfig(fl)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.OSV) == 0 {
		return nil, nil, fmt.Errorf("%s: an RPM system is assessed from OSV advisories: give --osv (e.g. an AlmaLinux all.zip or a directory of its records) or --feeds-dir with osv/", root)
	}
	var set *policy.Set
	if fl.policy != "" {
		if set, err = intel.ReadPolicies(fl.policy); err != nil {
			return nil, nil, err
		}
	}
	prog := newProgress(os.Stderr, 700*time.Millisecond)
	defer prog.Stop()
	prog.Print("loading advisory feeds")
	loader := &feeds.Loader{CacheDir: filepath.Join(env.cacheDir, "feeds"), Client: env.client}
	fd, err := intel.Load(ctx, loader, cfg, env.offline)
	if err != nil {
		return nil, nil, err
	}
	osv := &advisory.OSVSet{}
	for _, s := range fd.OSV {
		for _, r := range s.Records {
			osv.AddRecord(r)
		}
	}
	prog.Print("matching the rpm database against the advisories")
	r, err := rpmassess.New(osv).Detect(root)
	if err != nil {
		return nil, nil, err
	}
	osr, err := rpm.ReadOSRelease(root)
	if err != nil {
		return nil, nil, err
	}

	res := &scan.Result{Schema: "patchloop.scan/v1", Indexes: []scan.IndexInfo{}, Notices: []string{rpmNotice}}
	res.Host = scan.Host{Hostname: rootHostname(root), Root: root, OS: osr.PrettyName, Distro: osr.ID,
		Release: osr.VersionID, ScannedAt: time.Now().UTC()}
	res.Summary.Installed = r.Installed
	for _, f := range r.Findings { // the architecture of the system, as its packages say
		if f.Arch != "" && f.Arch != "noarch" {
			res.Host.Arch = f.Arch
			break
		}
	}
	updates := make([]intel.Update, len(r.Findings))
	findings := make([]*intel.Finding, len(r.Findings))
	for i, f := range r.Findings {
		f.CVEs = fd.Threats(f.CVEs) // the findings' slices are shared: copy before filling
		u := detect.Update{Package: f.Package, Arch: f.Arch, Installed: f.Installed, Candidate: f.Candidate,
			Source: f.Source, SourceVersion: f.SourceVersion, Suite: f.Suite, Archives: []string{},
			Security: f.Classification == assess.Security}
		updates[i] = intel.Update{Update: u}
		findings[i] = &intel.Finding{Finding: f}
		res.Updates = append(res.Updates, u)
		if u.Security {
			res.Summary.Security++
		}
	}
	res.Summary.Updates = len(res.Updates)
	if res.Updates == nil {
		res.Updates = []detect.Update{}
	}
	items, err := intel.Rank(res.Host.Hostname, labels, updates, findings, set, res.Host.ScannedAt)
	if err != nil {
		return nil, nil, err
	}
	// Debian's DSA/DLA lists do not concern an RPM system: not configuring
	// them is no gap here.
	rcfg := cfg
	rcfg.DSA, rcfg.DLA = "-", "-"
	a := &scan.Assessment{Labels: labels, Policy: fl.policy, Items: items, Feeds: fd.Status,
		Release: intel.Release{Distro: osr.ID, Version: osr.VersionID},
		Notices: fd.Notices(rcfg),
	}
	return res, a, nil
}

// rootHostname is the host name of the system under root: this machine's
// for "/", else ROOT/etc/hostname when there is one.
func rootHostname(root string) string {
	if root == "/" || root == "" {
		h, _ := os.Hostname()
		return h
	}
	b, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ""
	}
	return strings.TrimSpace(string(b))
}
