package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
)

// connTrace records the TLS state of every new connection the requests
// made with the returned context open.
type connTrace struct {
	mu    sync.Mutex
	conns []tls.ConnectionState
}

func (ct *connTrace) context(t *testing.T) context.Context {
	return httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			return
		}
		tc, ok := info.Conn.(*tls.Conn)
		if !ok {
			t.Errorf("connection %T, want *tls.Conn", info.Conn)
			return
		}
		ct.mu.Lock()
		ct.conns = append(ct.conns, tc.ConnectionState())
		ct.mu.Unlock()
	}})
}

// last returns the state of the last new connection and forgets them all.
func (ct *connTrace) last(t *testing.T) tls.ConnectionState {
	t.Helper()
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if len(ct.conns) == 0 {
		t.Fatal("no new connection")
	}
	cs := ct.conns[len(ct.conns)-1]
	ct.conns = nil
	return cs
}

// A check-in after the connection was dropped resumes the TLS session
// instead of a full handshake, and the host is still authenticated on
// the resumed session: by its credential, sent with every request, so a
// wrong credential or a revoked host is refused on it as on a fresh one.
func TestReconnectResumesTLSSession(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	var ct connTrace
	ctx := ct.context(t)
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if cs := ct.last(t); cs.DidResume {
		t.Fatal("first connection resumed a session it cannot have")
	}
	reconnect := func() tls.ConnectionState {
		t.Helper()
		a.client.http.CloseIdleConnections()
		if err := a.Once(ctx); err != nil {
			t.Fatalf("check-in on a new connection: %v", err)
		}
		return ct.last(t)
	}
	cs := reconnect()
	if !cs.DidResume {
		t.Fatalf("second connection (%s) did a full handshake, want a resumed session", tls.VersionName(cs.Version))
	}
	if ts.resumed.Load() == 0 {
		t.Error("the server saw no request on a resumed session")
	}
	t.Logf("resumed over %s", tls.VersionName(cs.Version))

	// A wrong credential over the same client's resumed session.
	a.client.http.CloseIdleConnections()
	wrong := *a.client
	wrong.credential = a.st.Credential + "x"
	var se *StatusError
	if _, err := wrong.CheckIn(ctx, checkIn(t, a)); !errors.As(err, &se) || se.Code != 401 {
		t.Errorf("wrong credential on a resumed session: %v, want 401", err)
	}
	if !ct.last(t).DidResume {
		t.Error("the wrong-credential request did not resume")
	}

	// A revoked host over a resumed session.
	if err := ts.st.RevokeHost(context.Background(), a.st.HostID, time.Now()); err != nil {
		t.Fatal(err)
	}
	a.client.http.CloseIdleConnections()
	if err := a.Once(ctx); !errors.As(err, &se) || se.Code != 403 {
		t.Errorf("revoked host on a resumed session: %v, want 403", err)
	}
	if !ct.last(t).DidResume {
		t.Error("the revoked host's request did not resume")
	}
}

// Two clients share no sessions: a new client does a full handshake.
func TestClientsShareNoSessions(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	var ct connTrace
	ctx := ct.context(t)
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	ct.last(t)
	other, err := NewClient(ts.url, ts.fpr, a.st.Credential, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.CheckIn(ctx, checkIn(t, a)); err != nil {
		t.Fatal(err)
	}
	if ct.last(t).DidResume {
		t.Error("a new client resumed another client's session")
	}
}

// checkIn is the check-in request a would send.
func checkIn(t *testing.T, a *Agent) api.CheckInRequest {
	t.Helper()
	inv, facts, err := Collect(a.cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	return api.CheckInRequest{Facts: facts, InventoryHash: inv.Hash()}
}

// TestDecodeResponse checks decodeResponse against encoding/json, what the
// agent decoded the server's answers with before, on generated check-in
// answers as servers write them: the same result, fields it does not know
// ignored (a newer server's), and a cut answer refused. Then where it
// differs from encoding/json (for what no server writes).
func TestDecodeResponse(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 12))
	for i := range 500 {
		resp := api.CheckInResponse{SendInventory: rng.IntN(2) == 0, IntervalSeconds: rng.IntN(4000), Held: rng.IntN(2) == 0}
		for j := range rng.IntN(3) {
			var pins []apply.Pin
			for k := range rng.IntN(100) {
				pins = append(pins, apply.Pin{Package: fmt.Sprint("lib", k), Arch: "amd64", Version: fmt.Sprintf("1.%d-%d+deb12u%d", k, j, i)})
			}
			resp.Jobs = append(resp.Jobs, api.Job{ID: fmt.Sprint("job", i, j), Kind: "install", Params: api.Raw(api.InstallParams{Packages: pins})})
		}
		body, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // a newer server's answer
			body = append([]byte(`{"later":{"x":[1,"é"]},`), body[1:]...)
		}
		body = append(body, '\n') // as servers write it (json.Encoder)
		var got, want api.CheckInResponse
		if err := decodeResponse(bytes.NewReader(body), &got); err != nil {
			t.Fatalf("decodeResponse(%s): %v", body, err)
		}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeResponse(%s) = %+v, encoding/json %+v", body, got, want)
		}
		cut := body[:rng.IntN(len(body)-1)]
		if err := decodeResponse(bytes.NewReader(cut), &got); err == nil {
			t.Fatalf("decodeResponse(%s) accepted a cut answer", cut)
		}
	}
	var other api.CheckInResponse
	if err := decodeResponse(strings.NewReader(`{"Held":true}`), &other); err != nil || other.Held {
		t.Errorf(`decodeResponse({"Held":true}) = %+v, %v; want the name unknown`, other, err)
	}
	for _, body := range []string{`{"held":true,"held":false}`, "{\"jobs\":[{\"id\":\"\xff\"}]}", `{} {}`} {
		var v1 api.CheckInResponse
		if err := json.NewDecoder(strings.NewReader(body)).Decode(&v1); err != nil {
			t.Fatalf("encoding/json refuses %q: %v", body, err)
		}
		if err := decodeResponse(strings.NewReader(body), new(api.CheckInResponse)); err == nil {
			t.Errorf("decodeResponse(%q) accepted it", body)
		}
	}
}

// BenchmarkDecodeResponse compares decodeResponse with encoding/json (the
// baseline, what the agent used before) on a check-in answer that hands out
// an install job of 92 pins.
func BenchmarkDecodeResponse(b *testing.B) {
	var pins []apply.Pin
	for k := range 92 {
		pins = append(pins, apply.Pin{Package: fmt.Sprint("libexample", k), Arch: "amd64", Version: "1.2.3-4+deb12u5"})
	}
	body, _ := json.Marshal(api.CheckInResponse{IntervalSeconds: 60, Held: true,
		Jobs: []api.Job{{ID: "ro-0123456789abcdef", Kind: "install", Params: api.Raw(api.InstallParams{Packages: pins})}}})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var out api.CheckInResponse
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeResponse", func(b *testing.B) {
		for b.Loop() {
			var out api.CheckInResponse
			if err := decodeResponse(bytes.NewReader(body), &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
