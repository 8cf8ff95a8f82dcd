package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/health"
	"github.com/patchloop/patchloop/internal/store"
)

// summary is the summary of a stored result body, as the server makes it
// of the result it has decoded (jobResult); nil when the body does not
// read as a job result (the step then reads the result itself).
func summary(result []byte) []byte {
	o, err := readOutcome(result)
	if err != nil {
		return nil
	}
	return summaryOf(o)
}

// sameEvents fails unless a step reads the result body and its summary
// as the same event, for every kind of rollout job.
func sameEvents(t *testing.T, status string, body []byte) {
	t.Helper()
	sum := summary(body)
	// The server makes it of the result it has decoded.
	if res, err := api.DecodeJobResult(body); err == nil {
		if got := summaryOf(outcomeOf(res)); !bytes.Equal(got, sum) {
			t.Fatalf("result %s: the server's summary is %s, summary() %s", body, got, sum)
		}
	}
	for _, kind := range []string{api.JobInstall, api.JobRollback, api.JobReboot} {
		ref := func(result []byte) store.RolloutJobRef {
			return store.RolloutJobRef{Key: "k", Kind: kind, HostJob: store.HostJob{HostID: "h", Status: status, Result: result,
				FinishedAt: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}}
		}
		whole := resultEvent(ref(body))
		if sum == nil {
			// No summary: the step reads the result; it must be one that
			// does not read.
			if whole.Reason == "" || whole.Type != "failed" {
				t.Fatalf("no summary of %s, which reads as %+v", body, whole)
			}
			continue
		}
		if got := resultEvent(ref(sum)); !reflect.DeepEqual(got, whole) {
			t.Fatalf("%s job, result %s\nsummary %s\nreads as %+v\nthe result as %+v", kind, body, sum, got, whole)
		}
	}
}

// sameAsV1 fails unless readOutcome (encoding/json/v2) reads body as the
// encoding/json reading it replaced did, the oracle here, wherever that
// read the result without a type error (after one, encoding/json read on
// and v2 stops: no agent sends such a result).
func sameAsV1(t *testing.T, body []byte) {
	t.Helper()
	got, err := readOutcome(body)
	var want outcome
	werr := json.Unmarshal(body, &want)
	if werr != nil {
		var res api.JobResult
		if werr = json.Unmarshal(body, &res); werr == nil {
			want = outcome{Error: res.Error}
			if json.Unmarshal(res.Result, &want.Result) != nil && json.Valid(res.Result) {
				return // a type error
			}
		}
	}
	if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("readOutcome(%s) = %+v, %v; encoding/json: %+v, %v", body, got, err, want, werr)
	}
}

