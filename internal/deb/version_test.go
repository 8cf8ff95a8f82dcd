package deb

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~~", "1.0~~a", -1},
		{"1.0~~a", "1.0~", -1},
		{"1.0~", "1.0", -1},
		{"1.0", "1.0a", -1},
		{"1.0a", "1.0+", -1}, // letters before non-letters
		{"1.0+", "1.0.", -1}, // then ASCII order: '+' < '.'
		{"1.0a", "1.0.", -1},
		{"1.0.", "1.0.0", 0}, // a zero digit run is no digit run
		{"1.0.", "1.0.1", -1},
		{"1:0.1", "2.0", 1},
		{"0:2.0", "2.0", 0},
		{"00:2.0", "2.0", 0},
		{"1.0-1", "1.0-1+b1", -1},
		{"1.0-1+b1", "1.0-2", -1},
		{"1.0-1~bpo12+1", "1.0-1", -1},
		{"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
		{"1.01", "1.1", 0}, // leading zeros
		{"1.001-01", "1.1-1", 0},
		{"10", "9", 1},
		{"1.10", "1.9", 1},
		{"1.0", "1.0-0", 0}, // no revision sorts as an empty one
		{"1.0", "1.0-1", -1},
		{"1-2-3", "1-2-4", -1}, // the revision is after the last hyphen
		{"1:2:3", "1:2:4", -1}, // colons in upstream need an epoch
		{"1.2.3", "1.2.3.0", -1},
		{"a", "1", 1},           // dpkg warns, then compares
		{"1.0_1", "1.0.1", 1},   // '_' (95+256) > '.' (46+256)
		{"1.0\xc3", "1.0.", -1}, // bytes >= 0x80 weigh their value (signed char)
		{"1.0\xc3", "1.0z", 1},
		{" 1.0\t", "1.0", 0},       // blanks trimmed
		{"\n1:2", "1:2", 0},        // strtol skips \n before the epoch
		{"+1:2", "1:2", 0},         // and takes a sign
		{"-0:2", "2", 0},           // even a minus, on zero
		{"\n1.0", "1.0", 1},        // but \n is no blank: it is compared
		{"<unknown>", "0", 1},      // only the CLI reads it as "no version"
		{"2147483647:1", "9:1", 1}, // the largest epoch
	}
	for _, tt := range tests {
		got, err := CompareVersions(tt.a, tt.b)
		if err != nil {
			t.Errorf("CompareVersions(%q, %q): %v", tt.a, tt.b, err)
			continue
		}
		if got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if back, _ := CompareVersions(tt.b, tt.a); back != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, back, -tt.want)
		}
		if got := CompareValid(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareValid(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCompareVersionsErrors(t *testing.T) {
	tests := []struct{ v, reason string }{
		{"", reasonEmpty},
		{" \t", reasonEmpty},
		{"1.0 1", reasonSpaces},
		{"1.0\t-1", reasonSpaces},
		{":1.0", reasonEpochEmpty},
		{"+:1.0", reasonEpochEmpty},
		{"a:1.0", reasonEpochEmpty},
		{"1a:1.0", reasonEpochNotNum},
		{"1.0:2", reasonEpochNotNum}, // a colon needs a numeric epoch before it
		{"1.0-a:b", reasonEpochNotNum},
		{"-1:1.0", reasonEpochNegative},
		{"2147483648:1.0", reasonEpochTooBig},
		{"99999999999999999999999:1.0", reasonEpochTooBig},
		{"-99999999999999999999999:1.0", reasonEpochNegative},
		{"1:", reasonColonNothing},
		{"1: ", reasonUpstreamEmpty}, // dpkg checks the colon before trimming
		{"1.0-", reasonRevisionEmpty},
		{"-", reasonRevisionEmpty},
		{"-1", reasonUpstreamEmpty},
		{"1:-1", reasonUpstreamEmpty},
		{"1.0\x00", reasonNUL},
	}
	for _, tt := range tests {
		for _, pair := range [][2]string{{tt.v, "1.0"}, {"1.0", tt.v}} {
			_, err := CompareVersions(pair[0], pair[1])
			var ve *VersionError
			if !errors.As(err, &ve) || ve.Version != tt.v || ve.Reason != tt.reason {
				t.Errorf("CompareVersions(%q, %q) error = %v, want reason %q", pair[0], pair[1], err, tt.reason)
			}
		}
		if err := ValidVersion(tt.v); err == nil {
			t.Errorf("ValidVersion(%q) = nil, want error", tt.v)
		}
	}
	if err := ValidVersion("1:2.36-9+deb12u4"); err != nil {
		t.Errorf("ValidVersion: %v", err)
	}
	want := `version "1.0-" has bad syntax: revision number is empty`
	if err := ValidVersion("1.0-"); err == nil || err.Error() != want {
		t.Errorf("ValidVersion(\"1.0-\") = %v, want %s", err, want)
	}
}

// TestCompareValidTotalOrder checks that CompareValid sorts a mix of good
// and bad versions consistently: bad ones first, byte-wise.
func TestCompareValidTotalOrder(t *testing.T) {
	vs := []string{"1.0", "1.0-", "", "0.9", "-1", "1:0", "1.0~rc1", "a b"}
	slices.SortFunc(vs, CompareValid)
	want := []string{"", "-1", "1.0-", "a b", "0.9", "1.0~rc1", "1.0", "1:0"}
	if !slices.Equal(vs, want) {
		t.Errorf("sorted = %q, want %q", vs, want)
	}
}

func TestCompareVersionsAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		CompareVersions("1:2.36-9+deb12u4", "1:2.36-9+deb12u10")
		CompareValid("1.0~rc1", "1.0")
	})
	if allocs != 0 {
		t.Errorf("%v allocations per comparison, want 0", allocs)
	}
}

func BenchmarkCompareVersions(b *testing.B) {
	c := loadCorpus(b)
	rng := rand.New(rand.NewPCG(3, 3))
	pairs := make([][2]string, 1024)
	for i := range pairs {
		// Mostly versions of one package, the comparison detect makes.
		j := rng.IntN(len(c.versions))
		sib := c.siblings[c.pkg[j]]
		pairs[i] = [2]string{c.versions[j], sib[rng.IntN(len(sib))]}
	}
	b.Run("CompareVersions", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := pairs[i%len(pairs)]
			if _, err := CompareVersions(p[0], p[1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CompareValid", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := pairs[i%len(pairs)]
			CompareValid(p[0], p[1])
		}
	})
}
