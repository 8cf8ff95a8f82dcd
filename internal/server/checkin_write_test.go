package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/patchloop/patchloop/internal/api"
)

// TestWriteCheckIn checks writeCheckIn against writeJSON (encoding/json,
// what check-ins were answered with before: the oracle) on generated
// answers: the same bytes and headers.
func TestWriteCheckIn(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 2))
	pick := func(ss ...string) string { return ss[rng.IntN(len(ss))] }
	for i := range 2000 {
		resp := api.CheckInResponse{SendInventory: rng.IntN(2) == 0, IntervalSeconds: rng.IntN(4000) - 10, Held: rng.IntN(2) == 0}
		switch rng.IntN(3) {
		case 0: // no jobs
		case 1:
			resp.Jobs = []api.Job{}
		default:
			for j := range 1 + rng.IntN(3) {
				params := pick(``, `{}`, `null`, `{"packages":[{"package":"a<b>&c","version":"1:2.3-4+deb12u5"}]}`,
					"{ \"packages\" : [ {\"package\":\"x\u2028y\u2029z\", \"version\":\"1\"} ] }", `{"n":1e3,"s":"\u00e9\t\"q\""}`, `[1, 2,  3]`,
					`{"<a>":1,"a&b":"\u003c"}`,
					`{"a":1,"a":2}`, "{\"bad\":\"\xff\"}") // (the last two v2 refuses: writeJSON's bytes then)
				var raw json.RawMessage
				if params != "" {
					raw = json.RawMessage(params)
				}
				resp.Jobs = append(resp.Jobs, api.Job{ID: fmt.Sprint("ro-", i, "-", j, pick("", "<&>", "é", "\xff")), Kind: pick("install", "scan", "reboot"), Params: raw})
			}
		}
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		writeJSON(want, 200, resp)
		writeCheckIn(got, resp)
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("writeCheckIn wrote\n%s\nencoding/json\n%s", got.Body.Bytes(), want.Body.Bytes())
		}
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Fatalf("writeCheckIn: %d %q, encoding/json %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
		}
	}
}

// BenchmarkWriteCheckIn compares writeCheckIn with writeJSON (the baseline)
// on a check-in answer that hands out an install job of 92 pins.
func BenchmarkWriteCheckIn(b *testing.B) {
	var pins []map[string]string
	for k := range 92 {
		pins = append(pins, map[string]string{"package": fmt.Sprint("libexample", k), "arch": "amd64", "version": "1.2.3-4+deb12u5"})
	}
	params, _ := json.Marshal(map[string]any{"packages": pins})
	resp := api.CheckInResponse{IntervalSeconds: 60, Held: true, Jobs: []api.Job{{ID: "ro-0123456789abcdef", Kind: "install", Params: params}}}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			writeJSON(httptest.NewRecorder(), 200, resp)
		}
	})
	b.Run("writeCheckIn", func(b *testing.B) {
		for b.Loop() {
			writeCheckIn(httptest.NewRecorder(), resp)
		}
	})
}
