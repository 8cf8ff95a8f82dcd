package rollout

import (
	"encoding/json"
	"testing"
	"time"
)

func mustWindow(t testing.TB, start string, d time.Duration, zone string) Window {
	t.Helper()
	w, err := NewWindow(start, d, zone)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// TestWindowDST pins the openings of windows on and around the 2025
// daylight saving changes (Berlin: 30 March 02:00 CET → 03:00 CEST,
// 26 October 03:00 CEST → 02:00 CET; New York: 9 March 02:00 EST → 03:00
// EDT, 2 November 02:00 EDT → 01:00 EST).
func TestWindowDST(t *testing.T) {
	tests := []struct {
		name, start, zone string
		d                 time.Duration
		from              string
		wantStart         string // UTC
	}{
		{"berlin winter", "0 2 * * sun", "Europe/Berlin", 4 * time.Hour, "2025-03-22T12:00:00Z", "2025-03-23T01:00:00Z"},
		{"berlin skipped hour opens at the jump", "0 2 * * sun", "Europe/Berlin", 4 * time.Hour, "2025-03-29T12:00:00Z", "2025-03-30T01:00:00Z"},
		{"berlin skipped 02:30 opens at the jump", "30 2 * * *", "Europe/Berlin", time.Hour, "2025-03-29T12:00:00Z", "2025-03-30T01:00:00Z"},
		{"berlin summer", "0 2 * * sun", "Europe/Berlin", 4 * time.Hour, "2025-03-31T00:00:00Z", "2025-04-06T00:00:00Z"},
		{"berlin repeated 02:30 opens once, first", "30 2 * * *", "Europe/Berlin", time.Hour, "2025-10-25T12:00:00Z", "2025-10-26T00:30:00Z"},
		{"berlin after the repeat", "30 2 * * *", "Europe/Berlin", time.Hour, "2025-10-26T01:30:00Z", "2025-10-27T01:30:00Z"},
		{"berlin 03:00 after fall back", "0 3 * * *", "Europe/Berlin", time.Hour, "2025-10-25T12:00:00Z", "2025-10-26T02:00:00Z"},
		{"new york skipped hour", "0 2 * * *", "America/New_York", 3 * time.Hour, "2025-03-08T12:00:00Z", "2025-03-09T07:00:00Z"},
		{"new york day after spring", "0 2 * * *", "America/New_York", 3 * time.Hour, "2025-03-09T10:00:00Z", "2025-03-10T06:00:00Z"},
		{"new york repeated 01:30", "30 1 * * *", "America/New_York", time.Hour, "2025-11-01T12:00:00Z", "2025-11-02T05:30:00Z"},
		{"new york 02:00 after fall back", "0 2 * * *", "America/New_York", time.Hour, "2025-11-01T12:00:00Z", "2025-11-02T07:00:00Z"},
	}
	for _, tt := range tests {
		w := mustWindow(t, tt.start, tt.d, tt.zone)
		s, e, ok := w.Next(utc(tt.from))
		if !ok || !s.Equal(utc(tt.wantStart)) || !e.Equal(s.Add(tt.d)) {
			t.Errorf("%s: Next(%s) = %s, %s, %v; want start %s", tt.name, tt.from, s, e, ok, tt.wantStart)
			continue
		}
		// Open from the start (inclusive) to the end (exclusive).
		for _, c := range []struct {
			at   time.Time
			want bool
		}{{s.Add(-time.Second), false}, {s, true}, {s.Add(tt.d / 2), true}, {e.Add(-time.Second), true}, {e, false}} {
			if got := w.Contains(c.at); got != c.want {
				t.Errorf("%s: Contains(%s) = %v, want %v", tt.name, c.at, got, c.want)
			}
		}
		if s2, _, _ := w.Next(s.Add(tt.d / 2)); !s2.Equal(s) {
			t.Errorf("%s: Next inside the window = %s, want the open one %s", tt.name, s2, s)
		}
	}
}

// TestWindowEndsByElapsedTime: a 4h window from 00:00 Berlin on the night
// of the autumn change ends at 03:00 CET by the wall clock.
func TestWindowEndsByElapsedTime(t *testing.T) {
	w := mustWindow(t, "0 0 * * sun", 4*time.Hour, "Europe/Berlin")
	_, e, _ := w.Next(utc("2025-10-25T12:00:00Z"))
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if got := e.In(berlin).Format("15:04 MST"); got != "03:00 CET" {
		t.Errorf("end %s, want 03:00 CET", got)
	}
}

// bruteStarts is an independent oracle for a window's starts: it walks
// every minute of real time and starts a window when the wall clock
// reaches, or jumps over, a wall minute the expression matches that it
// has not shown before.
func bruteStarts(c Cron, loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	maxWall := wallOf(from.Add(-time.Minute), loc)
	for t := from; t.Before(to); t = t.Add(time.Minute) {
		cur := wallOf(t, loc)
		started := false
		for m := maxWall.Add(time.Minute); !m.After(cur); m = m.Add(time.Minute) {
			if c.Minute&(1<<m.Minute()) != 0 && c.Hour&(1<<m.Hour()) != 0 && c.matchDay(int(m.Month()), m.Day(), int(m.Weekday())) {
				started = true
			}
		}
		if started {
			out = append(out, t)
		}
		if cur.After(maxWall) {
			maxWall = cur
		}
	}
	return out
}

func TestWindowStartsAgainstBruteForce(t *testing.T) {
	specs := []string{"0 2 * * *", "30 2 * * *", "*/20 1-3 * * *", "0 0 * * sun", "45 23 * * *", "0 3 25-31 3,10 sun", "15 2 9 3 *"}
	ranges := []struct{ zone, from string }{
		{"Europe/Berlin", "2025-03-27T00:00:00Z"},
		{"Europe/Berlin", "2025-10-23T00:00:00Z"},
		{"America/New_York", "2025-03-07T00:00:00Z"},
		{"America/New_York", "2025-10-31T00:00:00Z"},
		{"Australia/Lord_Howe", "2025-04-04T00:00:00Z"}, // half-hour change
		{"UTC", "2025-03-27T00:00:00Z"},
	}
	for _, r := range ranges {
		loc, err := time.LoadLocation(r.zone)
		if err != nil {
			t.Skipf("zone %s: %v", r.zone, err)
		}
		from := utc(r.from)
		to := from.Add(5 * 24 * time.Hour)
		for _, spec := range specs {
			w := mustWindow(t, spec, time.Minute, r.zone)
			var got []time.Time
			w.starts(from, func(s time.Time) bool {
				if !s.Before(to) {
					return false
				}
				got = append(got, s)
				return true
			})
			want := bruteStarts(w.cron, loc, from, to)
			if len(got) != len(want) {
				t.Errorf("%s %q: %d starts, oracle %d\n got %v\nwant %v", r.zone, spec, len(got), len(want), got, want)
				continue
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					t.Errorf("%s %q: start %d at %s, oracle %s", r.zone, spec, i, got[i], want[i])
				}
			}
		}
	}
}

