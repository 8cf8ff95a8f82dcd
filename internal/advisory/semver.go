package advisory

import "strings"

// semver is a parsed SemVer 2.0.0 version; the parts are substrings of the
// input, so parsing does not allocate. Build metadata is dropped: it does
// not take part in precedence.
type semver struct {
	major, minor, patch string
	pre                 string // dot-separated pre-release identifiers, or ""
}

// ValidSemver reports whether s is a version as SemVer 2.0.0 defines it:
// MAJOR.MINOR.PATCH without leading zeros, an optional "-" pre-release and
// "+" build metadata of dot-separated [0-9A-Za-z-] identifiers, no "v".
func ValidSemver(s string) bool {
	_, ok := parseSemver(s)
	return ok
}

// CompareSemver orders two versions by SemVer 2.0.0 precedence (section
// 11): major, minor and patch numerically; a pre-release below its
// release; pre-release identifiers numerically when both are numeric,
// numeric below alphanumeric, else in ASCII order, and a longer list of
// identifiers higher when all before are equal. Build metadata is
// ignored, so "1.0.0+a" and "1.0.0+b" compare equal.
//
// So that it stays a total order for sorting, strings that are not valid
// SemVer sort below every valid version and among themselves byte-wise,
// as deb.CompareValid does for dpkg.
func CompareSemver(a, b string) int {
	va, okA := parseSemver(a)
	vb, okB := parseSemver(b)
	switch {
	case !okA && !okB:
		return strings.Compare(a, b)
	case !okA:
		return -1
	case !okB:
		return 1
	}
	for _, p := range [...][2]string{{va.major, vb.major}, {va.minor, vb.minor}, {va.patch, vb.patch}} {
		if c := compareNumeric(p[0], p[1]); c != 0 {
			return c
		}
	}
	return comparePrerelease(va.pre, vb.pre)
}

func parseSemver(s string) (semver, bool) {
	var v semver
	s, build, hasBuild := strings.Cut(s, "+")
	if hasBuild && !validIdentifiers(build, false) {
		return v, false
	}
	core, pre, hasPre := strings.Cut(s, "-")
	if hasPre {
		if !validIdentifiers(pre, true) {
			return v, false
		}
		v.pre = pre
	}
	var ok bool
	if v.major, core, ok = strings.Cut(core, "."); !ok {
		return v, false
	}
	if v.minor, v.patch, ok = strings.Cut(core, "."); !ok {
		return v, false
	}
	return v, validNumeric(v.major) && validNumeric(v.minor) && validNumeric(v.patch)
}

// validNumeric reports a numeric identifier: digits, no leading zero.
func validNumeric(s string) bool {
	return allDigits(s) && (len(s) == 1 || s[0] != '0')
}

// validIdentifiers checks dot-separated, non-empty [0-9A-Za-z-]
// identifiers; in a pre-release, numeric ones must not have leading zeros.
func validIdentifiers(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && allDigits(id) && !validNumeric(id) {
			return false
		}
	}
	return true
}

// compareNumeric compares digit strings without leading zeros as numbers,
// of any length.
func compareNumeric(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func comparePrerelease(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1 // a release is above its pre-releases
	case b == "":
		return -1
	}
	for {
		ida, resta, moreA := strings.Cut(a, ".")
		idb, restb, moreB := strings.Cut(b, ".")
		numA, numB := allDigits(ida), allDigits(idb)
		var c int
		switch {
		case numA && numB:
			c = compareNumeric(ida, idb)
		case numA:
			c = -1
		case numB:
			c = 1
		default:
			c = strings.Compare(ida, idb)
		}
		if c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = resta, restb
	}
}
