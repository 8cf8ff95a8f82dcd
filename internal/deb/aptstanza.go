package deb

import (
	"bytes"
	"fmt"
	"io"
	"sort"
)

// aptStanza is one record of a deb822 file as apt's pkgTagFile reads
// sources and preferences (SUPPORT_COMMENTS): fields in order, the last of
// a repeated field winning on lookup.
type aptStanza struct {
	line   int // line of the first field
	fields []aptField
}

type aptField struct {
	name, value string // value: as FindS gives it (continuation lines kept, end trimmed)
	line        int
}

// find returns the value of the named field (ASCII case-insensitive).
func (s *aptStanza) find(name string) (string, bool) {
	for i := len(s.fields) - 1; i >= 0; i-- {
		if aptEqualFold(s.fields[i].name, name) {
			return s.fields[i].value, true
		}
	}
	return "", false
}

// findS is find without the presence flag.
func (s *aptStanza) findS(name string) string {
	v, _ := s.find(name)
	return v
}

// aptTagBuffer is a file with its comment lines removed and a map back to
// the original line numbers.
type aptTagBuffer struct {
	buf        []byte
	lineStarts []int // offset in buf of each kept line
	lineNos    []int // its line number in the file
}

func (b *aptTagBuffer) lineAt(off int) int {
	i := sort.Search(len(b.lineStarts), func(i int) bool { return b.lineStarts[i] > off }) - 1
	if i < 0 {
		return 1
	}
	return b.lineNos[i]
}

// aptReadStanzas reads r as pkgTagFile with SUPPORT_COMMENTS and
// pkgTagSection::Scan do: lines starting with "#" are dropped entirely; a
// record ends at an empty line (only "\r" allowed on it: a line of spaces
// continues the previous field); a field line starts with a non-space and
// its name ends at the next ":" (even on a later line, as in apt); lines
// starting with white space continue the value. Records without fields
// are skipped.
func aptReadStanzas(r io.Reader, name string) ([]aptStanza, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tb := aptStripTagComments(data)
	var out []aptStanza
	for pos := 0; pos < len(tb.buf); {
		st, next, ok := tb.scan(pos)
		if !ok {
			return nil, fmt.Errorf("%s:%d: malformed stanza (a field without ':')", name, tb.lineAt(next))
		}
		if len(st.fields) > 0 {
			out = append(out, st)
		}
		pos = next
	}
	return out, nil
}

// aptStripTagComments drops "#" lines and makes the buffer end in an empty
// line, as pkgTagFile::Fill does.
func aptStripTagComments(data []byte) *aptTagBuffer {
	tb := &aptTagBuffer{}
	for lineNo := 1; len(data) > 0; lineNo++ {
		n := bytes.IndexByte(data, '\n') + 1
		if n == 0 {
			n = len(data)
		}
		if data[0] != '#' {
			tb.lineStarts = append(tb.lineStarts, len(tb.buf))
			tb.lineNos = append(tb.lineNos, lineNo)
			tb.buf = append(tb.buf, data[:n]...)
		}
		data = data[n:]
	}
	if len(bytes.TrimRight(tb.buf, "\r\n")) == 0 {
		tb.buf = nil
		return tb
	}
	newlines := bytes.Count(tb.buf[len(bytes.TrimRight(tb.buf, "\r\n")):], []byte("\n"))
	for ; newlines < 2; newlines++ {
		tb.buf = append(tb.buf, '\n')
	}
	return tb
}

// scan reads the record starting at pos; next is where the following one
// starts. ok is false when a field line has no ":" anywhere after it; next
// is then that line.
func (b *aptTagBuffer) scan(pos int) (st aptStanza, next int, ok bool) {
	buf, end := b.buf, len(b.buf)
	valStart := -1
	closeField := func(stop int) {
		if valStart >= 0 {
			st.fields[len(st.fields)-1].value = aptTrimRightSpace(string(buf[valStart:stop]))
		}
	}
	for pos < end {
		if !aptIsSpace(buf[pos]) {
			closeField(pos)
			f, vs, good := b.fieldStart(pos)
			if !good {
				return st, pos, false
			}
			if len(st.fields) == 0 {
				st.line = f.line
			}
			st.fields = append(st.fields, f)
			valStart, pos = vs, vs
		}
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			return st, pos, false
		}
		pos += nl
		for pos+1 < end && buf[pos+1] == '\r' {
			pos++
		}
		if pos+1 < end && buf[pos+1] == '\n' {
			closeField(pos)
			for pos < end && (buf[pos] == '\n' || buf[pos] == '\r') {
				pos++
			}
			return st, pos, true
		}
		pos++
	}
	closeField(end)
	return st, end, true
}

// fieldStart parses "Name:" at pos and returns the field and where its
// value starts (white space after the colon skipped, but not past the end
// of the line unless the next line starts with a space).
func (b *aptTagBuffer) fieldStart(pos int) (aptField, int, bool) {
	buf := b.buf
	colon := bytes.IndexByte(buf[pos:], ':')
	if colon < 0 {
		return aptField{}, 0, false
	}
	colon += pos
	endTag := colon
	for endTag > pos && aptIsSpace(buf[endTag-1]) {
		endTag--
	}
	f := aptField{name: string(buf[pos:endTag]), line: b.lineAt(pos)}
	v := colon + 1
	for v < len(buf) && aptIsSpace(buf[v]) {
		if buf[v] == '\n' && (v+1 >= len(buf) || buf[v+1] != ' ') {
			break
		}
		v++
	}
	if v >= len(buf) {
		return aptField{}, 0, false
	}
	return f, v, true
}

func aptTrimRightSpace(s string) string {
	i := len(s)
	for i > 0 && aptIsSpace(s[i-1]) {
		i--
	}
	return s[:i]
}

// aptFields splits at runs of ASCII white space (apt's FindMultiValue).
func aptFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || aptIsSpace(s[i]) {
			if start >= 0 {
				out = append(out, s[start:i])
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return out
}
