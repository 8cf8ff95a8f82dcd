package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/rpm"
)

func versionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "version", Short: "Version tools (compare)"}
	var ecosystem string
	compare := &cobra.Command{
		Use:   "compare",
		Short: "Compare version pairs read from stdin, one 'A B' per line; prints <, = or > per line",
		Long: `compare reads lines "A B" from standard input and prints, for each, "<", "="
or ">" as A orders against B in the chosen ecosystem (debian: exactly as dpkg;
rpm: [epoch:]version[-release] exactly as rpm 4.18's rpm.labelCompare, a missing
epoch being 0). A line that is not two fields, or a version the ecosystem's tool
would reject, is an error that names the line; the exit status is then 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmp, ok := versionComparer(ecosystem)
			if !ok {
				return fmt.Errorf("--ecosystem %q is not supported (supported: debian, rpm)", ecosystem)
			}
			return compareStream(os.Stdin, os.Stdout, cmp)
		},
	}
	compare.Flags().StringVar(&ecosystem, "ecosystem", "debian", "version ordering to use: debian or rpm")
	cmd.AddCommand(compare)
	return cmd
}

// versionComparer returns the ordering of --ecosystem: -1, 0 or 1, or an
// error for a version that ecosystem's tool refuses.
func versionComparer(ecosystem string) (func(a, b string) (int, error), bool) {
	switch ecosystem {
	case "debian":
		return deb.CompareVersions, true
	case "rpm":
		return compareRPM, true
	}
	return nil, false
}

// compareRPM is rpm.CompareEVR, refusing what rpm.labelCompare refuses.
func compareRPM(a, b string) (int, error) {
	for _, v := range []string{a, b} {
		if _, err := rpm.ParseEVR(v); err != nil {
			return 0, err
		}
	}
	return rpm.CompareEVR(a, b), nil
}

func compareStream(r io.Reader, w io.Writer, compare func(a, b string) (int, error)) error {
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
		c, err := compare(f[0], f[1])
		if err != nil {
			out.Flush()
			return fmt.Errorf("stdin line %d: %w", line, err)
		}
		out.WriteString([]string{"<\n", "=\n", ">\n"}[c+1])
	}
	return sc.Err()
}
