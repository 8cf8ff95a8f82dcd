// Package repo fetches and verifies apt repository metadata: InRelease
// (OpenPGP clear-signed, checked against the keyring the source names),
// the Release hash lists, and Packages indexes whose SHA256 must match the
// signed Release. It keeps an on-disk cache with conditional requests and
// can work offline from that cache or from apt's own /var/lib/apt/lists,
// still verifying everything. It never returns unverified data.
package repo
