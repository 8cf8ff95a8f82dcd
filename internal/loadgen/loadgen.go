// Package loadgen simulates a fleet of agents against a patchloop server,
// speaking the real protocol over real HTTPS with package agent's Client,
// and measures the server: requests per second, latency quantiles, errors
// by kind, the server process's CPU and memory, and the database size.
//
// Hosts carry realistic inventories built from real dpkg status files
// (see Inventories): many hosts, few distinct inventories, as fleets built
// from a few images are. A run has up to three phases:
//
//  1. enroll the hosts not enrolled yet (credentials can be kept in a
//     state file, so that a large fleet is enrolled once);
//  2. one check-in per host, sending the inventory when the server asks
//     for it (the server stores it and computes the host's updates);
//  3. for Duration, check-ins with an unchanged inventory, either each
//     host every Interval with ±10% jitter as agents do ("steady"), at a
//     fixed total Rate ("rate"), or as fast as Concurrency requests in
//     flight allow ("max"); or a rollout over the fleet, run until every
//     member answered its install job or Duration passed (ModeRollout):
//     the hosts check in round after round or, with Wait, each keeps a
//     check-in held by the server (a long poll) until its job comes.
//
// Each simulated host keeps its own agent.Client and so its own TLS
// connection and its own TLS session cache, as real agents do. With
// Reconnect, each request closes its connection afterwards, so every
// request pays a TCP handshake and a TLS one, resumed from the host's
// previous session after its first (as an agent's dropped connection is):
// the way to simulate more hosts than the process may open descriptors.
// With Share, the hosts' clients share Share transports instead, whose
// HTTP/2 connections carry many hosts' requests at once: the way to keep
// more hosts' check-ins held than the process may open descriptors.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/memo"
	"github.com/patchloop/patchloop/internal/pki"
)

// Phase 3 modes.
const (
	ModeSteady = "steady" // every host every Interval, ±10%
	ModeRate   = "rate"   // Rate check-ins per second in total, open loop
	ModeMax    = "max"    // Concurrency check-ins in flight, closed loop
)

// Config configures a run.
type Config struct {
	Server        string // https://HOST:PORT
	CAFingerprint string
	// NewToken returns an enrollment token good for n enrollments. It is
	// called only when some hosts are not enrolled yet.
	NewToken func(ctx context.Context, n int) (string, error)
	Hosts    int
	// StatePath, when set, keeps the hosts' credentials between runs
	// against the same server (same URL, CA and Seed).
	StatePath string
	// Seed determines the hosts' machine-ids, names and inventories.
	Seed uint64
	// Inventories are the distinct inventories hosts are spread over.
	Inventories []*Inventory
	// Facts are the OS facts every host reports (hostname, machine-id
	// and uptime are each host's own).
	Facts api.Facts
	// Concurrency is the number of requests in flight: workers of the
	// enroll, inventory and max phases, and the most the paced phases
	// may have outstanding. 0: 64.
	Concurrency int
	Mode        string // ModeSteady, ModeRate, ModeMax, ModeRollout; "" no phase 3
	// Rollout creates and starts the rollout of ModeRollout.
	Rollout  RolloutDriver
	Interval time.Duration
	Rate     float64
	Duration time.Duration
	// Wait, in ModeRollout, has each host hold a check-in on the server
	// up to Wait (api.CheckInRequest.WaitSeconds) until its install job
	// comes, instead of checking in round after round.
	Wait time.Duration
	// InstallTime, in ModeRollout with Wait, has each member take a random
	// time between InstallTime/2 and InstallTime before it reports an
	// install job's result, as an agent running apt does (minutes for a
	// real patch set), with no check-in of its own in flight meanwhile.
	// 0: results are reported as soon as the job comes, the server's
	// worst case (each ring's hand-outs compete with its own results).
	InstallTime time.Duration
	Reconnect   bool
	// Share, when > 0, has the hosts' clients share Share transports
	// (agent.Client.As), so that HTTP/2 multiplexes their requests over
	// few connections. It excludes Reconnect.
	Share int
	// ServerPID, when set, is the server process to measure, and
	// DatabasePID a database server run apart (the PostgreSQL postmaster:
	// its CPU is counted with its backends').
	ServerPID, DatabasePID int
	Timeout                time.Duration // per request; 0: 30s
	Log                    *slog.Logger
}

// Report is the outcome of a run.
type Report struct {
	Server      string         `json:"server"`
	Hosts       int            `json:"hosts"`
	Inventories int            `json:"distinct_inventories"`
	AvgPackages float64        `json:"avg_packages"`
	Connections string         `json:"connections"` // "one per host", "new per request" or "shared: N HTTP/2 transports"
	FileLimit   uint64         `json:"file_limit"`
	Phases      []*PhaseReport `json:"phases"`
}

