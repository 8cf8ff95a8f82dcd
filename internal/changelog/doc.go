// Package changelog finds the CVEs a Debian or Ubuntu update fixes by
// reading the changelog shipped in the candidate package itself, as
// apt-listchanges shows it before an upgrade.
//
// It owns four things:
//
//   - parsing the changelog.Debian.gz format (Parse, ParseNewer): entry
//     headers "pkg (version) dist; urgency=X", change lines, " -- " trailers,
//     and every CVE ID each entry mentions;
//   - reading that file out of a .deb (ReadDeb), streaming through the ar
//     archive and data.tar.{xz,zst,gz,bz2,lzma,} and stopping once found;
//   - downloading the candidate .deb and refusing it unless its size and
//     SHA256 are those of a verified Packages index (Fetcher.Read; Locate
//     finds the index entries);
//   - a small on-disk cache of parsed changelogs per (source package,
//     source version), so every source version is read once per cache
//     (Fetcher.Changelogs).
//
// The cache holds the whole entry list; the cut "newer than installed"
// depends on the host and is made per host with Log.Newer.
//
// The flow for one host or a fleet:
//
//	detect.Update (package, arch, candidate, source, source version)
//	  -> Fetcher.Changelogs(indexes, requests)
//	       cache hit:  CacheDir/SOURCE_VERSION.json
//	       cache miss: Locate in the verified Packages indexes
//	                   -> GET mirror/Filename -> size + SHA256 checked
//	                   -> ReadDeb -> Parse -> cache
//	  -> Log.Newer(installed source version) -> CVEs, urgency, entries
package changelog
