// Package rpm owns what is specific to RPM-based systems (RHEL, AlmaLinux,
// Rocky, Fedora, SUSE) on the endpoint side: version ordering identical to
// rpm 4.18's (rpmvercmp and the epoch:version-release comparison of
// rpm.labelCompare), and the inventory of installed packages read from
// the rpm database under a root directory (SQLite rpmdb.sqlite, ndb
// Packages.db or Berkeley DB Packages) without running rpm.
//
// It does no network I/O; repository metadata (repomd.xml, primary.xml)
// will be package repo's, and choosing candidates package detect's.
package rpm
