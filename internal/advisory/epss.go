package advisory

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// epssHeader is the column header of FIRST's daily CSV.
const epssHeader = "cve,epss,percentile"

// maxEPSSLine bounds one line; longer lines are bad lines.
const maxEPSSLine = 4096

// EPSS holds FIRST Exploit Prediction Scoring System scores by CVE.
//
// It reads both forms of the data: FIRST's daily CSV (optionally gzip),
// a comment line "#model_version:v2023.03.01,score_date:2026-11-24T00:00:00+0000"
// then the header "cve,epss,percentile" and comma-separated lines; and
// headerless "CVE-ID;epss;percentile" files such as the per-year files of
// EMBA's EPSS-data. Bad lines are counted in Problems with their line.
type EPSS struct {
	ModelVersion string    // from the comment line, if any
	ScoreDate    time.Time // from the comment line, if any
	Lines        int       // data lines read, bad ones included
	Problems

	scores map[uint64]EPSSScore
}

// EPSSScore is the probability of exploitation activity in the next 30
// days, and its percentile among all scored CVEs; both in [0, 1].
type EPSSScore struct {
	EPSS       float64
	Percentile float64
}

// ParseEPSS reads one EPSS file.
func ParseEPSS(name string, r io.Reader) (*EPSS, error) {
	e := &EPSS{}
	if err := e.Read(name, r); err != nil {
		return nil, err
	}
	return e, nil
}

// Len returns the number of CVEs scored.
func (e *EPSS) Len() int { return len(e.scores) }

// Lookup returns the score of a CVE ID.
func (e *EPSS) Lookup(cve string) (EPSSScore, bool) {
	k, ok := cveKey([]byte(cve))
	if !ok {
		return EPSSScore{}, false
	}
	s, ok := e.scores[k]
	return s, ok
}

// Read adds the scores of one file to e; gzip data is recognized by its
// magic bytes. A CVE already scored (by this file or an earlier one) is a
// bad line. The error is for data that cannot be read or whose header is
// not "cve,epss,percentile"; it names the file and line.
func (e *EPSS) Read(name string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	if e.scores == nil {
		e.scores = make(map[uint64]EPSSScore, 1<<16)
	}
	sep := byte(0) // unknown until the header or first data line
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return fmt.Errorf("parse %s line %d: %w", name, lineNo, err)
		}
		switch {
		case err == bufio.ErrBufferFull:
			e.Lines++
			e.add(name, lineNo, fmt.Errorf("line longer than %d bytes", maxEPSSLine))
			continue
		case len(line) == 0:
			continue
		case line[0] == '#':
			if sep == 0 {
				e.comment(string(line[1:]))
			}
			continue
		case sep == 0:
			if !bytes.HasPrefix(line, []byte("CVE-")) {
				if string(line) != epssHeader {
					return fmt.Errorf("parse %s line %d: header %q, want %q: the EPSS format changed", name, lineNo, line, epssHeader)
				}
				sep = ','
				continue
			}
			sep = ','
			if bytes.IndexByte(line, ';') >= 0 {
				sep = ';'
			}
		}
		e.Lines++
		if err := e.addLine(line, sep); err != nil {
			e.add(name, lineNo, err)
		}
	}
}

// readLine returns the next line without its "\n" or "\r\n". A line
// longer than maxEPSSLine is skipped and reported as bufio.ErrBufferFull.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || (err == nil && len(line) > maxEPSSLine) {
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, bufio.ErrBufferFull
	}
	if err == io.EOF && len(line) > 0 {
		err = nil // a last line without "\n"
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'}), nil
}

// comment reads "model_version:v2023.03.01,score_date:2026-11-24T00:00:00+0000".
func (e *EPSS) comment(s string) {
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), ":")
		switch k {
		case "model_version":
			e.ModelVersion = v
		case "score_date":
			if t, err := time.Parse("2006-01-02T15:04:05-0700", v); err == nil {
				e.ScoreDate = t
			} else if t, err := time.Parse(time.RFC3339, v); err == nil {
				e.ScoreDate = t
			}
		}
	}
}

func (e *EPSS) addLine(line []byte, sep byte) error {
	key, s, err := ParseEPSSLine(line, sep)
	if err != nil {
		return err
	}
	if _, dup := e.scores[key]; dup {
		return fmt.Errorf("%s scored again", line[:bytes.IndexByte(line, sep)])
	}
	e.scores[key] = s
	return nil
}

// ParseEPSSLine parses "CVE-ID<sep>epss<sep>percentile" and returns the
// CVE's key (see cveKey) and its score.
func ParseEPSSLine(line []byte, sep byte) (uint64, EPSSScore, error) {
	id, rest, ok := bytes.Cut(line, []byte{sep})
	score, pct, ok2 := bytes.Cut(rest, []byte{sep})
	if !ok || !ok2 || bytes.IndexByte(pct, sep) >= 0 {
		return 0, EPSSScore{}, fmt.Errorf("%q: want 3 fields separated by %q", line, sep)
	}
	key, ok := cveKey(id)
	if !ok {
		return 0, EPSSScore{}, fmt.Errorf("bad CVE ID %q", id)
	}
	var s EPSSScore
	var err error
	if s.EPSS, err = parseProbability(score); err != nil {
		return 0, EPSSScore{}, fmt.Errorf("%s: epss: %w", id, err)
	}
	if s.Percentile, err = parseProbability(pct); err != nil {
		return 0, EPSSScore{}, fmt.Errorf("%s: percentile: %w", id, err)
	}
	return key, s, nil
}

// parseProbability parses a decimal number in [0, 1] ("0.00383",
// "1.0e-05"); Go's other float syntaxes (hex, "Inf", "_") are refused.
func parseProbability(b []byte) (float64, error) {
	if len(b) == 0 || !(b[0] >= '0' && b[0] <= '9' || b[0] == '.') {
		return 0, fmt.Errorf("%q is not a decimal number", b)
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return 0, fmt.Errorf("%q is not a decimal number", b)
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			err = ne.Err
		}
		return 0, fmt.Errorf("%q: %w", b, err)
	}
	if !(f >= 0 && f <= 1) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not in [0, 1]", b)
	}
	return f, nil
}

// cveKey packs a CVE ID into a map key: the year in the top 14 bits, the
// sequence number in the low 50. It refuses IDs that are not CVE IDs,
// sequence numbers of 2^50 and above, and leading zeros beyond the
// 4-digit padding (so that each key has one spelling).
func cveKey(id []byte) (uint64, bool) {
	if len(id) < 13 || string(id[:4]) != "CVE-" || id[8] != '-' {
		return 0, false
	}
	year, num := id[4:8], id[9:]
	if len(num) > 4 && num[0] == '0' || len(num) > 16 {
		return 0, false
	}
	var y, n uint64
	for _, c := range year {
		if c < '0' || c > '9' {
			return 0, false
		}
		y = y*10 + uint64(c-'0')
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n >= 1<<50 {
		return 0, false
	}
	return y<<50 | n, true
}
