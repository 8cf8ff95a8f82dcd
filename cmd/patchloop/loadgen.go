package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/loadgen"
	"github.com/patchloop/patchloop/internal/pki"
)

func loadgenCmd(logLevel *string) *cobra.Command {
	var (
		cf                 clientFlags
		cfg                loadgen.Config
		statusFiles        []string
		versionFiles       []string
		variants           int
		cpuProfile, sysDir string
		rolloutSpec        string
	)
	cmd := &cobra.Command{
		Use:   "loadgen",
		Short: "Simulate a fleet of agents against a server and measure it",
		Long: `loadgen simulates --hosts agents speaking the real protocol over HTTPS to the server,
and prints check-ins per second, latency quantiles, errors, and (with --server-pid)
the server's CPU and memory, plus the database size from its /metrics.

Phases: (1) enroll the hosts not in --state yet, with an enrollment token it makes
through the admin API (--token or DATA_DIR/admin.token); (2) one check-in per host,
sending the inventory when the server asks; (3) for --duration, check-ins with an
unchanged inventory: --mode steady (each host every --interval, ±10%), rate (--rate
per second in total) or max (--concurrency in flight, as fast as the server answers),
or rollout: create the rollout of --rollout-spec (a spec file as for rollout create -f)
over the fleet, start it, and have every host check in round after round, answering
each job as an agent whose installs succeed, until every member answered its install
job or --duration passed; it prints when each ring's jobs were handed out. With --wait,
each host keeps a check-in held on the server (a long poll, server --checkin-hold)
instead, and the rollout starts once the server holds one of every member; with
--install-time, each host takes its time to install before it answers, as apt would.

Inventories: the packages of real dpkg status files (--status, each an image), with
per-host variants: a few packages at other real versions (from the status files and
--versions files of "package version" lines) and a few leaf packages removed. Every
host reports the architecture, apt sources and pins of this machine (--system-root).

Each host keeps its own TLS connection, as agents do, so --hosts must stay below the
open-file limit; --reconnect opens a new connection for every check-in instead, and
--share N has the hosts share N transports, whose HTTP/2 connections carry many hosts'
requests at once (the way to hold more hosts' check-ins than files may be open).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			admin, err := cf.client()
			if err != nil {
				return err
			}
			cfg.Server, cfg.Log = admin.base, newLogger(*logLevel)
			if cfg.CAFingerprint, err = caFingerprint(&cf); err != nil {
				return err
			}
			cfg.NewToken = func(ctx context.Context, n int) (string, error) {
				var t api.EnrollToken
				err := admin.call(ctx, "POST", "/api/v1/tokens", api.CreateTokenRequest{ExpiresIn: "24h", MaxUses: n, Note: "loadgen"}, &t)
				return t.Token, err
			}
			if cfg.Inventories, cfg.Facts, err = fleetInventories(sysDir, statusFiles, versionFiles, variants, cfg.Seed); err != nil {
				return err
			}
			if cfg.Mode == loadgen.ModeRollout {
				if rolloutSpec == "" {
					return fmt.Errorf("--mode rollout needs --rollout-spec")
				}
				if cfg.Rollout, err = newLoadgenRollout(admin, rolloutSpec); err != nil {
					return err
				}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			rep, err := loadgen.Run(ctx, cfg)
			if rep == nil {
				return err
			}
			if cf.format == "json" {
				if perr := printJSON(rep); perr != nil {
					return perr
				}
			} else if werr := loadgen.WriteTable(os.Stdout, rep); werr != nil {
				return werr
			}
			return err
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.IntVar(&cfg.Hosts, "hosts", 1000, "simulated hosts")
	f.StringVar(&cfg.StatePath, "state", "", "file keeping the hosts' credentials between runs against the same server")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the hosts' machine-ids, names and inventories")
	f.StringSliceVar(&statusFiles, "status", []string{"/var/lib/dpkg/status"}, "dpkg status files, one per image (repeatable)")
	f.StringSliceVar(&versionFiles, "versions", nil, `files of "package version" lines: other real versions for the variants (repeatable)`)
	f.IntVar(&variants, "variants", 32, "distinct inventories made from each image")
	f.StringVar(&sysDir, "system-root", "/", "system whose architecture, apt sources, pins and OS facts every host reports")
	f.IntVar(&cfg.Concurrency, "concurrency", 64, "requests in flight (enroll, inventory and max phases; at most, in paced phases)")
	f.StringVar(&cfg.Mode, "mode", loadgen.ModeSteady, "phase 3: steady, rate, max, rollout, or none")
	f.StringVar(&rolloutSpec, "rollout-spec", "", "rollout: the rollout's spec file (YAML or JSON, as rollout create -f)")
	f.DurationVar(&cfg.Interval, "interval", time.Minute, "steady: each host's check-in interval")
	f.Float64Var(&cfg.Rate, "rate", 0, "rate: check-ins per second in total")
	f.DurationVar(&cfg.Duration, "duration", time.Minute, "length of phase 3 (rollout: the longest to wait)")
	f.BoolVar(&cfg.Reconnect, "reconnect", false, "close each host's connection after every check-in (for more hosts than open files)")
	f.IntVar(&cfg.Share, "share", 0, "hosts share `N` HTTP/2 transports instead of a connection each (excludes --reconnect)")
	f.DurationVar(&cfg.Wait, "wait", 0, "rollout: hold each check-in up to `D` on the server (long poll) instead of checking in round after round")
	f.DurationVar(&cfg.InstallTime, "install-time", 0, "rollout with --wait: each host takes between `D`/2 and D to report an install's result, as apt would (0: at once)")
	f.IntVar(&cfg.ServerPID, "server-pid", 0, "PID of the server process, to report its CPU and memory")
	f.IntVar(&cfg.DatabasePID, "db-pid", 0, "PID of a separate database server (the PostgreSQL postmaster), to report its CPU with its children's")
	f.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "per-request timeout")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write loadgen's own CPU profile to this file")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if cfg.Mode == "none" {
			cfg.Mode = ""
		}
		return nil
	}
	return cmd
}

// caFingerprint is --ca-fingerprint or that of DATA_DIR/ca.pem, as the
// admin client finds it.
func caFingerprint(cf *clientFlags) (string, error) {
	if cf.caFingerprint != "" {
		return cf.caFingerprint, nil
	}
	path := filepath.Join(cf.dataDir, "ca.pem")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no --ca-fingerprint and %v", err)
	}
	cert, err := pki.ParseCert(data)
	if err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	return pki.Fingerprint(cert), nil
}

// fleetInventories builds the distinct inventories from the status files
// and the OS facts of the system under root.
func fleetInventories(root string, statusFiles, versionFiles []string, variants int, seed uint64) ([]*loadgen.Inventory, api.Facts, error) {
	base, facts, err := agent.Collect(root)
	if err != nil {
		return nil, api.Facts{}, fmt.Errorf("read this system's apt configuration: %w", err)
	}
	facts.AgentVersion = "loadgen"
	pool := loadgen.VersionPool{}
	var images []*loadgen.Image
	for _, path := range statusFiles {
		img, err := loadgen.ReadImage(path)
		if err != nil {
			return nil, api.Facts{}, err
		}
		for _, p := range img.Packages {
			pool.Add(p.Name, p.Version)
		}
		images = append(images, img)
	}
	for _, path := range versionFiles {
		if err := pool.ReadVersions(path); err != nil {
			return nil, api.Facts{}, err
		}
	}
	return loadgen.Inventories(base, images, pool, variants, seed), facts, nil
}
