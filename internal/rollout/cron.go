package rollout

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Cron is a parsed standard five-field cron expression: minute, hour,
// day of month, month, day of week. Each field is a bit set of the values
// it allows.
//
// Syntax is Vixie cron's: `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n`
// and `a/n` (a to the field's maximum), comma lists, three-letter month and
// day names (jan, mon; any case), day of week 0-7 with 0 and 7 Sunday.
// As in Vixie cron and cronie, when both day of month and day of week are
// restricted (the field does not start with `*`) a day matches if either
// does; otherwise both must. Macros (@daily) and a sixth field are refused,
// and so is an expression that can never match (`0 0 31 2 *`).
type Cron struct {
	Minute, Hour, Dom, Month, Dow uint64
	// DomStar and DowStar record a field that starts with `*`.
	DomStar, DowStar bool
	src              string
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// daysIn is the most days a month can have (February: 29).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// ParseCron parses a five-field cron expression.
func ParseCron(s string) (Cron, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return Cron{}, fmt.Errorf("cron %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", s, len(f))
	}
	var c Cron
	sets := [5]*uint64{&c.Minute, &c.Hour, &c.Dom, &c.Month, &c.Dow}
	for i, text := range f {
		v, err := parseCronField(text, cronFields[i])
		if err != nil {
			return Cron{}, fmt.Errorf("cron %q: %s: %w", s, cronFields[i].name, err)
		}
		*sets[i] = v
	}
	if c.Dow&(1<<7) != 0 { // 7 is Sunday too
		c.Dow = c.Dow&^(1<<7) | 1
	}
	c.DomStar = strings.HasPrefix(f[2], "*")
	c.DowStar = strings.HasPrefix(f[4], "*")
	if c.DowStar { // the day of month alone decides: it must exist

		ok := false
		for m := 1; m <= 12 && !ok; m++ {
			if c.Month&(1<<m) != 0 && bits.TrailingZeros64(c.Dom) <= daysIn[m] {
				ok = true
			}
		}
		if !ok {
			return Cron{}, fmt.Errorf("cron %q: the day of month never occurs in the months given", s)
		}
	}
	c.src = strings.Join(f, " ")
	return c, nil
}

// String returns the expression as parsed (fields separated by one space).
func (c Cron) String() string { return c.src }

func parseCronField(text string, f cronField) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(text, ",") {
		if part == "" {
			return 0, fmt.Errorf("empty list item in %q", text)
		}
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("bad step %q in %q", stepText, part)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = f.min, f.max
			if f.max == 7 { // day of week: 0-6, 7 is an alias
				hi = 6
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, f); err != nil {
				return 0, err
			}
			if hi, err = cronValue(b, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := cronValue(rng, f)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep { // a/n: from a to the maximum
				hi = f.max
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func cronValue(s string, f cronField) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	if s == "" || len(s) > 2 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad value %q", s)
	}
	v, _ := strconv.Atoi(s)
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("value %d out of range %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// matchDay reports whether a date (month 1-12, day 1-31, weekday 0-6
// Sunday first) is a day the expression runs on.
func (c *Cron) matchDay(month, day, weekday int) bool {
	if c.Month&(1<<month) == 0 {
		return false
	}
	dom := c.Dom&(1<<day) != 0
	dow := c.Dow&(1<<weekday) != 0
	if !c.DomStar && !c.DowStar {
		return dom || dow
	}
	return dom && dow
}

// values lists the members of a bit set in increasing order.
func values(set uint64) []int {
	var out []int
	for set != 0 {
		v := bits.TrailingZeros64(set)
		out = append(out, v)
		set &^= 1 << v
	}
	return out
}
