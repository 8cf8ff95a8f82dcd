package deb

import (
	"unicode"
	"unicode/utf8"
)

// aptFnmatch is glibc's fnmatch(pattern, s, FNM_CASEFOLD) as Debian 12's
// glibc behaves in a UTF-8 locale: it matches if the pattern matches the
// characters of s, or failing that its bytes (so "??" matches "é", and
// invalid UTF-8 is matched byte by byte).
func aptFnmatch(pattern, s string) bool {
	if utf8.ValidString(pattern) && utf8.ValidString(s) {
		g := globMatcher{p: []rune(pattern), s: []rune(s), wide: true}
		if g.match(0, 0) {
			return true
		}
		if aptIsASCII(pattern) && aptIsASCII(s) {
			return false
		}
	}
	g := globMatcher{p: aptBytesAsRunes(pattern), s: aptBytesAsRunes(s)}
	return g.match(0, 0)
}

func aptIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func aptBytesAsRunes(s string) []rune {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return r
}

// globMatcher interprets a pattern as glibc's fnmatch_loop.c does, on
// characters (wide) or on bytes, with results memoized per position so
// that stars cost O(len(p)*len(s)).
type globMatcher struct {
	p, s []rune
	wide bool
	memo map[[2]int]bool
}

func (g *globMatcher) fold(r rune) rune {
	if g.wide {
		return unicode.ToLower(r)
	}
	return rune(aptLower(byte(r)))
}

// at is p[i], or 0 (the C string terminator) past the end.
func (g *globMatcher) at(i int) rune {
	if i < len(g.p) {
		return g.p[i]
	}
	return 0
}

// match reports whether p[pi:] matches s[si:].
func (g *globMatcher) match(pi, si int) bool {
	key := [2]int{pi, si}
	if v, ok := g.memo[key]; ok {
		return v
	}
	v := g.matchFrom(pi, si)
	if g.memo == nil {
		g.memo = map[[2]int]bool{}
	}
	g.memo[key] = v
	return v
}

func (g *globMatcher) matchFrom(pi, si int) bool {
	for pi < len(g.p) {
		c := g.fold(g.p[pi])
		pi++
		switch c {
		case '?':
			if si == len(g.s) {
				return false
			}
		case '\\':
			if pi == len(g.p) {
				return false // a trailing backslash loses
			}
			c = g.fold(g.p[pi])
			pi++
			if si == len(g.s) || g.fold(g.s[si]) != c {
				return false
			}
		case '*':
			return g.star(pi, si)
		case '[':
			next, res := g.bracket(pi, si)
			switch {
			case res == globFail:
				return false
			case res == globLiteral && g.fold(g.s[si]) != '[':
				return false
			case res == globMatched:
				pi = next
			}
		default:
			if si == len(g.s) || c != g.fold(g.s[si]) {
				return false
			}
		}
		si++
	}
	return si == len(g.s)
}

// star handles the rest of the pattern after a "*": following "?" and "*"
// are absorbed, then every later position of s is tried.
func (g *globMatcher) star(pi, si int) bool {
	for ; pi < len(g.p) && (g.p[pi] == '?' || g.p[pi] == '*'); pi++ {
		if g.p[pi] == '?' {
			if si == len(g.s) {
				return false
			}
			si++
		}
	}
	if pi == len(g.p) {
		return true
	}
	for n := si; n < len(g.s); n++ {
		if g.match(pi, n) {
			return true
		}
	}
	return false
}

const (
	globFail    = iota // the whole match fails
	globLiteral        // unterminated: "[" is an ordinary character
	globMatched        // the bracket accepted s[si]; continue after it
)

