package rollout

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxWindowDuration bounds a window's length: a longer one is better
// written as several windows or no window at all.
const MaxWindowDuration = 7 * 24 * time.Hour

// horizonDays bounds the search for a window's next start (eight years
// covers a February 29 that must also be a Monday only in part; such
// expressions are rare and simply have no next start within the horizon).
const horizonDays = 8 * 366

// Window is a recurring maintenance window: it opens whenever its cron
// expression matches, as wall-clock time in its time zone, and stays open
// for Duration of elapsed time.
//
// Daylight saving time: a start that falls in the hour skipped in spring
// opens the window at the moment the clock jumps (as cronie runs such
// jobs right after the change); a start in the hour repeated in autumn
// opens it once, at the first of the two. The duration is real time, so a
// 4h window over the autumn change ends at a wall-clock time one hour
// earlier than usual.
type Window struct {
	cron     Cron
	duration time.Duration
	loc      *time.Location
}

// NewWindow compiles a window from a cron start expression, a duration and
// an IANA time zone name (time.LoadLocation; "UTC" and "Local" too).
func NewWindow(start string, d time.Duration, zone string) (Window, error) {
	c, err := ParseCron(start)
	if err != nil {
		return Window{}, err
	}
	if d <= 0 || d > MaxWindowDuration {
		return Window{}, fmt.Errorf("window %q: duration %s must be above 0 and at most %s", start, d, MaxWindowDuration)
	}
	if zone == "" {
		return Window{}, fmt.Errorf("window %q: no time zone", start)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", start, err)
	}
	return Window{cron: c, duration: d, loc: loc}, nil
}

// String describes the window: "0 2 * * sun for 4h0m0s in Europe/Berlin".
func (w Window) String() string {
	if w.loc == nil {
		return "(no window)"
	}
	return fmt.Sprintf("%s for %s in %s", w.cron, w.duration, w.loc)
}

type windowJSON struct {
	Start    string   `json:"start"`
	Duration Duration `json:"duration"`
	TimeZone string   `json:"time_zone"`
}

// MarshalJSON writes {"start": cron, "duration": "4h0m0s", "time_zone": name}.
func (w Window) MarshalJSON() ([]byte, error) {
	if w.loc == nil {
		return nil, fmt.Errorf("marshal of an uncompiled window")
	}
	return json.Marshal(windowJSON{Start: w.cron.String(), Duration: Duration(w.duration), TimeZone: w.loc.String()})
}

// UnmarshalJSON reads what MarshalJSON writes and compiles it (NewWindow).
func (w *Window) UnmarshalJSON(b []byte) error {
	var j windowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	nw, err := NewWindow(j.Start, time.Duration(j.Duration), j.TimeZone)
	if err != nil {
		return err
	}
	*w = nw
	return nil
}

// Contains reports whether the window is open at t.
func (w Window) Contains(t time.Time) bool {
	_, ok := w.OpenUntil(t)
	return ok
}

// OpenUntil reports whether the window is open at t and, if so, until
// when: the latest end among the occurrences that contain t.
func (w Window) OpenUntil(t time.Time) (end time.Time, open bool) {
	if w.loc == nil {
		return time.Time{}, false
	}
	// Occurrences containing t started in (t-d, t].
	w.starts(t.Add(-w.duration+1), func(s time.Time) bool {
		if s.After(t) {
			return false
		}
		end, open = s.Add(w.duration), true
		return true
	})
	return end, open
}

// Next returns the earliest occurrence that ends after t: the one open at
// t if any, else the next to open. ok is false when none starts within
// eight years.
func (w Window) Next(t time.Time) (start, end time.Time, ok bool) {
	if w.loc == nil {
		return time.Time{}, time.Time{}, false
	}
	w.starts(t.Add(-w.duration+1), func(s time.Time) bool {
		start, end, ok = s, s.Add(w.duration), true
		return false
	})
	return start, end, ok
}

// starts calls yield with every start at or after from, in increasing
// order, until yield returns false or the horizon is reached.
func (w Window) starts(from time.Time, yield func(time.Time) bool) {
	lf := from.In(w.loc)
	day0 := time.Date(lf.Year(), lf.Month(), lf.Day()-1, 0, 0, 0, 0, time.UTC)
	hours, minutes := values(w.cron.Hour), values(w.cron.Minute)
	var last time.Time
	for i := 0; i < horizonDays; i++ {
		day := day0.AddDate(0, 0, i)
		if !w.cron.matchDay(int(day.Month()), day.Day(), int(day.Weekday())) {
			continue
		}
		for _, h := range hours {
			for _, m := range minutes {
				s := wallToInstant(day.Year(), day.Month(), day.Day(), h, m, w.loc)
				if s.Before(from) || (!last.IsZero() && !s.After(last)) {
					continue
				}
				last = s
				if !yield(s) {
					return
				}
			}
		}
	}
}

// wallToInstant is the instant at which the clocks of loc show the given
// wall time: the first such instant when the time is repeated (autumn),
// the end of the gap when it is skipped (spring).
func wallToInstant(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	wall := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	var cands []time.Time
	seen := map[int]bool{}
	for k := -4; k <= 4; k++ {
		_, off := wall.Add(time.Duration(k) * 6 * time.Hour).In(loc).Zone()
		if seen[off] {
			continue
		}
		seen[off] = true
		cands = append(cands, wall.Add(-time.Duration(off)*time.Second))
	}
	var best time.Time
	for _, c := range cands {
		if wallOf(c, loc).Equal(wall) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best.UTC()
	}
	// In a gap: the transition is where the wall clock jumps over wall.
	for _, c := range cands {
		s, _ := c.In(loc).ZoneBounds()
		if s.IsZero() {
			continue
		}
		if wallOf(s, loc).After(wall) && wallOf(s.Add(-time.Second), loc).Before(wall) && (best.IsZero() || s.Before(best)) {
			best = s
		}
	}
	if !best.IsZero() {
		return best.UTC()
	}
	return time.Date(y, mo, d, h, mi, 0, 0, loc).UTC()
}

// wallOf is t's wall-clock reading in loc, as a UTC time for comparisons.
func wallOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// Duration is a time.Duration written in JSON as Go writes durations
// ("1h30m0s") and read from that form.
type Duration time.Duration

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration as time.ParseDuration does.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
