package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/agent"
)

func agentCmd(logLevel *string) *cobra.Command {
	var stateDir, root string
	cmd := &cobra.Command{Use: "agent", Short: "The endpoint agent: enroll once, then run as a service"}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", "/var/lib/patchloop-agent", "where the agent keeps its identity")
	cmd.PersistentFlags().StringVar(&root, "root", "/", "the system to report (a chroot or mounted image for tests)")

	var server, fpr, token string
	enroll := &cobra.Command{Use: "enroll", Short: "Enroll this machine with a server, using an enrollment token", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || fpr == "" || token == "" {
				return errors.New("enroll needs --server, --ca-fingerprint and --token (from 'patchloop tokens create')")
			}
			st, err := agent.Enroll(cmd.Context(), agent.Config{StateDir: stateDir, Root: root, Log: newLogger(*logLevel)}, server, fpr, token)
			if err != nil {
				return err
			}
			fmt.Printf("enrolled as host %s\n", st.HostID)
			return nil
		}}
	enroll.Flags().StringVar(&server, "server", "", "server URL, e.g. https://patchloop.example:8443")
	enroll.Flags().StringVar(&fpr, "ca-fingerprint", "", "SHA-256 fingerprint of the server's CA, as 'tokens create' prints it")
	enroll.Flags().StringVar(&token, "token", os.Getenv("PATCHLOOP_ENROLL_TOKEN"), "enrollment token ($PATCHLOOP_ENROLL_TOKEN)")

	var once bool
	var maxBackoff time.Duration
	var configFile string
	run := &cobra.Command{Use: "run", Short: "Check in with the server until stopped (the service's command)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := *logLevel
			if !cmd.Flags().Changed("log-level") && level == "warn" {
				level = "info"
			}
			a, err := agent.New(agent.Config{StateDir: stateDir, Root: root, Log: newLogger(level), MaxBackoff: maxBackoff,
				ConfigFile: configFile})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if once {
				return a.Once(ctx)
			}
			return a.Run(ctx)
		}}
	run.Flags().BoolVar(&once, "once", false, "check in once and exit (status 1 if it failed)")
	run.Flags().DurationVar(&maxBackoff, "max-backoff", agent.DefaultMaxBackoff, "longest wait between failed check-ins")
	run.Flags().StringVar(&configFile, "config", agent.DefaultConfigFile, "local configuration: allow_reboot, allow_commands, health gates (missing: none allowed)")
	cmd.AddCommand(enroll, run)
	return cmd
}
