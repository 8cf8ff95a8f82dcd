// Package deb owns what is specific to Debian and its derivatives on the
// endpoint side: version ordering identical to dpkg's, control-file
// (deb822) parsing, the dpkg status database, and apt's configuration
// (apt.conf, sources.list and deb822 .sources, preferences/pins).
//
// It does no network I/O; fetching and verifying repository indexes is
// package repo, and choosing candidates is package detect.
package deb
