package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// sameAsDecode fails unless DecodeJobResult agrees with Decode (the
// oracle: encoding/json, strict) on body: it accepts nothing Decode
// refuses, decodes what both accept to the same result, and refuses what
// Decode accepts only for what it documents: a name matched only
// case-insensitively, a name given twice, invalid UTF-8.
func sameAsDecode(t *testing.T, body []byte) {
	t.Helper()
	got, err := DecodeJobResult(body)
	var want JobResult
	werr := Decode(bytes.NewReader(body), MaxBody, &want)
	switch {
	case err == nil && werr != nil:
		t.Fatalf("DecodeJobResult(%q) accepts what Decode refuses: %v", body, werr)
	case err == nil && !sameResult(got, want):
		t.Fatalf("DecodeJobResult(%q) = %+v, Decode %+v", body, got, want)
	case err != nil && werr == nil:
		var lenient JobResult
		lerr := jsonv2.Unmarshal(body, &lenient, jsonv2.RejectUnknownMembers(true), jsonv2.MatchCaseInsensitiveNames(true),
			jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
		if lerr != nil || !sameResult(lenient, want) {
			t.Fatalf("DecodeJobResult(%q) refuses (%v) what Decode accepts, and not for a documented reason (%v)", body, err, lerr)
		}
		if !strings.HasPrefix(err.Error(), "bad JSON: ") {
			t.Fatalf("DecodeJobResult(%q): %v", body, err)
		}
	}
}

func sameResult(a, b JobResult) bool {
	return a.Status == b.Status && a.Error == b.Error && bytes.Equal(a.Result, b.Result)
}

// TestDecodeJobResult checks DecodeJobResult against Decode on generated
// results: agents' own, then each cut, with a byte changed, or with a
// member added, doubled or renamed.
func TestDecodeJobResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 2026))
	pick := func(ss ...string) string { return ss[rng.IntN(len(ss))] }
	var refused, accepted int
	for range 4000 {
		res := JobResult{Status: pick("ok", "failed", "", "maybe"), Error: pick("", "apt-get: exit status 100", "é \"x\"")}
		switch rng.IntN(4) {
		case 0:
		case 1:
			res.Result = json.RawMessage(pick(`null`, `"text"`, `[1, 2.5e3, true]`, `{}`, `{"a":{"b":[{}]}}`))
		default:
			res.Result = json.RawMessage(`{"packages":[{"package":"libc6","want":"2.36-9+deb12u13","ok":true}],"health":{"healthy":` + pick("true", "false") + `},"log":"` + strings.Repeat("x", rng.IntN(50)) + `"}`)
		}
		body, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		sameAsDecode(t, body)
		if _, err := DecodeJobResult(body); err != nil {
			t.Fatalf("an agent's result %s: %v", body, err)
		}
		mutants := [][]byte{
			body[:rng.IntN(len(body))],
			append(bytes.Clone(body), pick(" ", "}", " {}", "\n", "x")...),
			bytes.Replace(body, []byte(`"status"`), []byte(pick(`"Status"`, `"STATUS"`, `"stat"`, `"status","status":"ok"`, `"error":"e","status"`)), 1),
			bytes.Replace(body, []byte(`{`), []byte(pick(`{"extra":1,`, `{"result":{},`, `{"error":"\xff",`)), 1),
		}
		b := bytes.Clone(body)
		b[rng.IntN(len(b))] = pick("{", "}", "[", "]", ",", ":", "\"", "\\", "\xc3", "0", " ")[0]
		mutants = append(mutants, b)
		for _, m := range mutants {
			sameAsDecode(t, m)
			if _, err := DecodeJobResult(m); err != nil {
				refused++
			} else {
				accepted++
			}
		}
	}
	if refused < 1000 || accepted < 1000 {
		t.Fatalf("mutants: %d refused, %d accepted: the generator misses one side", refused, accepted)
	}
}

// FuzzDecodeJobResult checks DecodeJobResult against Decode on any body.
func FuzzDecodeJobResult(f *testing.F) {
	for _, s := range []string{`{"status":"ok"}`, `{"status":"ok","result":{"packages":[]}}`, `{"status":"ok"}}`, `{"Status":"ok"}`,
		`{"status":"ok","status":"failed"}`, "{\"error\":\"\xff\"}", `{"result":null}`, `null`, ` {"status":"ok"} `, `{"status":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxBody {
			return
		}
		sameAsDecode(t, body)
	})
}