// PhaseReport is one phase's figures.
type PhaseReport struct {
	Name        string       `json:"name"` // enroll, inventory, steady, rate, max
	Seconds     float64      `json:"seconds"`
	TargetRate  float64      `json:"target_rate,omitempty"` // paced phases: check-ins per second asked for
	Ops         []OpReport   `json:"ops"`
	NewConns    int64        `json:"new_connections"`
	Resumed     int64        `json:"resumed_connections"` // of NewConns, those that resumed a TLS session
	Overruns    int64        `json:"overruns,omitempty"`  // paced: a host's turn came while its last request was still running
	Missed      int64        `json:"missed,omitempty"`    // paced: turns due before the end that had not started by then
	LagMS       *Quantiles   `json:"schedule_lag_ms,omitempty"`
	Server      *ProcUsage   `json:"server,omitempty"`
	Database    *ProcUsage   `json:"database_server,omitempty"` // CPU only
	LoadgenCPU  float64      `json:"loadgen_cores"`
	ServerStore *ServerStats `json:"server_store,omitempty"`
	StoreError  string       `json:"server_store_error,omitempty"`
	RolloutID   string       `json:"rollout_id,omitempty"`
	Rings       []RingReport `json:"rings,omitempty"` // rollout: per ring
}

// simHost is one simulated agent.
type simHost struct {
	i        int
	facts    api.Facts
	inv      *Inventory
	id, cred string
	client   *agent.Client
	busy     atomic.Bool // a request of this host is running
}

// gen is one run.
type gen struct {
	cfg      Config
	hosts    []*simHost
	start    time.Time
	newConns atomic.Int64
	resumed  atomic.Int64
	metrics  *http.Client
	results  memo.Map[string, []byte] // encoded api.JobResult by job ID (rollout.go)
}

// Run runs the phases and returns their figures. A failed request is
// counted, not fatal; Run fails only when it cannot run at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hosts <= 0 || len(cfg.Inventories) == 0 {
		return nil, errors.New("loadgen: need hosts and inventories")
	}
	if cfg.Wait > 0 && cfg.Wait < time.Second {
		return nil, errors.New("loadgen: the wait is in whole seconds")
	}
	if cfg.InstallTime < 0 || cfg.InstallTime > 0 && (cfg.Mode != ModeRollout || cfg.Wait <= 0) {
		// (Round after round, a member taking its time would hold a
		// worker of the round.)
		return nil, errors.New("loadgen: an install time needs mode rollout with held check-ins (a wait)")
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	rep := &Report{Server: cfg.Server, Hosts: cfg.Hosts, Inventories: len(cfg.Inventories), FileLimit: raiseFileLimit(),
		Connections: "one per host"}
	// Held check-ins keep a connection each even when reconnecting.
	held := cfg.Mode == ModeRollout && cfg.Wait > 0
	switch need := uint64(cfg.Hosts + cfg.Concurrency + 256); {
	case cfg.Share > 0 && cfg.Reconnect:
		return nil, errors.New("loadgen: shared transports and reconnecting exclude each other (closing a shared connection cuts other hosts' requests)")
	case cfg.Share > 0:
		rep.Connections = fmt.Sprintf("shared: %d HTTP/2 transports", cfg.Share)
		// each transport needs a connection per 250 requests in flight
		// (the streams a Go server allows on one)
		need = uint64(cfg.Share*(1+cfg.Hosts/cfg.Share/250) + cfg.Concurrency + 256)
		if rep.FileLimit > 0 && need > rep.FileLimit {
			return nil, fmt.Errorf("loadgen: %d shared transports need about %d open files, the limit is %d: share fewer", cfg.Share, need, rep.FileLimit)
		}
	case cfg.Reconnect && !held:
		rep.Connections = "new per request"
	case rep.FileLimit > 0 && need > rep.FileLimit:
		return nil, fmt.Errorf("loadgen: %d hosts with a connection each need about %d open files, the limit is %d: raise it (ulimit -n), reconnect for each request or share transports", cfg.Hosts, need, rep.FileLimit)
	case cfg.Reconnect:
		rep.Connections = "new per request"
	}
	for _, inv := range cfg.Inventories {
		rep.AvgPackages += float64(len(inv.Inv.Packages)) / float64(len(cfg.Inventories))
	}
	tlsConf, err := pki.PinnedTLS(cfg.CAFingerprint, nil)
	if err != nil {
		return nil, err
	}
	g := &gen{cfg: cfg, start: time.Now(),
		metrics: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}}}
	for i := 0; i < cfg.Hosts; i++ {
		h := &simHost{i: i, facts: cfg.Facts, inv: cfg.Inventories[pick(cfg.Seed, i, len(cfg.Inventories))]}
		h.facts.MachineID, h.facts.Hostname = identity(cfg.Seed, i)
		h.facts.UptimeSeconds = int64(3600 + pick(cfg.Seed+1, i, 30*86400))
		g.hosts = append(g.hosts, h)
	}
	if err := g.loadState(); err != nil {
		return nil, err
	}
	if p, err := g.enrollPhase(ctx); err != nil {
		return nil, err
	} else if p != nil {
		rep.Phases = append(rep.Phases, p)
	}
	var shared []*agent.Client
	for range cfg.Share {
		c, err := agent.NewClient(cfg.Server, cfg.CAFingerprint, "", cfg.Timeout)
		if err != nil {
			return nil, err
		}
		shared = append(shared, c)
	}
	for _, h := range g.hosts {
		switch {
		case h.cred == "":
			continue // enrollment failed: counted in the enroll phase
		case len(shared) > 0:
			h.client = shared[h.i%len(shared)].As(h.cred)
		default:
			if h.client, err = agent.NewClient(cfg.Server, cfg.CAFingerprint, h.cred, cfg.Timeout); err != nil {
				return nil, err
			}
		}
	}
	rep.Phases = append(rep.Phases, g.inventoryPhase(ctx))
	switch cfg.Mode {
	case "":
	case ModeSteady, ModeRate, ModeMax:
		if cfg.Duration <= 0 {
			return nil, fmt.Errorf("loadgen: mode %s needs a duration", cfg.Mode)
		}
		if cfg.Mode == ModeSteady && cfg.Interval <= 0 || cfg.Mode == ModeRate && cfg.Rate <= 0 {
			return nil, fmt.Errorf("loadgen: mode %s needs an interval (steady) or a rate (rate)", cfg.Mode)
		}
		rep.Phases = append(rep.Phases, g.checkInPhase(ctx))
	case ModeRollout:
		if cfg.Duration <= 0 {
			return nil, fmt.Errorf("loadgen: mode %s needs a duration (the longest to wait)", cfg.Mode)
		}
		ps, err := g.rolloutPhases(ctx)
		rep.Phases = append(rep.Phases, ps...)
		if err != nil {
			return rep, err
		}
	default:
		return nil, fmt.Errorf("loadgen: unknown mode %q (want %s, %s, %s or %s)", cfg.Mode, ModeSteady, ModeRate, ModeMax, ModeRollout)
	}
	return rep, ctx.Err()
}

