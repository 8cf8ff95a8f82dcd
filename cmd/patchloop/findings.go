package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/assess"
)

func findingsCmd() *cobra.Command {
	var cf clientFlags
	var host, cve, minSeverity, decision string
	var kev, overdue bool
	cmd := &cobra.Command{Use: "findings", Short: "Missing updates with their CVEs, risk and policy decision, across the fleet",
		Long: `findings lists, per host, each missing update with the CVEs it fixes (and what
CISA KEV, EPSS and CVSS say of them), its risk on that host and the decision of
the host's patch baseline, highest risk first. Only hosts with a matching finding
are listed; hosts the server has no detection result for are named after them.

  patchloop findings --cve CVE-2024-3094       which hosts are exposed to a CVE
  patchloop findings --kev --overdue           KEV findings past their due date`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"host": host, "cve": cve, "min_severity": minSeverity, "decision": decision} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if kev {
				q.Set("kev", "true")
			}
			if overdue {
				q.Set("overdue", "true")
			}
			path := "/api/v1/findings"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out api.Findings
			if err := c.call(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(out)
			}
			return printFindings(out)
		}}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&host, "host", "", "only this host (ID or hostname)")
	f.StringVar(&cve, "cve", "", "only updates fixing this CVE")
	f.BoolVar(&kev, "kev", false, "only updates fixing a CVE in CISA's KEV catalog")
	f.BoolVar(&overdue, "overdue", false, "only updates fixing a KEV CVE whose due date has passed")
	f.StringVar(&minSeverity, "min-severity", "", "only updates fixing a CVE of at least this CVSS rating (low, medium, high, critical)")
	f.StringVar(&decision, "decision", "", "only updates the baseline decided so (approved, pending, declined)")
	return cmd
}

func printFindings(out api.Findings) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPACKAGE\tINSTALLED\tCANDIDATE\tRISK\tCVES\tKEV\tDECISION")
	for _, h := range out.Hosts {
		for _, x := range h.Findings {
			kev := ""
			switch {
			case x.Overdue:
				kev = "overdue"
			case x.KEV:
				kev = "yes"
			}
			d := string(x.Decision.Verdict)
			if x.Decision.Name != "" {
				d += " (" + x.Decision.Name + ")"
			} else if x.Decision.Rule != "" {
				d += " (" + x.Decision.Rule + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\n", h.Hostname, x.Package, x.Installed, x.Candidate,
				x.Risk.Score, cveList(x.CVEs), kev, d)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, h := range out.Unassessed {
		fmt.Printf("not assessed: %s (%s): %s\n", h.Hostname, h.HostID, h.Error)
	}
	return nil
}

// cveList prints up to three CVE IDs and how many more.
func cveList(cves []assess.CVE) string {
	var ids []string
	for i, c := range cves {
		if i == 3 {
			ids = append(ids, fmt.Sprintf("+%d", len(cves)-3))
			break
		}
		ids = append(ids, c.ID)
	}
	return strings.Join(ids, " ")
}

func feedsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "feeds", Short: "The advisory feeds the server assesses with, and where each copy came from", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var fs []api.Feed
			if err := c.call(cmd.Context(), "GET", "/api/v1/feeds", nil, &fs); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(fs)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tNAME\tRECORDS\tBAD\tFETCHED\tSTATE\tSOURCE")
			for _, f := range fs {
				fetched, state := "never", "ok"
				if f.FetchedAt != nil {
					fetched = f.FetchedAt.Format(time.RFC3339)
				}
				switch {
				case f.FetchedAt == nil:
					state = "not loaded: " + f.Error
				case f.Stale:
					state = "stale: " + f.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", f.Kind, f.Name, f.Records, f.Bad, fetched, strings.TrimSpace(state), f.Source)
			}
			return tw.Flush()
		}}
	cf.add(cmd)
	return cmd
}
