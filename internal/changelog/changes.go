package changelog

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/deb"
)

// Changes is what an update brings to one host: the changelog entries
// newer than its installed version.
type Changes struct {
	Entries []Entry  `json:"entries"`
	CVEs    []string `json:"cves"`              // union of the entries' CVEs, ordered
	Urgency string   `json:"urgency,omitempty"` // the highest urgency among the entries
	// Complete is true when the changelog reached an entry at or below the
	// installed version. False means it ended first (trimmed by
	// dh_installchangelogs, or an old format dpkg does not read), so older
	// changes between installed and candidate may be missing.
	Complete  bool `json:"complete"`
	Malformed int  `json:"malformed,omitempty"` // lines skipped while parsing
}

// Newer returns the entries newer than installed, stopping at the first
// entry at or below it as apt-listchanges does. installed should be the
// installed package's source version: binary versions can differ from
// their source's (samba's ldb-tools is 2:2.6.2+samba4.17.12..., built
// from samba 2:4.17.12...), and the changelog speaks of source versions.
func (l *Log) Newer(installed string) (Changes, error) {
	if err := deb.ValidVersion(installed); err != nil {
		return Changes{}, fmt.Errorf("installed version: %w", err)
	}
	c := Changes{Malformed: l.Malformed}
	for _, e := range l.Entries {
		if deb.CompareValid(e.Version, installed) <= 0 {
			c.Complete = true
			break
		}
		c.Entries = append(c.Entries, e)
	}
	c.finish()
	return c, nil
}

// finish fills CVEs and Urgency from Entries.
func (c *Changes) finish() {
	var all []string
	for _, e := range c.Entries {
		all = append(all, e.CVEs...)
		if urgencyRank(e.Urgency) > urgencyRank(c.Urgency) {
			c.Urgency = e.Urgency
		}
	}
	c.CVEs = sortCVEs(all)
	if c.CVEs == nil {
		c.CVEs = []string{}
	}
}

// urgencyRank orders Debian's urgencies; unknown ones rank lowest.
func urgencyRank(u string) int {
	switch u {
	case "low":
		return 1
	case "medium":
		return 2
	case "high":
		return 3
	case "emergency":
		return 4
	case "critical":
		return 5
	}
	return 0
}

// Time parses the entry's date (RFC 5322 as dpkg writes it).
func (e *Entry) Time() (time.Time, error) {
	s := e.Date
	if i := strings.IndexByte(s, '('); i > 0 { // "... +0000 (UTC)"
		s = strings.TrimSpace(s[:i])
	}
	for _, layout := range []string{"Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, strings.Join(strings.Fields(s), " ")); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("entry %s: date %q is not in RFC 5322 form", e.Version, e.Date)
}

// appendCVEs appends the CVE IDs in line: "CVE-" (any case), four digits,
// "-", four or more digits, the regexp CVE-\d{4}-\d{4,}. They are
// returned upper case.
func appendCVEs(dst []string, line []byte) []string {
	for i := 0; i+13 <= len(line); i++ {
		c := line[i]
		if c != 'C' && c != 'c' {
			continue
		}
		if line[i+1]|0x20 != 'v' || line[i+2]|0x20 != 'e' || line[i+3] != '-' ||
			digits(line[i+4:]) < 4 || line[i+8] != '-' {
			continue
		}
		n := digits(line[i+9:])
		if n < 4 {
			continue
		}
		dst = append(dst, "CVE-"+string(line[i+4:i+8])+"-"+string(line[i+9:i+9+n]))
		i += 8 + n
	}
	return dst
}

// digits counts the leading ASCII digits of b.
func digits(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

// sortCVEs orders IDs by year then number and removes duplicates, in place.
func sortCVEs(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	slices.SortFunc(ids, compareCVE)
	return slices.Compact(ids)
}

// compareCVE orders well-formed IDs ("CVE-YYYY-N...") numerically.
func compareCVE(a, b string) int {
	if c := strings.Compare(a[:8], b[:8]); c != 0 {
		return c
	}
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
