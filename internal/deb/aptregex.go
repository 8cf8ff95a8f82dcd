package deb

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

var aptRegexCache struct {
	sync.Mutex
	m map[string]*regexp.Regexp // nil value: invalid expression
}

// aptRegexMatch searches s for the POSIX ERE re, case-insensitively, as
// regcomp(REG_EXTENDED|REG_ICASE) and regexec do. Compiled expressions are
// memoized (a bounded cache: patterns come from configuration files).
func aptRegexMatch(re, s string) bool {
	aptRegexCache.Lock()
	rx, ok := aptRegexCache.m[re]
	aptRegexCache.Unlock()
	if !ok {
		if goRe, valid := aptTranslateERE(re); valid {
			rx, _ = regexp.Compile(goRe)
		}
		aptRegexCache.Lock()
		if aptRegexCache.m == nil {
			aptRegexCache.m = map[string]*regexp.Regexp{}
		}
		if len(aptRegexCache.m) < 4096 {
			aptRegexCache.m[re] = rx
		}
		aptRegexCache.Unlock()
	}
	return rx != nil && rx.MatchString(s)
}

// ereTranslator turns a glibc POSIX extended regular expression into Go
// syntax: "\" is literal inside brackets, stacked repetitions ("a+?",
// "a**", "a{2}{3}") apply to what precedes them instead of meaning
// laziness, "{,n}" is "{0,n}", an unmatched ")" is literal, and an escaped
// lowercase letter that is not a GNU operator matches nothing (REG_ICASE
// upper-cases the subject but not escaped letters).
type ereTranslator struct {
	src    string
	i      int
	out    strings.Builder
	atom   int   // start in out of the last atom, -1 if none can repeat
	repeat bool  // the last atom already has a repetition
	groups []int // out offsets of open "("
}

func aptTranslateERE(re string) (string, bool) {
	t := &ereTranslator{src: re, atom: -1}
	t.out.WriteString("(?is)")
	for t.i < len(t.src) {
		if !t.step() {
			return "", false
		}
	}
	return t.out.String(), len(t.groups) == 0
}

func (t *ereTranslator) step() bool {
	ch := t.src[t.i]
	t.i++
	switch ch {
	case '*', '+', '?':
		return t.repetition(string(ch))
	case '{':
		return t.interval()
	case '(':
		t.groups = append(t.groups, t.out.Len())
		t.out.WriteString("(?:")
		t.atom = -1
	case ')':
		if len(t.groups) == 0 { // glibc: an unmatched ")" is literal
			t.literal(`\)`)
			return true
		}
		t.out.WriteByte(')')
		t.atom, t.repeat = t.groups[len(t.groups)-1], false
		t.groups = t.groups[:len(t.groups)-1]
	case '|', '^', '$':
		t.out.WriteByte(ch)
		t.atom = -1
	case '[':
		return t.bracket()
	case '\\':
		return t.escape()
	case '.':
		t.literal(".")
	default:
		t.i--
		t.literal(regexp.QuoteMeta(t.nextRune()))
	}
	return true
}

// aptEREClasses are glibc's \w, \W, \s and \S in a UTF-8 locale, where
// letters and spaces are Unicode ones (Go's own are ASCII only).
var aptEREClasses = map[byte]string{
	'w': `[\p{L}\p{N}_]`, 'W': `[^\p{L}\p{N}_]`,
	's': `[` + aptUnicodeSpaces + `]`, 'S': `[^` + aptUnicodeSpaces + `]`,
}

// aptUnicodeSpaces is glibc's iswspace set (no no-break spaces).
const aptUnicodeSpaces = `\t\n\v\f\r \x{1680}\x{2000}-\x{2006}\x{2008}-\x{200a}\x{2028}\x{2029}\x{205f}\x{3000}`

