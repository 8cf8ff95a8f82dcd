package main

import (
	"strings"
	"testing"
)

func TestCompareStream(t *testing.T) {
	for _, tc := range []struct {
		ecosystem, in, want, err string
	}{
		{"debian", "1.0 1.0-1\n1:0 2\n1.0~rc1 1.0~rc1\n", "<\n>\n=\n", ""},
		{"rpm", "1.0-1 1.0-2\n1:1.0 2.0\n1.0~rc1 1.0\n0:1.0-1 1.0-1\n1.0^git1 1.0.1\n1.0 1.0-1\n", "<\n>\n<\n=\n<\n<\n", ""},
		{"rpm", "5.14.0-427.13.1.el9_4   5.14.0-503.14.1.el9_5\n\t2:8.2.2637-20.el9_1 8.2.2637-30\n", "<\n>\n", ""},
		{"rpm", "1.0 1.0\n1.0\n1 2\n", "=\n", `stdin line 2: want two versions "A B", got 1 fields`},
		{"rpm", "1 2\n\x00 1\n", "<\n", `stdin line 2: rpm version "" is invalid: version string is empty`},
		{"debian", "1.0 1.0-\n", "", `stdin line 1: version "1.0-" has bad syntax: revision number is empty`},
	} {
		cmp, ok := versionComparer(tc.ecosystem)
		if !ok {
			t.Fatalf("no comparer for %q", tc.ecosystem)
		}
		var out strings.Builder
		err := compareStream(strings.NewReader(tc.in), &out, cmp)
		if got := out.String(); got != tc.want {
			t.Errorf("%s %q: output %q, want %q", tc.ecosystem, tc.in, got, tc.want)
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s %q: %v", tc.ecosystem, tc.in, err)
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%s %q: error %v, want %s", tc.ecosystem, tc.in, err, tc.err)
		}
	}
	if _, ok := versionComparer("alpine"); ok {
		t.Error("versionComparer(alpine) is not supported yet")
	}
}
