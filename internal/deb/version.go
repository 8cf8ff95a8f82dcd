package deb

// Debian version ordering, written here rather than taken from
// pault.ag/go/debian/version (v0.19.0). Run on the 200,000 generated pairs
// of TestCompareVersionsOracle, that library disagreed with libdpkg 1.21.23
// on 11,578: it refuses versions dpkg only warns about (not starting with a
// digit, characters such as '_' or '%'), accepts some dpkg refuses (empty
// revision "1.0-", empty upstream "-1", epochs above 2147483647), and it
// trims \n, \r, \v and \f, which dpkg keeps and orders (208 pairs both
// accept were ordered differently). This file follows dpkg's
// lib/dpkg/parsehelp.c (parseversion) and lib/dpkg/version.c (verrevcmp,
// order) instead, and compares without allocating.

import (
	"fmt"
	"math"
	"strings"
)

// VersionError reports a version string that dpkg rejects as bad syntax.
// Reason is dpkg's own wording, e.g. "epoch in version is not number".
type VersionError struct {
	Version string
	Reason  string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("version %q has bad syntax: %s", e.Version, e.Reason)
}

// The reasons dpkg gives for the syntax errors it refuses to compare past.
// Those it only warns about (a first character that is not a digit,
// characters outside [A-Za-z0-9.+~:-]) are accepted here as dpkg accepts
// them, and the version is compared as written.
const (
	reasonEmpty         = "version string is empty"
	reasonSpaces        = "version string has embedded spaces"
	reasonEpochEmpty    = "epoch in version is empty"
	reasonEpochNotNum   = "epoch in version is not number"
	reasonEpochNegative = "epoch in version is negative"
	reasonEpochTooBig   = "epoch in version is too big"
	reasonColonNothing  = "nothing after colon in version number"
	reasonRevisionEmpty = "revision number is empty"
	reasonUpstreamEmpty = "version number is empty"
	// dpkg reads versions as C strings and so never sees a NUL; a Go
	// string can hold one, and we refuse it rather than truncate.
	reasonNUL = "version string contains a NUL byte"
)

// version is a parsed version; upstream and revision are substrings of the
// input, so parsing does not allocate.
type version struct {
	epoch              int64
	upstream, revision string
}

// CompareVersions orders two Debian versions exactly as dpkg does
// (dpkg --compare-versions, and dpkg_version_compare in libdpkg),
// returning -1, 0 or 1 as a is lower than, equal to or higher than b.
//
// The epochs are compared numerically, then the upstream versions, then
// the revisions. Within each part, runs of non-digits are compared
// character by character with '~' lowest (lower even than the end of the
// string), then letters, then everything else; runs of digits are
// compared as numbers, so "1.01" equals "1.1".
//
// The error is a *VersionError when a or b is bad syntax for dpkg: empty,
// spaces inside, an epoch that is empty, not a number, negative or above
// 2147483647, nothing after the epoch's colon, an empty upstream version
// or an empty revision ("1.0-"). Unlike the dpkg CLI, which takes "" and
// "<unknown>" to mean "no version" and sorts it lowest, CompareVersions
// treats both as ordinary input, as libdpkg's parseversion does.
func CompareVersions(a, b string) (int, error) {
	va, reason := parseVersion(a)
	if reason != "" {
		return 0, &VersionError{Version: a, Reason: reason}
	}
	vb, reason := parseVersion(b)
	if reason != "" {
		return 0, &VersionError{Version: b, Reason: reason}
	}
	return compareParsed(va, vb), nil
}

// CompareValid is CompareVersions for versions already checked with
// ValidVersion (for example while reading a Packages index or the dpkg
// status file), for use in sorts and other hot paths. It does not
// allocate.
//
// It never fails: if a version is bad syntax after all, it sorts below
// every valid version, and bad versions order among themselves byte-wise,
// so CompareValid stays a consistent total order that sort functions can
// rely on.
func CompareValid(a, b string) int {
	va, ra := parseVersion(a)
	vb, rb := parseVersion(b)
	switch {
	case ra == "" && rb == "":
		return compareParsed(va, vb)
	case ra != "" && rb != "":
		return strings.Compare(a, b)
	case ra != "":
		return -1
	default:
		return 1
	}
}

