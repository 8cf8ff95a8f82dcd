package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/rollout"
)

func rolloutCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "rollout", Short: "Staged deployments of a frozen patch set, ring by ring",
		Long: `A rollout freezes the hosts' missing updates into a patch set when it is created
and installs exactly that set, ring by ring (docs/rollout.md).

  patchloop rollout create -f spec.yaml
  patchloop rollout create --updates all --ring test:ring=test --ring prod:ring=prod --soak 1h
  patchloop rollout plan ID          # apt's simulation on every host
  patchloop rollout start ID         # also pause, resume, cancel, promote
  patchloop rollout retry ID --host H    # a failed, lost or rolled-back host again
  patchloop rollout exclude ID --host H  # a host out of the rollout (decommissioned)
  patchloop rollout status ID
  patchloop rollback --rollout ID [--ring R | --host H]`}
	cf.add(cmd)
	cmd.AddCommand(rolloutCreateCmd(&cf), rolloutPlanCmd(&cf), rolloutStatusCmd(&cf), rolloutListCmd(&cf))
	for _, c := range []struct{ name, short string }{
		{"start", "Start a created rollout"},
		{"pause", "Pause: no host starts, nothing is promoted; results still count"},
		{"resume", "Resume a paused rollout, or a halted one (its failures so far accepted)"},
		{"cancel", "Cancel: nothing more is installed; jobs in flight still report"},
		{"promote", "Promote the current ring now (every host of it finished), skipping the soak"},
		{"retry", "Start a failed, lost or rolled-back host of the current ring again (--host)"},
		{"exclude", "Take a pending, failed, lost or rolled-back host out of the rollout (--host)"},
	} {
		cmd.AddCommand(rolloutCommandCmd(&cf, c.name, c.short))
	}
	return cmd
}

// ringFlag is --ring NAME:SELECTOR, SELECTOR being "all" or
// KEY=VALUE[,KEY=VALUE...].
func ringFlag(s string) (rollout.Ring, error) {
	name, sel, ok := strings.Cut(s, ":")
	if !ok || name == "" || sel == "" {
		return rollout.Ring{}, fmt.Errorf("--ring %q: want NAME:KEY=VALUE[,KEY=VALUE] or NAME:all", s)
	}
	r := rollout.Ring{Name: name}
	if sel == "all" {
		r.Hosts.All = true
		return r, nil
	}
	r.Hosts.MatchLabels = map[string]string{}
	for _, kv := range strings.Split(sel, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return r, fmt.Errorf("--ring %q: %q is not KEY=VALUE", s, kv)
		}
		r.Hosts.MatchLabels[k] = v
	}
	return r, nil
}

// limitFlag is a count ("2") or a percent ("25%").
func limitFlag(flag, s string) (rollout.Limit, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return rollout.Limit{}, fmt.Errorf("--%s %q: want a count or a percent such as 25%%", flag, s)
		}
		return rollout.Limit{Percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return rollout.Limit{}, fmt.Errorf("--%s %q: want a count or a percent such as 25%%", flag, s)
	}
	return rollout.Limit{Count: n}, nil
}

// readSpec reads a rollout spec (YAML or JSON; "-" is stdin) as the JSON
// of a create request. The server decodes it strictly.
func readSpec(file string) (json.RawMessage, error) {
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s: want a mapping with rings (docs/rollout.md)", file)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return b, nil
}

func rolloutCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		file, concurrency, budget string
		rings                     []string
		soak                      time.Duration
		req                       api.CreateRolloutRequest
	)
	cmd := &cobra.Command{Use: "create", Short: "Freeze the patch set and plan a rollout (started with 'rollout start')", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var body any
			switch {
			case file != "" && len(rings) > 0:
				return errors.New("give -f or --ring, not both")
			case file != "":
				spec, err := readSpec(file)
				if err != nil {
					return err
				}
				body = spec
			case len(rings) == 0:
				return errors.New("give a spec with -f FILE or rings with --ring NAME:KEY=VALUE")
			default:
				c, err := limitFlag("concurrency", concurrency)
				if err != nil {
					return err
				}
				b, err := limitFlag("failure-budget", budget)
				if err != nil {
					return err
				}
				for _, s := range rings {
					r, err := ringFlag(s)
					if err != nil {
						return err
					}
					r.Concurrency, r.FailureBudget, r.Soak = c, b, rollout.Duration(soak)
					req.Rings = append(req.Rings, r)
				}
				body = req
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var r api.Rollout
			if err := c.call(cmd.Context(), "POST", "/api/v1/rollouts", body, &r); err != nil {
				return err
			}
			return printRollout(cf.format, r)
		}}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "rollout spec, YAML or JSON ('-' for stdin)")
	f.StringArrayVar(&rings, "ring", nil, "a ring, in order: NAME:KEY=VALUE[,KEY=VALUE] or NAME:all (repeatable)")
	f.StringVar(&req.Name, "name", "", "a name for people")
	f.StringVar(&req.Updates, "updates", "", "what to freeze: approved (by the baselines; default), all, or security")
	f.StringVar(&req.MinAge, "min-age", "", "leave out versions released less than this long ago (e.g. 72h)")
	f.StringVar(&concurrency, "concurrency", "1", "hosts of a ring in flight at once: a count or a percent (25%)")
	f.StringVar(&budget, "failure-budget", "0", "failed hosts a ring may have before the rollout halts: a count or a percent")
	f.DurationVar(&soak, "soak", 0, "how long a ring must stay healthy before the next starts")
	f.StringVar(&req.Options.Reboot, "reboot", "", "if-required (default) or never")
	f.BoolVar(&req.Options.Rollback, "rollback-on-health-failure", false, "roll back a host whose health check fails after the install")
	f.BoolVar(&req.Options.AllowRemovals, "allow-removals", false, "let installs whose plan removes packages go ahead")
	return cmd
}

func rolloutCommandCmd(cf *clientFlags, name, short string) *cobra.Command {
	var reason, host string
	perHost := name == string(rollout.CommandRetry) || name == string(rollout.CommandExclude)
	use := name + " ID"
	if perHost {
		use += " --host HOST"
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		if perHost && host == "" {
			return fmt.Errorf("%s: name the host with --host (its ID or hostname, as rollout status shows them)", name)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		var r api.Rollout
		if err := c.call(cmd.Context(), "POST", "/api/v1/rollouts/"+pathID(args[0])+"/"+name, api.RolloutCommand{Reason: reason, Host: host}, &r); err != nil {
			return err
		}
		return printRollout(cf.format, r)
	}}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit")
	if perHost {
		cmd.Flags().StringVar(&host, "host", "", "the host: its ID, or its hostname if no other member has it")
	}
	return cmd
}

func rolloutStatusCmd(cf *clientFlags) *cobra.Command {
	var (
		ring, phase, host string
		summary, audit    bool
	)
	cmd := &cobra.Command{Use: "status ID", Short: "A rollout's rings and hosts: phases, versions, durations, exit codes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if summary {
				q.Set("members", "none")
			}
			if cf.format != "json" { // the table shows a count of pins
				q.Set("pins", "false")
			}
			if cf.format != "json" && !audit {
				q.Set("audit", "false")
			}
			for k, v := range map[string]string{"ring": ring, "phase": phase, "host": host} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var r api.Rollout
			if err := c.call(cmd.Context(), "GET", "/api/v1/rollouts/"+pathID(args[0])+"?"+q.Encode(), nil, &r); err != nil {
				return err
			}
			if err := printRollout(cf.format, r); err != nil || cf.format == "json" || len(r.Audit) == 0 {
				return err
			}
			fmt.Println()
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tWHAT\tRING\tHOST\tDETAIL")
			for _, a := range r.Audit {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Seq, a.At.Format(time.RFC3339), a.Actor, a.What, a.Ring, a.Host, oneLine(a.Detail))
			}
			return tw.Flush()
		}}
	f := cmd.Flags()
	f.BoolVar(&summary, "summary", false, "rings and counts only, no hosts")
	f.StringVar(&ring, "ring", "", "only the hosts of this ring")
	f.StringVar(&phase, "phase", "", "only the hosts in this phase (pending, installing, succeeded, failed, ...)")
	f.StringVar(&host, "host", "", "only this host (ID or hostname)")
	f.BoolVar(&audit, "audit", false, "also print the audit log (always in --format json)")
	return cmd
}

func rolloutListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List rollouts, newest first", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		var list []api.Rollout
		if err := c.call(cmd.Context(), "GET", "/api/v1/rollouts", nil, &list); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(list)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tRING\tHOSTS\tCREATED\tREASON")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Status, r.Ring, phaseCounts(r.Hosts),
				r.CreatedAt.Format(time.RFC3339), r.Reason)
		}
		return tw.Flush()
	}}
}

func phaseCounts(m map[string]int) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(out, ", ")
}

func printRollout(format string, r api.Rollout) error {
	if format == "json" {
		return printJSON(r)
	}
	return writeRollout(os.Stdout, r)
}

// writeRollout is a rollout's table: the rollout, its rings, then a line
// per job of each host.
func writeRollout(w io.Writer, r api.Rollout) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "rollout\t%s %s\nstatus\t%s\n", r.ID, r.Name, r.Status)
	if r.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", r.Reason)
	}
	fmt.Fprintf(tw, "patch set\t%s\nhosts\t%s\n", r.SetHash, phaseCounts(r.Hosts))
	if len(r.Unassigned) > 0 {
		fmt.Fprintf(tw, "unassigned\t%s\n", strings.Join(r.Unassigned, " "))
	}
	for _, ring := range r.Rings {
		state := "waiting"
		switch {
		case !ring.Promoted.IsZero():
			state = "promoted " + ring.Promoted.Format(time.RFC3339)
		case !ring.Done.IsZero():
			state = "done " + ring.Done.Format(time.RFC3339)
		case !ring.Started.IsZero():
			state = "started " + ring.Started.Format(time.RFC3339)
		}
		accepted := ""
		if ring.Accepted > 0 {
			accepted = fmt.Sprintf(", %d accepted", ring.Accepted)
		}
		fmt.Fprintf(tw, "ring %s\t%d hosts, %d failed (budget %d%s), %d waves, %s\n", ring.Name, ring.Hosts, ring.Failed, ring.Budget, accepted, ring.Waves, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var rows [][]string
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			rows = append(rows, hostRows(ring.Name, h)...)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tHOST\tPHASE\tJOB\tSTATE\tRESULT\tDURATION\tEXIT\tPACKAGES\tNOTE")
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// hostRows is a host's line per job (one line when it has none).
func hostRows(ring string, h api.RolloutHost) [][]string {
	name := h.Hostname
	if name == "" {
		name = h.ID
	}
	if len(h.Jobs) == 0 {
		return [][]string{{ring, name, string(h.Phase), "", "", "", "", "", fmt.Sprintf("%d pins", h.PinCount), h.Note}}
	}
	var rows [][]string
	for _, j := range h.Jobs {
		dur, exit := "", ""
		if j.Duration > 0 {
			dur = (time.Duration(j.Duration) * time.Millisecond).Round(100 * time.Millisecond).String()
		}
		if j.ExitCode != nil {
			exit = strconv.Itoa(*j.ExitCode)
		}
		var pkgs []string
		for _, p := range j.Packages {
			pkgs = append(pkgs, fmt.Sprintf("%s %s→%s", p.Package, orDash(p.Before), orDash(p.Now)))
		}
		result := j.Result
		if result == "" {
			result = j.Status
		}
		note := j.Error
		if note == "" {
			note = h.Note
		}
		rows = append(rows, []string{ring, name, string(h.Phase), j.Kind, j.State, result, dur, exit, strings.Join(pkgs, ", "), oneLine(note)})
	}
	return rows
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

func rolloutPlanCmd(cf *clientFlags) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{Use: "plan ID", Short: "Ask every host of a rollout for apt's simulation of its pins and show the changes",
		Long: `plan queues, once per rollout, a plan job (apt-get -s install of the host's exact
versions) for every host with pins, and shows the answers: what each host would
upgrade, pull in or remove. A plan the install would refuse (removals the rollout
does not allow, downgrades, held packages changed) is shown refused. It waits up
to --wait for every host to answer (agents pick jobs up at their next check-in).`,
		Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			plan, err := pollPlan(cmd.Context(), c, args[0], wait)
			if err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(plan)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RING\tHOST\tSTATE\tPACKAGE\tARCH\tBEFORE\tAFTER\tKIND\tREFUSED")
			for _, h := range plan.Hosts {
				name := h.Hostname
				if name == "" {
					name = h.HostID
				}
				if h.Plan == nil {
					fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\t%s\n", h.Ring, name, h.State, oneLine(h.Error))
					continue
				}
				for _, ch := range h.Plan.Changes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Ring, name, h.State, ch.Package, ch.Arch, orDash(ch.Before), orDash(ch.After), ch.Kind, h.Refused)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if !plan.Complete {
				return fmt.Errorf("not every host answered within %s; run plan again later", wait)
			}
			return nil
		}}
	cmd.Flags().DurationVar(&wait, "wait", 3*time.Minute, "how long to wait for every host's plan")
	return cmd
}

func pollPlan(ctx context.Context, c *adminClient, id string, wait time.Duration) (api.RolloutPlan, error) {
	deadline := time.Now().Add(wait)
	for {
		var plan api.RolloutPlan
		if err := c.call(ctx, "GET", "/api/v1/rollouts/"+pathID(id)+"/plan", nil, &plan); err != nil {
			return plan, err
		}
		if plan.Complete || time.Now().After(deadline) {
			return plan, nil
		}
		select {
		case <-ctx.Done():
			return plan, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func rollbackCmd() *cobra.Command {
	var (
		cf  clientFlags
		id  string
		req api.RolloutRollbackRequest
	)
	cmd := &cobra.Command{Use: "rollback --rollout ID [--ring R | --host H]", Short: "Put back the versions a rollout's installs replaced",
		Long: `rollback queues, for each host of the rollout (or of one ring, or one host) whose
install kept a rollback record, a rollback job that reinstalls exactly the versions
the install replaced. The rollout must be paused, halted, cancelled or completed.
A host is rolled back by hand at most once; hosts left alone are listed with why.`,
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return errors.New("--rollout is required")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out api.RolloutRollback
			if err := c.call(cmd.Context(), "POST", "/api/v1/rollouts/"+pathID(id)+"/rollback", req, &out); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(out)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RING\tHOST\tRESULT\tJOB\tREASON")
			for _, h := range out.Queued {
				fmt.Fprintf(tw, "%s\t%s\tqueued\t%s\t\n", h.Ring, h.HostID, h.JobID)
			}
			for _, h := range out.Skipped {
				fmt.Fprintf(tw, "%s\t%s\tskipped\t\t%s\n", h.Ring, h.HostID, h.Reason)
			}
			return tw.Flush()
		}}
	cf.add(cmd)
	cmd.Flags().StringVar(&id, "rollout", "", "the rollout whose installs to undo")
	cmd.Flags().StringVar(&req.Ring, "ring", "", "only this ring's hosts")
	cmd.Flags().StringVar(&req.Host, "host", "", "only this host (ID)")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why, for the audit")
	return cmd
}
