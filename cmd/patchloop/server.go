package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/feeds"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/scan"
	"github.com/patchloop/patchloop/internal/server"
	"github.com/patchloop/patchloop/internal/store"
)

func serverCmd(logLevel *string) *cobra.Command {
	var (
		listen, dataDir, db string
		names, sources      []string
		certFile, keyFile   string
		caFile              string
		interval, refresh   time.Duration
		hold                time.Duration
		rolloutTick         time.Duration
		feedFlags           serverFeedFlags
		changelogs          bool
		changelogWorkers    int
		pprofAddr           string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the patchloop server: the API agents and the CLI talk to",
		Long: `server serves the HTTPS API under /api/v1, /healthz, /readyz and /metrics.

State lives in SQLite at DATA_DIR/patchloop.db unless --db gives a postgres:// URL.
On first start the server makes its CA (kept in the database, shared by replicas)
and an admin token, written to DATA_DIR/admin.token for the CLI on this machine.
Agents trust the server by the CA fingerprint it prints.

The server fetches and verifies the indexes of the sources its hosts use, with the
keyrings of its own apt sources (or of the files given with --sources): a host
source the server does not list is reported as not mirrored, never trusted blindly.

Findings (/api/v1/findings, 'patchloop findings') name the CVEs of each update from
the advisory feeds given with --feeds-dir or --kev, --epss, --osv, --dsa and --dla
(URLs or files), refreshed every --feeds-refresh; the last good copies are kept in
DATA_DIR/feeds and serve while a refresh fails. With --changelogs (the default) the
server also reads the changelog of each distinct candidate source version from a .deb
checked against its verified indexes, as 'patchloop scan' does, in the background and
kept in DATA_DIR/cache/changelog; --changelogs=false for servers without access to the
packages (findings then say that their CVEs come from the feeds only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(*logLevel)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if db == "" {
				db = filepath.Join(dataDir, "patchloop.db")
			}
			st, err := store.Open(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			trust, err := loadTrust(sources)
			if err != nil {
				return err
			}
			eng := central.New(central.Config{CacheDir: filepath.Join(dataDir, "cache"), Trust: trust, Log: log,
				Client: &http.Client{Timeout: 10 * time.Minute}})
			intl, err := feedFlags.load(ctx, filepath.Join(dataDir, "feeds"), log)
			if err != nil {
				return err
			}
			var clc *server.ChangelogConfig
			if changelogs {
				clc = &server.ChangelogConfig{CacheDir: filepath.Join(dataDir, "cache", "changelog"), Workers: changelogWorkers,
					Client: &http.Client{Timeout: 10 * time.Minute}}
			}
			srv, err := server.New(ctx, server.Config{Store: st, Engine: eng, Log: log, Interval: interval, Hold: hold, Intel: intl, Changelogs: clc})
			if err != nil {
				return err
			}
			tokenPath := filepath.Join(dataDir, "admin.token")
			if made, err := srv.EnsureAdminToken(ctx, tokenPath); err != nil {
				return err
			} else if made {
				fmt.Fprintf(os.Stderr, "patchloop: admin token written to %s\n", tokenPath)
			}
			caPEM := pki.EncodeCert(srv.CA().Cert)
			if certFile != "" || keyFile != "" || caFile != "" {
				if certFile == "" || keyFile == "" || caFile == "" {
					return errors.New("--tls-cert, --tls-key and --tls-ca go together")
				}
				if err := srv.UseCertificateFiles(certFile, keyFile, caFile); err != nil {
					return err
				}
				if caPEM, err = os.ReadFile(caFile); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(dataDir, "ca.pem"), caPEM, 0o644); err != nil {
				return err
			}
			if len(names) == 0 {
				names = defaultNames()
			}
			tlsConf, err := srv.TLSConfig(names)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "patchloop: serving https://%s  CA fingerprint %s\n", ln.Addr(), srv.CAFingerprint())
			hs := &http.Server{Handler: srv.Handler(), TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout: 2 * time.Minute, WriteTimeout: 2*time.Minute + max(hold, 0), IdleTimeout: 5 * time.Minute,
				// Pings end the held check-ins of connections that died
				// silently, before a job is leased to them.
				HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}}
			hs.RegisterOnShutdown(srv.Drain) // held check-ins answer at once
			go srv.RunRefresh(ctx, refresh)
			go srv.RunRollouts(ctx, rolloutTick)
			go srv.RunChangelogs(ctx)
			if intl != nil {
				go func() { // the cached copies serve until the first fetch
					if err := intl.Refresh(ctx); err != nil {
						log.Warn("feed refresh", "err", err)
					}
					srv.RunFeeds(ctx, feedFlags.refresh)
				}()
			}
			errc := make(chan error, 1)
			if pprofAddr != "" {
				if err := servePprof(ctx, pprofAddr, errc); err != nil {
					return err
				}
			}
			go func() { errc <- hs.ServeTLS(ln, "", "") }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = hs.Shutdown(shut)
			srv.StopSteps() // before the store closes
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":8443", "address to serve HTTPS on")
	f.StringVar(&dataDir, "data-dir", "/var/lib/patchloop", "directory for the SQLite database, caches, admin token and ca.pem")
	f.StringVar(&db, "db", "", "database: a SQLite file path, or a postgres:// URL (default DATA_DIR/patchloop.db)")
	f.StringSliceVar(&names, "tls-name", nil, "DNS names and IPs for the server certificate (default: this host's name and addresses)")
	f.StringVar(&certFile, "tls-cert", "", "serve this certificate (PEM, with its chain) instead of one from the server's own CA")
	f.StringVar(&keyFile, "tls-key", "", "the key of --tls-cert (PEM)")
	f.StringVar(&caFile, "tls-ca", "", "the CA that signed --tls-cert; agents pin its fingerprint")
	f.StringSliceVar(&sources, "sources", nil, "apt sources files (.list or .sources) naming the repositories the server mirrors and their keyrings (default: this machine's apt sources)")
	f.DurationVar(&interval, "interval", time.Minute, "check-in interval told to agents")
	f.DurationVar(&hold, "checkin-hold", 50*time.Second, "longest to hold an agent's check-in until a job is queued for it (a long poll, so jobs start within a second); keep it under any proxy's idle timeout; 0: answer check-ins at once")
	f.DurationVar(&refresh, "refresh", 15*time.Minute, "how often to refetch repository indexes")
	f.DurationVar(&rolloutTick, "rollout-tick", 30*time.Second, "how often rollouts are stepped for soak, windows and time-outs (results step them at once)")
	f.BoolVar(&changelogs, "changelogs", true, "read the candidate changelogs of the hosts' updates (CVEs, urgency, release dates) from the mirrored repositories")
	f.IntVar(&changelogWorkers, "changelog-workers", 2, "packages downloaded at once to read their changelogs")
	f.StringVar(&pprofAddr, "pprof", "", "serve Go's profiles (/debug/pprof/) without TLS or authentication on this loopback address, e.g. 127.0.0.1:6060 (for benchmarks)")
	feedFlags.add(cmd)
	return cmd
}

// serverFeedFlags say where the advisory feeds findings are assessed with
// come from (package intel): a directory laid out as intel.ConfigFromDir
// reads, and single feeds given beside or instead of it.
type serverFeedFlags struct {
	dir     string
	cfg     intel.Config // the flags that override dir's
	refresh time.Duration
}

func (ff *serverFeedFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&ff.dir, "feeds-dir", "", "directory of advisory feeds: kev/*.json, epss/, osv/, **/DSA/list, **/DLA/list")
	f.StringVar(&ff.cfg.KEV, "kev", "", "CISA KEV catalog JSON: URL or file (overrides --feeds-dir's)")
	f.StringSliceVar(&ff.cfg.EPSS, "epss", nil, "EPSS CSV (daily, plain or gzip) or per-year files: URL, file or directory (repeatable)")
	f.StringSliceVar(&ff.cfg.OSV, "osv", nil, "OSV all.zip (URL or file) or directory of OSV records (repeatable)")
	f.StringVar(&ff.cfg.DSA, "dsa", "", "Debian Security Tracker data/DSA/list: URL or file")
	f.StringVar(&ff.cfg.DLA, "dla", "", "Debian Security Tracker data/DLA/list: URL or file")
	f.DurationVar(&ff.refresh, "feeds-refresh", 6*time.Hour, "how often to refetch the advisory feeds")
}

// load returns the feeds the flags name, loaded from what cacheDir holds
// and local files; nil when none are named. Feeds that cannot be loaded
// yet are logged (Refresh may fetch them) and listed by /api/v1/feeds.
func (ff *serverFeedFlags) load(ctx context.Context, cacheDir string, log *slog.Logger) (*server.Intel, error) {
	cfg, err := feedConfig(assessFlags{feedsDir: ff.dir, cfg: ff.cfg})
	if err != nil {
		return nil, err
	}
	if cfg.Empty() {
		return nil, nil
	}
	loader := &feeds.Loader{CacheDir: cacheDir, Client: &http.Client{Timeout: 30 * time.Minute}}
	intl, err := server.NewIntel(ctx, cfg, loader, log)
	if err != nil {
		log.Warn("advisory feeds not all loaded yet", "err", err)
	}
	return intl, nil
}

// loadTrust reads the sources the server mirrors.
func loadTrust(files []string) ([]repo.Source, error) {
	var entries []deb.SourceEntry
	if len(files) == 0 {
		conf, err := deb.LoadAptConfig("/")
		if err != nil {
			return nil, err
		}
		if entries, err = deb.LoadSources("/", conf); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		e, err := deb.ReadSourcesFile(f)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e...)
	}
	return scan.RepoSources(entries, nil), nil
}

func defaultNames() []string {
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok {
			names = append(names, ip.IP.String())
		}
	}
	return names
}

// servePprof serves net/http/pprof's handlers on a loopback address: they
// have no authentication, so any other address is refused.
func servePprof(ctx context.Context, addr string, errc chan<- error) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof %q: want a loopback address and port, e.g. 127.0.0.1:6060", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); hs.Close() }()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return nil
}
