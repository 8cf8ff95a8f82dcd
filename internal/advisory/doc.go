// Package advisory parses vulnerability advisory feeds and matches package
// versions against them. It is pure: parsers take bytes, readers or an
// fs.FS and return data; fetching, caching and provenance are package
// feeds.
//
// Formats:
//
//   - OSV records (schema 1.x): single JSON records, directories of them
//     and an ecosystem's all.zip (ParseOSV, LoadOSVDir, ParseOSVZip).
//     Matching follows the evaluation pseudo-code of the OSV schema
//     (Record.Affects, Affected.Includes, Range.Includes), with the
//     version ordering of each ecosystem (ComparatorFor).
//   - The CISA Known Exploited Vulnerabilities catalog (ParseKEV).
//   - FIRST EPSS scores: the daily CSV (optionally gzip) and the per-year
//     "CVE;epss;percentile" files (ParseEPSS, EPSS.Read).
//   - The Debian Security Tracker's DSA and DLA lists (ParseDebianList).
//
// A feed whose format changed (a missing or mistyped top-level field, an
// unexpected header) is an error naming the file and line. A single bad
// record is counted and reported as a Problem and never hides the good
// ones.
package advisory
