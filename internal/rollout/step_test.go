package rollout

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
)

var t0 = utc("2025-03-20T09:00:00Z")

var libc = []apply.Pin{{Package: "libc6", Arch: "amd64", Version: "2.36-9+deb12u10"}, {Package: "openssl", Arch: "amd64", Version: "3.0.16-1~deb12u1"}}

func ring(name string, conc, budget Limit, soak time.Duration) Ring {
	return Ring{Name: name, Hosts: Selector{MatchLabels: map[string]string{"ring": name}}, Concurrency: conc, FailureBudget: budget, Soak: Duration(soak)}
}

// fleet makes n hosts per ring, named ring-01...
func fleet(counts map[string]int) []Host {
	var hs []Host
	for r, n := range counts {
		for i := 1; i <= n; i++ {
			hs = append(hs, Host{ID: fmt.Sprintf("%s-%02d", r, i), Labels: map[string]string{"ring": r}, Pins: libc})
		}
	}
	return hs
}

func newState(t testing.TB, spec Spec, hosts []Host) State {
	t.Helper()
	s, err := New(spec, hosts, t0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cmd(typ EventType, id string) Event { return Event{Type: typ, ID: id, Actor: "alice"} }

func res(typ EventType, s State, host string) Event {
	i := s.host(host)
	return Event{Type: typ, Host: host, Key: s.Hosts[i].Jobs[len(s.Hosts[i].Jobs)-1].Key}
}

func kinds(acts []Action) string {
	var b []string
	for _, a := range acts {
		switch {
		case a.Host != "":
			b = append(b, string(a.Kind)+" "+a.Host)
		case a.Ring != "":
			b = append(b, string(a.Kind)+" "+a.Ring)
		default:
			b = append(b, string(a.Kind))
		}
	}
	return strings.Join(b, ", ")
}

func TestLimits(t *testing.T) {
	tests := []struct {
		l               Limit
		n, conc, budget int
	}{
		{Limit{Count: 2}, 5, 2, 2},
		{Limit{Count: 9}, 5, 5, 9},
		{Limit{Percent: 10}, 5, 1, 0},  // 0.5 rounds up to 1 / down to 0
		{Limit{Percent: 10}, 9, 1, 0},  // 0.9
		{Limit{Percent: 10}, 10, 1, 1}, // exact
		{Limit{Percent: 10}, 11, 2, 1}, // 1.1
		{Limit{Percent: 25}, 10, 3, 2}, // 2.5
		{Limit{Percent: 33}, 3, 1, 0},  // 0.99
		{Limit{Percent: 34}, 3, 2, 1},  // 1.02
		{Limit{Percent: 100}, 7, 7, 7},
		{Limit{Percent: 50}, 0, 0, 0},
		{Limit{}, 4, 1, 0},
	}
	for _, tt := range tests {
		if c, b := tt.l.Concurrency(tt.n), tt.l.Budget(tt.n); c != tt.conc || b != tt.budget {
			t.Errorf("%s of %d: concurrency %d budget %d, want %d %d", tt.l, tt.n, c, b, tt.conc, tt.budget)
		}
	}
	for _, bad := range []Limit{{Count: -1}, {Count: 1, Percent: 1}, {Percent: 101}} {
		if bad.validate("x", true) == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestWavesAndBudget: a ring of 5 with concurrency 40% (2) and a budget of
// 1: hosts start two at a time in host order; the second failure halts
// the rollout, the host in flight still reports, nothing new starts.
func TestWavesAndBudget(t *testing.T) {
	spec := Spec{ID: "r1", Rings: []Ring{ring("prod", Limit{Percent: 40}, Limit{Count: 1}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"prod": 5}))
	s, acts := Step(s, []Event{cmd(CommandStart, "c1")}, t0)
	if got := kinds(acts); got != "install prod-01, install prod-02" {
		t.Fatalf("first wave: %s", got)
	}
	if acts[0].Key != "r1/prod/prod-01/install" || !reflect.DeepEqual(acts[0].Pins, libc) {
		t.Errorf("action %+v", acts[0])
	}
	s, acts = Step(s, []Event{res(EventStarted, s, "prod-01"), res(EventFailed, s, "prod-01")}, t0.Add(time.Minute))
	if got := kinds(acts); got != "install prod-03" {
		t.Fatalf("after one failure (within budget): %s", got)
	}
	if s.Hosts[2].Wave != 2 || s.Rings[0].Waves != 2 {
		t.Errorf("waves: host %d ring %d", s.Hosts[2].Wave, s.Rings[0].Waves)
	}
	s, acts = Step(s, []Event{res(EventFailed, s, "prod-02")}, t0.Add(2*time.Minute))
	if got := kinds(acts); got != "halt prod" || s.Status != StatusHalted {
		t.Fatalf("second failure: %s, %s", got, s.Status)
	}
	if !strings.Contains(s.Reason, "2 of 5 hosts failed (prod-01, prod-02), budget 1") {
		t.Errorf("reason %q", s.Reason)
	}
	s, acts = Step(s, []Event{res(EventSucceeded, s, "prod-03")}, t0.Add(3*time.Minute))
	if len(acts) != 0 || s.Hosts[2].Phase != PhaseSucceeded || s.Hosts[3].Phase != PhasePending {
		t.Errorf("after halt: %s; prod-03 %s prod-04 %s", kinds(acts), s.Hosts[2].Phase, s.Hosts[3].Phase)
	}
	// Resuming a halted rollout accepts its failures so far: the budget
	// counts new ones (one more is within it, two are not).
	s, acts = Step(s, []Event{cmd(CommandResume, "c2")}, t0.Add(4*time.Minute))
	if got := kinds(acts); got != "install prod-04, install prod-05" || s.Status != StatusRunning || s.Rings[0].Accepted != 2 {
		t.Fatalf("resume of a halted rollout: %s, %s, accepted %d", got, s.Status, s.Rings[0].Accepted)
	}
	if a := s.Audit[len(s.Audit)-4]; a.What != "accept-failures" || !strings.Contains(a.Detail, "2 failed hosts accepted (prod-01, prod-02)") {
		t.Errorf("audit of the resume: %+v", s.Audit[len(s.Audit)-4:])
	}
	s, acts = Step(s, []Event{res(EventFailed, s, "prod-04")}, t0.Add(5*time.Minute))
	if s.Status != StatusRunning || len(acts) != 0 {
		t.Fatalf("one new failure after the resume: %s, %s", s.Status, kinds(acts))
	}
	s, acts = Step(s, []Event{res(EventFailed, s, "prod-05")}, t0.Add(6*time.Minute))
	if kinds(acts) != "halt prod" || !strings.Contains(s.Reason, "4 of 5 hosts failed (prod-01, prod-02, prod-04, prod-05, 2 of them accepted before), budget 1") {
		t.Fatalf("two new failures after the resume: %s, %q", kinds(acts), s.Reason)
	}
	// A halted ring with every host finished is promoted, not resumed.
	f, _ := Step(s, []Event{res(EventSucceeded, s, "prod-03")}, t0.Add(6*time.Minute))
	if f, _ = Step(f, []Event{cmd(CommandResume, "c5")}, t0.Add(7*time.Minute)); f.Status != StatusHalted ||
		!strings.Contains(f.Audit[len(f.Audit)-1].Detail, "ring prod is finished with failed hosts: retry or exclude them, promote it") {
		t.Fatalf("resume of a finished ring: %s %+v", f.Status, f.Audit[len(f.Audit)-1])
	}
	// Cancelled or completed rollouts do not resume.
	c, _ := Step(s, []Event{cmd(CommandCancel, "c3")}, t0.Add(7*time.Minute))
	if c, _ = Step(c, []Event{cmd(CommandResume, "c4")}, t0.Add(8*time.Minute)); c.Status != StatusCancelled ||
		c.Audit[len(c.Audit)-1].What != "rejected resume" {
		t.Fatalf("resume of a cancelled rollout: %s %+v", c.Status, c.Audit[len(c.Audit)-1])
	}
}

// TestSoakAndPromotion: the next ring starts only once every host of the
// ring succeeded and the soak has passed since the last one finished.
func TestSoakAndPromotion(t *testing.T) {
	spec := Spec{ID: "r2", Rings: []Ring{
		ring("canary", Limit{Count: 5}, Limit{}, 24*time.Hour),
		ring("prod", Limit{Percent: 50}, Limit{Percent: 10}, time.Hour),
	}}
	s := newState(t, spec, fleet(map[string]int{"canary": 2, "prod": 4}))
	s, acts := Step(s, []Event{cmd(CommandStart, "go")}, t0)
	if got := kinds(acts); got != "install canary-01, install canary-02" {
		t.Fatalf("start: %s", got)
	}
	done := t0.Add(30 * time.Minute)
	ev1, ev2 := res(EventSucceeded, s, "canary-01"), res(EventSucceeded, s, "canary-02")
	ev1.At, ev2.At = done.Add(-10*time.Minute), done
	s, acts = Step(s, []Event{ev1, ev2}, t0.Add(40*time.Minute))
	if len(acts) != 0 || !s.Rings[0].Done.Equal(done) {
		t.Fatalf("ring done: %s, done at %s", kinds(acts), s.Rings[0].Done)
	}
	if _, acts = Step(s, nil, done.Add(24*time.Hour-time.Second)); len(acts) != 0 {
		t.Fatalf("promoted before the soak: %s", kinds(acts))
	}
	s, acts = Step(s, nil, done.Add(24*time.Hour))
	if got := kinds(acts); got != "promote prod, install prod-01, install prod-02" {
		t.Fatalf("after soak: %s", got)
	}
	// The last ring completes without a soak.
	s, _ = Step(s, []Event{res(EventSucceeded, s, "prod-01"), res(EventSucceeded, s, "prod-02")}, done.Add(25*time.Hour))
	s, acts = Step(s, []Event{res(EventSucceeded, s, "prod-03"), res(EventSucceeded, s, "prod-04")}, done.Add(26*time.Hour))
	if got := kinds(acts); got != "complete" || s.Status != StatusCompleted {
		t.Fatalf("end: %s %s", got, s.Status)
	}
}

// TestPromotionBlocked: a failure within the budget does not halt the
// ring but blocks its promotion; an operator may promote by hand.
func TestPromotionBlocked(t *testing.T) {
	spec := Spec{ID: "r3", Rings: []Ring{ring("test", Limit{Count: 3}, Limit{Count: 1}, 0), ring("prod", Limit{Count: 1}, Limit{}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"test": 3, "prod": 1}))
	s, _ = Step(s, []Event{cmd(CommandStart, "1")}, t0)
	s, acts := Step(s, []Event{res(EventSucceeded, s, "test-01"), res(EventFailed, s, "test-02"), res(EventSucceeded, s, "test-03")}, t0.Add(time.Hour))
	if got := kinds(acts); got != "halt test" || !strings.Contains(s.Reason, "promotion needs every host succeeded") {
		t.Fatalf("%s: %s", got, s.Reason)
	}
	s, acts = Step(s, []Event{{Type: CommandPromote, ID: "2", Actor: "bob", Reason: "test-02 is a known flaky VM"}}, t0.Add(2*time.Hour))
	if got := kinds(acts); got != "promote prod, install prod-01" || s.Status != StatusRunning {
		t.Fatalf("manual promote: %s %s", got, s.Status)
	}
	found := false
	for _, a := range s.Audit {
		if a.Actor == "bob" && a.What == "promote" && a.Detail == "test-02 is a known flaky VM" {
			found = true
		}
	}
	if !found {
		t.Errorf("audit lacks bob's promotion: %+v", s.Audit)
	}
}

func TestPauseResumeCancel(t *testing.T) {
	spec := Spec{ID: "r4", Rings: []Ring{ring("prod", Limit{Count: 1}, Limit{Count: 5}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"prod": 3}))
	if _, acts := Step(s, nil, t0); len(acts) != 0 {
		t.Fatalf("dispatch before start: %s", kinds(acts))
	}
	s, _ = Step(s, []Event{cmd(CommandStart, "a")}, t0)
	s, acts := Step(s, []Event{{Type: CommandPause, ID: "b", Actor: "carol", Reason: "incident INC-42"}, res(EventSucceeded, s, "prod-01")}, t0.Add(time.Minute))
	if len(acts) != 0 || s.Status != StatusPaused || s.Reason != "incident INC-42" {
		t.Fatalf("paused: %s %s %q", kinds(acts), s.Status, s.Reason)
	}
	s, acts = Step(s, []Event{cmd(CommandResume, "c")}, t0.Add(2*time.Minute))
	if got := kinds(acts); got != "install prod-02" {
		t.Fatalf("resumed: %s", got)
	}
	s, acts = Step(s, []Event{cmd(CommandCancel, "d")}, t0.Add(3*time.Minute))
	if len(acts) != 0 || s.Status != StatusCancelled {
		t.Fatalf("cancel: %s %s", kinds(acts), s.Status)
	}
	s, acts = Step(s, []Event{res(EventSucceeded, s, "prod-02"), cmd(CommandResume, "e"), cmd(CommandStart, "f")}, t0.Add(4*time.Minute))
	if len(acts) != 0 || s.Hosts[1].Phase != PhaseSucceeded || s.Hosts[2].Phase != PhasePending {
		t.Fatalf("after cancel: %s %s %s", kinds(acts), s.Hosts[1].Phase, s.Hosts[2].Phase)
	}
	var whats []string
	for _, a := range s.Audit {
		if a.Actor != engine && a.Actor != "host" {
			whats = append(whats, a.Actor+":"+a.What)
		}
	}
	want := "alice:start carol:pause alice:resume alice:cancel alice:rejected resume alice:rejected start"
	if strings.Join(whats, " ") != want {
		t.Errorf("audit %q, want %q", strings.Join(whats, " "), want)
	}
}

// TestHealthRollbackReboot: a health failure counts against the budget
// and dispatches a rollback (option); a reboot waits for the window.
func TestHealthRollbackReboot(t *testing.T) {
	w := mustWindow(t, "0 22 * * *", 4*time.Hour, "Europe/Berlin") // 21:00-01:00 UTC in March
	spec := Spec{ID: "r5", Rings: []Ring{ring("prod", Limit{Count: 2}, Limit{Count: 1}, 0)},
		Groups:  []WindowGroup{{Name: "nightly", Hosts: Selector{All: true}, Windows: []Window{w}}},
		Options: Options{Rollback: true, InstallEstimate: Duration(time.Hour), RebootEstimate: Duration(20 * time.Minute)}}
	s := newState(t, spec, fleet(map[string]int{"prod": 2}))
	day := utc("2025-03-20T00:00:00Z")
	s, acts := Step(s, []Event{cmd(CommandStart, "s")}, day.Add(12*time.Hour))
	if len(acts) != 0 {
		t.Fatalf("started outside the window: %s", kinds(acts))
	}
	if _, acts = Step(s, nil, day.Add(24*time.Hour+5*time.Minute)); len(acts) != 0 { // 01:05 CET: 55 min left < 1h
		t.Fatalf("started with too little window left: %s", kinds(acts))
	}
	s, acts = Step(s, nil, day.Add(21*time.Hour))
	if got := kinds(acts); got != "install prod-01, install prod-02" {
		t.Fatalf("in window: %s", got)
	}
	ok := res(EventSucceeded, s, "prod-01")
	ok.RebootRequired = true
	s, acts = Step(s, []Event{ok, res(EventHealthFailed, s, "prod-02")}, day.Add(24*time.Hour+45*time.Minute)) // 00:45 UTC: 15 min left
	if got := kinds(acts); got != "rollback prod-02" || acts[0].Install != "r5/prod/prod-02/install" {
		t.Fatalf("health failure: %s %+v", got, acts)
	}
	if s.Rings[0].Failed != 1 || s.Hosts[0].Phase != PhaseAwaitingReboot {
		t.Fatalf("failed %d, prod-01 %s", s.Rings[0].Failed, s.Hosts[0].Phase)
	}
	s, acts = Step(s, []Event{res(EventRolledBack, s, "prod-02")}, day.Add(36*time.Hour))
	if len(acts) != 0 || s.Hosts[1].Phase != PhaseRolledBack {
		t.Fatalf("rolled back: %s %s", kinds(acts), s.Hosts[1].Phase)
	}
	s, acts = Step(s, nil, day.Add(45*time.Hour)) // 21:00 UTC next evening
	if got := kinds(acts); got != "reboot prod-01" {
		t.Fatalf("reboot: %s", got)
	}
	s, acts = Step(s, []Event{res(EventSucceeded, s, "prod-01")}, day.Add(46*time.Hour))
	if got := kinds(acts); got != "complete" || !strings.Contains(acts[0].Reason, "1 failed") {
		t.Fatalf("end: %s %+v", got, acts)
	}
}

func TestTimeoutAndLost(t *testing.T) {
	spec := Spec{ID: "r6", Rings: []Ring{ring("prod", Limit{Count: 2}, Limit{Count: 0}, 0)}, Options: Options{JobTimeout: Duration(time.Hour)}}
	s := newState(t, spec, fleet(map[string]int{"prod": 3}))
	s, _ = Step(s, []Event{cmd(CommandStart, "s")}, t0)
	s, acts := Step(s, []Event{res(EventSucceeded, s, "prod-02")}, t0.Add(time.Hour))
	if got := kinds(acts); got != "install prod-03" {
		t.Fatalf("%s", got)
	}
	late := res(EventSucceeded, s, "prod-01")
	s, acts = Step(s, nil, t0.Add(time.Hour+time.Second))
	if got := kinds(acts); got != "halt prod" || s.Hosts[0].Phase != PhaseLost {
		t.Fatalf("timeout: %s %s", got, s.Hosts[0].Phase)
	}
	s2, _ := Step(s, []Event{late}, t0.Add(2*time.Hour))
	if s2.Hosts[0].Phase != PhaseLost {
		t.Errorf("a late result revived a lost host")
	}
}

func TestReplayAndJSON(t *testing.T) {
	w := mustWindow(t, "0 2 * * sun", 6*time.Hour, "America/New_York")
	spec := Spec{ID: "r7", Rings: []Ring{ring("canary", Limit{Count: 1}, Limit{}, time.Hour), ring("prod", Limit{Percent: 50}, Limit{Percent: 20}, 0)},
		Groups: []WindowGroup{{Name: "weekend", Hosts: Selector{MatchLabels: map[string]string{"ring": "prod"}}, Windows: []Window{w}}}}
	s := newState(t, spec, append(fleet(map[string]int{"canary": 1, "prod": 3}), Host{ID: "lab-1", Labels: map[string]string{"ring": "lab"}, Pins: libc}, Host{ID: "canary-00", Labels: map[string]string{"ring": "canary"}}))
	if !reflect.DeepEqual(s.Unassigned, []string{"lab-1"}) || s.Hosts[0].Phase != PhaseSkipped {
		t.Fatalf("unassigned %v, canary-00 %s", s.Unassigned, s.Hosts[0].Phase)
	}
	evs := []Event{cmd(CommandStart, "x")}
	s1, a1 := Step(s, evs, t0)
	s2, a2 := Step(s1, evs, t0)
	if len(a1) != 1 || len(a2) != 0 || !reflect.DeepEqual(s1, s2) {
		t.Fatalf("replay: %s then %s", kinds(a1), kinds(a2))
	}
	evs = []Event{res(EventStarted, s1, "canary-01"), res(EventSucceeded, s1, "canary-01")}
	s2, _ = Step(s1, evs, t0.Add(time.Minute))
	s3, a3 := Step(s2, evs, t0.Add(time.Minute))
	if len(a3) != 0 || !reflect.DeepEqual(s2, s3) {
		t.Fatalf("replayed results: %s", kinds(a3))
	}
	// JSON: the state survives a round trip and steps the same way after.
	b, err := json.Marshal(s2)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("JSON round trip differs:\n%s\n%s", b, b2)
	}
	sunday := utc("2025-03-23T07:00:00Z") // 03:00 EDT, inside the window
	x, ax := Step(s2, nil, sunday)
	y, ay := Step(back, nil, sunday)
	jx, _ := json.Marshal(x)
	jy, _ := json.Marshal(y)
	if !reflect.DeepEqual(ax, ay) || string(jx) != string(jy) || kinds(ax) != "promote prod, install prod-01, install prod-02" {
		t.Fatalf("after reload: %s vs %s", kinds(ax), kinds(ay))
	}
	if out := Outstanding(y); kinds(out) != "install prod-01, install prod-02" || out[0].Key != ax[1].Key {
		t.Errorf("outstanding: %s", kinds(out))
	}
	if len(Outstanding(back)) != 0 {
		t.Errorf("outstanding before dispatch: %s", kinds(Outstanding(back)))
	}
}

func TestNewErrors(t *testing.T) {
	good := ring("a", Limit{Count: 1}, Limit{}, 0)
	for _, c := range []struct {
		spec  Spec
		hosts []Host
	}{
		{Spec{Rings: []Ring{good}}, nil},
		{Spec{ID: "x"}, nil},
		{Spec{ID: "x", Rings: []Ring{good, good}}, nil},
		{Spec{ID: "x", Rings: []Ring{ring("a", Limit{}, Limit{}, 0)}}, nil},
		{Spec{ID: "x", Rings: []Ring{good}, Options: Options{Reboot: "always"}}, nil},
		{Spec{ID: "x", Rings: []Ring{good}, Options: Options{InstallEstimate: Duration(2 * time.Hour)},
			Groups: []WindowGroup{{Name: "short", Hosts: Selector{All: true}, Windows: []Window{mustWindow(t, "0 1 * * *", time.Hour, "UTC")}}}}, nil},
		{Spec{ID: "x", Rings: []Ring{good}}, []Host{{ID: "h"}, {ID: "h"}}},
		{Spec{ID: "x", Rings: []Ring{good}}, []Host{{ID: "h", Pins: []apply.Pin{{Package: "libc6", Version: "-o=evil"}}}}},
	} {
		if _, err := New(c.spec, c.hosts, t0); err == nil {
			t.Errorf("accepted %+v %+v", c.spec, c.hosts)
		}
	}
}

// TestRetry: a failed host retried by an operator starts again under a
// new key once the rollout runs; a late result of its old job changes
// nothing; a host health-failed and rolled back again gets a second
// rollback of its second install.
func TestRetry(t *testing.T) {
	spec := Spec{ID: "r8", Rings: []Ring{ring("test", Limit{Count: 3}, Limit{Count: 0}, 0), ring("prod", Limit{Count: 1}, Limit{}, 0)},
		Options: Options{Rollback: true}}
	s := newState(t, spec, fleet(map[string]int{"test": 3, "prod": 1}))
	s, _ = Step(s, []Event{cmd(CommandStart, "1")}, t0)
	old := res(EventSucceeded, s, "test-02")
	s, acts := Step(s, []Event{res(EventSucceeded, s, "test-01"), res(EventFailed, s, "test-02"), res(EventSucceeded, s, "test-03")}, t0.Add(time.Hour))
	if got := kinds(acts); got != "halt test" {
		t.Fatalf("failure over the budget: %s", got)
	}
	retry := Event{Type: CommandRetry, ID: "2", Actor: "bob", Host: "test-02", Reason: "apt lock held by a cron job, fixed"}
	s, acts = Step(s, []Event{retry}, t0.Add(2*time.Hour))
	h := s.Hosts[s.host("test-02")]
	if len(acts) != 0 || s.Status != StatusHalted || h.Phase != PhasePending || !h.Jobs[0].Retried || h.Jobs[0].Result != "failed" ||
		s.Rings[0].Failed != 0 || !s.Rings[0].Done.IsZero() {
		t.Fatalf("retried while halted: %s %s %+v, ring %+v", kinds(acts), s.Status, h, s.Rings[0])
	}
	if a := s.Audit[len(s.Audit)-1]; a.Actor != "bob" || a.What != "retry" || a.Host != "test-02" || a.Ring != "test" || a.Detail != retry.Reason {
		t.Errorf("audit of the retry: %+v", a)
	}
	s, acts = Step(s, []Event{cmd(CommandResume, "3")}, t0.Add(3*time.Hour))
	if len(acts) != 1 || acts[0].Key != "r8/test/test-02/install#2" || s.Status != StatusRunning {
		t.Fatalf("resumed: %+v %s", acts, s.Status)
	}
	// The first job's result, late, is not the second's.
	if s, acts = Step(s, []Event{old}, t0.Add(4*time.Hour)); len(acts) != 0 || s.Hosts[s.host("test-02")].Phase != PhaseInstalling {
		t.Fatalf("late result of the retried job: %s %s", kinds(acts), s.Hosts[s.host("test-02")].Phase)
	}
	s, acts = Step(s, []Event{res(EventHealthFailed, s, "test-02")}, t0.Add(5*time.Hour))
	if len(acts) != 2 || acts[1].Kind != ActionHalt || acts[0].Key != "r8/test/test-02/rollback" || acts[0].Install != "r8/test/test-02/install#2" {
		t.Fatalf("health failure after the retry: %+v", acts)
	}
	s, _ = Step(s, []Event{res(EventRolledBack, s, "test-02"), {Type: CommandRetry, ID: "4", Actor: "bob", Host: "test-02"}, cmd(CommandResume, "5")}, t0.Add(6*time.Hour))
	s, acts = Step(s, []Event{res(EventHealthFailed, s, "test-02")}, t0.Add(7*time.Hour))
	if len(acts) != 2 || acts[0].Key != "r8/test/test-02/rollback#2" || acts[0].Install != "r8/test/test-02/install#3" {
		t.Fatalf("health failure after the second retry: %+v", acts)
	}
	s, _ = Step(s, []Event{res(EventRolledBack, s, "test-02"), {Type: CommandRetry, ID: "6", Actor: "bob", Host: "test-02"}, cmd(CommandResume, "7")}, t0.Add(8*time.Hour))
	s, acts = Step(s, []Event{res(EventSucceeded, s, "test-02")}, t0.Add(9*time.Hour))
	if got := kinds(acts); got != "promote prod, install prod-01" {
		t.Fatalf("the retried host succeeded: %s", got)
	}
	if n := len(s.Hosts[s.host("test-02")].Jobs); n != 6 {
		t.Errorf("test-02 has %d jobs, want its four installs and two rollbacks", n)
	}
}

// TestExclude: an excluded host neither fails its ring nor blocks its
// promotion, and never starts; a halted ring finished without failures
// resumes into its soak.
func TestExclude(t *testing.T) {
	spec := Spec{ID: "r9", Rings: []Ring{ring("test", Limit{Count: 3}, Limit{Count: 1}, time.Hour), ring("prod", Limit{Count: 2}, Limit{}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"test": 3, "prod": 3}))
	s, _ = Step(s, []Event{cmd(CommandStart, "1"), {Type: CommandExclude, ID: "2", Actor: "bob", Host: "prod-01", Reason: "decommissioned"}}, t0)
	s, acts := Step(s, []Event{res(EventSucceeded, s, "test-01"), res(EventFailed, s, "test-02"), res(EventSucceeded, s, "test-03")}, t0.Add(time.Hour))
	if got := kinds(acts); got != "halt test" || !strings.Contains(s.Reason, "promotion needs every host succeeded") {
		t.Fatalf("%s: %s", got, s.Reason)
	}
	s, _ = Step(s, []Event{{Type: CommandExclude, ID: "3", Actor: "bob", Host: "test-02"}}, t0.Add(time.Hour+time.Minute))
	if s.Status != StatusHalted || s.Hosts[s.host("test-02")].Phase != PhaseExcluded || s.Rings[0].Failed != 0 {
		t.Fatalf("excluded: %s %s failed %d", s.Status, s.Hosts[s.host("test-02")].Phase, s.Rings[0].Failed)
	}
	s, acts = Step(s, []Event{cmd(CommandResume, "4")}, t0.Add(time.Hour+2*time.Minute))
	if len(acts) != 0 || s.Status != StatusRunning {
		t.Fatalf("resumed into the soak: %s %s", kinds(acts), s.Status)
	}
	s, acts = Step(s, nil, t0.Add(2*time.Hour))
	if got := kinds(acts); got != "promote prod, install prod-02, install prod-03" {
		t.Fatalf("after the soak: %s", got)
	}
	s, acts = Step(s, []Event{res(EventSucceeded, s, "prod-02"), res(EventSucceeded, s, "prod-03")}, t0.Add(3*time.Hour))
	if got := kinds(acts); got != "complete" || !strings.Contains(acts[0].Reason, "0 failed") {
		t.Fatalf("end: %s %+v", got, acts)
	}
	if a := s.Audit; !slices.ContainsFunc(a, func(a Audit) bool { return a.What == "exclude" && a.Host == "prod-01" && a.Detail == "decommissioned" }) {
		t.Errorf("audit lacks the exclusion of prod-01")
	}
}

// TestHostCommandsRefused: what cannot be retried or excluded is refused
// in the audit and changes nothing.
func TestHostCommandsRefused(t *testing.T) {
	spec := Spec{ID: "r10", Rings: []Ring{ring("test", Limit{Count: 2}, Limit{Count: 2}, 0), ring("prod", Limit{Count: 1}, Limit{}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"test": 3, "prod": 1}))
	hostCmd := func(typ EventType, id, host string) Event { return Event{Type: typ, ID: id, Actor: "bob", Host: host} }
	refused := func(s State, e Event, want string) {
		t.Helper()
		next, acts := Step(s, []Event{e}, t0.Add(time.Hour))
		a := next.Audit[len(next.Audit)-1]
		if len(acts) != 0 || a.What != "rejected "+string(e.Type) || !strings.Contains(a.Detail, want) {
			t.Errorf("%s %s: %s, audit %+v; want refused: %s", e.Type, e.Host, kinds(acts), a, want)
		}
		for i := range s.Hosts {
			if !s.Hosts[i].same(next.Hosts[i]) {
				t.Errorf("%s %s changed host %s", e.Type, e.Host, s.Hosts[i].ID)
			}
		}
	}
	refused(s, hostCmd(CommandRetry, "a", "test-01"), "rollout is created")
	s, _ = Step(s, []Event{cmd(CommandStart, "1")}, t0)
	s, _ = Step(s, []Event{res(EventFailed, s, "test-01")}, t0.Add(time.Minute))
	refused(s, hostCmd(CommandRetry, "b", ""), "no host named")
	refused(s, hostCmd(CommandExclude, "c", "nope"), "host nope is not in this rollout")
	refused(s, hostCmd(CommandRetry, "d", "test-02"), "host test-02 is installing; only a failed")
	refused(s, hostCmd(CommandExclude, "e", "test-02"), "host test-02 is installing; only a pending, failed")
	refused(s, hostCmd(CommandRetry, "f", "prod-01"), "host prod-01 is in ring prod; only hosts of the current ring test")
	s, _ = Step(s, []Event{res(EventSucceeded, s, "test-02")}, t0.Add(2*time.Minute))
	refused(s, hostCmd(CommandRetry, "g", "test-02"), "host test-02 is succeeded")
	refused(s, hostCmd(CommandExclude, "h", "test-02"), "host test-02 is succeeded")
	c, _ := Step(s, []Event{cmd(CommandCancel, "2")}, t0.Add(3*time.Minute))
	refused(c, hostCmd(CommandRetry, "i", "test-01"), "rollout is cancelled")
	refused(c, hostCmd(CommandExclude, "j", "test-03"), "rollout is cancelled")
}

// TestRetryAccepted: failures accepted at a resume shrink with a retry of
// an accepted host, so the budget still counts every failure after it.
func TestRetryAccepted(t *testing.T) {
	spec := Spec{ID: "r11", Rings: []Ring{ring("prod", Limit{Count: 1}, Limit{Count: 0}, 0)}}
	s := newState(t, spec, fleet(map[string]int{"prod": 3}))
	s, _ = Step(s, []Event{cmd(CommandStart, "1")}, t0)
	s, _ = Step(s, []Event{res(EventFailed, s, "prod-01")}, t0.Add(time.Minute))
	s, acts := Step(s, []Event{cmd(CommandResume, "2"), {Type: CommandRetry, ID: "3", Actor: "bob", Host: "prod-01"}}, t0.Add(2*time.Minute))
	if got := kinds(acts); got != "install prod-01" || s.Rings[0].Accepted != 0 {
		t.Fatalf("resumed, prod-01 retried: %s, accepted %d", got, s.Rings[0].Accepted)
	}
	if s, acts = Step(s, []Event{res(EventFailed, s, "prod-01")}, t0.Add(3*time.Minute)); kinds(acts) != "halt prod" {
		t.Fatalf("the retried host failed again: %s, %s", kinds(acts), s.Status)
	}
}

// TestRetryAcceptedOthers: retrying or excluding one of the accepted
// failures takes only that one off the accepted count: a failure after
// the resume stays counted (budget 1 here: two new failures halt).
func TestRetryAcceptedOthers(t *testing.T) {
	for _, typ := range []EventType{CommandRetry, CommandExclude} {
		spec := Spec{ID: "r12", Rings: []Ring{ring("prod", Limit{Count: 3}, Limit{Count: 1}, 0)}}
		s := newState(t, spec, fleet(map[string]int{"prod": 6}))
		s, _ = Step(s, []Event{cmd(CommandStart, "1")}, t0)
		s, acts := Step(s, []Event{res(EventFailed, s, "prod-01"), res(EventFailed, s, "prod-02"), res(EventSucceeded, s, "prod-03")}, t0.Add(time.Minute))
		if kinds(acts) != "halt prod" {
			t.Fatalf("%s: two failures: %s", typ, kinds(acts))
		}
		s, _ = Step(s, []Event{cmd(CommandResume, "2")}, t0.Add(2*time.Minute)) // accepts prod-01, prod-02
		s, _ = Step(s, []Event{res(EventFailed, s, "prod-04")}, t0.Add(3*time.Minute))
		if s.Status != StatusRunning {
			t.Fatalf("%s: one new failure within the budget: %s", typ, s.Status)
		}
		s, _ = Step(s, []Event{{Type: typ, ID: "3", Actor: "bob", Host: "prod-01"}}, t0.Add(4*time.Minute))
		if s.Rings[0].Accepted != 1 || s.Hosts[s.host("prod-01")].Accepted || !s.Hosts[s.host("prod-02")].Accepted {
			t.Fatalf("%s: accepted %d after prod-01's: %+v", typ, s.Rings[0].Accepted, s.Hosts[:2])
		}
		// A second new failure: prod-05's (or prod-01's again).
		next := "prod-05"
		if typ == CommandRetry {
			next = "prod-01"
		}
		s, acts = Step(s, []Event{res(EventFailed, s, next)}, t0.Add(5*time.Minute))
		if kinds(acts) != "halt prod" {
			t.Fatalf("%s: a second new failure (%s): %s, %s", typ, next, kinds(acts), s.Status)
		}
	}
}
