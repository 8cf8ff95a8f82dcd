package loadgen

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report for people: one line per phase and kind
// of request, then the errors with an example message of each kind.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "server %s: %d hosts, %d distinct inventories (%.0f packages on average), connections %s, open-file limit %d\n\n",
		r.Server, r.Hosts, r.Inventories, r.AvgPackages, r.Connections, r.FileLimit)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tsecs\top\tok\terrors\trate/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tlag p99 ms\tnew conns\tresumed\tsrv cpu s\tsrv cores\tsrv rss MB\tdb cores\tloadgen cores\tdb MB\t")
	for _, p := range r.Phases {
		for i, o := range p.Ops {
			if i > 0 && o.OK == 0 && len(o.Errors) == 0 {
				continue // e.g. no inventory asked for
			}
			errs := 0
			for _, n := range o.Errors {
				errs += n
			}
			name, secs, lag, conns, resumed, srvCPU, srvCores, srvRSS, dbCores, lg, db := "", "", "", "", "", "", "", "", "", "", ""
			if i == 0 {
				name, secs, conns, resumed, lg = p.Name, fmt.Sprintf("%.1f", p.Seconds), fmt.Sprint(p.NewConns), fmt.Sprint(p.Resumed), fmt.Sprintf("%.2f", p.LoadgenCPU)
				if p.LagMS != nil {
					lag = fmt.Sprintf("%.1f", p.LagMS.P99)
				}
				if s := p.Server; s != nil {
					srvCPU, srvCores, srvRSS = fmt.Sprintf("%.1f", s.CPUSeconds), fmt.Sprintf("%.2f", s.Cores), fmt.Sprintf("%.0f", float64(s.RSSBytes)/(1<<20))
				}
				if p.Database != nil {
					dbCores = fmt.Sprintf("%.2f", p.Database.Cores)
				}
				if p.ServerStore != nil {
					db = fmt.Sprintf("%.1f", float64(p.ServerStore.DatabaseBytes)/(1<<20))
				}
			}
			l := o.LatencyMS
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				name, secs, o.Op, o.OK, errs, o.Rate, l.P50, l.P90, l.P99, l.Max, lag, conns, resumed, srvCPU, srvCores, srvRSS, dbCores, lg, db)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Phases {
		if p.TargetRate > 0 {
			fmt.Fprintf(w, "%s: asked for %.0f check-ins/s", p.Name, p.TargetRate)
			if p.Overruns > 0 {
				fmt.Fprintf(w, ", %d turns skipped (host still busy)", p.Overruns)
			}
			if p.Missed > 0 {
				fmt.Fprintf(w, ", %d turns missed (not started by the end: the load was not kept up)", p.Missed)
			}
			fmt.Fprintln(w)
		}
		if p.Server != nil {
			fmt.Fprintf(w, "%s: server peak RSS so far %.0f MB\n", p.Name, float64(p.Server.PeakRSS)/(1<<20))
		}
		for _, r := range p.Rings {
			fmt.Fprintf(w, "%s %s ring %s: %d hosts, %d install jobs handed out %.1f–%.1f s after start, %d answered (last sent %.1f s, taken %.1f s)\n",
				p.Name, p.RolloutID, r.Name, r.Hosts, r.HandedOut, r.FirstS, r.LastS, r.Answered, r.SentS, r.AnsweredS)
		}
		if p.StoreError != "" {
			fmt.Fprintf(w, "%s: server metrics: %s\n", p.Name, p.StoreError)
		}
		for _, o := range p.Ops {
			kinds := make([]string, 0, len(o.Errors))
			for k := range o.Errors {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			for _, k := range kinds {
				fmt.Fprintf(w, "%s %s: %d × %s, e.g. %s\n", p.Name, o.Op, o.Errors[k], k, strings.TrimSpace(o.ErrorText[k]))
			}
		}
	}
	if last := r.Phases[len(r.Phases)-1]; last.ServerStore != nil {
		s := last.ServerStore
		fmt.Fprintf(w, "server store: %d hosts, %d inventories, database %.1f MB\n", s.Hosts, s.Inventories, float64(s.DatabaseBytes)/(1<<20))
	}
	return nil
}
