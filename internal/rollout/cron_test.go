package rollout

import (
	"strings"
	"testing"
)

func bitsOf(vs ...int) uint64 {
	var b uint64
	for _, v := range vs {
		b |= 1 << v
	}
	return b
}

func span(lo, hi, step int) []int {
	var out []int
	for v := lo; v <= hi; v += step {
		out = append(out, v)
	}
	return out
}

func TestParseCron(t *testing.T) {
	tests := []struct {
		expr                          string
		minute, hour, dom, month, dow []int
		domStar, dowStar              bool
	}{
		{"0 2 * * sun", []int{0}, []int{2}, span(1, 31, 1), span(1, 12, 1), []int{0}, true, false},
		{"30 1 * * 7", []int{30}, []int{1}, span(1, 31, 1), span(1, 12, 1), []int{0}, true, false},
		{"*/15 22-23,0-4 * * mon-fri", []int{0, 15, 30, 45}, []int{0, 1, 2, 3, 4, 22, 23}, span(1, 31, 1), span(1, 12, 1), []int{1, 2, 3, 4, 5}, true, false},
		{"0 3 1-7 * 6", []int{0}, []int{3}, span(1, 7, 1), span(1, 12, 1), []int{6}, false, false},
		{"5/20 * * JAN,jul *", []int{5, 25, 45}, span(0, 23, 1), span(1, 31, 1), []int{1, 7}, span(0, 6, 1), true, true},
		{"0 0 29 2 *", []int{0}, []int{0}, []int{29}, []int{2}, span(0, 6, 1), false, true},
		{"0 0 31 2 mon", []int{0}, []int{0}, []int{31}, []int{2}, []int{1}, false, false},
		{"0 0 * * */2", []int{0}, []int{0}, span(1, 31, 1), span(1, 12, 1), []int{0, 2, 4, 6}, true, true},
		{"59 23 10-20/5 12 0-7", []int{59}, []int{23}, []int{10, 15, 20}, []int{12}, span(0, 6, 1), false, false},
	}
	for _, tt := range tests {
		c, err := ParseCron(tt.expr)
		if err != nil {
			t.Errorf("%q: %v", tt.expr, err)
			continue
		}
		got := [5]uint64{c.Minute, c.Hour, c.Dom, c.Month, c.Dow}
		want := [5]uint64{bitsOf(tt.minute...), bitsOf(tt.hour...), bitsOf(tt.dom...), bitsOf(tt.month...), bitsOf(tt.dow...)}
		if got != want || c.DomStar != tt.domStar || c.DowStar != tt.dowStar {
			t.Errorf("%q: got %v stars %v %v, want %v stars %v %v", tt.expr, got, c.DomStar, c.DowStar, want, tt.domStar, tt.dowStar)
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * *", "@daily", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
		"* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "1,,2 * * * *",
		"a * * * *", "-1 * * * *", "* * * foo *", "0 0 31 2 *", "0 0 30-31 2 *", "0 0 31 4,6,9,11 *",
		"1-2-3 * * * *", "007 * * * *", "* * * * sun-",
	} {
		if c, err := ParseCron(expr); err == nil {
			t.Errorf("%q: accepted as %+v", expr, c)
		}
	}
}

// FuzzParseCron: the parser never panics, its errors name the
// expression, an accepted expression has a value in every field and its
// String parses to the same sets.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 2 * * sun", "*/15 22-23,0-4 * * mon-fri", "0 0 29 2 *", "5/20 * * JAN,jul *", "0 0 31 2 mon", "1,,2 * * * *", "* * * * 8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCron(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cron ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if c.Minute == 0 || c.Hour == 0 || c.Dom == 0 || c.Month == 0 || c.Dow == 0 || c.Dow&(1<<7) != 0 {
			t.Fatalf("%q: empty or unnormalised field: %+v", s, c)
		}
		c2, err := ParseCron(c.String())
		if err != nil || c2 != c {
			t.Fatalf("%q: String %q parses to %+v, %v", s, c.String(), c2, err)
		}
	})
}
