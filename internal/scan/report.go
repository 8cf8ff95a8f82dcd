package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/policy"
)

func note(u detect.Update) string {
	var parts []string
	if u.Held {
		parts = append(parts, "held")
	}
	if u.State != "" {
		parts = append(parts, u.State)
	}
	return strings.Join(parts, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Assessment is what the assess stage (package intel) adds to a scan.
type Assessment struct {
	Release intel.Release
	Labels  map[string]string
	Policy  string       // where the baselines were read from; "" without
	Items   []intel.Item // one per update, ranked
	Feeds   []intel.FeedStatus
	// Changelogs counts the candidate changelogs: read now, from the
	// cache, and not available.
	Changelogs ChangelogCounts
	Notices    []string
}

// ChangelogCounts counts the changelogs an assessment used.
type ChangelogCounts struct {
	Enabled    bool `json:"enabled"`
	Downloaded int  `json:"downloaded"`
	Cached     int  `json:"cached"`
	Missing    int  `json:"missing"`
}

// assessedJSON is the JSON of an assessed scan: the v1 fields, with the
// updates and notices extended and the assessment fields added.
type assessedJSON struct {
	*Result
	Updates    []assessedUpdate   `json:"updates"`
	Notices    []string           `json:"notices,omitempty"`
	Assessment assessmentJSON     `json:"assessment"`
	Feeds      []intel.FeedStatus `json:"feeds"`
}

type assessmentJSON struct {
	Ecosystem  string            `json:"ecosystem,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Policy     string            `json:"policy,omitempty"`
	Changelogs ChangelogCounts   `json:"changelogs"`
	CVEs       int               `json:"cves"` // distinct CVE IDs over all updates
	KEV        int               `json:"kev"`  // updates fixing a CVE in KEV
	Decisions  map[string]int    `json:"decisions,omitempty"`
}

type assessedUpdate struct {
	detect.Update
	Classification assess.Classification `json:"classification"`
	Urgency        string                `json:"urgency,omitempty"`
	Released       time.Time             `json:"released,omitzero"`
	Advisories     []string              `json:"advisories,omitempty"`
	CVEs           []assessedCVE         `json:"cves"`
	MaxSeverity    string                `json:"max_severity,omitempty"`
	KEV            bool                  `json:"kev"`
	Risk           assess.Risk           `json:"risk"`
	Decision       *policy.Decision      `json:"decision,omitempty"`
	Notes          []string              `json:"notes,omitempty"`
}

type assessedCVE struct {
	assess.CVE
	Sources []string `json:"sources"`
}

// WriteAssessedJSON writes the result with its assessment: schema
// patchloop.scan/v1 with the fields docs/scan-json.md lists as added by
// assessment. Updates keep the v1 order (package, then arch).
func WriteAssessedJSON(w io.Writer, res *Result, a *Assessment) error {
	out := assessedJSON{Result: res, Updates: []assessedUpdate{},
		Notices: append(append([]string(nil), res.Notices...), a.Notices...), Feeds: a.Feeds}
	if out.Feeds == nil {
		out.Feeds = []intel.FeedStatus{}
	}
	out.Assessment = assessmentJSON{Ecosystem: a.Release.Ecosystem(), Labels: a.Labels, Policy: a.Policy,
		Changelogs: a.Changelogs}
	cves := map[string]bool{}
	for _, it := range a.Items {
		f := it.Finding
		u := assessedUpdate{Update: it.Update.Update, Classification: f.Classification, Urgency: f.Urgency,
			Released: f.Released, Advisories: f.Advisories, CVEs: []assessedCVE{}, KEV: f.HasKEV(),
			Risk: it.Risk, Decision: it.Decision, Notes: f.Notes}
		if s := f.MaxSeverity(); s != assess.SeverityNone {
			u.MaxSeverity = s.String()
		}
		for _, c := range f.CVEs {
			u.CVEs = append(u.CVEs, assessedCVE{CVE: c, Sources: f.Evidence[c.ID]})
			cves[c.ID] = true
		}
		if u.KEV {
			out.Assessment.KEV++
		}
		if it.Decision != nil {
			if out.Assessment.Decisions == nil {
				out.Assessment.Decisions = map[string]int{}
			}
			out.Assessment.Decisions[string(it.Decision.Verdict)]++
		}
		out.Updates = append(out.Updates, u)
	}
	out.Assessment.CVEs = len(cves)
	sort.SliceStable(out.Updates, func(i, j int) bool {
		x, y := out.Updates[i], out.Updates[j]
		if x.Package != y.Package {
			return x.Package < y.Package
		}
		return x.Arch < y.Arch
	})
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// SortAssessed orders items for people: security updates first, then by
// risk (highest first), then by package.
func SortAssessed(items []intel.Item) {
	sort.SliceStable(items, func(i, j int) bool {
		x, y := items[i], items[j]
		if x.Update.Security != y.Update.Security {
			return x.Update.Security
		}
		if x.Risk.Score != y.Risk.Score {
			return x.Risk.Score > y.Risk.Score
		}
		return x.Update.Package < y.Update.Package
	})
}

// WriteAssessedTable writes the result for people with, per update, its
// CVE count, highest severity, KEV, highest EPSS, risk and decision;
// security updates first, then by risk. With reasons, each update is
// followed by its risk reasons and the decision's rule.
func WriteAssessedTable(w io.Writer, res *Result, a *Assessment, reasons bool) error {
	h := res.Host
	fmt.Fprintf(w, "host %s (%s, %s)\n", orDash(h.Hostname), orDash(h.OS), h.Arch)
	items := append([]intel.Item(nil), a.Items...)
	SortAssessed(items)
	if len(items) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nPACKAGE\tARCH\tINSTALLED\tCANDIDATE\tSUITE\tSECURITY\tCVES\tSEVERITY\tKEV\tEPSS\tRISK\tDECISION\tNOTE")
		for _, it := range items {
			u, f := it.Update, it.Finding
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.2f\t%s\t%s\n", u.Package, u.Arch, u.Installed,
				u.Candidate, u.Suite, yesNo(u.Security), len(f.CVEs), severity(f), yesNo(f.HasKEV()), maxEPSS(f),
				it.Risk.Score, verdict(it.Decision), note(u.Update))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if reasons {
		for _, it := range items {
			fmt.Fprintf(w, "\n%s %s -> %s\n  risk %.2f: %s\n", it.Update.Package, it.Update.Arch, it.Update.Candidate,
				it.Risk.Score, it.Risk)
			if it.Decision != nil {
				fmt.Fprintf(w, "  decision: %s\n", it.Decision)
			}
			if len(it.Finding.Advisories) > 0 {
				fmt.Fprintf(w, "  advisories: %s\n", strings.Join(it.Finding.Advisories, " "))
			}
			for _, n := range it.Finding.Notes {
				fmt.Fprintf(w, "  note: %s\n", n)
			}
		}
	}
	s := res.Summary
	fmt.Fprintf(w, "\n%d installed, %d updates (%d security", s.Installed, s.Updates, s.Security)
	if s.Held > 0 {
		fmt.Fprintf(w, ", %d held", s.Held)
	}
	fmt.Fprintln(w, ")")
	for _, n := range res.Notices {
		fmt.Fprintf(w, "notice: %s\n", n)
	}
	for _, n := range a.Notices {
		fmt.Fprintf(w, "notice: %s\n", n)
	}
	return nil
}

func severity(f *intel.Finding) string {
	if s := f.MaxSeverity(); s != assess.SeverityNone {
		return s.String()
	}
	return "-"
}

func maxEPSS(f *intel.Finding) string {
	best := -1.0
	for _, c := range f.CVEs {
		if c.EPSS != nil && c.EPSS.Probability > best {
			best = c.EPSS.Probability
		}
	}
	if best < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", best)
}

func verdict(d *policy.Decision) string {
	if d == nil {
		return "-"
	}
	return string(d.Verdict)
}