// aptGoClasses are the bracket classes as glibc has them in a UTF-8 locale
// under REG_ICASE, where [:upper:] and [:lower:] mean [:alpha:] and the
// digits of other scripts are letters.
var aptGoClasses = func() map[string]string {
	alpha := `\p{L}` + aptOtherDigits()
	return map[string]string{
		"alpha": alpha, "upper": alpha, "lower": alpha, "alnum": alpha + `0-9`, "digit": `0-9`,
		"xdigit": `0-9A-Fa-f`, "space": aptUnicodeSpaces, "cntrl": `\p{Cc}`, "punct": `\p{P}\p{S}`,
		"blank": `\t \x{1680}\x{2000}-\x{2006}\x{2008}-\x{200a}\x{205f}\x{3000}`,
		"graph": `\p{L}\p{M}\p{N}\p{P}\p{S}`, "print": `\p{L}\p{M}\p{N}\p{P}\p{S} `,
	}
}()

// aptOtherDigits lists the decimal digits beyond 0-9 as class ranges.
func aptOtherDigits() string {
	var b strings.Builder
	for _, r := range unicode.Nd.R16 {
		if r.Lo > '9' {
			b.WriteString(aptQuoteClassRune(rune(r.Lo)) + "-" + aptQuoteClassRune(rune(r.Hi)))
		}
	}
	for _, r := range unicode.Nd.R32 {
		b.WriteString(aptQuoteClassRune(rune(r.Lo)) + "-" + aptQuoteClassRune(rune(r.Hi)))
	}
	return b.String()
}

// nextRune consumes one UTF-8 character (or one invalid byte).
func (t *ereTranslator) nextRune() string {
	_, size := utf8.DecodeRuneInString(t.src[t.i:])
	t.i += size
	return t.src[t.i-size : t.i]
}

func (t *ereTranslator) literal(goSyntax string) {
	t.atom, t.repeat = t.out.Len(), false
	t.out.WriteString(goSyntax)
}

func (t *ereTranslator) repetition(op string) bool {
	if t.atom < 0 {
		return false
	}
	if t.repeat {
		inner := t.out.String()[t.atom:]
		head := t.out.String()[:t.atom]
		t.out.Reset()
		t.out.WriteString(head + "(?:" + inner + ")")
	}
	t.out.WriteString(op)
	t.repeat = true
	return true
}

// interval reads "{m}", "{m,}", "{m,n}" or "{,n}" after a "{".
func (t *ereTranslator) interval() bool {
	end := strings.IndexByte(t.src[t.i:], '}')
	if end < 0 {
		return false
	}
	body := t.src[t.i : t.i+end]
	t.i += end + 1
	lo, hi, comma := strings.Cut(body, ",")
	if lo == "" && comma {
		lo = "0"
	}
	if !aptIsCount(lo) || (hi != "" && (!aptIsCount(hi) || aptAtoi(hi) < aptAtoi(lo))) {
		return false
	}
	if comma {
		return t.repetition("{" + lo + "," + hi + "}")
	}
	return t.repetition("{" + lo + "}")
}

// aptIsCount: a repetition count Go accepts (glibc allows up to 32767).
func aptIsCount(s string) bool {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return false
	}
	return len(s) <= 4 && aptAtoi(s) <= 1000
}

func aptAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (t *ereTranslator) escape() bool {
	if t.i == len(t.src) {
		return false // trailing backslash
	}
	ch := t.src[t.i]
	t.i++
	switch {
	case strings.IndexByte("wWsS", ch) >= 0:
		t.literal(aptEREClasses[ch])
	case strings.IndexByte("bB<>", ch) >= 0:
		t.out.WriteString(map[byte]string{'b': `\b`, 'B': `\B`, '<': `\b`, '>': `\b`}[ch])
		t.atom = -1
	case ch == '`' || ch == '\'':
		t.out.WriteString(map[byte]string{'`': `\A`, '\'': `\z`}[ch])
		t.atom = -1
	case ch >= '1' && ch <= '9':
		return false // back-references: not expressible in Go
	case ch >= 'a' && ch <= 'z':
		t.literal(`[^\x00-\x{10FFFF}]`)
	default:
		t.i--
		t.literal(regexp.QuoteMeta(t.nextRune()))
	}
	return true
}