// ValidVersion returns a *VersionError if dpkg would refuse s as a
// version, and nil otherwise (including where dpkg only warns).
func ValidVersion(s string) error {
	if _, reason := parseVersion(s); reason != "" {
		return &VersionError{Version: s, Reason: reason}
	}
	return nil
}

func compareParsed(a, b version) int {
	switch {
	case a.epoch > b.epoch:
		return 1
	case a.epoch < b.epoch:
		return -1
	}
	if c := verrevcmp(a.upstream, b.upstream); c != 0 {
		return c
	}
	return verrevcmp(a.revision, b.revision)
}

// parseVersion splits s as dpkg's parseversion does and returns the reason
// dpkg would give for refusing it, or "".
func parseVersion(s string) (version, string) {
	if strings.IndexByte(s, 0) >= 0 {
		return version{}, reasonNUL
	}
	// Trim leading and trailing blanks (space and tab only, as c_isblank);
	// any blank left inside is an error.
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i == len(s) {
		return version{}, reasonEmpty
	}
	end := i
	for end < len(s) && !isBlank(s[end]) {
		end++
	}
	for j := end; j < len(s); j++ {
		if !isBlank(s[j]) {
			return version{}, reasonSpaces
		}
	}
	// dpkg tests for "nothing after colon" before dropping trailing
	// blanks, so "1: " has an empty upstream version instead.
	untrimmed := s[i:]
	s = s[i:end]

	var v version
	if colon := strings.IndexByte(s, ':'); colon >= 0 {
		epoch, reason := parseEpoch(s[:colon])
		if reason != "" {
			return version{}, reason
		}
		if colon == len(untrimmed)-1 {
			return version{}, reasonColonNothing
		}
		v.epoch = epoch
		s = s[colon+1:]
	}
	v.upstream = s
	if hyphen := strings.LastIndexByte(s, '-'); hyphen >= 0 {
		v.upstream, v.revision = s[:hyphen], s[hyphen+1:]
		if v.revision == "" {
			return version{}, reasonRevisionEmpty
		}
	}
	if v.upstream == "" {
		return version{}, reasonUpstreamEmpty
	}
	return v, ""
}

// parseEpoch reads the text before the first colon the way dpkg does, with
// strtol(3) in base 10: leading white space (which can only be \n, \v, \f
// or \r here, blanks having been rejected) and one sign are allowed, and
// the digits must run right up to the colon.
func parseEpoch(s string) (int64, string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var n int64
	for ; i < len(s) && isDigit(s[i]); i++ {
		// Saturate: past 2^31-1 only "negative" or "too big" can follow.
		n = min(n*10+int64(s[i]-'0'), math.MaxInt32+1)
	}
	switch {
	case i == start:
		return 0, reasonEpochEmpty
	case i != len(s):
		return 0, reasonEpochNotNum
	case neg && n != 0:
		return 0, reasonEpochNegative
	case n > math.MaxInt32:
		return 0, reasonEpochTooBig
	}
	return n, ""
}

// verrevcmp compares one upstream version or revision as dpkg's verrevcmp
// does. It returns -1, 0 or 1.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// Non-digit prefix, character by character.
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := order(a, i), order(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		// Digit run, numerically: skip leading zeros, then the longer run
		// wins, else the first differing digit.
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

// order is the weight of s[i] in a non-digit run: the end of the string
// and digits 0, '~' -1, letters their ASCII code, other ASCII characters
// their code plus 256. dpkg computes the weight from a (signed on amd64)
// char, so for bytes 0x80-0xff it yields c+256 with c negative, that is the
// byte value itself: above letters and below other punctuation.
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	switch c := s[i]; {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	case c >= 0x80:
		return int(c)
	default:
		return int(c) + 256
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isSpace is isspace(3) in the C locale.
func isSpace(c byte) bool { return c == ' ' || '\t' <= c && c <= '\r' }
