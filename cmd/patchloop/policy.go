package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/policy"
)

func policyCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "policy", Short: "Patch baselines: validate locally, apply to the server, list, show, delete",
		Long: `policy manages the patch baselines (YAML, see docs/assess.md) the server decides findings with.

A host's baseline is the first, by priority (lowest first) then name, whose
hosts selector matches its labels. apply takes the priority from --priority or
else from a leading number in the file name (10-production.yaml: 10); a policy
put without either keeps its priority (100 when new).`}
	cf.add(cmd)

	var files []string
	var prio int
	var dryRun bool
	apply := &cobra.Command{Use: "apply -f FILE...", Short: "Validate baselines and store them on the server", Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files = append(files, args...)
			if len(files) == 0 {
				return errors.New("apply: give the policy files with -f FILE")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			// All must be valid before any is sent; errors name these files.
			type put struct {
				name, query string
				data        []byte
			}
			var puts []put
			var errs []error
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				b, err := policy.Parse(f, data)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				q := url.Values{}
				if cmd.Flags().Changed("priority") {
					q.Set("priority", strconv.Itoa(prio))
				} else if p, ok := filePriority(f); ok {
					q.Set("priority", strconv.Itoa(p))
				}
				if dryRun {
					q.Set("dry_run", "true")
				}
				puts = append(puts, put{name: b.Name, query: q.Encode(), data: data})
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			var out []api.PolicyPut
			for _, p := range puts {
				path := "/api/v1/policies/" + pathID(p.name)
				if p.query != "" {
					path += "?" + p.query
				}
				var r api.PolicyPut
				if err := c.send(cmd.Context(), "PUT", path, "application/yaml", p.data, &r); err != nil {
					return err
				}
				r.Source = ""
				out = append(out, r)
			}
			if cf.format == "json" {
				return printJSON(out)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIORITY\tVERSION\tRESULT")
			for _, r := range out {
				res := "unchanged"
				switch {
				case r.DryRun:
					res = "valid (dry run, not stored)"
				case r.Changed && r.Version == 1:
					res = "created"
				case r.Changed:
					res = "updated"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Name, r.Priority, r.Version, res)
			}
			return tw.Flush()
		}}
	apply.Flags().StringSliceVarP(&files, "file", "f", nil, "policy YAML file (repeatable)")
	apply.Flags().IntVar(&prio, "priority", 0, "order in the set, lowest first (default: the file name's leading number, else kept)")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "have the server validate without storing")

	list := &cobra.Command{Use: "list", Short: "List the baselines in the order hosts are matched against them", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var ps []api.Policy
			if err := c.call(cmd.Context(), "GET", "/api/v1/policies", nil, &ps); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(ps)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIORITY\tVERSION\tUPDATED\tBY\tDESCRIPTION")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", p.Name, p.Priority, p.Version, p.UpdatedAt.Format(time.RFC3339), p.UpdatedBy, p.Description)
			}
			return tw.Flush()
		}}
	show := &cobra.Command{Use: "show NAME", Short: "Show a baseline's YAML and who changed it last", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var p api.Policy
			if err := c.call(cmd.Context(), "GET", "/api/v1/policies/"+pathID(args[0]), nil, &p); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(p)
			}
			fmt.Printf("# policy %s, version %d, priority %d, updated %s by %s\n%s", p.Name, p.Version, p.Priority,
				p.UpdatedAt.Format(time.RFC3339), p.UpdatedBy, p.Source)
			if !strings.HasSuffix(p.Source, "\n") {
				fmt.Println()
			}
			return nil
		}}
	del := &cobra.Command{Use: "delete NAME", Short: "Delete a baseline", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.call(cmd.Context(), "DELETE", "/api/v1/policies/"+pathID(args[0]), nil, nil)
		}}
	validate := &cobra.Command{Use: "validate FILE...", Short: "Check baselines locally, as one set, without a server", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return validatePolicies(cf.format, args) }}
	cmd.AddCommand(apply, list, show, del, validate)
	return cmd
}

// validateResult is one file of `policy validate --format json`.
type validateResult struct {
	File     string   `json:"file"`
	Name     string   `json:"name,omitempty"`
	Valid    bool     `json:"valid"`
	Problems []string `json:"problems,omitempty"`
}

// validatePolicies parses each file, then all of them as one set (names
// must be unique), and reports each; invalid ones make the exit status 1.
func validatePolicies(format string, files []string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("--format must be 'table' or 'json', not %q", format)
	}
	var results []validateResult
	var set []policy.File
	bad := false
	for _, f := range files {
		r := validateResult{File: f}
		data, err := os.ReadFile(f)
		if err == nil {
			var b *policy.Baseline
			if b, err = policy.Parse(f, data); err == nil {
				r.Name, r.Valid = b.Name, true
				set = append(set, policy.File{Name: f, Data: data})
			}
		}
		if err != nil {
			r.Problems = problemLines(err)
			bad = true
		}
		results = append(results, r)
	}
	if !bad {
		if _, err := policy.ParseSet(set); err != nil { // names used twice
			for _, line := range problemLines(err) {
				for i := range results {
					if strings.HasPrefix(line, results[i].File+":") {
						results[i].Valid = false
						results[i].Problems = append(results[i].Problems, line)
					}
				}
			}
			bad = true
		}
	}
	if format == "json" {
		if err := printJSON(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Valid {
				fmt.Printf("%s: ok (baseline %s)\n", r.File, r.Name)
			}
			for _, p := range r.Problems {
				fmt.Fprintln(os.Stderr, p)
			}
		}
	}
	if bad {
		return exitError{1}
	}
	return nil
}

func problemLines(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problemLines(e)...)
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

var leadingNumber = regexp.MustCompile(`^([0-9]+)[-_]`)

// filePriority reads the priority of a file named like 10-production.yaml.
func filePriority(file string) (int, bool) {
	base := filepath.Base(file)
	m := leadingNumber.FindStringSubmatch(base)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil && n <= 1_000_000
}
