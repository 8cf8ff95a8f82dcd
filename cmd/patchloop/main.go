// Command patchloop is the patch management tool: one binary whose
// subcommands run the scan, the server, the agent and the client.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:           "patchloop",
		Short:         "Patch management for Linux fleets",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var logLevel string
	root.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error (logs go to stderr)")
	root.AddCommand(scanCmd(&logLevel), versionCmd(), serverCmd(&logLevel), agentCmd(&logLevel),
		hostsCmd(), updatesCmd(), tokensCmd(), jobsCmd(), labCmd(), loadgenCmd(&logLevel),
		policyCmd(), findingsCmd(), feedsCmd(), rolloutCmd(), rollbackCmd())
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintf(os.Stderr, "patchloop: %v\n", err)
		os.Exit(1)
	}
}
