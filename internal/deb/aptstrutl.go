package deb

import (
	"strconv"
	"strings"
)

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

// aptVectorize is VectorizeString: split at sep, no element for a trailing
// separator, nothing for an empty string.
func aptVectorize(s string, sep byte) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, string(sep))
	if s[len(s)-1] == sep {
		parts = parts[:len(parts)-1]
	}
	return parts
}
