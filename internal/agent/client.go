package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/pki"
)

// Client talks to the server's agent API over TLS pinned to the CA.
type Client struct {
	base       string
	credential string
	http       *http.Client
	timeout    time.Duration // per request, plus any wait asked for
}

// NewClient returns a client for the server at base whose CA has this
// fingerprint; credential may be empty (enrollment).
func NewClient(base, caFingerprint, credential string, timeout time.Duration) (*Client, error) {
	tlsConf, err := pki.PinnedTLS(caFingerprint, nil)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("server %q: want an https:// URL", base)
	}
	// A session cache of the client's own: when the connection is dropped
	// between check-ins, the next one resumes the TLS session (no
	// certificates sent, signed or checked) instead of a full handshake.
	// The pin is not weakened: VerifyPeerCertificate runs only on full
	// handshakes, but only the server that passed it there holds the
	// session's secret. One server, so one entry.
	tlsConf.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	// HTTP/2 when the server speaks it (patchloop's does): one agent
	// gains nothing from it, but clients sharing a transport (As) then
	// share connections too. Timeouts are per request (do), since a held
	// check-in may take its wait on top of them.
	// Pings find a connection that died silently (NAT state lost, a
	// network change) while a check-in is held: HTTP/2 would otherwise
	// keep sending requests down it until TCP gives up.
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 2, IdleConnTimeout: 5 * time.Minute,
		TLSHandshakeTimeout: 10 * time.Second, ForceAttemptHTTP2: true,
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}}
	return &Client{base: strings.TrimRight(base, "/"), credential: credential, timeout: timeout,
		http: &http.Client{Transport: tr}}, nil
}

// As returns a client with another credential that shares c's
// connections: for a program speaking for many hosts (package loadgen),
// whose requests HTTP/2 then multiplexes over few connections.
func (c *Client) As(credential string) *Client {
	cc := *c
	cc.credential = credential
	return &cc
}

// StatusError is a non-2xx answer from the server.
type StatusError struct {
	Code   int
	Reason string
	URL    string
	// RetryAfter is the answer's Retry-After in seconds (a busy server's
	// 503), 0 when it has none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Code, http.StatusText(e.Code), e.Reason)
}

// Refused reports whether the server refused the credential itself (as
// opposed to being unreachable or failing).
func (e *StatusError) Refused() bool {
	return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
}

// do sends body (JSON, gzipped when zip) and decodes the answer into out,
// within the client's timeout plus extra.
func (c *Client) do(ctx context.Context, method, path string, body any, zip bool, extra time.Duration, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+extra)
		defer cancel()
	}
	var buf bytes.Buffer
	if body != nil {
		var w io.Writer = &buf
		var zw *gzip.Writer
		if zip {
			zw = gzip.NewWriter(&buf)
			w = zw
		}
		if raw, ok := body.(encoded); ok {
			w.Write(raw) // (a bytes.Buffer or a gzip.Writer on one: its error comes at Close)
		} else if err := json.NewEncoder(w).Encode(body); err != nil {
			return err
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return err
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if c.credential != "" {
		req.Header.Set("Authorization", "Bearer "+c.credential)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e api.Error
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		se := &StatusError{Code: resp.StatusCode, Reason: e.Error, URL: c.base + path}
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
			se.RetryAfter = time.Duration(min(n, 3600)) * time.Second
		}
		return se
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	return decodeResponse(io.LimitReader(resp.Body, api.MaxBody), out)
}

// decodeResponse decodes a server's JSON answer into out, ignoring fields
// this agent does not know (a newer server's). It decodes with
// encoding/json/v2's module, as the server does agents' results: a
// check-in that hands out an install job carries its pins, and decoding
// them was the largest part of the load generator's own time (its 100,000
// simulated agents share the server's cores), about 4.6 times faster so
// (BenchmarkDecodeResponse). Unlike encoding/json, and for nothing a
// server writes, it takes a name in another case for an unknown one, and
// refuses a name given twice, invalid UTF-8 and data after the answer
// (servers encode every answer, and every job's params when they store
// them, with encoding/json, which writes none of these).
func decodeResponse(r io.Reader, out any) error {
	return jsonv2.UnmarshalRead(r, out)
}

// Enroll exchanges an enrollment token for a host credential.
func (c *Client) Enroll(ctx context.Context, token string, facts api.Facts) (api.EnrollResponse, error) {
	var out api.EnrollResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/enroll", api.EnrollRequest{Token: token, Facts: facts}, false, 0, &out)
	return out, err
}

// CheckIn reports facts and the inventory hash. With req.WaitSeconds
// the server may hold the answer that long, which the request's timeout
// allows for.
func (c *Client) CheckIn(ctx context.Context, req api.CheckInRequest) (api.CheckInResponse, error) {
	var out api.CheckInResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/agent/checkin", req, false, time.Duration(req.WaitSeconds)*time.Second, &out)
	return out, err
}

// PutInventory sends the full inventory.
func (c *Client) PutInventory(ctx context.Context, inv *api.Inventory) error {
	return c.do(ctx, http.MethodPut, "/api/v1/agent/inventory", inv, true, 0, nil)
}

// JobResult reports a job's result.
func (c *Client) JobResult(ctx context.Context, jobID string, res api.JobResult) error {
	return c.do(ctx, http.MethodPost, "/api/v1/agent/jobs/"+url.PathEscape(jobID)+"/result", res, false, 0, nil)
}

// JobResultJSON reports a job's result already encoded (an api.JobResult
// in JSON), as it is: the load generator's hosts send one job's result
// encoded once.
func (c *Client) JobResultJSON(ctx context.Context, jobID string, res []byte) error {
	return c.do(ctx, http.MethodPost, "/api/v1/agent/jobs/"+url.PathEscape(jobID)+"/result", encoded(res), false, 0, nil)
}

// encoded is a request body already in JSON.
type encoded []byte
