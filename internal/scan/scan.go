// Package scan runs Detect on one Debian/Ubuntu system, the running
// machine or a root directory (a chroot or mounted image): it reads the
// dpkg inventory and apt's configuration, fetches and verifies the
// indexes the system's sources name (package repo), and hands it all to
// package detect, which decides the candidates as apt would.
package scan

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/repo"
)

// Options configure one scan.
type Options struct {
	Root     string // "/" for this machine
	CacheDir string // where verified indexes and compact caches live
	Offline  bool   // use only the cache or apt's lists, no network
	Client   *http.Client
	Log      *slog.Logger
	Progress func(msg string) // called for each download; may be nil
	Now      func() time.Time
}

// Result is what a scan found. Its JSON form is the stable schema
// documented in docs/scan-json.md.
type Result struct {
	Schema  string          `json:"schema"`
	Host    Host            `json:"host"`
	Summary Summary         `json:"summary"`
	Updates []detect.Update `json:"updates"`
	Indexes []IndexInfo     `json:"indexes"`
	Notices []string        `json:"notices,omitempty"`
	// Verified are the verified indexes behind Indexes, for the stages
	// that read them again (candidate changelogs); not part of the JSON.
	Verified []repo.Index `json:"-"`
	// Installed is the dpkg database the scan read, for the stages that
	// need more of it (installed source versions); not part of the JSON.
	Installed []deb.InstalledPackage `json:"-"`
}

// Summary counts what the scan found.
type Summary struct {
	Installed int `json:"installed"`
	Updates   int `json:"updates"`
	Security  int `json:"security"`
	Held      int `json:"held"`
	// NotInstalled counts inventory records dpkg keeps that are not
	// installed (config-files, half-installed and similar states).
	NotInstalled int `json:"not_fully_installed"`
}

// IndexInfo says which verified index a scan used.
type IndexInfo struct {
	URI       string `json:"uri"`
	Suite     string `json:"suite"`
	Component string `json:"component"`
	Arch      string `json:"arch"`
	SHA256    string `json:"sha256"`
	Verified  bool   `json:"verified"`
	Date      string `json:"date,omitempty"`
	// From, offline, is the directory the Release and indexes were read
	// from: patchloop's cache or apt's lists. Empty online.
	From string `json:"from,omitempty"`
}

// SchemaVersion names the JSON schema of Result.
const SchemaVersion = "patchloop.scan/v1"

// Run scans the system under opts.Root.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	inv, err := ReadInventory(opts.Root)
	if err != nil {
		return nil, err
	}
	conf, err := deb.LoadAptConfig(opts.Root)
	if err != nil {
		return nil, err
	}
	sources, err := deb.LoadSources(opts.Root, conf)
	if err != nil {
		return nil, err
	}
	pins, err := deb.LoadPreferences(opts.Root, conf)
	if err != nil {
		return nil, err
	}
	archs := conf.Architectures(inv.NativeArch, inv.ForeignArchs)
	fetcher := &repo.Fetcher{
		Client:          opts.Client,
		CacheDir:        filepath.Join(opts.CacheDir, "repo"),
		Root:            opts.Root,
		Offline:         opts.Offline,
		ListsDir:        filepath.Join(opts.Root, "var/lib/apt/lists"),
		CheckValidUntil: conf.FindB("Acquire::Check-Valid-Until", true),
		CheckDate:       conf.FindB("Acquire::Check-Date", true),
		Now:             opts.Now,
		Log:             opts.Log,
		Progress:        opts.Progress,
		HaveContent:     func(sha string) bool { return HaveIndexCache(opts.CacheDir, sha) },
	}
	if opts.Offline {
		// A compact index that is there but does not record the hash is
		// then refused by LoadIndex, naming it, instead of being missed.
		fetcher.HaveContent = func(sha string) bool { return haveIndexCacheFile(opts.CacheDir, sha) }
	}
	indexes, err := FetchAll(ctx, fetcher, RepoSources(sources, archs))
	if err != nil {
		return nil, err
	}
	in := detect.Input{
		NativeArch:     inv.NativeArch,
		Installed:      inv.Packages,
		Pins:           pins,
		DefaultRelease: conf.Find("APT::Default-Release", ""),
	}
	want := make(map[string]bool, len(inv.Packages))
	for _, p := range inv.Packages {
		want[p.Name] = true
	}
	res := &Result{Schema: SchemaVersion, Host: inv.Host}
	for i := range indexes {
		ix := &indexes[i]
		recs, err := LoadIndex(opts.CacheDir, ix, want)
		if err != nil {
			return nil, err
		}
		in.Files = append(in.Files, PackageFile(ix))
		for _, r := range recs {
			in.Available = append(in.Available, detect.Available{
				Name: r.Name, Arch: r.Arch, Version: r.Version,
				Source: r.Source, SourceVersion: r.SourceVersion, File: len(in.Files) - 1,
			})
		}
		res.Indexes = append(res.Indexes, indexInfo(ix))
	}
	res.Notices = append(res.Notices, offlineNotices(indexes, filepath.Join(fetcher.CacheDir, "lists"))...)
	res.Updates = detect.Updates(in)
	res.Verified, res.Installed = indexes, inv.Packages
	res.Summary = summarize(inv.Packages, res.Updates)
	res.Host.ScannedAt = opts.Now().UTC()
	if inv.Host.DpkgInterrupted {
		res.Notices = append(res.Notices, "dpkg was interrupted: run 'dpkg --configure -a' (apt refuses to install until then)")
	}
	return res, nil
}

