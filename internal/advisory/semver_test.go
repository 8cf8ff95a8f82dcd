package advisory

import "testing"

func TestCompareSemver(t *testing.T) {
	// Section 11 of SemVer 2.0.0, in ascending order.
	order := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0",
		"18446744073709551616.0.0", // above uint64: compared as digit strings
	}
	for i := range order {
		for j := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareSemver(order[i], order[j]); got != want {
				t.Errorf("CompareSemver(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0+build.1", "1.0.0+build.2", 0}, // build metadata is ignored
		{"1.0.0-rc.1+b", "1.0.0-rc.1", 0},
		{"1.0.0-1", "1.0.0-a", -1}, // numeric below alphanumeric
		{"1.0.0-a-b", "1.0.0-a", 1},
		{"1.0", "0.0.1", -1}, // not SemVer: below every valid version
		{"1.0", "1.1", -1},   // two invalid ones: byte-wise
		{"v1.0.0", "0.0.0", -1},
	}
	for _, tt := range tests {
		if got := CompareSemver(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareSemver(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestValidSemver(t *testing.T) {
	for _, v := range []string{"0.0.0", "1.2.3", "1.2.3-0", "1.2.3-alpha.0.x-y", "1.2.3+001", "1.2.3-rc.1+exp.sha.5114f85"} {
		if !ValidSemver(v) {
			t.Errorf("ValidSemver(%q) = false", v)
		}
	}
	for _, v := range []string{"", "1", "1.2", "v1.2.3", "01.2.3", "1.02.3", "1.2.3-01", "1.2.3-", "1.2.3+", "1.2.3-a..b", "1.2.3-a_b", "1.2.3.4", " 1.2.3"} {
		if ValidSemver(v) {
			t.Errorf("ValidSemver(%q) = true", v)
		}
	}
}
