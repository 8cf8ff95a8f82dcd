// Package server is patchloop's HTTP API under /api/v1: enrollment and
// check-ins of agents, inventories, the per-host job queue, and the admin
// API the CLI uses (hosts, updates, jobs, patch baselines, findings,
// rollouts). It owns no domain rules: detection is package central's,
// findings and risk package assess's (with the CVEs package intel finds),
// decisions package policy's, rollout decisions package rollout's,
// persistence package store's, certificates package pki's.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/memo"
	"github.com/patchloop/patchloop/internal/pki"
	"github.com/patchloop/patchloop/internal/store"
)

// Config configures a Server.
type Config struct {
	Store  store.Store
	Engine *central.Engine
	Log    *slog.Logger
	Now    func() time.Time
	// Interval is the check-in interval told to agents.
	Interval time.Duration
	// Hold is the longest the server holds a check-in that asks to wait
	// for a job (a long poll; holds.go); 0: check-ins are answered at
	// once. Keep it under the idle timeout of any proxy in between.
	Hold time.Duration
	// JobLease is how long a handed-out job stays with its agent before
	// it is handed out again.
	JobLease time.Duration
	// ResultWait is the longest a job result's POST waits for the rollout
	// step that applies it (rolloutsteps.go) before it is answered all the
	// same: the result is stored, and the step, which runs on, applies
	// it. 0: 10 s.
	ResultWait time.Duration
	// Intel holds the advisory feeds findings are assessed with,
	// refreshed by RunFeeds and listed at /api/v1/feeds; nil: none, and
	// findings carry no CVEs beyond what the changelogs name.
	Intel *Intel
	// Changelogs makes the server read the candidate changelogs of its
	// hosts' updates in the background (RunChangelogs) for findings; nil:
	// none are read, and findings' notes say so.
	Changelogs *ChangelogConfig
}

// Server serves the API. Create it with New.
type Server struct {
	cfg     Config
	store   store.Store
	engine  *central.Engine
	log     *slog.Logger
	ca      *pki.CA
	metrics *metrics
	// changelogs reads candidate changelogs for findings (changelogs.go).
	changelogs *changelogReader

	// external, when set, is the operator's certificate chain (from
	// files) and the CA agents pin instead of the server's own.
	external   *tls.Certificate
	externalCA *x509.Certificate

	ready chan struct{}
	// recompute serializes recomputation per host.
	recompute sync.Map // host ID → *sync.Mutex
	// rolloutLocks serializes the steps of each rollout (rollouts.go).
	rolloutLocks sync.Map // rollout ID → *sync.Mutex
	// resultSlots has a slot per job result being read and stored
	// (resultsAtOnce, agentapi.go).
	resultSlots chan struct{}
	// steps are the rollout steps run for job results (rolloutsteps.go).
	steps resultSteps
	// rolloutQueues lets job results share steps (rolloutsteps.go).
	rolloutQueues sync.Map // rollout ID → *stepQueue
	// rolloutStates keeps the state of each rollout this process last
	// loaded or saved, by stored version (rollouts.go).
	rolloutStates sync.Map // rollout ID → *cachedRollout
	// jobRollouts are the rollout IDs and kinds of the rollout jobs
	// answered lately, by job ID (rolloutResult). A job ID names one
	// rollout's job (rolloutJobID and sharedJobID hash the rollout in),
	// which the hosts of a ring share: their results find it once. A
	// result reaches rolloutResult only once stored for a host the job
	// was queued for, so the host need not be checked again.
	jobRollouts memo.Map[string, [2]string]
	// holds are the held check-ins (holds.go).
	holds *holds
}

// New prepares a server: it loads the CA from the store, creating it on
// first start (replicas sharing a database agree on one).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.JobLease <= 0 {
		cfg.JobLease = 10 * time.Minute
	}
	if cfg.ResultWait <= 0 {
		cfg.ResultWait = 10 * time.Second
	}
	s := &Server{cfg: cfg, store: cfg.Store, engine: cfg.Engine, log: cfg.Log, ready: make(chan struct{}),
		resultSlots: make(chan struct{}, resultsAtOnce)}
	s.steps.ctx, s.steps.cancel = context.WithCancel(context.Background())
	ca, err := loadCA(ctx, cfg.Store, cfg.Now())
	if err != nil {
		return nil, err
	}
	s.ca = ca
	s.holds = newHolds(s)
	s.metrics = newMetrics(s)
	s.changelogs = newChangelogReader(s, cfg.Changelogs)
	close(s.ready)
	return s, nil
}

// Drain answers every held check-in at once and holds no more: call it
// when shutting down (http.Server.RegisterOnShutdown), which would
// otherwise wait for them.
func (s *Server) Drain() { s.holds.drain() }

