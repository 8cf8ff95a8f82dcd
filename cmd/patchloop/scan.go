package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/scan"
)

// exitUpdates is scan's exit code when --fail-on matched (as dnf check-update's 100).
const exitUpdates = 100

func scanCmd(logLevel *string) *cobra.Command {
	var (
		root, cacheDir, format, failOn string
		offline                        bool
		timeout                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "List the updates this machine (or --root DIR) is missing, exactly as apt sees them",
		Long: `scan reads the dpkg database and apt's sources, preferences and configuration,
fetches and verifies the repository indexes (OpenPGP-signed InRelease, SHA256 of
every Packages file), and lists each installed package whose apt candidate is newer.

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
			log := newLogger(*logLevel)
			prog := newProgress(os.Stderr, 700*time.Millisecond)
			res, err := scan.Run(cmd.Context(), scan.Options{
				Root:     root,
				CacheDir: cacheDir,
				Offline:  offline,
				Client:   &http.Client{Timeout: timeout},
				Log:      log,
				Progress: prog.Print,
			})
			prog.Stop()
			if err != nil {
				return err
			}
			if format == "json" {
				err = scan.WriteJSON(os.Stdout, res)
			} else {
				err = scan.WriteTable(os.Stdout, res)
			}
			if err != nil {
				return err
			}
			if (failOn == "any" && res.Summary.Updates > 0) || (failOn == "security" && res.Summary.Security > 0) {
				return exitError{exitUpdates}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/", "scan the system under this directory (a chroot or mounted image)")
	f.StringVar(&cacheDir, "cache-dir", defaultCacheDir(), "where verified indexes are cached")
	f.StringVar(&format, "format", "table", "output format: table or json (schema: docs/scan-json.md)")
	f.StringVar(&failOn, "fail-on", "", "exit 100 when there are updates: 'any' or 'security'")
	f.BoolVar(&offline, "offline", false, "no network: use the cache or apt's own lists (still verified)")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "timeout of each HTTP request")
	return cmd
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