// TestSummaryReadsAsResult checks summary against the whole result on
// generated install, rollback and reboot results, and the summary of a
// real-sized result is small.
func TestSummaryReadsAsResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 2026))
	pick := func(ss ...string) string { return ss[rng.IntN(len(ss))] }
	for i := range 3000 {
		var ir api.InstallResult
		ir.Error = pick("", "", "apt-get install: exit status 100", "lock \"held\" \u00e9")
		for j := range rng.IntN(4) {
			ir.Packages = append(ir.Packages, apply.PackageResult{Package: fmt.Sprint("p", j), Kind: "upgrade", Want: "1.0", OK: rng.IntN(4) > 0})
		}
		if rng.IntN(3) > 0 {
			ir.Health = &health.Report{Healthy: rng.IntN(2) == 0}
		}
		if rng.IntN(3) > 0 {
			ir.Reboot = &apply.Reboot{Required: rng.IntN(2) == 0}
		}
		res := api.JobResult{Status: pick("ok", "failed"), Error: pick("", "", "timed out")}
		switch rng.IntN(8) {
		case 0: // not an install result
			res.Result = json.RawMessage(pick(`"text"`, `[1,2]`, `null`, `7`, `{"plan":{}}`, `{"packages":"x"}`, `{"health":[]}`))
		case 1: // no result
		default:
			res.Result = api.Raw(ir)
		}
		body, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, res.Status, body)
		sameAsV1(t, body)
		if i < 3 {
			t.Logf("%s\n→ %s", body, summary(body))
		}
	}

	// A stored result that is not a job result (no agent sends one: the
	// server decodes each strictly) has no summary; the step reads it, and
	// fails the host for it.
	for _, body := range []string{`"text"`, `[]`, `{`, `{"error":7}`} {
		if sum := summary([]byte(body)); sum != nil {
			t.Errorf("summary of %s = %s, want none", body, sum)
		}
		sameEvents(t, "ok", []byte(body))
		sameAsV1(t, []byte(body))
	}

	// A real-sized result: 91 packages and a log.
	var ir api.InstallResult
	for j := range 91 {
		ir.Packages = append(ir.Packages, apply.PackageResult{Package: fmt.Sprint("libexample", j), Arch: "amd64", Kind: "upgrade",
			Before: "1.2.3-1", Want: "1.2.3-1+deb12u1", Now: "1.2.3-1+deb12u1", Status: "ii ", OK: true})
	}
	ir.Health = &health.Report{Healthy: true}
	body, _ := json.Marshal(api.JobResult{Status: "ok", Result: api.Raw(ir)})
	sameEvents(t, "ok", body)
	if n := len(summary(body)); n > 200 {
		t.Errorf("summary of a %d-byte result has %d bytes", len(body), n)
	}
}

// FuzzSummary checks summary against the whole result on any result an
// agent could send (a JobResult around any JSON value).
func FuzzSummary(f *testing.F) {
	f.Add("ok", "", []byte(`{"packages":[{"ok":true}],"health":{"healthy":false}}`))
	f.Add("failed", "x", []byte(`{"error":"e","reboot":{"required":true},"packages":[]}`))
	f.Add("ok", "", []byte(`[{"ok":false}]`))
	f.Add("ok", "", []byte(`{"packages":[{"ok":true},{"ok":"yes"}]}`))
	f.Add("ok", "", []byte(`{"re_boot":{"required":true},"packages":[{"ok":true,"o-k":false}],"Health":{"HEALTHY":true}}`))
	f.Fuzz(func(t *testing.T, status, errText string, result []byte) {
		if !json.Valid(result) {
			result = nil
		}
		body, err := json.Marshal(api.JobResult{Status: status, Error: errText, Result: result})
		if err != nil {
			return
		}
		sameEvents(t, status, body)
		sameAsV1(t, body)
	})
}

// BenchmarkResultRead compares what the server does with a real-sized
// install result (91 packages) as it comes in, a strict decode and its
// summary, with encoding/json (the way before, the baseline) and with
// api.DecodeJobResult (encoding/json/v2).
func BenchmarkResultRead(b *testing.B) {
	var ir api.InstallResult
	for j := range 91 {
		ir.Packages = append(ir.Packages, apply.PackageResult{Package: fmt.Sprint("libexample", j), Arch: "amd64", Kind: "upgrade",
			Before: "1.2.3-1", Want: "1.2.3-1+deb12u1", Now: "1.2.3-1+deb12u1", Status: "ii ", OK: true})
	}
	ir.Health, ir.Log = &health.Report{Healthy: true, Checks: []health.Result{{Name: "dpkg --audit", Kind: "dpkg", Status: "pass"}}}, "simulated\n"
	body, _ := json.Marshal(api.JobResult{Status: "ok", Result: api.Raw(ir)})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var res api.JobResult
			if err := api.Decode(bytes.NewReader(body), api.MaxBody, &res); err != nil {
				b.Fatal(err)
			}
			var o outcome
			if err := json.Unmarshal(body, &o); err != nil {
				b.Fatal(err)
			}
			_ = summaryOf(o)
		}
	})
	b.Run("DecodeJobResult", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			res, err := api.DecodeJobResult(body)
			if err != nil {
				b.Fatal(err)
			}
			_ = summaryOf(outcomeOf(res))
		}
	})
}
