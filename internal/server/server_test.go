package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/store"
	"github.com/patchloop/patchloop/internal/store/pgtest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a real server on a real SQLite store, served over TLS on loopback.
type env struct {
	t      *testing.T
	srv    *Server
	st     store.Store
	ts     *httptest.Server
	admin  string
	fpr    string
	clock  *clock
	client *http.Client // pinned, no credential
}

// TestServer runs every server test on SQLite and on PostgreSQL.
func TestServer(t *testing.T) {
	tests := map[string]func(*testing.T, *env){
		"EnrollCheckInInventory":                    tEnrollCheckInInventory,
		"ReEnrollKeepsHostAndRevocationIsImmediate": tReEnrollKeepsHostAndRevocationIsImmediate,
		"EnrollmentTokenLimits":                     tEnrollmentTokenLimits,
		"BadRequests":                               tBadRequests,
		"WrongCAFingerprintIsRefused":               tWrongCAFingerprintIsRefused,
		"JobsAtLeastOnceStoredOnce":                 tJobsAtLeastOnceStoredOnce,
		"HealthReadyMetrics":                        tHealthReadyMetrics,
		"CertificateFiles":                          tCertificateFiles,
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for name, test := range tests {
			t.Run(backend+"/"+name, func(t *testing.T) { test(t, newEnv(t, backend)) })
		}
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newEnv(t *testing.T, backend string) *env {
	t.Helper()
	return newEnvWith(t, backend, nil)
}

// newEnvWith is newEnv with the server's Config changed by with.
func newEnvWith(t *testing.T, backend string, with func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "db.sqlite")
	if backend == "postgres" {
		dsn = pgtest.Start(t)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	eng := central.New(central.Config{CacheDir: filepath.Join(dir, "cache"), Offline: true})
	cfg := Config{Store: st, Engine: eng, Now: clk.Now, Interval: time.Minute, JobLease: 5 * time.Minute}
	if with != nil {
		with(&cfg)
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := srv.CreateAdminToken(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	if ts.TLS, err = srv.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	fpr := pki.Fingerprint(srv.CA().Cert)
	tlsConf, err := pki.PinnedTLS(fpr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, st: st, ts: ts, admin: admin, fpr: fpr, clock: clk,
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}}
}

// call sends a raw request and returns the status and body.
func (e *env) call(method, path, auth, contentType string, body []byte) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// adminJSON calls the admin API and decodes the answer.
func (e *env) adminJSON(method, path string, body, out any) {
	e.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	code, resp := e.call(method, path, e.admin, "application/json", b)
	if code/100 != 2 {
		e.t.Fatalf("%s %s: %d %s", method, path, code, resp)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(resp), out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, resp)
		}
	}
}

func (e *env) token(req api.CreateTokenRequest) string {
	var t api.EnrollToken
	e.adminJSON("POST", "/api/v1/tokens", req, &t)
	if t.CAFingerprint != e.fpr {
		e.t.Fatalf("token's CA fingerprint %s, server's %s", t.CAFingerprint, e.fpr)
	}
	return t.Token
}

func facts(machine string) api.Facts {
	return api.Facts{Hostname: "h-" + machine[:6], MachineID: machine, Distro: "debian", Release: "12", Arch: "amd64"}
}

func (e *env) enroll(token, machine string) (*agent.Client, api.EnrollResponse, error) {
	c, err := agent.NewClient(e.ts.URL, e.fpr, "", 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := c.Enroll(context.Background(), token, facts(machine))
	if err != nil {
		return nil, resp, err
	}
	hc, err := agent.NewClient(e.ts.URL, e.fpr, resp.Credential, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return hc, resp, nil
}

func machineID(n int) string { return fmt.Sprintf("%032x", n+1) }

func inventory(version string) *api.Inventory {
	return &api.Inventory{NativeArch: "amd64", Packages: []api.Package{
		{Name: "dpkg", Arch: "amd64", Version: "1.21.22", Status: "install ok installed"},
		{Name: "jq", Arch: "amd64", Version: version, Status: "install ok installed"},
	}}
}

func statusOf(err error) int {
	var se *agent.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func tEnrollCheckInInventory(t *testing.T, e *env) {
	c, enrolled, err := e.enroll(e.token(api.CreateTokenRequest{Labels: map[string]string{"ring": "test"}}), machineID(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inv := inventory("1.6-2.1")
	resp, err := c.CheckIn(ctx, api.CheckInRequest{Facts: facts(machineID(1)), InventoryHash: inv.Hash()})
	if err != nil || !resp.SendInventory || resp.IntervalSeconds != 60 {
		t.Fatalf("first check-in: %+v, %v", resp, err)
	}
	if err := c.PutInventory(ctx, inv); err != nil {
		t.Fatal(err)
	}
	resp, err = c.CheckIn(ctx, api.CheckInRequest{Facts: facts(machineID(1)), InventoryHash: inv.Hash()})
	if err != nil || resp.SendInventory {
		t.Fatalf("check-in after the inventory: %+v, %v", resp, err)
	}
	var hosts []api.Host
	e.adminJSON("GET", "/api/v1/hosts", nil, &hosts)
	if len(hosts) != 1 || hosts[0].ID != enrolled.HostID || hosts[0].Labels["ring"] != "test" || hosts[0].Stale ||
		hosts[0].Updates == nil || *hosts[0].Updates != 0 || hosts[0].Facts == nil || hosts[0].Facts.Release != "12" {
		t.Fatalf("hosts: %+v", hosts)
	}
	// Three intervals without a check-in make the host stale.
	e.clock.Add(4 * time.Minute)
	var h api.Host
	e.adminJSON("GET", "/api/v1/hosts/"+enrolled.HostID, nil, &h)
	if !h.Stale {
		t.Errorf("host not stale after 4 silent minutes: %+v", h)
	}
}

func tReEnrollKeepsHostAndRevocationIsImmediate(t *testing.T, e *env) {
	tok := e.token(api.CreateTokenRequest{})
	ctx := context.Background()
	c1, r1, err := e.enroll(tok, machineID(7))
	if err != nil {
		t.Fatal(err)
	}
	c2, r2, err := e.enroll(tok, machineID(7))
	if err != nil {
		t.Fatal(err)
	}
	if r1.HostID != r2.HostID {
		t.Fatalf("re-enrolling the same machine made host %s besides %s", r2.HostID, r1.HostID)
	}
	if _, err := c1.CheckIn(ctx, api.CheckInRequest{}); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("old credential after re-enrollment: %v, want 401", err)
	}
	if _, err := c2.CheckIn(ctx, api.CheckInRequest{}); err != nil {
		t.Fatal(err)
	}
	e.adminJSON("POST", "/api/v1/hosts/"+r2.HostID+"/revoke", nil, nil)
	if _, err := c2.CheckIn(ctx, api.CheckInRequest{}); statusOf(err) != http.StatusForbidden {
		t.Errorf("revoked credential: %v, want 403", err)
	}
	var hosts []api.Host
	e.adminJSON("GET", "/api/v1/hosts", nil, &hosts)
	if len(hosts) != 0 {
		t.Errorf("revoked host still listed: %+v", hosts)
	}
}

func tEnrollmentTokenLimits(t *testing.T, e *env) {
	once := e.token(api.CreateTokenRequest{MaxUses: 1})
	if _, _, err := e.enroll(once, machineID(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.enroll(once, machineID(2)); statusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "used") {
		t.Errorf("used-up token: %v", err)
	}
	short := e.token(api.CreateTokenRequest{ExpiresIn: "1h"})
	e.clock.Add(2 * time.Hour)
	if _, _, err := e.enroll(short, machineID(3)); statusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	revoked := e.token(api.CreateTokenRequest{})
	id := strings.Split(strings.TrimPrefix(revoked, api.EnrollTokenPrefix), "_")[0]
	e.adminJSON("DELETE", "/api/v1/tokens/"+id, nil, nil)
	if _, _, err := e.enroll(revoked, machineID(4)); statusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked token: %v", err)
	}
	forged := revoked[:len(revoked)-4] + "AAAA"
	if _, _, err := e.enroll(forged, machineID(5)); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("forged token secret: %v", err)
	}
}

func tBadRequests(t *testing.T, e *env) {
	c, enrolled, err := e.enroll(e.token(api.CreateTokenRequest{}), machineID(1))
	if err != nil {
		t.Fatal(err)
	}
	_ = c
	cred := enrolled.Credential
	good, _ := json.Marshal(inventory("1.6-2.1"))
	garbage, _ := json.Marshal(inventory("not a version!"))
	badName, _ := json.Marshal(&api.Inventory{NativeArch: "amd64", Packages: []api.Package{{Name: "../../etc", Arch: "amd64", Version: "1", Status: "install ok installed"}}})
	huge := append([]byte(`{"native_arch":"amd64","packages":[],"pad":"`), bytes.Repeat([]byte("x"), api.MaxInventoryBody)...)
	bigResult := append([]byte(`{"status":"ok","error":"`), bytes.Repeat([]byte("x"), api.MaxBody)...)
	id, secret, _ := splitCredential(cred, api.HostSecretPrefix)
	tests := []struct {
		name, method, path, auth, ctype string
		body                            []byte
		want                            int
		reason                          string
	}{
		{"no credential", "POST", "/api/v1/agent/checkin", "", "application/json", []byte(`{}`), 401, "host credential"},
		{"admin token as host", "POST", "/api/v1/agent/checkin", e.admin, "application/json", []byte(`{}`), 401, "host credential"},
		{"host credential as admin", "GET", "/api/v1/hosts", cred, "", nil, 401, "admin token"},
		{"forged secret", "POST", "/api/v1/agent/checkin", api.HostSecretPrefix + id + "_" + strings.Repeat("A", len(secret)), "application/json", []byte(`{}`), 401, "wrong host credential"},
		{"unknown host", "POST", "/api/v1/agent/checkin", api.HostSecretPrefix + "0000000000000000_" + secret, "application/json", []byte(`{}`), 401, "unknown host"},
		{"wrong content type", "POST", "/api/v1/agent/checkin", cred, "text/plain", []byte(`{}`), 415, "Content-Type"},
		{"malformed JSON", "POST", "/api/v1/agent/checkin", cred, "application/json", []byte(`{"facts":`), 400, "bad JSON"},
		{"unknown field", "POST", "/api/v1/agent/checkin", cred, "application/json", []byte(`{"facts":{},"extra":1}`), 400, "unknown field"},
		{"two values", "POST", "/api/v1/agent/checkin", cred, "application/json", []byte(`{} {}`), 400, "after the value"},
		{"oversized inventory", "PUT", "/api/v1/agent/inventory", cred, "application/json", huge, 413, "limit"},
		{"garbage version", "PUT", "/api/v1/agent/inventory", cred, "application/json", garbage, 422, "not a version"},
		{"bad package name", "PUT", "/api/v1/agent/inventory", cred, "application/json", badName, 422, "not a package name"},
		{"enroll without token", "POST", "/api/v1/enroll", "", "application/json", []byte(`{"token":"","facts":{}}`), 400, "token"},
		{"enroll bad machine-id", "POST", "/api/v1/enroll", "", "application/json", []byte(`{"token":"ple_a_b","facts":{"machine_id":"x"}}`), 400, "machine_id"},
		{"job result for another host's job", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte(`{"status":"ok"}`), 404, "no job"},
		{"job result bad status", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte(`{"status":"maybe"}`), 400, "status"},
		{"job result not UTF-8", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte("{\"status\":\"ok\",\"error\":\"\xff\"}"), 400, "UTF-8"},
		{"job result not UTF-8 inside", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte("{\"status\":\"ok\",\"result\":{\"log\":\"\xff\"}}"), 400, "UTF-8"},
		{"job result stray brace", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte(`{"status":"ok"}}`), 400, "after top-level value"},
		{"job result unknown field", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte(`{"status":"ok","stauts":"ok"}`), 400, `unknown field "stauts"`},
		{"job result name twice", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte(`{"status":"ok","status":"failed"}`), 400, "duplicate"},
		{"job result bad inner JSON", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", []byte(`{"status":"ok","result":{"packages":[1,]}}`), 400, "/result/packages"},
		{"job result oversized", "POST", "/api/v1/agent/jobs/nope/result", cred, "application/json", bigResult, 413, "limit"},
		{"token bad expiry", "POST", "/api/v1/tokens", e.admin, "application/json", []byte(`{"expires_in":"soon"}`), 400, "expires_in"},
		{"job of unknown kind", "POST", "/api/v1/jobs", e.admin, "application/json", []byte(`{"kind":"format-disk"}`), 400, "unknown job kind"},
		{"job with bad params", "POST", "/api/v1/jobs", e.admin, "application/json", []byte(`{"kind":"install","params":{"packages":[{"package":"jq","version":"-1"}]}}`), 400, "install params"},
	}
	for _, tc := range tests {
		code, body := e.call(tc.method, tc.path, tc.auth, tc.ctype, tc.body)
		var msg api.Error
		if code != tc.want || json.Unmarshal([]byte(body), &msg) != nil || !strings.Contains(msg.Error, tc.reason) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, strings.TrimSpace(body), tc.want, tc.reason)
		}
	}
	// Nothing was stored half-way: no inventory, and the host has none.
	st, err := e.st.Stats(context.Background())
	if err != nil || st.Inventories != 0 || st.Hosts != 1 {
		t.Errorf("after bad requests: %+v, %v", st, err)
	}
	if code, body := e.call("PUT", "/api/v1/agent/inventory", cred, "application/json", good); code != 204 {
		t.Errorf("good inventory after the bad ones: %d %s", code, body)
	}
}

func tWrongCAFingerprintIsRefused(t *testing.T, e *env) {
	other, err := pki.NewCA("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := agent.NewClient(e.ts.URL, pki.Fingerprint(other.Cert), "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Enroll(context.Background(), e.token(api.CreateTokenRequest{}), facts(machineID(1)))
	if err == nil || !strings.Contains(err.Error(), "does not contain the CA") {
		t.Fatalf("enroll against a server with another CA: %v", err)
	}
}

func tJobsAtLeastOnceStoredOnce(t *testing.T, e *env) {
	c, enrolled, err := e.enroll(e.token(api.CreateTokenRequest{}), machineID(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var job api.JobStatus
	e.adminJSON("POST", "/api/v1/jobs", api.CreateJobRequest{Kind: "scan"}, &job)
	if len(job.Hosts) != 1 || job.Hosts[0].HostID != enrolled.HostID || job.Hosts[0].State != store.JobQueued {
		t.Fatalf("job: %+v", job)
	}
	r1, err := c.CheckIn(ctx, api.CheckInRequest{})
	if err != nil || len(r1.Jobs) != 1 || r1.Jobs[0].ID != job.ID {
		t.Fatalf("first check-in: %+v, %v", r1, err)
	}
	// Within the lease the job is not handed out again.
	if r, err := c.CheckIn(ctx, api.CheckInRequest{}); err != nil || len(r.Jobs) != 0 {
		t.Fatalf("check-in within the lease: %+v, %v", r, err)
	}
	// The agent "crashed" before reporting: after the lease it comes again.
	e.clock.Add(6 * time.Minute)
	r2, err := c.CheckIn(ctx, api.CheckInRequest{})
	if err != nil || len(r2.Jobs) != 1 || r2.Jobs[0].ID != job.ID {
		t.Fatalf("check-in after the lease: %+v, %v", r2, err)
	}
	for i, status := range []string{"ok", "failed"} {
		if err := c.JobResult(ctx, job.ID, api.JobResult{Status: status, Result: json.RawMessage(fmt.Sprintf(`{"run":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	e.adminJSON("GET", "/api/v1/jobs/"+job.ID, nil, &job)
	h := job.Hosts[0]
	if h.State != store.JobDone || h.Status != "ok" || h.Attempts != 2 || !strings.Contains(string(h.Result), `"run":0`) {
		t.Fatalf("job after two reports: %+v (%s)", h, h.Result)
	}
}

func tHealthReadyMetrics(t *testing.T, e *env) {
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "patchloop_hosts 0"} {
		code, body := e.call("GET", path, "", "", nil)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q in %.200s", path, code, want, body)
		}
	}
}

func tCertificateFiles(t *testing.T, e *env) {
	opCA, err := pki.NewCA("operator CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := opCA.ServerCert([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := pki.EncodeKey(cert.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	files := map[string][]byte{"cert.pem": pki.EncodeCert(leaf), "key.pem": key, "ca.pem": pki.EncodeCert(opCA.Cert),
		"other.pem": pki.EncodeCert(e.srv.CA().Cert)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := e.srv.UseCertificateFiles(p("cert.pem"), p("key.pem"), p("other.pem")); err == nil || !strings.Contains(err.Error(), "not valid under CA") {
		t.Fatalf("certificate with the wrong CA: %v", err)
	}
	if err := e.srv.UseCertificateFiles(p("cert.pem"), p("key.pem"), p("ca.pem")); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	if ts.TLS, err = e.srv.TLSConfig(nil); err != nil {
		t.Fatal(err)
	}
	ts.StartTLS()
	defer ts.Close()
	if e.srv.CAFingerprint() != pki.Fingerprint(opCA.Cert) {
		t.Fatal("the fingerprint to pin is not the operator CA's")
	}
	var tok api.EnrollToken
	e.adminJSON("POST", "/api/v1/tokens", api.CreateTokenRequest{}, &tok)
	if tok.CAFingerprint != pki.Fingerprint(opCA.Cert) {
		t.Errorf("token names CA %s, want the operator's", tok.CAFingerprint)
	}
	for fpr, ok := range map[string]bool{pki.Fingerprint(opCA.Cert): true, pki.Fingerprint(e.srv.CA().Cert): false} {
		c, err := agent.NewClient(ts.URL, fpr, "", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Enroll(context.Background(), tok.Token, facts(machineID(len(fpr)+boolInt(ok))))
		if (err == nil) != ok {
			t.Errorf("enroll pinning %s: %v", fpr[:8], err)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
