package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/changelog"
	"github.com/patchloop/patchloop/internal/feeds"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/scan"
)

// exitUpdates is scan's exit code when --fail-on matched (as dnf check-update's 100).
const exitUpdates = 100

func scanCmd(logLevel *string) *cobra.Command {
	var (
		root, cacheDir, format, failOn string
		offline                        bool
		timeout                        time.Duration
		as                             assessFlags
	)
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "List the updates this machine (or --root DIR) is missing, exactly as apt sees them",
		Long: `scan reads the dpkg database and apt's sources, preferences and configuration,
fetches and verifies the repository indexes (OpenPGP-signed InRelease, SHA256 of
every Packages file), and lists each installed package whose apt candidate is newer.

Each update is then assessed (docs/assess.md): the CVEs it fixes, from the candidate's
own changelog (downloaded and verified against the signed indexes; with --offline only
from the changelog cache) and from the advisory feeds given (--feeds-dir, or --kev,
--epss, --osv, --dsa, --dla); KEV and EPSS per CVE; a risk score for this host
(--label criticality=high, --label exposure=internet-facing); and, with --policy,
the patch baseline's decision. Security updates are listed first, then by risk.

On a root holding an rpm database and no dpkg status (an AlmaLinux or Rocky image),
scan lists the packages the OSV errata given with --osv say are affected, with the
fixing version as the candidate (docs/assess.md, "RPM systems").

Exit status: 0 when the scan worked (with or without updates), 1 on any error,
100 when --fail-on matched (any: there are updates; security: there are security updates).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if failOn != "" && failOn != "any" && failOn != "security" {
				return fmt.Errorf("--fail-on must be 'any' or 'security', not %q", failOn)
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("--format must be 'table' or 'json', not %q", format)
			}
			labels, err := parseLabels(as.labels)
			if err != nil {
				return err
			}
			log := newLogger(*logLevel)
			client := &http.Client{Timeout: timeout}
			if isRPMRoot(root) {
				res, a, err := scanRPM(cmd.Context(), root, as, labels, assessEnv{
					cacheDir: cacheDir, offline: offline, client: client, log: log})
				if err != nil {
					return err
				}
				return writeScan(res, a, format, failOn, as.reasons)
			}
			prog := newProgress(os.Stderr, 700*time.Millisecond)
			res, err := scan.Run(cmd.Context(), scan.Options{
				Root:     root,
				CacheDir: cacheDir,
				Offline:  offline,
				Client:   client,
				Log:      log,
				Progress: prog.Print,
			})
			prog.Stop()
			if err != nil {
				return err
			}
			a, err := assessScan(cmd.Context(), res, as, labels, assessEnv{
				cacheDir: cacheDir, offline: offline, client: client, log: log})
			if err != nil {
				return err
			}
			return writeScan(res, a, format, failOn, as.reasons)
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/", "scan the system under this directory (a chroot or mounted image)")
	f.StringVar(&cacheDir, "cache-dir", defaultCacheDir(), "where verified indexes are cached")
	f.StringVar(&format, "format", "table", "output format: table or json (schema: docs/scan-json.md)")
	f.StringVar(&failOn, "fail-on", "", "exit 100 when there are updates: 'any' or 'security'")
	f.BoolVar(&offline, "offline", false, "no network: use the cache or apt's own lists (still verified)")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "timeout of each HTTP request")
	f.StringVar(&as.feedsDir, "feeds-dir", "", "advisory feeds laid out as docs/assess.md says (kev/, epss/, osv/, DSA/list, DLA/list)")
	f.StringVar(&as.cfg.KEV, "kev", "", "CISA KEV catalog JSON: URL or file (overrides --feeds-dir)")
	f.StringSliceVar(&as.cfg.EPSS, "epss", nil, "EPSS CSV files or directories, or URL (repeatable; overrides --feeds-dir)")
	f.StringSliceVar(&as.cfg.OSV, "osv", nil, "OSV all.zip (URL or file) or directory of OSV records (repeatable; overrides --feeds-dir)")
	f.StringVar(&as.cfg.DSA, "dsa", "", "Debian Security Tracker DSA list: URL or file (overrides --feeds-dir)")
	f.StringVar(&as.cfg.DLA, "dla", "", "Debian Security Tracker DLA list: URL or file (overrides --feeds-dir)")
	f.StringVar(&as.policy, "policy", "", "patch baselines: a YAML file or a directory of them (docs/assess.md)")
	f.StringArrayVar(&as.labels, "label", nil, "host label key=value for risk and policy, e.g. criticality=high, exposure=internet-facing (repeatable)")
	f.BoolVar(&as.changelogs, "changelogs", true, "read CVEs from the candidates' changelogs (downloads the .debs; --offline: the changelog cache only)")
	f.BoolVar(&as.reasons, "reasons", false, "table: print each update's risk reasons, decision and notes")
	return cmd
}

// writeScan prints an assessed scan and returns the exit status --fail-on asks for.
func writeScan(res *scan.Result, a *scan.Assessment, format, failOn string, reasons bool) error {
	var err error
	if format == "json" {
		err = scan.WriteAssessedJSON(os.Stdout, res, a)
	} else {
		err = scan.WriteAssessedTable(os.Stdout, res, a, reasons)
	}
	if err != nil {
		return err
	}
	if (failOn == "any" && res.Summary.Updates > 0) || (failOn == "security" && res.Summary.Security > 0) {
		return exitError{exitUpdates}
	}
	return nil
}

// assessFlags are scan's flags for the assess stage.
type assessFlags struct {
	feedsDir, policy    string
	cfg                 intel.Config
	labels              []string
	changelogs, reasons bool
}

// assessEnv is what the assess stage shares with the scan.
type assessEnv struct {
	cacheDir string
	offline  bool
	client   *http.Client
	log      *slog.Logger
}

// assessScan assesses a scan's updates: feeds, changelogs, risk, policy.
func assessScan(ctx context.Context, res *scan.Result, fl assessFlags, labels map[string]string, env assessEnv) (*scan.Assessment, error) {
	cfg, err := feedConfig(fl)
	if err != nil {
		return nil, err
	}
	var set *policy.Set
	if fl.policy != "" {
		if set, err = intel.ReadPolicies(fl.policy); err != nil {
			return nil, err
		}
	}
	prog := newProgress(os.Stderr, 700*time.Millisecond)
	defer prog.Stop()
	a := &scan.Assessment{Labels: labels, Policy: fl.policy,
		Release: intel.Release{Distro: res.Host.Distro, Version: res.Host.Release, Codename: res.Host.Codename}}
	var fd *intel.Feeds
	if !cfg.Empty() {
		prog.Print("loading advisory feeds")
		loader := &feeds.Loader{CacheDir: filepath.Join(env.cacheDir, "feeds"), Client: env.client}
		if fd, err = intel.Load(ctx, loader, cfg, env.offline); err != nil {
			return nil, err
		}
		a.Feeds = fd.Status
	}
	a.Notices = append(a.Notices, fd.Notices(cfg)...)
	var logs intel.ChangelogFunc
	if fl.changelogs && len(res.Updates) > 0 {
		keys := changelog.Keys(res.Updates)
		prog.Print(fmt.Sprintf("reading the changelogs of %d source packages", len(keys)))
		f := &changelog.Fetcher{Client: env.client, CacheDir: filepath.Join(env.cacheDir, "changelog"), Log: env.log}
		indexes := res.Verified
		if env.offline {
			indexes = nil // the cache only
		}
		results := f.Changelogs(ctx, indexes, keys)
		a.Changelogs = countChangelogs(results, env.offline)
		if a.Changelogs.Missing > 0 {
			a.Notices = append(a.Notices, fmt.Sprintf("changelogs: %d of %d source packages not available (see each update's notes)",
				a.Changelogs.Missing, len(keys)))
		}
		logs = intel.Changelogs(results)
	} else if !fl.changelogs {
		a.Notices = append(a.Notices, "changelogs not read (--changelogs=false): CVEs come from the feeds only")
	}
	host := res.Host.Hostname
	items, err := intel.NewAssessor(fd, logs).Assess(a.Release, host, labels,
		intel.Updates(res.Updates, res.Installed), set, res.Host.ScannedAt)
	if err != nil {
		return nil, err
	}
	a.Items = items
	return a, nil
}

// countChangelogs counts the outcomes; offline, a changelog not in the
// cache is reported as such rather than as not listed.
func countChangelogs(results []changelog.Result, offline bool) scan.ChangelogCounts {
	c := scan.ChangelogCounts{Enabled: true}
	for i := range results {
		r := &results[i]
		switch {
		case r.Log != nil && r.Cached:
			c.Cached++
		case r.Log != nil:
			c.Downloaded++
		default:
			c.Missing++
			if offline && !r.Cached {
				r.Err = fmt.Errorf("%s: not in the changelog cache (--offline)", r.Key)
			}
		}
	}
	return c
}

// feedConfig is --feeds-dir with the individual flags overriding it.
func feedConfig(fl assessFlags) (intel.Config, error) {
	var c intel.Config
	if fl.feedsDir != "" {
		var err error
		if c, err = intel.ConfigFromDir(fl.feedsDir); err != nil {
			return c, err
		}
	}
	if fl.cfg.KEV != "" {
		c.KEV = fl.cfg.KEV
	}
	if len(fl.cfg.EPSS) > 0 {
		c.EPSS = fl.cfg.EPSS
	}
	if len(fl.cfg.OSV) > 0 {
		c.OSV = fl.cfg.OSV
	}
	if fl.cfg.DSA != "" {
		c.DSA = fl.cfg.DSA
	}
	if fl.cfg.DLA != "" {
		c.DLA = fl.cfg.DLA
	}
	return c, nil
}

// parseLabels reads key=value pairs.
func parseLabels(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", p)
		}
		m[k] = v
	}
	return m, nil
}

// isRPMRoot reports whether root holds an rpm database and no dpkg status.
func isRPMRoot(root string) bool {
	if _, err := os.Stat(filepath.Join(root, "var/lib/dpkg/status")); err == nil {
		return false
	}
	for _, p := range []string{"var/lib/rpm", "usr/lib/sysimage/rpm"} {
		for _, db := range []string{"rpmdb.sqlite", "Packages.db", "Packages"} {
			if _, err := os.Stat(filepath.Join(root, p, db)); err == nil {
				return true
			}
		}
	}
	return false
}

func defaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/patchloop"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "patchloop")
	}
	return filepath.Join(os.TempDir(), "patchloop-cache")
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
