package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/detect"
)

func hostsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "hosts", Short: "List, show and revoke enrolled hosts"}
	cf.add(cmd)
	list := &cobra.Command{Use: "list", Short: "List hosts", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		var hosts []api.Host
		if err := c.call(cmd.Context(), "GET", "/api/v1/hosts", nil, &hosts); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(hosts)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tHOSTNAME\tOS\tLAST SEEN\tUPDATES\tSECURITY\tSTATE")
		for _, h := range hosts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Hostname, osOf(h), ago(h.LastSeen), count(h.Updates), count(h.Security), hostState(h))
		}
		return tw.Flush()
	}}
	show := &cobra.Command{Use: "show HOST", Short: "Show one host", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		var h api.Host
		if err := c.call(cmd.Context(), "GET", "/api/v1/hosts/"+pathID(args[0]), nil, &h); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(h)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "id\t%s\nhostname\t%s\nmachine-id\t%s\nos\t%s\nstate\t%s\nlast seen\t%s\nenrolled\t%s\nupdates\t%s (security %s)\n",
			h.ID, h.Hostname, h.MachineID, osOf(h), hostState(h), ago(h.LastSeen), h.EnrolledAt.Format(time.RFC3339), count(h.Updates), count(h.Security))
		if h.Facts != nil {
			fmt.Fprintf(tw, "kernel\t%s\nreboot required\t%v\n", h.Facts.Kernel, h.Facts.RebootRequired)
		}
		for _, k := range sortedKeys(h.Labels) {
			fmt.Fprintf(tw, "label\t%s=%s\n", k, h.Labels[k])
		}
		return tw.Flush()
	}}
	revoke := &cobra.Command{Use: "revoke HOST", Short: "Revoke a host's credential at once", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		return c.call(cmd.Context(), "POST", "/api/v1/hosts/"+pathID(args[0])+"/revoke", nil, nil)
	}}
	cmd.AddCommand(list, show, revoke)
	return cmd
}

func updatesCmd() *cobra.Command {
	var cf clientFlags
	var host string
	var security bool
	cmd := &cobra.Command{Use: "updates", Short: "Missing updates across the fleet"}
	cf.add(cmd)
	list := &cobra.Command{Use: "list", Short: "List each host's missing updates", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		q := ""
		if security {
			q = "?security=1"
		}
		var all []api.HostUpdates
		if host != "" {
			var one api.HostUpdates
			if err := c.call(cmd.Context(), "GET", "/api/v1/hosts/"+pathID(host)+"/updates"+q, nil, &one); err != nil {
				return err
			}
			all = append(all, one)
		} else if err := c.call(cmd.Context(), "GET", "/api/v1/updates"+q, nil, &all); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(all)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tPACKAGE\tARCH\tINSTALLED\tCANDIDATE\tSUITE\tSECURITY")
		for _, h := range all {
			if h.Error != "" {
				fmt.Fprintf(tw, "%s\t(%s)\t\t\t\t\t\n", h.Hostname, h.Error)
				continue
			}
			var ups []detect.Update
			if err := json.Unmarshal(h.Updates, &ups); err != nil {
				return err
			}
			for _, u := range ups {
				sec := ""
				if u.Security {
					sec = "security"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Hostname, u.Package, u.Arch, u.Installed, u.Candidate, u.Suite, sec)
			}
		}
		return tw.Flush()
	}}
	list.Flags().StringVar(&host, "host", "", "only this host (ID)")
	list.Flags().BoolVar(&security, "security", false, "only security updates")
	cmd.AddCommand(list)
	return cmd
}

func tokensCmd() *cobra.Command {
	var cf clientFlags
	var req api.CreateTokenRequest
	var labels []string
	cmd := &cobra.Command{Use: "tokens", Short: "Enrollment tokens for agents"}
	cf.add(cmd)
	create := &cobra.Command{Use: "create", Short: "Make an enrollment token (printed once, with the CA fingerprint agents need)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			req.Labels = map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("--label %q: want KEY=VALUE", l)
				}
				req.Labels[k] = v
			}
			var t api.EnrollToken
			if err := c.call(cmd.Context(), "POST", "/api/v1/tokens", req, &t); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(t)
			}
			fmt.Printf("token           %s\nca fingerprint  %s\nenroll with     patchloop agent enroll --server %s --ca-fingerprint %s --token %s\n",
				t.Token, t.CAFingerprint, cf.server, t.CAFingerprint, t.Token)
			return nil
		}}
	create.Flags().StringVar(&req.ExpiresIn, "expires-in", "24h", "validity, e.g. 24h; empty: never expires")
	create.Flags().IntVar(&req.MaxUses, "max-uses", 0, "how many enrollments it allows; 0: unlimited")
	create.Flags().StringSliceVar(&labels, "label", nil, "KEY=VALUE label given to hosts enrolled with it (repeatable)")
	create.Flags().StringVar(&req.Note, "note", "", "free text")
	list := &cobra.Command{Use: "list", Short: "List enrollment tokens", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		var ts []api.EnrollToken
		if err := c.call(cmd.Context(), "GET", "/api/v1/tokens", nil, &ts); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(ts)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tEXPIRES\tUSES\tREVOKED\tNOTE")
		for _, t := range ts {
			exp, max := "never", "unlimited"
			if t.ExpiresAt != nil {
				exp = t.ExpiresAt.Format(time.RFC3339)
			}
			if t.MaxUses > 0 {
				max = fmt.Sprint(t.MaxUses)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%s\t%v\t%s\n", t.ID, t.CreatedAt.Format(time.RFC3339), exp, t.Uses, max, t.Revoked, t.Note)
		}
		return tw.Flush()
	}}
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke an enrollment token", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		return c.call(cmd.Context(), "DELETE", "/api/v1/tokens/"+pathID(args[0]), nil, nil)
	}}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func jobsCmd() *cobra.Command {
	var cf clientFlags
	var hosts []string
	cmd := &cobra.Command{Use: "jobs", Short: "Jobs for hosts (scan now)"}
	cf.add(cmd)
	scanJob := &cobra.Command{Use: "scan", Short: "Ask hosts to report their inventory now", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		var j api.JobStatus
		if err := c.call(cmd.Context(), "POST", "/api/v1/jobs", api.CreateJobRequest{Kind: "scan", Hosts: hosts}, &j); err != nil {
			return err
		}
		return printJob(cf.format, j)
	}}
	scanJob.Flags().StringSliceVar(&hosts, "host", nil, "host IDs (default: every active host)")
	show := &cobra.Command{Use: "show ID", Short: "Show a job's progress per host", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		var j api.JobStatus
		if err := c.call(cmd.Context(), "GET", "/api/v1/jobs/"+pathID(args[0]), nil, &j); err != nil {
			return err
		}
		return printJob(cf.format, j)
	}}
	cmd.AddCommand(scanJob, show)
	return cmd
}

func printJob(format string, j api.JobStatus) error {
	if format == "json" {
		return printJSON(j)
	}
	fmt.Printf("job %s (%s), created %s\n", j.ID, j.Kind, j.CreatedAt.Format(time.RFC3339))
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATE\tATTEMPTS\tSTATUS")
	for _, h := range j.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", h.HostID, h.State, h.Attempts, h.Status)
	}
	return tw.Flush()
}

func osOf(h api.Host) string {
	if h.Facts == nil {
		return ""
	}
	return h.Facts.OS
}

func hostState(h api.Host) string {
	switch {
	case h.Revoked:
		return "revoked"
	case h.Stale:
		return "stale"
	}
	return "ok"
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}

func count(n *int) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
