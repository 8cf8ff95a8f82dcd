package advisory

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/deb"
)

// DebianList is a Debian Security Tracker advisory list (data/DSA/list,
// data/DLA/list): advisories, newest first as the tracker keeps them.
// Lines that do not parse are counted in Problems with their line
// number; the lines indented under a bad header go with it.
type DebianList struct {
	Advisories []DebianAdvisory
	Problems
}

// DebianAdvisory is one DSA or DLA entry:
//
//	[02 Apr 2023] DSA-5380-1 firefox-esr - security update
//		{CVE-2023-25751 CVE-2023-25752}
//		[bullseye] - firefox-esr 102.9.0esr-1~deb11u1
//		NOTE: ...
type DebianAdvisory struct {
	ID          string    // DSA-5380-1, DLA-3380-1, DSA-141
	Date        time.Time // UTC midnight
	Packages    []string  // source packages named in the header, if any
	Description string    // the header after the packages ("security update")
	CVEs        []string
	Fixes       []DebianFix
	Notes       []string
	Line        int // line of the header
}

// DebianFix is one "[release] - package version" line.
type DebianFix struct {
	Release string // bullseye, buster, ...
	Package string // source package
	Version string // the fixed version, or "" when Status is set
	Status  string // "" for a fixed version, else not-affected, unfixed, end-of-life, ...
	Note    string // the parenthesized remark after it, if any
}

// FixedIn returns the version of pkg that fixes the advisory in release.
func (a *DebianAdvisory) FixedIn(release, pkg string) (string, bool) {
	for _, f := range a.Fixes {
		if f.Release == release && f.Package == pkg && f.Version != "" {
			return f.Version, true
		}
	}
	return "", false
}

// ParseDebianList parses a DSA or DLA list read from the file name. Only
// a read error is an error; bad lines are problems.
func ParseDebianList(name string, r io.Reader) (*DebianList, error) {
	l := &DebianList{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur *DebianAdvisory // nil before the first header or after a bad one
	skipping := false       // inside a bad header's entry
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "":
			continue
		case line[0] == ' ' || line[0] == '\t':
			if skipping {
				continue
			}
			if cur == nil {
				l.add(name, lineNo, errors.New("indented line before any advisory"))
				continue
			}
			if err := cur.addLine(strings.TrimSpace(line)); err != nil {
				l.add(name, lineNo, fmt.Errorf("%s: %w", cur.ID, err))
			}
		default:
			a, err := parseDebianHeader(line)
			if err != nil {
				l.add(name, lineNo, err)
				cur, skipping = nil, true
				continue
			}
			a.Line = lineNo
			l.Advisories = append(l.Advisories, a)
			cur, skipping = &l.Advisories[len(l.Advisories)-1], false
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse %s line %d: %w", name, lineNo+1, err)
	}
	return l, nil
}

// parseDebianHeader parses "[DD Mon YYYY] ID rest".
func parseDebianHeader(line string) (DebianAdvisory, error) {
	var a DebianAdvisory
	if line[0] != '[' {
		return a, fmt.Errorf("not an advisory header: %q", line)
	}
	date, rest, ok := strings.Cut(line[1:], "] ")
	if !ok {
		return a, fmt.Errorf("header without a date: %q", line)
	}
	t, err := time.Parse("02 Jan 2006", date)
	if err != nil {
		return a, fmt.Errorf("header with a bad date %q", date)
	}
	a.Date = t
	a.ID, rest, _ = strings.Cut(rest, " ")
	if !validDebianID(a.ID) {
		return a, fmt.Errorf("header with a bad advisory ID %q", a.ID)
	}
	rest = strings.TrimSpace(rest)
	if pkgs, desc, ok := strings.Cut(rest, " - "); ok {
		a.Packages = strings.FieldsFunc(pkgs, func(r rune) bool { return r == ' ' || r == ',' })
		a.Description = desc
	} else if rest != "" && !strings.Contains(rest, " ") {
		a.Packages = []string{rest} // "[10 Apr 2008] DSA-1545-1 rsync"
	} else {
		a.Description = rest // "DSA-4205-1 jessie end-of-life"
	}
	return a, nil
}

// validDebianID accepts DSA-N, DSA-N-N and the same for DLA and DTSA.
func validDebianID(id string) bool {
	prefix, rest, ok := strings.Cut(id, "-")
	if !ok || (prefix != "DSA" && prefix != "DLA" && prefix != "DTSA") {
		return false
	}
	num, rev, hasRev := strings.Cut(rest, "-")
	return allDigits(num) && (!hasRev || allDigits(rev))
}

// addLine adds one indented line (already trimmed) to the advisory.
func (a *DebianAdvisory) addLine(s string) error {
	switch {
	case strings.HasPrefix(s, "{"):
		inner, ok := strings.CutSuffix(s[1:], "}")
		if !ok {
			return fmt.Errorf("unclosed CVE list %q", s)
		}
		var bad []string
		for _, id := range strings.Fields(inner) {
			if IsCVE(id) {
				a.CVEs = append(a.CVEs, id)
			} else {
				bad = append(bad, id)
			}
		}
		if bad != nil {
			return fmt.Errorf("not CVE IDs: %q", bad)
		}
	case strings.HasPrefix(s, "["):
		f, err := parseDebianFix(s)
		if err != nil {
			return err
		}
		a.Fixes = append(a.Fixes, f)
	case strings.HasPrefix(s, "NOTE:"):
		a.Notes = append(a.Notes, strings.TrimSpace(s[len("NOTE:"):]))
	default:
		return fmt.Errorf("unknown line %q", s)
	}
	return nil
}

// parseDebianFix parses "[release] - package version|<status> [(note)]".
func parseDebianFix(s string) (DebianFix, error) {
	var f DebianFix
	release, rest, ok := strings.Cut(s[1:], "] - ")
	if !ok || release == "" || strings.ContainsAny(release, " []") {
		return f, fmt.Errorf("bad release line %q", s)
	}
	f.Release = release
	if i := strings.Index(rest, " ("); i >= 0 && strings.HasSuffix(rest, ")") {
		f.Note = rest[i+2 : len(rest)-1]
		rest = rest[:i]
	}
	fields := strings.Fields(rest)
	if len(fields) != 2 {
		return f, fmt.Errorf("release line %q: want package and version", s)
	}
	f.Package = fields[0]
	if st, ok := strings.CutPrefix(fields[1], "<"); ok {
		if f.Status, ok = strings.CutSuffix(st, ">"); !ok || f.Status == "" {
			return f, fmt.Errorf("release line %q: bad status", s)
		}
		return f, nil
	}
	if err := deb.ValidVersion(fields[1]); err != nil {
		return f, fmt.Errorf("release line %q: %w", s, err)
	}
	f.Version = fields[1]
	return f, nil
}
