package rpm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestVercmpRpmSuite runs the rpmvercmp cases of rpm's own test suite
// (testdata/rpmvercmp.txt, from rpm 4.18.0 tests/rpmvercmp.at).
func TestVercmpRpmSuite(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rpmvercmp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		want, err := strconv.Atoi(f[len(f)-1])
		if len(f) != 3 || err != nil {
			t.Fatalf("testdata/rpmvercmp.txt:%d: want \"A B result\", got %q", i+1, line)
		}
		if got := Vercmp(f[0], f[1]); got != want {
			t.Errorf("Vercmp(%q, %q) = %d, rpm's test suite says %d", f[0], f[1], got, want)
		}
		n++
	}
	if n < 90 {
		t.Fatalf("only %d cases in testdata/rpmvercmp.txt", n)
	}
}

func TestVercmp(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "0", -1},
		{"1.0", "1.0.", 0},     // trailing separator
		{"1..0", "1.0", 0},     // separators are not compared
		{"1.0", "1\u00e90", 0}, // non-ASCII bytes separate
		{"1a", "1.1", -1},      // letters older than digits
		{"1.1", "1a", 1},       //
		{"a", "1", -1},         //
		{"B", "a", -1},         // byte order of letters
		{"001", "1", 0},        // leading zeros
		{"0", "00", 0},         //
		{"99999999999999999999", "99999999999999999998", 1}, // no overflow
		{"1~", "1", -1},              // tilde before the end
		{"1~~", "1~", -1},            //
		{"~", "", -1},                //
		{"1^", "1", 1},               // caret after the end
		{"1^", "1.0", -1},            // but before anything else
		{"1^", "1~", 1},              //
		{"1^~", "1^", -1},            //
		{"^", "", 1},                 //
		{"^", "~", 1},                //
		{"1\x00garbage", "1", 0},     // C string
		{"1.0\x00", "1.0\x001", 0},   //
		{"5.5p2", "5.5p10", -1},      //
		{"el9_4", "el9_10", -1},      //
		{"el9_4.alma.1", "el9_4", 1}, //
		{"el9", "el9_0", -1},         //
	} {
		if got := Vercmp(tc.a, tc.b); got != tc.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Vercmp(tc.b, tc.a); got != -tc.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestParseEVR(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want EVR
	}{
		{"1.0", EVR{Version: "1.0"}},
		{"1.0-1", EVR{Version: "1.0", Release: "1", HasRelease: true}},
		{"1:3.0.7-27.el9", EVR{Epoch: "1", Version: "3.0.7", Release: "27.el9", HasRelease: true}},
		{"0:1.0-1", EVR{Epoch: "0", Version: "1.0", Release: "1", HasRelease: true}},
		{":1.0-1", EVR{Epoch: "0", Version: "1.0", Release: "1", HasRelease: true}},
		{"007:1", EVR{Epoch: "007", Version: "1"}},
		{"1.0-", EVR{Version: "1.0", HasRelease: true}},
		{"-1", EVR{Release: "1", HasRelease: true}},
		{"1:", EVR{Epoch: "1"}},
		{"1-2-3", EVR{Version: "1-2", Release: "3", HasRelease: true}},
		{"a:1.0-1", EVR{Version: "a:1.0", Release: "1", HasRelease: true}}, // epoch must be digits
		{"1:2:3-4", EVR{Epoch: "1", Version: "2:3", Release: "4", HasRelease: true}},
		{"1.0-1\x00-2", EVR{Version: "1.0", Release: "1", HasRelease: true}},
		{" 1.0", EVR{Version: " 1.0"}}, // rpm does not trim
	} {
		got, err := ParseEVR(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseEVR(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "\x00", "\x001:1.0-1"} {
		_, err := ParseEVR(in)
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Reason != reasonEmpty {
			t.Errorf("ParseEVR(%q) error = %v, want a *VersionError (%s)", in, err, reasonEmpty)
		}
	}
}

func TestCompareEVR(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0-1", "1.0-1", 0},
		{"1.0", "0:1.0", 0},     // missing epoch is 0
		{"1.0-1", ":1.0-1", 0},  // and so is an empty one
		{"1:1.0-1", "2.0-1", 1}, // epoch first
		{"00:1-1", "0:1-1", 0},  // epochs compare as numbers
		{"10:1", "9:1", 1},      //
		{"1.0", "1.0-1", -1},    // missing release lowest
		{"1.0", "1.0-", -1},     // even below an empty one
		{"1.0-", "1.0-0", -1},   //
		{"1.0-", "1.0-~", 1},    // but the empty one is above "~"
		{"1.0~rc1-1", "1.0-1", -1},
		{"1:3.0.7-27.el9", "1:3.0.7-28.el9_4", -1},
		{"2:8.2.2637-20.el9_1", "2:8.2.2637-16.el9_0.2", 1},
		{"0.9~rc2-1.el10_0.1", "0.9-1.el10", -1},
		{"5.14.0-427.13.1.el9_4", "5.14.0-503.14.1.el9_5", -1},
		{"1.9.5p2-10.el9_3", "1.9.17p2-3.el9_8", -1},
		{"252-32.el9_4.alma.1", "252-32.el9_4", 1},
		{"", "0", -1}, // rpm refuses ""; CompareEVR sorts it lowest
		{"", "\x00x", 0},
	} {
		if got := CompareEVR(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareEVR(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareEVR(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareEVR(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestEVRCompareFields(t *testing.T) {
	// Built by hand rather than parsed: a non-empty Release counts as
	// present without HasRelease, and epochs need not be digits.
	for _, tc := range []struct {
		a, b EVR
		want int
	}{
		{EVR{Version: "1", Release: "1"}, EVR{Version: "1", Release: "1", HasRelease: true}, 0},
		{EVR{Version: "1"}, EVR{Version: "1", HasRelease: true}, -1},
		{EVR{Epoch: "a", Version: "1"}, EVR{Epoch: "0", Version: "1"}, -1},
		{EVR{Epoch: "0", Version: "1"}, EVR{Version: "1"}, 0},
	} {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%#v.Compare(%#v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestEVRString(t *testing.T) {
	for _, s := range []string{"1.0", "1.0-1", "1:1.0-1", "0:1.0", "1.0-", "-1", "1-2-3", "a:1"} {
		e, err := ParseEVR(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.String(); got != s {
			t.Errorf("ParseEVR(%q).String() = %q", s, got)
		}
	}
	if got := (EVR{Version: "1", Release: "2"}).String(); got != "1-2" {
		t.Errorf("String() = %q, want 1-2", got)
	}
}

// TestCompareEVRSortsCorpus sorts the real EVRs of testdata/evrs.txt and
// checks that the order is consistent: each adjacent pair is <= and
// equal neighbours are equal both ways.
func TestCompareEVRSortsCorpus(t *testing.T) {
	c := loadCorpus(t)
	evrs := slices.Clone(c.evrs)
	slices.SortFunc(evrs, CompareEVR)
	for i := 1; i < len(evrs); i++ {
		if CompareEVR(evrs[i-1], evrs[i]) > 0 || CompareEVR(evrs[i], evrs[i-1]) < 0 {
			t.Fatalf("sorted corpus out of order at %d: %q, %q", i, evrs[i-1], evrs[i])
		}
	}
}

func BenchmarkCompareEVR(b *testing.B) {
	c := loadCorpus(b)
	pairs := genPairs(c, 3, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := pairs[i%len(pairs)]
		CompareEVR(p[0], p[1])
	}
}

func BenchmarkVercmp(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Vercmp("5.14.0-427.13.1.el9_4", "5.14.0-427.13.1.el9_4.alma.1")
	}
}
