package changelog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
)

// Entry is one entry of a Debian changelog.
type Entry struct {
	Version      string `json:"version"`
	Distribution string `json:"distribution"`      // e.g. "bookworm-security"; several are space-separated
	Urgency      string `json:"urgency,omitempty"` // lower case, e.g. "medium"
	// Date is the trailer's date as written, e.g.
	// "Fri, 16 Oct 2026 13:54:26 -0500"; see Entry.Time.
	Date string `json:"date,omitempty"`
	// CVEs are the CVE IDs the entry's lines mention, upper case,
	// deduplicated, ordered by year then number.
	CVEs []string `json:"cves,omitempty"`
	Line int      `json:"line"` // line of the header
}

// Log is a parsed changelog, newest entry first (file order).
type Log struct {
	Source  string  `json:"source"` // package name of the first entry
	Entries []Entry `json:"entries"`
	// Malformed counts lines that were skipped: headings that are not
	// entry headers, headers with a version dpkg refuses (the lines of
	// their entry are dropped), bad trailers, text outside any entry,
	// overlong lines.
	Malformed      int `json:"malformed,omitempty"`
	FirstMalformed int `json:"first_malformed_line,omitempty"`
	// StoppedAt is the line where parsing stopped on an editor trailer
	// ("Local variables:", "vim:") or the start of an old-format changelog,
	// as dpkg-parsechangelog stops there; 0 if it read to the end.
	StoppedAt int `json:"stopped_at,omitempty"`
	// Trimmed reports dh_installchangelogs' "# Older entries have been
	// removed from this changelog." comment.
	Trimmed bool `json:"trimmed,omitempty"`
}

// maxLine bounds one changelog line; longer lines are skipped as malformed.
const maxLine = 64 << 10

var (
	// Dpkg::Changelog::Entry::Debian's $regex_header.
	headerRE = regexp.MustCompile(`^(\w[-+0-9a-zA-Z.]*) \(([^() \t]+)\)((?:\s+[-+0-9a-zA-Z.]+)+);(.*?)\s*$`)
	// The date part of $regex_trailer.
	dateRE = regexp.MustCompile(`^(\w+,\s*)?\d{1,2}\s+\w+\s+\d{4}\s+\d{1,2}:\d\d:\d\d\s+[-+]\d{4}(\s+\([^\\()]+\))?$`)
	// Where dpkg stops: editor trailers and old changelog formats.
	stopRE = regexp.MustCompile(`(?i)^(?:(?:;;\s*)?local variables:|vim:|old changelog:)` +
		`|^\w+\s+\w+\s+\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}\s+[\w\s]*\d{4}\s+.*\s+[<(].*[)>]` +
		`|^\w+\s+\w+\s+\d{1,2},?\s*\d{4}\s+.*\s+[<(].*[)>]` +
		`|^\w[-+0-9a-zA-Z.]* \([^() \t]+\);?\s*$`)
	// RCS keywords and C comments, which dpkg skips.
	skipRE = regexp.MustCompile(`^\$\w+:.*\$|^/\*.*\*/`)
)

// Parse reads a whole changelog (decompressed). name is used in errors.
//
// Malformed lines are skipped and counted in Log.Malformed. The error is
// non-nil only when reading fails or nothing can be salvaged: no valid
// entry header at all (naming the first header whose version dpkg refuses,
// if there was one).
func Parse(r io.Reader, name string) (*Log, error) {
	p := &parser{name: name, log: &Log{}}
	if err := p.run(r); err != nil {
		return nil, err
	}
	return p.log, nil
}

// ParseNewer reads a changelog only as far as needed to return the entries
// newer than installed, stopping at the first entry at or below it as
// apt-listchanges does. installed should be the installed package's source
// version (dpkg's "Source: name (version)" when present, else its version).
func ParseNewer(r io.Reader, name, installed string) (Changes, error) {
	if err := deb.ValidVersion(installed); err != nil {
		return Changes{}, fmt.Errorf("%s: installed version: %w", name, err)
	}
	p := &parser{name: name, log: &Log{}, installed: installed}
	if err := p.run(r); err != nil {
		return Changes{}, err
	}
	c := Changes{Entries: p.log.Entries, Complete: p.reached, Malformed: p.log.Malformed}
	c.finish()
	return c, nil
}

