package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/lab"
)

func labCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "lab", Short: "A lab of real Debian endpoints for trying patchloop (root, debootstrap)"}
	var dataDir string
	var port int
	var interval time.Duration
	up := &cobra.Command{
		Use:   "up N",
		Short: "Start a server and N Debian 12 endpoints running the agent, until interrupted",
		Long: `lab up builds N endpoints (a cached debootstrap minbase, an overlay copy each, one network
namespace each that reaches only the server), starts 'patchloop server' on the lab network,
enrolls every endpoint's agent, and waits. Use the printed commands from another shell;
Ctrl-C tears everything down and leaves nothing mounted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n int
			if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 || n > 200 {
				return fmt.Errorf("N %q: want a number of hosts from 1 to 200", args[0])
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return labUp(ctx, n, dataDir, port, interval)
		},
	}
	up.Flags().StringVar(&dataDir, "data-dir", "/var/lib/patchloop-lab", "server data and hosts live here")
	up.Flags().IntVar(&port, "port", 18443, "server port on the lab network")
	up.Flags().DurationVar(&interval, "interval", 10*time.Second, "agents' check-in interval")
	cmd.AddCommand(up)
	return cmd
}

func labUp(ctx context.Context, n int, dataDir string, port int, interval time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := lab.Sweep(ctx); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "patchloop: preparing the base (about a minute the first time)")
	base, err := lab.EnsureBase(ctx, lab.DefaultCacheDir(), "bookworm", "amd64", lab.DefaultMirror)
	if err != nil {
		return err
	}
	hostsDir, err := os.MkdirTemp("", "patchloop-lab-hosts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(hostsDir)
	fleet, err := lab.NewFleet(ctx, base, hostsDir, "lab", lab.FleetOptions{Hosts: n, Binary: self})
	if err != nil {
		return err
	}
	defer fleet.Close()

	serverData := filepath.Join(dataDir, "server")
	if err := os.MkdirAll(serverData, 0o700); err != nil {
		return err
	}
	sources := filepath.Join(dataDir, "debian.sources")
	if err := os.WriteFile(sources, []byte(lab.DebianSources), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dataDir, "server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	listen := net.JoinHostPort(fleet.Net.Addr(), fmt.Sprint(port))
	srv := exec.Command(self, "server", "--listen", listen, "--data-dir", serverData, "--sources", sources,
		"--interval", interval.String(), "--log-level", "info")
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	if err := waitListening(ctx, listen); err != nil {
		return fmt.Errorf("server (log %s): %w", logFile.Name(), err)
	}
	cf := clientFlags{server: "https://" + listen, dataDir: serverData, format: "json"}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var tok api.EnrollToken
	if err := c.call(ctx, "POST", "/api/v1/tokens", api.CreateTokenRequest{MaxUses: n, ExpiresIn: "1h", Note: "lab up"}, &tok); err != nil {
		return err
	}
	if err := fleet.Enroll(ctx, cf.server, tok.CAFingerprint, tok.Token); err != nil {
		return err
	}
	fmt.Printf("lab up: %d endpoints enrolled with the server at %s (log %s)\n", n, cf.server, logFile.Name())
	for _, h := range fleet.Hosts {
		fmt.Printf("  %s  host %s  ip %s  root %s\n", h.Name, h.ID, h.IP(), h.Root)
	}
	fmt.Printf("try:\n  export PATCHLOOP_SERVER=%s\n  patchloop hosts list --data-dir %s\n  patchloop updates list --data-dir %s\nCtrl-C to tear down.\n",
		cf.server, serverData, serverData)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "patchloop: tearing the lab down")
	return nil
}

func waitListening(ctx context.Context, addr string) error {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listening on %s after 10s", addr)
}
