package deb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Paragraph is one stanza of a deb822 control file (dpkg status, Packages,
// Release): its fields in file order and the line it starts on.
type Paragraph struct {
	Line   int
	fields []Field
}

// Field is one "Name: value" of a paragraph. Continuation lines are joined
// with "\n" and keep their leading space, as dpkg stores them.
type Field struct {
	Name, Value string
}

// Get returns the value of the named field (case-insensitive), or "".
func (p *Paragraph) Get(name string) string {
	for _, f := range p.fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Has reports whether the paragraph has the named field.
func (p *Paragraph) Has(name string) bool {
	for _, f := range p.fields {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// Fields returns the fields in file order.
func (p *Paragraph) Fields() []Field { return p.fields }

// ControlReader reads paragraphs from a deb822 stream. Keep, when set,
// limits which fields are stored (others are parsed and dropped), which
// keeps large indexes cheap to read.
type ControlReader struct {
	r    *bufio.Reader
	name string
	line int
	Keep func(name []byte) bool
}

// NewControlReader reads from r; name is used in error messages.
func NewControlReader(r io.Reader, name string) *ControlReader {
	return &ControlReader{r: bufio.NewReaderSize(r, 64*1024), name: name}
}

// ErrTruncated is wrapped by errors about a stream that stops inside a line.
var ErrTruncated = errors.New("unexpected end of file (truncated?)")

// Next returns the next paragraph, or io.EOF after the last one. Errors
// name the file and line.
func (c *ControlReader) Next() (*Paragraph, error) {
	var p *Paragraph
	dropping := false // inside a field that Keep rejected
	for {
		raw, err := c.readLine()
		if err == io.EOF {
			if p != nil {
				return p, nil
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		c.line++
		line := bytes.TrimRight(raw, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			if p != nil {
				return p, nil
			}
			continue
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
			if p == nil {
				return nil, fmt.Errorf("%s:%d: continuation line outside a field", c.name, c.line)
			}
			if !dropping {
				p.fields[len(p.fields)-1].Value += "\n" + string(line)
			}
			continue
		case line[0] == '#':
			return nil, fmt.Errorf("%s:%d: comment lines are not allowed here", c.name, c.line)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("%s:%d: line is not a field (no colon): %q", c.name, c.line, clip(line))
		}
		if p == nil {
			p = &Paragraph{Line: c.line}
		}
		if dropping = c.Keep != nil && !c.Keep(line[:colon]); dropping {
			continue
		}
		p.fields = append(p.fields, Field{Name: string(line[:colon]), Value: string(bytes.TrimSpace(line[colon+1:]))})
	}
}

// readLine returns one line including its newline. A final line without a
// newline is reported as truncation: dpkg and apt always end files with one.
func (c *ControlReader) readLine() ([]byte, error) {
	raw, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append([]byte(nil), raw...)
		for err == bufio.ErrBufferFull {
			raw, err = c.r.ReadSlice('\n')
			buf = append(buf, raw...)
		}
		raw = buf
	}
	if err == io.EOF {
		if len(raw) == 0 {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%s:%d: %w", c.name, c.line+1, ErrTruncated)
	}
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", c.name, c.line+1, err)
	}
	return raw, nil
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