// Held is the number of check-ins the server holds now.
func (s *Server) Held() int { return s.holds.count() }

// CA returns the server's own certificate authority.
func (s *Server) CA() *pki.CA { return s.ca }

// CAFingerprint is the fingerprint agents must pin: of the operator's CA
// when the server uses given certificate files, else of its own CA.
func (s *Server) CAFingerprint() string {
	if s.externalCA != nil {
		return pki.Fingerprint(s.externalCA)
	}
	return pki.Fingerprint(s.ca.Cert)
}

// UseCertificateFiles makes the server present the certificate in
// certFile (with its chain) and keyFile instead of one from its own CA;
// caFile is the CA agents pin, which must have signed the certificate.
// The CA is appended to the chain the server sends when missing.
func (s *Server) UseCertificateFiles(certFile, keyFile, caFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("TLS CA: %w", err)
	}
	ca, err := pki.ParseCert(data)
	if err != nil {
		return fmt.Errorf("TLS CA %s: %w", caFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", certFile, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("TLS certificate %s is not valid under CA %s: %w", certFile, caFile, err)
	}
	hasCA := false
	for _, der := range cert.Certificate[1:] {
		hasCA = hasCA || string(der) == string(ca.Raw)
	}
	if !hasCA {
		cert.Certificate = append(cert.Certificate, ca.Raw)
	}
	s.external, s.externalCA = &cert, ca
	return nil
}

// caSetting is the store key of the CA (certificate and key PEM, JSON).
const caSetting = "ca/v1"

func loadCA(ctx context.Context, st store.Store, now time.Time) (*pki.CA, error) {
	type stored struct{ Cert, Key []byte }
	ca, err := pki.NewCA("patchloop CA", now)
	if err != nil {
		return nil, err
	}
	key, err := pki.EncodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	fresh, _ := json.Marshal(stored{Cert: pki.EncodeCert(ca.Cert), Key: key})
	got, err := st.PutSettingIfAbsent(ctx, caSetting, fresh)
	if err != nil {
		return nil, fmt.Errorf("store CA: %w", err)
	}
	var v stored
	if err := json.Unmarshal(got, &v); err != nil {
		return nil, fmt.Errorf("stored CA: %w", err)
	}
	return pki.ParseCA(v.Cert, v.Key)
}

// TLSConfig returns the server's TLS configuration with a fresh server
// certificate for names, signed by the CA.
func (s *Server) TLSConfig(names []string) (*tls.Config, error) {
	if s.external != nil {
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*s.external}}, nil
	}
	cert, err := s.ca.ServerCert(names, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// EnsureAdminToken creates an admin token when the store has none and
// writes it to path (mode 0600), so the first operator can use the CLI on
// the server machine. It returns whether it made one.
func (s *Server) EnsureAdminToken(ctx context.Context, path string) (bool, error) {
	list, err := s.store.ListAdminTokens(ctx)
	if err != nil {
		return false, err
	}
	for _, t := range list {
		if t.RevokedAt.IsZero() {
			return false, nil
		}
	}
	tok, err := s.CreateAdminToken(ctx, "initial")
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("write admin token: %w", err)
	}
	return true, nil
}

// CreateAdminToken makes an admin token and returns it (shown once).
func (s *Server) CreateAdminToken(ctx context.Context, name string) (string, error) {
	id, secret := newID(), newSecret()
	err := s.store.CreateAdminToken(ctx, store.AdminToken{ID: id, SecretHash: hashSecret(secret), Name: name, CreatedAt: s.cfg.Now()})
	if err != nil {
		return "", err
	}
	return api.AdminTokenPrefix + id + "_" + secret, nil
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler())

	mux.HandleFunc("POST /api/v1/enroll", s.enroll)
	mux.HandleFunc("POST /api/v1/agent/checkin", s.agent(s.checkIn))
	mux.HandleFunc("PUT /api/v1/agent/inventory", s.agent(s.putInventory))
	mux.HandleFunc("POST /api/v1/agent/jobs/{job}/result", s.admitResult(s.agent(s.jobResult)))

	mux.HandleFunc("POST /api/v1/tokens", s.admin(s.createToken))
	mux.HandleFunc("GET /api/v1/tokens", s.admin(s.listTokens))
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.admin(s.revokeToken))
	mux.HandleFunc("GET /api/v1/hosts", s.admin(s.listHosts))
	mux.HandleFunc("GET /api/v1/hosts/{id}", s.admin(s.showHost))
	mux.HandleFunc("POST /api/v1/hosts/{id}/revoke", s.admin(s.revokeHost))
	mux.HandleFunc("GET /api/v1/hosts/{id}/updates", s.admin(s.hostUpdates))
	mux.HandleFunc("GET /api/v1/updates", s.admin(s.listUpdates))
	mux.HandleFunc("POST /api/v1/jobs", s.admin(s.createJob))
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.admin(s.showJob))
	mux.HandleFunc("PUT /api/v1/policies/{name}", s.admin(s.putPolicy))
	mux.HandleFunc("GET /api/v1/policies", s.admin(s.listPolicies))
	mux.HandleFunc("GET /api/v1/policies/{name}", s.admin(s.showPolicy))
	mux.HandleFunc("DELETE /api/v1/policies/{name}", s.admin(s.deletePolicy))
	mux.HandleFunc("GET /api/v1/findings", s.admin(s.listFindings))
	mux.HandleFunc("GET /api/v1/hosts/{id}/findings", s.admin(s.hostFindings))
	mux.HandleFunc("GET /api/v1/feeds", s.admin(s.listFeeds))
	mux.HandleFunc("POST /api/v1/rollouts", s.admin(s.createRollout))
	mux.HandleFunc("GET /api/v1/rollouts", s.admin(s.listRollouts))
	mux.HandleFunc("GET /api/v1/rollouts/{id}", s.admin(s.showRollout))
	mux.HandleFunc("GET /api/v1/rollouts/{id}/plan", s.admin(s.rolloutPlan))
	mux.HandleFunc("POST /api/v1/rollouts/{id}/rollback", s.admin(s.rolloutRollback))
	mux.HandleFunc("POST /api/v1/rollouts/{id}/{cmd}", s.admin(s.rolloutCommand))
	return s.metrics.instrument(mux)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.Setting(ctx, caSetting); err != nil {
		httpError(w, http.StatusServiceUnavailable, "store not ready: %v", err)
		return
	}
	w.Write([]byte("ready\n"))
}

