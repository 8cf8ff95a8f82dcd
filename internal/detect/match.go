package detect

import "github.com/patchloop/patchloop/internal/deb"

// fileMatch is apt's pkgVersionMatch::FileMatch for release and origin
// pins against one package file.
func fileMatch(pin deb.Pin, f *PackageFile) bool {
	switch pin.Type {
	case "release":
		m := deb.ParseReleaseMatch(pin.Data)
		if f.Status {
			return statusFileMatch(m)
		}
		return releaseMatch(m, f)
	case "origin":
		site := pin.Data
		if len(site) >= 2 && site[0] == '"' && site[len(site)-1] == '"' {
			site = site[1 : len(site)-1]
		}
		if f.Status {
			return false // apt never matches origin pins against the status file
		}
		return deb.ExpressionMatches(site, f.Site)
	}
	return false
}

func releaseMatch(m deb.ReleaseMatch, f *PackageFile) bool {
	if m.MatchAll {
		return true
	}
	if m == (deb.ReleaseMatch{}) {
		return false
	}
	if m.Version != "" && !prefixMatch(f.Version, m.Version, m.VersionPrefix) && !deb.ExpressionMatches(m.Version, f.Version) {
		return false
	}
	checks := []struct{ pattern, value string }{
		{m.Origin, f.Origin}, {m.Archive, f.Archive}, {m.Codename, f.Codename}, {m.Label, f.Label},
		{m.Component, f.Component}, {m.Architecture, f.Arch},
	}
	for _, c := range checks {
		if c.pattern != "" && !deb.ExpressionMatches(c.pattern, c.value) {
			return false
		}
	}
	if m.Release != "" && !deb.ExpressionMatches(m.Release, f.Archive) && !deb.ExpressionMatches(m.Release, f.Codename) {
		return false
	}
	return true
}

// statusFileMatch: the status file has no Release; apt matches a
// release pin's archive, release and component against "now" there.
func statusFileMatch(m deb.ReleaseMatch) bool {
	if m.MatchAll {
		return true
	}
	if m.Origin != "" || m.Label != "" || m.Version != "" || m.Codename != "" || m.Architecture != "" {
		return false
	}
	for _, pattern := range []string{m.Archive, m.Release, m.Component} {
		if pattern != "" && !deb.ExpressionMatches(pattern, "now") {
			return false
		}
	}
	return true
}

// prefixMatch is pkgVersionMatch::MatchVer: case-insensitive equality,
// or prefix equality when the pattern ended in '*'.
func prefixMatch(s, pattern string, prefix bool) bool {
	if len(s) < len(pattern) || (!prefix && len(s) != len(pattern)) {
		return false
	}
	return equalFoldASCII(s[:len(pattern)], pattern)
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
