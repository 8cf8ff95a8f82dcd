package deb

import "strings"

// ReleaseMatch is the parsed data of a "Pin: release ..." line, as apt's
// pkgVersionMatch constructor (apt-pkg/versionmatch.cc) splits it.
type ReleaseMatch struct {
	MatchAll      bool   // "release *"
	Version       string // v= (or a bare value starting with a digit)
	VersionPrefix bool   // Version ended in "*", which was removed
	Origin        string // o=
	Archive       string // a=
	Codename      string // n=
	Release       string // a bare value not starting with a digit: archive or codename
	Label         string // l=
	Component     string // c=
	Architecture  string // b=
}

// ParseReleaseMatch splits the data of a release pin as apt does:
// "*" matches everything; a value without "=" is a version when it starts
// with a digit, else an archive-or-codename; otherwise comma-separated
// "k=value" fields (v, o, a, n, l, c, b; keys case-insensitive, fields of
// fewer than three characters and unknown keys ignored, the last of a key
// wins). apt gives up on data with 20 or more fields: such a pin matches
// nothing, which the zero ReleaseMatch (no field set) also does.
func ParseReleaseMatch(data string) ReleaseMatch {
	var m ReleaseMatch
	if data == "" {
		return m
	}
	if data == "*" {
		m.MatchAll = true
		return m
	}
	if !strings.Contains(data, "=") {
		if data[0] >= '0' && data[0] <= '9' {
			m.Version, m.VersionPrefix = aptCutStar(data)
		} else {
			m.Release = data
		}
		return m
	}
	if len(data) > 299 { // apt copies the data into a char[300]
		data = data[:299]
	}
	frags, ok := aptTokSplit(data, ',', 20)
	if !ok {
		return ReleaseMatch{}
	}
	for _, f := range frags {
		m.setField(f)
	}
	m.Version, m.VersionPrefix = aptCutStar(m.Version)
	return m
}

func (m *ReleaseMatch) setField(f string) {
	if len(f) < 3 || f[1] != '=' {
		return
	}
	val := f[2:]
	switch aptLower(f[0]) {
	case 'v':
		m.Version = val
	case 'o':
		m.Origin = val
	case 'a':
		m.Archive = val
	case 'n':
		m.Codename = val
	case 'l':
		m.Label = val
	case 'c':
		m.Component = val
	case 'b':
		m.Architecture = val
	}
}

func aptCutStar(s string) (string, bool) {
	if strings.HasSuffix(s, "*") {
		return s[:len(s)-1], true
	}
	return s, false
}

// aptTokSplit is TokSplitString: fields separated by tok, trimmed of white
// space (and of trailing tok); false when max or more fields.
func aptTokSplit(s string, tok byte, max int) ([]string, bool) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	skip := func(ch byte) bool { return ch == tok || aptIsSpace(ch) }
	start := 0
	for start < len(s) && aptIsSpace(s[start]) {
		start++
	}
	var out []string
	pos := start
	for pos != len(s) {
		for pos != len(s) && s[pos] != tok {
			pos++
		}
		end := pos
		for end > start && skip(s[end-1]) {
			end--
		}
		out = append(out, s[start:end])
		if len(out) >= max {
			return nil, false
		}
		for pos != len(s) && skip(s[pos]) {
			pos++
		}
		start = pos
	}
	return out, true
}

// ExpressionMatches is apt's pkgVersionMatch::ExpressionMatches as glibc
// (Debian 12, UTF-8 locale) evaluates it. A pattern "/.../" is a POSIX
// extended regular expression, case-insensitive, searched for in s; any
// other pattern is an fnmatch(3) glob with FNM_CASEFOLD only. Unlike Go's
// path.Match, "*" and "?" also match "/" and leading dots, "[!...]" and
// "[^...]" both negate, an unterminated "[" is an ordinary character, and
// a glob that fails on the characters of s is retried on its bytes (as
// glibc does: "??" matches "é"). Both were checked against glibc on
// millions of random inputs; the known differences are back-references
// (never match here), \b, \B, \< and \> next to non-ASCII letters (ASCII
// word characters only here) and repetition counts above 1000 (invalid
// here). An invalid expression matches nothing, as in apt after its
// warning. Strings end at a NUL byte, as in C.
func ExpressionMatches(pattern, s string) bool {
	pattern, s = aptCString(pattern), aptCString(s)
	if len(pattern) >= 1 && pattern[0] == '/' && pattern[len(pattern)-1] == '/' {
		re := ""
		if len(pattern) >= 2 {
			re = pattern[1 : len(pattern)-1]
		}
		return aptRegexMatch(re, s)
	}
	return aptFnmatch(pattern, s)
}

// aptCString is s up to its first NUL byte.
func aptCString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