func TestWindowErrorsAndJSON(t *testing.T) {
	for _, c := range []struct {
		start string
		d     time.Duration
		zone  string
	}{{"0 2 * * *", 0, "UTC"}, {"0 2 * * *", 8 * 24 * time.Hour, "UTC"}, {"0 2 * * *", time.Hour, ""}, {"0 2 * * *", time.Hour, "Mars/Olympus"}, {"0 2 * *", time.Hour, "UTC"}} {
		if _, err := NewWindow(c.start, c.d, c.zone); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	w := mustWindow(t, "0 22 * * sat", 5*time.Hour, "America/New_York")
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"start":"0 22 * * sat","duration":"5h0m0s","time_zone":"America/New_York"}` {
		t.Errorf("json %s", b)
	}
	var w2 Window
	if err := json.Unmarshal(b, &w2); err != nil {
		t.Fatal(err)
	}
	at := utc("2025-11-02T03:30:00Z") // Sat 22:00 EDT + 1.5h
	if !w2.Contains(at) || w2.String() != w.String() {
		t.Errorf("round trip: %s contains %s = %v", w2, at, w2.Contains(at))
	}
	if err := json.Unmarshal([]byte(`{"start":"0 22 * * sat","duration":"5h","time_zone":"Nowhere/Else"}`), &w2); err == nil {
		t.Error("unknown zone accepted")
	}
}