// stateFile keeps enrolled credentials, indexed by host number.
type stateFile struct {
	Server        string      `json:"server"`
	CAFingerprint string      `json:"ca_fingerprint"`
	Seed          uint64      `json:"seed"`
	Hosts         []stateHost `json:"hosts"`
}

type stateHost struct {
	ID         string `json:"id,omitempty"`
	Credential string `json:"credential,omitempty"`
}

// loadState gives hosts the credentials of the state file, if it is for
// this server, CA and seed.
func (g *gen) loadState() error {
	if g.cfg.StatePath == "" {
		return nil
	}
	data, err := os.ReadFile(g.cfg.StatePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("%s: %w", g.cfg.StatePath, err)
	}
	fpr, _ := pki.NormalizeFingerprint(g.cfg.CAFingerprint)
	if st.Server != g.cfg.Server || st.CAFingerprint != fpr || st.Seed != g.cfg.Seed {
		g.cfg.Log.Warn("state file is for another server, CA or seed: enrolling again", "path", g.cfg.StatePath)
		return nil
	}
	for i, sh := range st.Hosts {
		if i < len(g.hosts) {
			g.hosts[i].id, g.hosts[i].cred = sh.ID, sh.Credential
		}
	}
	return nil
}

// saveState writes the credentials of every host enrolled so far, those
// of hosts beyond this run's count included.
func (g *gen) saveState() error {
	if g.cfg.StatePath == "" {
		return nil
	}
	fpr, _ := pki.NormalizeFingerprint(g.cfg.CAFingerprint)
	st := stateFile{Server: g.cfg.Server, CAFingerprint: fpr, Seed: g.cfg.Seed}
	if data, err := os.ReadFile(g.cfg.StatePath); err == nil {
		var old stateFile
		if json.Unmarshal(data, &old) == nil && old.Server == st.Server && old.CAFingerprint == fpr && old.Seed == st.Seed {
			st.Hosts = old.Hosts
		}
	}
	for len(st.Hosts) < len(g.hosts) {
		st.Hosts = append(st.Hosts, stateHost{})
	}
	for i, h := range g.hosts {
		st.Hosts[i] = stateHost{ID: h.id, Credential: h.cred}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(g.cfg.StatePath), ".loadgen-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err := errors.Join(err, tmp.Chmod(0o600), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), g.cfg.StatePath)
}