// bracket translates a bracket expression after its "[". glibc (UTF-8
// locale) rejects ranges with a non-ASCII end and compares range ends in
// upper case; classes are glibc's.
func (t *ereTranslator) bracket() bool {
	items, negate, next, ok := aptParseBracket(t.src, t.i)
	if !ok {
		return false
	}
	t.i = next
	var b strings.Builder
	b.WriteByte('[')
	if negate {
		b.WriteByte('^')
	}
	for _, it := range items {
		switch {
		case it.class != "":
			b.WriteString(aptGoClasses[it.class])
		case !it.span:
			b.WriteString(aptQuoteClassRune(it.lo))
		default:
			// REG_ICASE translates range ends to upper case first.
			lo, hi := aptUpperASCII(it.lo), aptUpperASCII(it.hi)
			if lo > hi || hi >= 0x80 {
				return false // glibc: "Invalid range end"
			}
			b.WriteString(aptQuoteClassRune(lo) + "-" + aptQuoteClassRune(hi))
		}
	}
	b.WriteByte(']')
	t.literal(b.String())
	return true
}

func aptUpperASCII(r rune) rune {
	if 'a' <= r && r <= 'z' {
		return r - 'a' + 'A'
	}
	return r
}

func aptQuoteClassRune(r rune) string {
	return `\x{` + strconv.FormatInt(int64(r), 16) + `}`
}

// bracketItem is one element of a bracket expression: a character class
// name, or a range lo-hi (a single character when lo == hi).
type bracketItem struct {
	class  string
	lo, hi rune
	equiv  bool // [=c=]
	span   bool // written as a range
}

// aptParseBracket parses a POSIX bracket expression starting after "[" at
// src[i:]: an optional "^", a leading literal "]", ranges, [:class:], and
// [=c=] and [.c.] of one character; "\\" is an ordinary character. ok is
// false when it is unterminated or invalid.
func aptParseBracket(src string, i int) (items []bracketItem, negate bool, next int, ok bool) {
	if i < len(src) && src[i] == '^' {
		negate, i = true, i+1
	}
	for first := true; i < len(src); first = false {
		if src[i] == ']' && !first {
			return items, negate, i + 1, true
		}
		it, n, good := aptBracketElem(src, i)
		if !good {
			return nil, false, 0, false
		}
		i = n
		if i+1 < len(src) && src[i] == '-' && src[i+1] != ']' {
			if it.class != "" || it.equiv {
				return nil, false, 0, false // classes cannot bound a range
			}
			hi, n, good := aptBracketElem(src, i+1)
			if !good || hi.class != "" || hi.equiv {
				return nil, false, 0, false
			}
			it.hi, it.span, i = hi.lo, true, n
			if i+1 < len(src) && src[i] == '-' && src[i+1] != ']' {
				return nil, false, 0, false // "a-c-e"
			}
		}
		items = append(items, it)
	}
	return nil, false, 0, false
}

// aptBracketElem reads one character or [:class:]/[=c=]/[.c.] at src[i:].
func aptBracketElem(src string, i int) (bracketItem, int, bool) {
	if src[i] == '[' && i+1 < len(src) && strings.IndexByte(":=.", src[i+1]) >= 0 {
		delim := src[i+1]
		end := strings.Index(src[i+2:], string(delim)+"]")
		if end < 0 {
			return bracketItem{}, 0, false
		}
		name, next := src[i+2:i+2+end], i+2+end+2
		if delim == ':' {
			return bracketItem{class: name}, next, aptCharClasses[name]
		}
		r, size := utf8.DecodeRuneInString(name)
		return bracketItem{lo: r, hi: r, equiv: delim == '='}, next, size > 0 && size == len(name)
	}
	r, size := utf8.DecodeRuneInString(src[i:])
	return bracketItem{lo: r, hi: r}, i + size, true
}
