package changelog

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/deb"
)

// FuzzParse checks that Parse never panics, that what it returns is well
// formed, and that ParseNewer and Log.Newer agree on every cut.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample), "2.0-1")
	f.Add([]byte(tinyChangelog), "1.0-1")
	f.Add(realChangelog(f, jqDeb, "jq")[:3000], "1.6-2.1+deb12u1")
	f.Add([]byte("pkg (1.0-) unstable; urgency=low\n  * CVE-2020-2222\npkg (1) x; urgency=low\n"), "0")
	f.Add([]byte("Local variables:\npkg (1) x;\n"), "1")
	f.Fuzz(func(t *testing.T, text []byte, installed string) {
		log, err := Parse(bytes.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		for _, e := range log.Entries {
			if deb.ValidVersion(e.Version) != nil {
				t.Fatalf("entry with bad version %q", e.Version)
			}
			if !slices.IsSortedFunc(e.CVEs, compareCVE) || len(slices.Compact(slices.Clone(e.CVEs))) != len(e.CVEs) {
				t.Fatalf("CVEs not sorted and unique: %v", e.CVEs)
			}
			for _, id := range e.CVEs {
				if !strings.HasPrefix(id, "CVE-") || len(appendCVEs(nil, []byte(id))) != 1 {
					t.Fatalf("bad CVE ID %q", id)
				}
			}
		}
		if deb.ValidVersion(installed) != nil {
			return
		}
		c1, err := log.Newer(installed)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseNewer(bytes.NewReader(text), "fuzz", installed)
		if err != nil {
			if len(log.Entries) > 0 && deb.CompareValid(log.Entries[0].Version, installed) > 0 {
				t.Fatalf("ParseNewer failed where Parse found newer entries: %v", err)
			}
			return
		}
		if !reflect.DeepEqual(c1.Entries, c2.Entries) || !reflect.DeepEqual(c1.CVEs, c2.CVEs) ||
			c1.Urgency != c2.Urgency || c1.Complete != c2.Complete {
			t.Fatalf("Newer and ParseNewer disagree for %q:\n%+v\n%+v", installed, c1, c2)
		}
	})
}

// FuzzReadDeb checks that reading arbitrary bytes as a .deb never panics
// and that a failure is an error naming the package.
func FuzzReadDeb(f *testing.F) {
	f.Add(buildDeb(f, "gz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: gzChangelog(f, tinyChangelog)}))
	f.Add(buildDeb(f, "", tarEntry{name: "./usr/share/doc/hello", link: "x"}))
	f.Add(arArchive(f, [][2]string{{"debian-binary", "2.0\n"}, {"data.tar", "xx"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadDeb(bytes.NewReader(data), "fuzz.deb", "hello", true)
		if err != nil && !strings.Contains(err.Error(), "fuzz.deb") {
			t.Fatalf("error does not name the package: %v", err)
		}
	})
}