// bracket evaluates the bracket expression whose "[" precedes p[pi]
// against s[si], in glibc's order: items are tried left to right, and once
// one matches the rest is skipped with a simpler grammar (skipBracket).
// Items return the position right after them (glibc's p before "c = *p++").
func (g *globMatcher) bracket(pi, si int) (int, int) {
	if si == len(g.s) {
		return 0, globFail
	}
	raw := g.s[si]
	fn := g.fold(raw)
	not := g.at(pi) == '!' || g.at(pi) == '^'
	if not {
		pi++
	}
	c := g.at(pi)
	pi++
	for {
		next, hit, res := g.bracketItem(c, pi, raw, fn)
		if res != globMatched {
			return 0, res
		}
		if hit {
			end, res := g.skipBracket(next)
			if res != globMatched || not {
				return 0, globFail
			}
			return end, globMatched
		}
		c, pi = g.at(next), next+1
		if c == ']' {
			if not {
				return pi, globMatched
			}
			return 0, globFail
		}
	}
}

// bracketItem evaluates the item starting with c (p[pi] follows it):
// where it ends, whether it matched, and globFail or globLiteral when the
// whole match is decided.
func (g *globMatcher) bracketItem(c rune, pi int, raw, fn rune) (int, bool, int) {
	switch {
	case c == '\\':
		if g.at(pi) == 0 {
			return 0, false, globFail
		}
		return g.bracketChar(g.fold(g.at(pi)), pi+1, fn)
	case c == '[' && g.at(pi) == ':':
		return g.bracketClass(pi, raw, fn)
	case c == '[' && g.at(pi) == '=':
		ch, end := g.at(pi+1), pi+2
		if ch == 0 || g.at(end) != '=' || g.at(end+1) != ']' {
			return g.bracketChar('[', pi, fn)
		}
		return end + 2, raw == ch, globMatched
	case c == '[' && g.at(pi) == '.':
		return g.bracketCollating(pi, raw, fn)
	case c == 0:
		return 0, false, globLiteral
	}
	return g.bracketChar(g.fold(c), pi, fn)
}

// bracketChar is glibc's normal_bracket: c alone, or the start of a range.
func (g *globMatcher) bracketChar(c rune, pi int, fn rune) (int, bool, int) {
	isRange := g.at(pi) == '-' && g.at(pi+1) != 0 && g.at(pi+1) != ']'
	if !isRange && c == fn {
		return pi, true, globMatched
	}
	return g.bracketRange(c, pi, fn)
}

// bracketRange handles "cold-cend" when p[pi] is "-" not before "]".
func (g *globMatcher) bracketRange(cold rune, pi int, fn rune) (int, bool, int) {
	if g.at(pi) != '-' || g.at(pi+1) == ']' {
		return pi, false, globMatched
	}
	cend := g.at(pi + 1)
	pi += 2
	if cend == '\\' {
		cend = g.at(pi)
		pi++
	}
	if cend == 0 {
		return 0, false, globFail
	}
	return pi, cold <= fn && fn <= g.fold(cend), globMatched
}

// bracketClass handles "[:name:]" (p[pi] is the ":"); a name with other
// characters than a-y makes "[" an ordinary member, as in glibc.
func (g *globMatcher) bracketClass(pi int, raw, fn rune) (int, bool, int) {
	var name []rune
	for i := pi + 1; ; i++ {
		if len(name) == 256 {
			return 0, false, globFail
		}
		c := g.at(i)
		if c == ':' && g.at(i+1) == ']' {
			if !aptCharClasses[string(name)] {
				return 0, false, globFail
			}
			return i + 2, (g.wide || raw < 0x80) && aptInClass(string(name), raw), globMatched
		}
		if c < 'a' || c >= 'z' {
			return g.bracketChar('[', pi, fn)
		}
		name = append(name, c)
	}
}

// bracketCollating handles "[.c.]" (p[pi] is the first "."): only one
// character is a valid collating symbol.
func (g *globMatcher) bracketCollating(pi int, raw, fn rune) (int, bool, int) {
	i := pi + 1
	for ; !(g.at(i) == '.' && g.at(i+1) == ']'); i++ {
		if g.at(i) == 0 {
			return 0, false, globFail
		}
	}
	if i-(pi+1) != 1 {
		return 0, false, globFail
	}
	sym, next := g.p[pi+1], i+2
	isRange := g.at(next) == '-' && g.at(next+1) != 0
	if !isRange && raw == sym {
		return next, true, globMatched
	}
	return g.bracketRange(sym, next, fn)
}

