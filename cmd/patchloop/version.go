package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/deb"
)

func versionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "version", Short: "Version tools (compare)"}
	var ecosystem string
	compare := &cobra.Command{
		Use:   "compare",
		Short: "Compare version pairs read from stdin, one 'A B' per line; prints <, = or > per line",
		Long: `compare reads lines "A B" from standard input and prints, for each, "<", "="
or ">" as A orders against B in the chosen ecosystem (debian: exactly as dpkg).
A line that is not two fields, or a version dpkg would reject, is an error that
names the line; the exit status is then 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ecosystem != "debian" {
				return fmt.Errorf("--ecosystem %q is not supported (supported: debian)", ecosystem)
			}
			return compareStream(os.Stdin, os.Stdout)
		},
	}
	compare.Flags().StringVar(&ecosystem, "ecosystem", "debian", "version ordering to use: debian")
	cmd.AddCommand(compare)
	return cmd
}

func compareStream(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	out := bufio.NewWriter(w)
	defer out.Flush()
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			out.Flush()
			return fmt.Errorf("stdin line %d: want two versions \"A B\", got %d fields", line, len(f))
		}
		c, err := deb.CompareVersions(f[0], f[1])
		if err != nil {
			out.Flush()
			return fmt.Errorf("stdin line %d: %w", line, err)
		}
		out.WriteString([]string{"<\n", "=\n", ">\n"}[c+1])
	}
	return sc.Err()
}
