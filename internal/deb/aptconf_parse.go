package deb

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
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

// aptParseQuoteWord is apt's ParseQuoteWord: a word ends at white space
// outside "..." and [...]; quotes are dropped and %xx decoded. Leading
// spaces stay in the word, as in apt. rest starts at the next word.
func aptParseQuoteWord(s string) (word, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i == len(s) {
		return "", s, false
	}
	for ; i < len(s) && !aptIsSpace(s[i]); i++ {
		for _, pair := range [2]string{`""`, "[]"} {
			if s[i] != pair[0] {
				continue
			}
			j := strings.IndexByte(s[i+1:], pair[1])
			if j < 0 {
				return "", s, false
			}
			i += 1 + j
		}
	}
	var b strings.Builder
	for k := 0; k < i; {
		if s[k] == '%' && k+2 < i && aptIsXDigit(s[k+1]) && aptIsXDigit(s[k+2]) {
			v, _ := strconv.ParseUint(s[k+1:k+3], 16, 8)
			b.WriteByte(byte(v))
			k += 3
			continue
		}
		if s[k] != '"' {
			b.WriteByte(s[k])
		}
		k++
	}
	for i < len(s) && aptIsSpace(s[i]) {
		i++
	}
	return b.String(), s[i:], true
}

// aptParseCWord is apt's ParseCWord: the rest of s must be "..." strings
// separated by white space; they are concatenated, each run of spaces
// between them becoming one space. It consumes all of s.
func aptParseCWord(s string) (word, rest string, ok bool) {
	c := 0
	for c < len(s) && s[c] == ' ' {
		c++
	}
	if c == len(s) {
		return "", s, false
	}
	var b strings.Builder
	for ; c < len(s); c++ {
		if s[c] == '"' {
			j := strings.IndexByte(s[c+1:], '"')
			if j < 0 {
				return "", s, false
			}
			b.WriteString(s[c+1 : c+1+j])
			c += 1 + j
			continue
		}
		if c != 0 && aptIsSpace(s[c]) && aptIsSpace(s[c-1]) {
			continue
		}
		if !aptIsSpace(s[c]) {
			return "", s, false
		}
		b.WriteByte(' ')
	}
	return b.String(), "", true
}

// aptIsSpace is C's isspace in the C locale.
func aptIsSpace(ch byte) bool {
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r'
}

func aptIsXDigit(ch byte) bool {
	return '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'
}

func aptIsAlnum(ch byte) bool {
	return '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z'
}

// aptTrimSpace trims C isspace bytes at both ends (APT::String::Strip).
func aptTrimSpace(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r < 0x80 && aptIsSpace(byte(r)) })
}

// aptStrStrip is _strstrip: leading blanks and tabs, trailing blanks,
// tabs, CR and LF.
func aptStrStrip(s string) string {
	return strings.TrimRight(strings.TrimLeft(s, " \t"), " \t\n\r")
}

// aptEqualFold compares ASCII case-insensitively (apt's stringcasecmp).
func aptEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if aptLower(a[i]) != aptLower(b[i]) {
			return false
		}
	}
	return true
}

func aptLowerString(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = aptLower(b[i])
	}
	return string(b)
}

func aptLower(ch byte) byte {
	if 'A' <= ch && ch <= 'Z' {
		return ch + 'a' - 'A'
	}
	return ch
}

// aptStringToBool is apt's StringToBool.
func aptStringToBool(text string, def int) int {
	n, end, _ := aptStrtol(text, 0)
	if res := int32(n); end == len(text) && res >= 0 && res <= 1 {
		return int(res)
	}
	switch aptLowerString(text) {
	case "no", "false", "without", "off", "disable":
		return 0
	case "yes", "true", "with", "on", "enable":
		return 1
	}
	return def
}

// aptStrtol is C's strtol: leading white space, a sign, a 0x or 0 prefix
// when base is 0. end is the index after the number (0 when there is
// none); on overflow the result saturates and overflow is set.
func aptStrtol(s string, base int) (n int64, end int, overflow bool) {
	i := 0
	for i < len(s) && aptIsSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hasHex := i+2 < len(s) && s[i] == '0' && (s[i+1]|0x20) == 'x' && aptIsXDigit(s[i+2])
	switch {
	case (base == 0 || base == 16) && hasHex:
		base, i = 16, i+2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	}
	var u uint64
	start := i
	for ; i < len(s); i++ {
		d := aptDigit(s[i])
		if d >= base {
			break
		}
		if u > (1<<63)/uint64(base) || u*uint64(base)+uint64(d) > 1<<63 {
			overflow = true
		} else {
			u = u*uint64(base) + uint64(d)
		}
	}
	if i == start {
		return 0, 0, false
	}
	switch {
	case neg && (overflow || u > 1<<63):
		return -1 << 63, i, true
	case neg:
		return -int64(u), i, false
	case overflow || u > 1<<63-1:
		return 1<<63 - 1, i, true
	}
	return int64(u), i, false
}

func aptDigit(ch byte) int {
	switch {
	case '0' <= ch && ch <= '9':
		return int(ch - '0')
	case 'a' <= ch && ch <= 'z':
		return int(ch-'a') + 10
	case 'A' <= ch && ch <= 'Z':
		return int(ch-'A') + 10
	}
	return 99
}