// skipBracket skips what follows a matching item up to the closing "]"
// with glibc's grammar for that: "\\x", [:class:], [=c=] and [.sym.] are
// skipped whole (unvalidated), and an unterminated rest fails the match.
func (g *globMatcher) skipBracket(pi int) (int, int) {
	for {
		c := g.at(pi)
		pi++
		switch {
		case c == 0:
			return 0, globFail
		case c == '\\':
			if g.at(pi) == 0 {
				return 0, globFail
			}
			pi++
		case c == '[' && g.at(pi) == ':':
			end, ok := g.skipClass(pi)
			if end < 0 {
				return 0, globFail
			}
			if ok {
				pi = end
			} // else "[" was ordinary: go on at the ":"
		case c == '[' && (g.at(pi) == '=' || g.at(pi) == '.'):
			if pi = g.skipSymbol(pi); pi < 0 {
				return 0, globFail
			}
		}
		if c == ']' {
			return pi, globMatched
		}
	}
}

// skipClass returns the end of "[:name:]" (p[pi] is the ":"), ok false
// when it is not a class name, or -1 when the name is too long.
func (g *globMatcher) skipClass(pi int) (int, bool) {
	for i, n := pi+1, 1; ; i, n = i+1, n+1 {
		if n == 256 {
			return -1, false
		}
		if g.at(i) == ':' && g.at(i+1) == ']' {
			return i + 2, true
		}
		if c := g.at(i); c < 'a' || c >= 'z' {
			return pi, false
		}
	}
}

// skipSymbol returns the end of "[=c=]" or "[.sym.]" (p[pi] is the "=" or
// "."), or -1 when malformed.
func (g *globMatcher) skipSymbol(pi int) int {
	if g.at(pi) == '=' {
		if g.at(pi+1) == 0 || g.at(pi+2) != '=' || g.at(pi+3) != ']' {
			return -1
		}
		return pi + 4
	}
	for i := pi + 1; ; i++ {
		switch {
		case g.at(i) == 0:
			return -1
		case g.at(i) == '.' && g.at(i+1) == ']':
			return i + 2
		}
	}
}

var aptCharClasses = map[string]bool{"alpha": true, "upper": true, "lower": true, "digit": true,
	"xdigit": true, "space": true, "print": true, "punct": true, "graph": true, "cntrl": true,
	"blank": true, "alnum": true}

// aptInClass is iswCLASS(r) as glibc has it in a UTF-8 locale: ASCII as in
// the C locale; beyond ASCII, Unicode letters and also the digits of other
// scripts are "alpha" (only 0-9 are "digit").
func aptInClass(class string, r rune) bool {
	alpha := unicode.IsLetter(r) || r >= 0x80 && unicode.IsDigit(r)
	switch class {
	case "alpha":
		return alpha
	case "upper":
		return unicode.IsUpper(r)
	case "lower":
		return unicode.IsLower(r)
	case "digit":
		return '0' <= r && r <= '9'
	case "xdigit":
		return r < 0x80 && aptIsXDigit(byte(r))
	case "space":
		return r < 0x80 && aptIsSpace(byte(r)) || r >= 0x80 && unicode.IsSpace(r) && r != 0xa0 && r != 0x2007 && r != 0x202f && r != 0x85
	case "blank":
		return r == ' ' || r == '\t' || r >= 0x80 && unicode.Is(unicode.Zs, r) && r != 0xa0 && r != 0x2007 && r != 0x202f
	case "cntrl":
		return unicode.IsControl(r)
	case "alnum":
		return alpha || '0' <= r && r <= '9'
	case "print":
		return unicode.IsPrint(r) || r == ' '
	case "graph":
		return unicode.IsPrint(r) && r != ' '
	case "punct":
		return unicode.IsPrint(r) && r != ' ' && !alpha && !('0' <= r && r <= '9')
	}
	return false
}
