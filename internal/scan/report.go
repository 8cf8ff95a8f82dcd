package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/patchloop/patchloop/internal/detect"
)

// WriteJSON writes the result in the stable JSON schema (docs/scan-json.md).
func WriteJSON(w io.Writer, res *Result) error {
	if res.Updates == nil {
		res.Updates = []detect.Update{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteTable writes the result for people: a header, the updates
// security first, then the counts.
func WriteTable(w io.Writer, res *Result) error {
	h := res.Host
	fmt.Fprintf(w, "host %s (%s, %s)\n", orDash(h.Hostname), orDash(h.OS), h.Arch)
	ups := append([]detect.Update(nil), res.Updates...)
	SortForPeople(ups)
	if len(ups) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nPACKAGE\tARCH\tINSTALLED\tCANDIDATE\tSUITE\tSECURITY\tNOTE")
		for _, u := range ups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Package, u.Arch, u.Installed, u.Candidate,
				u.Suite, yesNo(u.Security), note(u))
		}
		if err := tw.Flush(); err != nil {
			return err
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
	return nil
}

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
