package rpm

// RPM version ordering, following rpm 4.18.0: rpmio/rpmvercmp.c
// (rpmvercmp), rpmio/rpmver.c (parseEVR, rpmverCmp) and
// python/rpmver-py.c (what rpm.labelCompare accepts). Checked against
// python3-rpm 4.18.0 on generated pairs (TestCompareEVROracle).

import (
	"fmt"
	"strings"
)

// EVR is an RPM epoch:version-release. The fields are as rpm's parseEVR
// splits "[epoch:]version[-release]": Epoch is the run of digits before a
// colon ("" when there is none, which compares as "0"; a bare ":" gives
// "0"), Release is what follows the last '-', and Version is what is left.
type EVR struct {
	Epoch   string
	Version string
	Release string
	// HasRelease records that the string had a '-', which matters only
	// when Release is empty: rpm orders a missing release below every
	// release, the empty one included, so "1.0" < "1.0-" < "1.0-0".
	// A non-empty Release counts as present whatever HasRelease says.
	HasRelease bool
}

// VersionError reports an EVR that rpm refuses to compare.
type VersionError struct {
	Version string
	Reason  string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("rpm version %q is invalid: %s", e.Version, e.Reason)
}

// reasonEmpty is the only thing rpmverParse refuses ("invalid version" in
// rpm.labelCompare): an empty string. rpm reads C strings, so a string
// that starts with a NUL byte is empty too.
const reasonEmpty = "version string is empty"

// ParseEVR splits s as rpm 4.18 does (rpmverParse). Nothing but the empty
// string is an error: rpm accepts any other text, and orders it with the
// rules of Vercmp. As rpm reads C strings, s ends at its first NUL byte.
func ParseEVR(s string) (EVR, error) {
	s = cstring(s)
	if s == "" {
		return EVR{}, &VersionError{Version: s, Reason: reasonEmpty}
	}
	var e EVR
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	rest := s
	if i < len(s) && s[i] == ':' {
		e.Epoch = s[:i]
		if e.Epoch == "" {
			e.Epoch = "0"
		}
		rest = s[i+1:]
	}
	e.Version = rest
	if dash := strings.LastIndexByte(rest, '-'); dash >= 0 {
		e.Version, e.Release, e.HasRelease = rest[:dash], rest[dash+1:], true
	}
	return e, nil
}

// String writes e back as "[epoch:]version[-release]".
func (e EVR) String() string {
	s := e.Version
	if e.Epoch != "" {
		s = e.Epoch + ":" + s
	}
	if e.hasRelease() {
		s += "-" + e.Release
	}
	return s
}

func (e EVR) hasRelease() bool { return e.HasRelease || e.Release != "" }

// Compare orders e against o as rpm's rpmverCmp (and so rpm.labelCompare)
// does, returning -1, 0 or 1: the epochs with Vercmp, a missing epoch
// being "0" (so "1.0" equals "0:1.0", as in rpm, dnf and yum), then the
// versions, then the releases, a missing release sorting below any.
//
// This orders two package versions, as labelCompare and dnf do. It is not
// rpm's dependency matching (rpmverOverlap), where "Requires: foo >= 1.0"
// without a release matches 1.0 of any release.
func (e EVR) Compare(o EVR) int {
	ea, eb := e.Epoch, o.Epoch
	if ea == "" {
		ea = "0"
	}
	if eb == "" {
		eb = "0"
	}
	if c := Vercmp(ea, eb); c != 0 {
		return c
	}
	if c := Vercmp(e.Version, o.Version); c != 0 {
		return c
	}
	switch ra, rb := e.hasRelease(), o.hasRelease(); {
	case !ra && !rb:
		return 0
	case !rb:
		return 1
	case !ra:
		return -1
	}
	return Vercmp(e.Release, o.Release)
}

// CompareEVR orders two "[epoch:]version[-release]" strings as
// rpm.labelCompare does in rpm 4.18, returning -1, 0 or 1 as a is lower
// than, equal to or higher than b. It does not allocate.
//
// A missing epoch is 0, so "1:1.0-1" > "2.0-1" and "0:1.0-1" == "1.0-1".
// A missing release sorts below any release: "1.0" < "1.0-1".
//
// rpm refuses only the empty string (ParseEVR's error); CompareEVR, made
// for sorting, puts it below every other EVR instead.
func CompareEVR(a, b string) int {
	ea, errA := ParseEVR(a)
	eb, errB := ParseEVR(b)
	switch {
	case errA != nil && errB != nil:
		return 0
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return ea.Compare(eb)
}

// Vercmp compares two version or release strings exactly as rpm's
// rpmvercmp, returning -1, 0 or 1.
//
// Each string is read as a series of segments, runs of ASCII digits or of
// ASCII letters; every other byte separates segments and is otherwise
// ignored, except two:
//   - '~' sorts before anything, even the end of the string:
//     "1.0~rc1" < "1.0".
//   - '^' sorts after the end of the string but before anything else:
//     "1.0" < "1.0^git1" < "1.0.1".
//
// Digit segments compare as numbers of any length (leading zeros do not
// count, "1.01" equals "1.1"), letter segments byte-wise ("B" < "a"), and
// a digit segment is newer than a letter segment. When all segments are
// equal, the string with segments left over is newer; separators alone
// make no difference ("1.0" equals "1_0", "1.0." equals "1.0"). As rpm
// reads C strings, a string ends at its first NUL byte.
func Vercmp(a, b string) int {
	a, b = cstring(a), cstring(b)
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		ca, cb := byteAt(a, i), byteAt(b, j)
		// Tilde: before everything, the end of the string included.
		if ca == '~' || cb == '~' {
			if ca != '~' {
				return 1
			}
			if cb != '~' {
				return -1
			}
			i++
			j++
			continue
		}
		// Caret: like tilde, except that the end of the string (the
		// base version) sorts before it.
		if ca == '^' || cb == '^' {
			switch {
			case i == len(a):
				return -1
			case j == len(b):
				return 1
			case ca != '^':
				return 1
			case cb != '^':
				return -1
			}
			i++
			j++
			continue
		}
		if i == len(a) || j == len(b) {
			break
		}
		// One segment of a's kind from each: a's is never empty here.
		si, sj := i, j
		isNum := isDigit(a[i])
		if isNum {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		if sj == j {
			// b's segment is of the other kind: numbers are newer.
			if isNum {
				return 1
			}
			return -1
		}
		sa, sb := a[si:i], b[sj:j]
		if isNum {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				if len(sa) > len(sb) {
					return 1
				}
				return -1
			}
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
	}
	switch {
	case i == len(a) && j == len(b):
		return 0
	case i == len(a):
		return -1
	}
	return 1
}

// cstring is s as C sees it: up to the first NUL byte.
func cstring(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

func byteAt(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// The rctype tests of rpm (rpmstring.h): ASCII only, whatever the locale.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
