package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/patchloop/patchloop/internal/pki"
)

// The server's TLS configuration keeps session tickets, so that an agent
// whose connection dropped resumes its session (package agent gives its
// client a session cache) instead of paying a full handshake: under TLS
// 1.3, which agents negotiate, and under TLS 1.2.
func TestTLSSessionResumption(t *testing.T) {
	e := newEnv(t, "sqlite")
	for _, max := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(max), func(t *testing.T) {
			conf, err := pki.PinnedTLS(e.fpr, nil)
			if err != nil {
				t.Fatal(err)
			}
			conf.MaxVersion, conf.ClientSessionCache = max, tls.NewLRUClientSessionCache(1)
			tr := &http.Transport{TLSClientConfig: conf}
			defer tr.CloseIdleConnections()
			get := func() *tls.ConnectionState {
				t.Helper()
				resp, err := (&http.Client{Transport: tr}).Get(e.ts.URL + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				tr.CloseIdleConnections()
				if resp.TLS == nil || resp.TLS.Version != max {
					t.Fatalf("connection state %+v, want %s", resp.TLS, tls.VersionName(max))
				}
				return resp.TLS
			}
			if get().DidResume {
				t.Fatal("the first connection resumed")
			}
			if !get().DidResume {
				t.Error("the second connection did a full handshake: the server does not resume sessions")
			}
		})
	}
}
