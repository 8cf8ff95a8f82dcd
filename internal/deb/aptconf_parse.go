package deb

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ParseAptConf reads apt.conf syntax from r into into, as apt's
// ReadConfigFile does: "//", "#" and "/* */" comments (outside quotes;
// "#clear" and "#include" are directives), "A::B "v";", nested scopes
// "A { B "v"; };", list elements ("A:: "v";" or "A { "v"; };"), unquoted
// values, "#clear A::B;" and "#include "path";" (a path ending in "/"
// includes a directory; paths are taken under into.Root). name is used in
// errors, which read "name:line: ...".
func ParseAptConf(r io.Reader, name string, into *AptConfig) error {
	return into.parse(r, name, 0)
}

type aptConfParser struct {
	conf      *AptConfig
	name      string
	depth     int
	line      int
	inComment bool     // inside /* */ at the start of the next line
	buf       string   // statement text read so far (apt's LineBuffer)
	stack     []string // enclosing scopes' parents
	parent    string   // current scope, "A::B"
}

func (c *AptConfig) parse(r io.Reader, name string, depth int) error {
	p := &aptConfParser{conf: c, name: name, depth: depth}
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadString('\n')
		if raw == "" && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", name, err)
		}
		p.line++
		if perr := p.parseLine(raw); perr != nil {
			return perr
		}
		if err == io.EOF {
			break
		}
	}
	if p.buf != "" {
		return p.errorf("syntax error: extra junk at end of file")
	}
	return nil
}

func (p *aptConfParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.name, p.line, fmt.Sprintf(format, args...))
}

// aptReadLine is what FileFd::ReadLine leaves of a line: up to a NUL byte,
// without trailing CR and LF characters.
func aptReadLine(raw string) string {
	if i := strings.IndexByte(raw, 0); i >= 0 {
		raw = raw[:i]
	}
	return strings.TrimRight(raw, "\r\n")
}

func (p *aptConfParser) parseLine(raw string) error {
	in := aptReadLine(raw)
	in = aptTrimSpace(strings.ReplaceAll(in, "\t", "        "))
	frag := p.stripComments(in)
	if frag == "" {
		return nil
	}
	return p.scan(frag)
}

// stripComments removes "//", "#" and "/* */" comments in apt's order; a
// comment marker after an odd number of quotes is text.
func (p *aptConfParser) stripComments(line string) string {
	if p.inComment {
		end := strings.Index(line, "*/")
		if end < 0 {
			return ""
		}
		line, p.inComment = line[end+2:], false
	}
	line = aptCutComment(line, "//", func(string) bool { return false })
	line = aptCutComment(line, "#", func(rest string) bool {
		return strings.HasPrefix(rest, "clear") || strings.HasPrefix(rest, "include") ||
			strings.HasPrefix(rest, "x-apt-configure-index")
	})
	var frag strings.Builder
	start := 0
	for {
		i := strings.Index(line[start:], "/*")
		if i < 0 {
			break
		}
		i += start
		if strings.Count(line[:i], `"`)%2 != 0 {
			start = i + 2
			continue
		}
		frag.WriteString(line[:i])
		end := strings.Index(line[i+2:], "*/")
		if end < 0 {
			line, p.inComment = "", true
			break
		}
		line, start = line[i+2+end+2:], 0
	}
	frag.WriteString(line)
	return frag.String()
}

// aptCutComment cuts line at the first marker that is outside quotes and
// not followed by text keep accepts.
func aptCutComment(line, marker string, keep func(rest string) bool) string {
	start := 0
	for {
		i := strings.Index(line[start:], marker)
		if i < 0 {
			return line
		}
		i += start
		if strings.Count(line[:i], `"`)%2 != 0 || keep(line[i+len(marker):]) {
			start = i + 1
			continue
		}
		return line[:i]
	}
}

// scan splits a fragment at "{", ";" and "}" outside quotes, completing
// statements; text after the last one is kept for the next line.
func (p *aptConfParser) scan(frag string) error {
	inQuote := false
	start := 0
	for i := 0; i < len(frag); i++ {
		ch := frag[i]
		if ch == '"' {
			inQuote = !inQuote
		}
		if inQuote || (ch != '{' && ch != ';' && ch != '}') {
			continue
		}
		p.appendBuf(aptTrimSpace(frag[start:i]))
		start = i + 1
		if ch == '{' && p.buf == "" {
			return p.errorf("syntax error: block starts with no name")
		}
		if p.buf != "" {
			if err := p.statement(ch); err != nil {
				return err
			}
			p.buf = ""
		}
		if ch == '}' {
			p.leaveScope()
		}
	}
	p.appendBuf(aptStrStrip(frag[start:]))
	return nil
}

func (p *aptConfParser) appendBuf(s string) {
	if s != "" && p.buf != "" {
		p.buf += " "
	}
	p.buf += s
}

func (p *aptConfParser) leaveScope() {
	if len(p.stack) == 0 {
		p.parent = ""
		return
	}
	p.parent = p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
}

// statement handles one "tag [value]" ended by term.
func (p *aptConfParser) statement(term byte) error {
	tag, pos, ok := aptParseQuoteWord(p.buf)
	if !ok {
		return p.errorf("syntax error: malformed tag")
	}
	word, rest, ok := aptParseCWord(pos)
	if !ok {
		word, rest, ok = aptParseQuoteWord(pos)
	}
	noWord := false
	if !ok {
		rest = pos
		if term != '{' {
			word, tag = tag, ""
		} else {
			noWord = true
		}
	}
	if rest != "" {
		return p.errorf("syntax error: extra junk after value")
	}
	if term == '{' {
		p.stack = append(p.stack, p.parent)
		p.parent = aptJoinTag(p.parent, tag)
		tag = ""
	}
	item := tag
	if p.parent != "" {
		item = p.parent
		if term != '{' || tag != "" {
			item = p.parent + "::" + tag
		}
	}
	switch {
	case strings.HasPrefix(tag, "#"):
		return p.directive(tag[1:], word)
	case tag == "" && !noWord && word == "#clear":
		return p.errorf("syntax error: clear directive requires an option tree as argument")
	case !noWord:
		p.conf.Set(item, word)
	}
	return nil
}

func aptJoinTag(parent, tag string) string {
	if parent == "" {
		return tag
	}
	return parent + "::" + tag
}

func (p *aptConfParser) directive(name, arg string) error {
	if p.parent != "" {
		return p.errorf("syntax error: directives can only be done at the top level")
	}
	switch name {
	case "clear":
		p.conf.Clear(arg)
	case "include":
		if p.depth > 10 {
			return p.errorf("syntax error: too many nested includes")
		}
		path := p.conf.rootPath(arg)
		var err error
		if len(arg) > 2 && strings.HasSuffix(arg, "/") {
			err = p.conf.readDir(path, p.depth+1)
		} else {
			err = p.conf.readFile(path, p.depth+1)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: included from here: %w", p.name, p.line, err)
		}
	case "x-apt-configure-index":
		// Only feeds apt's option type checker; nothing to store.
	default:
		return p.errorf("syntax error: unsupported directive '%s'", name)
	}
	return nil
}