// RepoSources expands apt source entries into one repo.Source per
// (URI, suite), for binary ("deb") entries that are enabled.
func RepoSources(entries []deb.SourceEntry, archs []string) []repo.Source {
	var out []repo.Source
	for _, e := range entries {
		if !e.Enabled || !contains(e.Types, "deb") {
			continue
		}
		a := e.ArchitecturesFor(archs)
		for _, uri := range e.URIs {
			for _, suite := range e.Suites {
				out = append(out, repo.Source{
					URI: uri, Suite: suite, Components: e.Components, Archs: a,
					SignedBy: e.SignedBy, Trusted: e.Trusted,
					Where: fmt.Sprintf("%s:%d", e.File, e.Line),
				})
			}
		}
	}
	return out
}

// FetchAll fetches sources concurrently (a few at a time) and returns
// their indexes in source order; the first error wins.
func FetchAll(ctx context.Context, f *repo.Fetcher, sources []repo.Source) ([]repo.Index, error) {
	results := make([][]repo.Index, len(sources))
	errs := make([]error, len(sources))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = f.Fetch(ctx, src)
		}()
	}
	wg.Wait()
	var all []repo.Index
	for i := range sources {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s (%s %s): %w", sources[i].Where, sources[i].URI, sources[i].Suite, errs[i])
		}
		all = append(all, results[i]...)
	}
	return all, nil
}

// PackageFile describes an index for package detect.
func PackageFile(ix *repo.Index) detect.PackageFile {
	r := ix.Release
	return detect.PackageFile{
		Origin: r.Origin, Label: r.Label, Archive: r.Suite, Codename: r.Codename, Version: r.Version,
		Component: ix.Component, Arch: ix.Arch, Site: ix.Site,
		NotAutomatic: r.NotAutomatic, ButAutomaticUpgrades: r.ButAutomaticUpgrades,
	}
}

func indexInfo(ix *repo.Index) IndexInfo {
	info := IndexInfo{URI: ix.Source.URI, Suite: ix.Source.Suite, Component: ix.Component, Arch: ix.Arch,
		SHA256: ix.SHA256, Verified: ix.Verified, From: ix.From}
	if !ix.Release.Date.IsZero() {
		info.Date = ix.Release.Date.UTC().Format(time.RFC3339)
	}
	return info
}

// offlineNotices says, per suite read offline, which Release was used
// and from where (cacheLists is the cache's, else apt's lists): every
// index of a suite is verified against that one Release.
func offlineNotices(indexes []repo.Index, cacheLists string) []string {
	var out []string
	seen := map[string]bool{}
	for i := range indexes {
		ix := &indexes[i]
		key := ix.Source.URI + " " + ix.Source.Suite
		if ix.From == "" || seen[key] {
			continue
		}
		seen[key] = true
		date := "no date"
		if !ix.Release.Date.IsZero() {
			date = ix.Release.Date.UTC().Format(time.RFC3339)
		}
		verified := "verified"
		if !ix.Verified {
			verified = "NOT verified (trusted=yes)"
		}
		from := "apt's lists"
		if ix.From == cacheLists {
			from = "patchloop's cache"
		}
		out = append(out, fmt.Sprintf("offline: %s %s: Release of %s (%s) and its indexes from %s (%s)",
			ix.Source.URI, ix.Source.Suite, date, verified, from, ix.From))
	}
	return out
}

func summarize(pkgs []deb.InstalledPackage, updates []detect.Update) Summary {
	var s Summary
	for i := range pkgs {
		switch {
		case pkgs[i].State == "installed":
			s.Installed++
		case pkgs[i].State != "not-installed":
			s.NotInstalled++
		}
	}
	s.Updates = len(updates)
	for _, u := range updates {
		if u.Security {
			s.Security++
		}
		if u.Held {
			s.Held++
		}
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
