// Package repo fetches and verifies apt repository metadata: InRelease
// (OpenPGP clear-signed, checked against the keyring the source names),
// the Release hash lists, and Packages indexes whose SHA256 must match the
// signed Release. It keeps an on-disk cache with conditional requests and
// can work offline from that cache or from apt's own /var/lib/apt/lists,
// still verifying everything. It never returns unverified data (except,
// marked Verified=false, for sources the operator declared trusted=yes).
//
// Verification follows apt: a Release is accepted when at least one of its
// signatures is good and made by a key of the source's keyring that is
// neither expired nor revoked; any bad signature by a known key, or a
// signature over a weak digest (MD5, SHA-1, RIPEMD-160) alone, refuses it.
// Only the signed text is parsed. Valid-Until in the past and Date in the
// future are refused when Fetcher.CheckValidUntil / CheckDate are set.
//
// # Cache layout
//
// Everything lives flat in CacheDir/lists/, named as apt names its lists
// files (see URIToFileName), so the cache and /var/lib/apt/lists are read
// by the same offline code:
//
//	CacheDir/lists/
//	  deb.debian.org_debian_dists_bookworm_InRelease         as downloaded, verified
//	  deb.debian.org_debian_dists_bookworm_InRelease.meta    JSON: url, etag, last_modified
//	  deb.debian.org_debian_dists_bookworm_Release{,.gpg}    only for repositories without InRelease
//	  deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.xz
//	                                                          the listed form, as downloaded
//
// Packages files are stored in the compressed form that was downloaded
// (xz, else gz, else lz4, else plain, whichever the Release lists) and kept
// as long as their hash still matches the signed Release. Every file is
// written through a temporary file and renamed. The Release files are
// written last, once all of a suite's indexes are in place, so a failed
// run leaves the previous Release in the cache; an index it replaced is
// then refused offline (hash mismatch) and fetched again by the next run.
package repo