// RunRefresh refetches the indexes every interval until ctx ends, and
// recomputes the hosts whose indexes changed.
func (s *Server) RunRefresh(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Refresh(ctx); err != nil {
			s.log.Warn("index refresh", "err", err)
		}
	}
}

// Refresh refetches every world's indexes and recomputes the hosts of the
// worlds that changed.
func (s *Server) Refresh(ctx context.Context) error {
	changed, err := s.engine.Refresh(ctx)
	s.changelogs.poke() // new indexes, new candidates
	if len(changed) > 0 {
		worlds := map[string]bool{}
		for _, k := range changed {
			worlds[k] = true
		}
		if rerr := s.recomputeWorlds(ctx, worlds); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if n, perr := s.store.PruneUpdateLists(ctx); perr != nil {
		err = errors.Join(err, perr)
	} else if n > 0 {
		s.log.Info("pruned update lists no host names", "lists", n)
	}
	return err
}

func (s *Server) recomputeWorlds(ctx context.Context, worlds map[string]bool) error {
	hosts, err := s.store.ListHosts(ctx, store.HostFilter{})
	if err != nil {
		return err
	}
	for _, h := range hosts {
		u, err := s.store.HostUpdates(ctx, h.ID)
		if err != nil || !worlds[central.WorldOf(u.Basis)] || h.InventoryHash == "" {
			continue
		}
		if err := s.detectHost(ctx, h.ID, h.InventoryHash, nil); err != nil {
			s.log.Warn("recompute", "host", h.ID, "err", err)
		}
	}
	return nil
}

// detectHost computes and stores a host's updates from the inventory with
// this hash (read from the store unless given).
func (s *Server) detectHost(ctx context.Context, hostID, hash string, inv *api.Inventory) error {
	mu, _ := s.recompute.LoadOrStore(hostID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if inv == nil {
		data, err := s.store.Inventory(ctx, hash)
		if err != nil {
			return err
		}
		inv = &api.Inventory{}
		if err := json.Unmarshal(data, inv); err != nil {
			return fmt.Errorf("stored inventory %s: %w", hash, err)
		}
	}
	start := time.Now()
	res, err := s.engine.Detect(ctx, inv)
	s.metrics.detectSeconds.Observe(time.Since(start).Seconds())
	u := store.HostUpdates{HostID: hostID, ComputedAt: s.cfg.Now(), Basis: hash}
	if err != nil {
		u.Error = err.Error()
		u.Updates = []byte("[]")
	} else {
		u.Basis = res.Basis + ":" + hash
		// With the installed source versions, which advisories and
		// changelogs speak of (package intel reads them back).
		if u.Updates, err = json.Marshal(nonNil(intel.Updates(res.Updates, inv.InstalledPackages()))); err != nil {
			return err
		}
		u.Count = len(res.Updates)
		for _, x := range res.Updates {
			if x.Security {
				u.Security++
			}
		}
	}
	if err := s.store.PutHostUpdates(ctx, u); err != nil {
		return err
	}
	s.changelogs.poke()
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// newID is a random 16-hex-digit identifier.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newSecret is a random 256-bit secret, base64url.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