// parser holds the state of one Parse or ParseNewer.
type parser struct {
	name      string
	log       *Log
	installed string // stop at the first entry <= installed; "" reads all
	reached   bool   // an entry <= installed was found
	line      int
	cur       *Entry // entry being read; nil before the first or while skipping
	skipping  bool   // inside an entry whose header was refused
	closed    bool   // cur's trailer was read
	headers   int    // valid headers seen, including one that stopped parsing
	badHeader error  // first refused header
}

func (p *parser) run(r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			p.line++
			p.malformed()
			if err = skipRestOfLine(br); err != nil && err != io.EOF {
				return fmt.Errorf("read %s line %d: %w", p.name, p.line, err)
			}
			if err == io.EOF {
				break
			}
			continue
		}
		if len(raw) > 0 {
			p.line++
			if p.handle(bytes.TrimRight(raw, "\r\n")) {
				break
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s line %d: %w", p.name, p.line, err)
		}
	}
	p.finishEntry()
	if p.headers == 0 {
		if p.badHeader != nil {
			return p.badHeader
		}
		return fmt.Errorf("%s: no changelog entry found in %d lines", p.name, p.line)
	}
	return nil
}

func skipRestOfLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

func (p *parser) malformed() {
	if p.log.Malformed == 0 {
		p.log.FirstMalformed = p.line
	}
	p.log.Malformed++
}

// handle processes one line and reports whether parsing must stop.
func (p *parser) handle(line []byte) bool {
	switch {
	case len(bytes.TrimSpace(line)) == 0:
		return false
	case line[0] != ' ' && line[0] != '\t':
		return p.heading(line)
	case bytes.HasPrefix(line, []byte(" --")):
		p.trailer(line)
	default:
		p.body(line)
	}
	return false
}

// heading handles a line starting in the first column.
func (p *parser) heading(line []byte) bool {
	if m := headerRE.FindSubmatch(line); m != nil {
		return p.header(m)
	}
	switch {
	case line[0] == '#':
		if bytes.Contains(line, []byte("Older entries have been removed")) {
			p.log.Trimmed = true
		}
	case skipRE.Match(line):
	case stopRE.Match(line):
		p.log.StoppedAt = p.line
		return true
	default:
		p.malformed()
	}
	return false
}

// header starts a new entry from the submatches of headerRE.
func (p *parser) header(m [][]byte) bool {
	p.finishEntry()
	version := string(m[2])
	if err := deb.ValidVersion(version); err != nil {
		p.malformed()
		if p.badHeader == nil {
			p.badHeader = fmt.Errorf("%s line %d: entry header %q: %w", p.name, p.line, truncate(string(m[0]), 80), err)
		}
		p.skipping = true
		return false
	}
	p.skipping = false
	p.headers++
	if p.installed != "" && deb.CompareValid(version, p.installed) <= 0 {
		p.reached = true
		return true
	}
	if p.log.Source == "" {
		p.log.Source = string(m[1])
	}
	p.log.Entries = append(p.log.Entries, Entry{
		Version:      version,
		Distribution: strings.Join(strings.Fields(string(m[3])), " "),
		Urgency:      urgencyOf(string(m[4])),
		Line:         p.line,
	})
	p.cur = &p.log.Entries[len(p.log.Entries)-1]
	p.closed = false
	return false
}

// urgencyOf returns the urgency from a header's "key=value, ..." options.
func urgencyOf(opts string) string {
	for _, kv := range strings.Split(opts, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "urgency") {
			if f := strings.Fields(v); len(f) > 0 {
				return strings.ToLower(f[0])
			}
		}
	}
	return ""
}

func (p *parser) trailer(line []byte) {
	if p.skipping {
		return
	}
	if p.cur == nil || p.closed {
		p.malformed()
		return
	}
	p.closed = true
	gt := bytes.LastIndexByte(line, '>')
	if !bytes.HasPrefix(line, []byte(" -- ")) || gt < 0 {
		p.malformed()
		return
	}
	date := string(bytes.TrimSpace(line[gt+1:]))
	if !dateRE.MatchString(date) {
		p.malformed()
	}
	p.cur.Date = date
}

// body handles a change line. Lines outside an entry are counted as
// malformed; those after a trailer too, but their CVEs are kept.
func (p *parser) body(line []byte) {
	if p.skipping {
		return
	}
	if p.cur == nil {
		p.malformed()
		return
	}
	if p.closed {
		p.malformed()
	}
	p.cur.CVEs = appendCVEs(p.cur.CVEs, line)
}

func (p *parser) finishEntry() {
	if p.cur != nil {
		p.cur.CVEs = sortCVEs(p.cur.CVEs)
	}
	p.cur = nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
