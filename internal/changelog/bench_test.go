package changelog

import (
	"bytes"
	"testing"
)

// BenchmarkParse parses samba's real changelog (1539 lines, 91 entries,
// 61 distinct CVEs).
func BenchmarkParse(b *testing.B) {
	text := realChangelog(b, sambaDeb, "samba-ad-dc")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(text), "samba"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseNewer is the per-host cut read straight from the file:
// two entries of 91.
func BenchmarkParseNewer(b *testing.B) {
	text := realChangelog(b, sambaDeb, "samba-ad-dc")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseNewer(bytes.NewReader(text), "samba", "2:4.17.11+dfsg-0+deb12u1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadDeb extracts and parses the changelog of real .debs
// (data.tar.xz): what a cache miss costs after the download.
func BenchmarkReadDeb(b *testing.B) {
	for _, tt := range []struct{ deb, pkg string }{{sambaDeb, "samba-ad-dc"}, {jqDeb, "jq"}} {
		data := testdata(b, tt.deb)
		b.Run(tt.pkg, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadDeb(bytes.NewReader(data), tt.deb, tt.pkg, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
