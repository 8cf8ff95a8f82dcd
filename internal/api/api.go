// Package api holds the wire types of patchloop's HTTP API under /api/v1,
// shared by the server, the agent and the CLI, with their validation.
// Every request body is JSON, at most MaxBody bytes (MaxInventoryBody for
// an inventory), and unknown fields are refused.
package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/patchloop/patchloop/internal/deb"
)

// Body size limits.
const (
	MaxBody          = 64 << 10 // any request but an inventory
	MaxInventoryBody = 16 << 20 // an inventory (a 5,000-package host is about 1 MB)
)

// Credential prefixes: admin tokens and host credentials look different
// so that one pasted in the place of the other is refused at once.
const (
	AdminTokenPrefix  = "pla_"
	HostSecretPrefix  = "plh_"
	EnrollTokenPrefix = "ple_"
)

// Facts are an endpoint's OS facts as the agent reports them.
type Facts struct {
	Hostname       string `json:"hostname"`
	MachineID      string `json:"machine_id"`
	OS             string `json:"os"`
	Distro         string `json:"distro"`
	Release        string `json:"release"`
	Codename       string `json:"codename"`
	Arch           string `json:"arch"`
	Kernel         string `json:"kernel"`
	RebootRequired bool   `json:"reboot_required"`
	UptimeSeconds  int64  `json:"uptime_seconds"`
	AgentVersion   string `json:"agent_version"`
}

// EnrollRequest is POST /api/v1/enroll.
type EnrollRequest struct {
	Token string `json:"token"` // ple_ID_SECRET
	Facts Facts  `json:"facts"`
}

// EnrollResponse gives the host its identity and credential.
type EnrollResponse struct {
	HostID     string `json:"host_id"`
	Credential string `json:"credential"` // plh_HOSTID_SECRET; shown once, stored hashed
}

// CheckInRequest is POST /api/v1/agent/checkin.
type CheckInRequest struct {
	Facts         Facts  `json:"facts"`
	InventoryHash string `json:"inventory_hash"` // Inventory.Hash() of the current inventory
	// WaitSeconds asks the server to hold its answer up to this long
	// while it has no job for the host, and to answer as soon as one is
	// queued (a long poll). The server may hold it shorter (its own
	// limit) or not at all; 0 answers at once.
	WaitSeconds int `json:"wait_seconds,omitempty"`
}

// CheckInResponse tells the agent what to do next.
type CheckInResponse struct {
	SendInventory   bool  `json:"send_inventory"` // the server lacks this inventory: PUT it
	Jobs            []Job `json:"jobs,omitempty"`
	IntervalSeconds int   `json:"interval_seconds"`
	// Held says the server held this answer (WaitSeconds) until a job
	// came or the wait ended: it holds check-ins, so the agent may check
	// in again at once instead of after the interval.
	Held bool `json:"held,omitempty"`
}

// Job is a unit of work handed to an agent. Its (ID, host) pair is the
// idempotency key: report the result under the same ID.
type Job struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"`
	Params json.RawMessage `json:"params,omitempty"`
}

// JobResult is POST /api/v1/agent/jobs/{id}/result.
type JobResult struct {
	Status string          `json:"status"` // "ok" or "failed"
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Package is one dpkg status record.
type Package struct {
	Name          string `json:"name"`
	Arch          string `json:"arch"`
	Version       string `json:"version"`
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	MultiArch     string `json:"multi_arch,omitempty"`
	Status        string `json:"status"` // the three words, e.g. "install ok installed"
}

// Source is one (URI, suite) the host's apt installs from.
type Source struct {
	URI        string   `json:"uri"`
	Suite      string   `json:"suite"`
	Components []string `json:"components"`
	Archs      []string `json:"archs"`
}

// Pin is one apt preferences record.
type Pin struct {
	Packages []string `json:"packages,omitempty"`
	Type     string   `json:"type"`
	Data     string   `json:"data"`
	Priority int      `json:"priority"`
	Never    bool     `json:"never,omitempty"`
}

// Inventory is PUT /api/v1/agent/inventory: everything the server needs
// to compute the host's updates as its apt would.
type Inventory struct {
	NativeArch     string    `json:"native_arch"`
	ForeignArchs   []string  `json:"foreign_archs,omitempty"`
	Packages       []Package `json:"packages"`
	Sources        []Source  `json:"sources"`
	Pins           []Pin     `json:"pins,omitempty"`
	DefaultRelease string    `json:"default_release,omitempty"`
}

// Hash is the hex SHA-256 of the inventory's canonical JSON encoding.
func (inv *Inventory) Hash() string {
	b, _ := json.Marshal(inv) // cannot fail: only strings, ints, bools, slices
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9+.\-]*$`)
	archPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9\-]*$`)
)

// Validate checks an inventory received from an agent; the error names
// the first bad record.
func (inv *Inventory) Validate() error {
	if !archPattern.MatchString(inv.NativeArch) {
		return fmt.Errorf("native_arch %q: not an architecture", inv.NativeArch)
	}
	for _, a := range inv.ForeignArchs {
		if !archPattern.MatchString(a) {
			return fmt.Errorf("foreign_archs: %q is not an architecture", a)
		}
	}
	if len(inv.Packages) == 0 {
		return errors.New("packages: empty (dpkg itself is always installed)")
	}
	for i, p := range inv.Packages {
		if err := p.validate(); err != nil {
			return fmt.Errorf("packages[%d] (%s): %w", i, p.Name, err)
		}
	}
	for i, s := range inv.Sources {
		if !strings.Contains(s.URI, "://") || s.Suite == "" || strings.ContainsAny(s.Suite, " \t\n") {
			return fmt.Errorf("sources[%d]: need a URI and a suite, got %q %q", i, s.URI, s.Suite)
		}
	}
	for i, p := range inv.Pins {
		if p.Type != "version" && p.Type != "release" && p.Type != "origin" {
			return fmt.Errorf("pins[%d]: type %q is not version, release or origin", i, p.Type)
		}
	}
	return nil
}

func (p *Package) validate() error {
	if !namePattern.MatchString(p.Name) {
		return fmt.Errorf("name %q is not a package name", p.Name)
	}
	if !archPattern.MatchString(p.Arch) {
		return fmt.Errorf("arch %q is not an architecture", p.Arch)
	}
	if err := deb.ValidVersion(p.Version); err != nil {
		return fmt.Errorf("version %q: %w", p.Version, err)
	}
	if p.SourceVersion != "" {
		if err := deb.ValidVersion(p.SourceVersion); err != nil {
			return fmt.Errorf("source_version %q: %w", p.SourceVersion, err)
		}
	}
	if len(strings.Fields(p.Status)) != 3 {
		return fmt.Errorf("status %q is not three words", p.Status)
	}
	return nil
}

// InstalledPackages converts the inventory's packages for package detect.
func (inv *Inventory) InstalledPackages() []deb.InstalledPackage {
	out := make([]deb.InstalledPackage, len(inv.Packages))
	for i, p := range inv.Packages {
		w := strings.Fields(p.Status)
		ip := deb.InstalledPackage{Name: p.Name, Arch: p.Arch, Version: p.Version,
			Source: p.Source, SourceVersion: p.SourceVersion, MultiArch: p.MultiArch}
		if len(w) == 3 {
			ip.Want, ip.Flag, ip.State = w[0], w[1], w[2]
		}
		if ip.Source == "" {
			ip.Source = ip.Name
		}
		if ip.SourceVersion == "" {
			ip.SourceVersion = ip.Version
		}
		out[i] = ip
	}
	return out
}

// DebPins converts the inventory's pins for package detect.
func (inv *Inventory) DebPins() []deb.Pin {
	out := make([]deb.Pin, len(inv.Pins))
	for i, p := range inv.Pins {
		out[i] = deb.Pin{Packages: p.Packages, Type: p.Type, Data: p.Data, Priority: p.Priority, Never: p.Never}
	}
	return out
}

// Error is the body of every 4xx and 5xx response.
type Error struct {
	Error string `json:"error"`
	// Details lists every problem when there are several, each on its
	// own (a policy's "file:line: message" errors); Error names the first.
	Details []string `json:"details,omitempty"`
}

// Decode reads one JSON value of at most limit bytes from r into v,
// refusing unknown fields and trailing data.
func Decode(r io.Reader, limit int64, v any) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("body larger than %d bytes", limit)
		}
		return fmt.Errorf("bad JSON: %w", err)
	}
	// (dec.More would take a stray '}' or ']' for the end.)
	if _, err := dec.Token(); err != io.EOF {
		if lr.N <= 0 {
			return fmt.Errorf("body larger than %d bytes", limit)
		}
		return errors.New("bad JSON: data after the value")
	}
	if _, err := io.Copy(io.Discard, lr); err == nil && lr.N <= 0 {
		return fmt.Errorf("body larger than %d bytes", limit)
	}
	return nil
}

// DecodeJobResult decodes an agent's job result (a body already read, at
// most MaxBody bytes) as strictly as Decode: unknown fields and trailing
// data are refused. It decodes with encoding/json/v2's implementation
// (github.com/go-json-experiment/json), which reads a 12 KB install
// result in one pass instead of encoding/json's three: results are most
// of what a server reads during a rollout. It is stricter than Decode in
// three ways, none of which an agent's result ever has: member names
// match case-sensitively, a name given twice is refused, and so is
// invalid UTF-8, an escaped lone surrogate ("\ud800") included (the
// server refused raw invalid UTF-8 before, not the escape).
func DecodeJobResult(data []byte) (JobResult, error) {
	var res JobResult
	err := jsonv2.Unmarshal(data, &res, jsonv2.RejectUnknownMembers(true))
	var se *jsonv2.SemanticError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &se) && errors.Is(se.Err, jsonv2.ErrUnknownName):
		return JobResult{}, fmt.Errorf("bad JSON: unknown field %q", se.JSONPointer.LastToken())
	}
	return JobResult{}, fmt.Errorf("bad JSON: %w", err)
}

// Host is a host as the API shows it.
type Host struct {
	ID          string            `json:"id"`
	Hostname    string            `json:"hostname"`
	MachineID   string            `json:"machine_id"`
	Labels      map[string]string `json:"labels,omitempty"`
	EnrolledAt  time.Time         `json:"enrolled_at"`
	LastSeen    *time.Time        `json:"last_seen,omitempty"`
	Stale       bool              `json:"stale"` // not seen for 3 check-in intervals
	Revoked     bool              `json:"revoked"`
	Facts       *Facts            `json:"facts,omitempty"`
	InventoryAt *time.Time        `json:"inventory_at,omitempty"`
	Updates     *int              `json:"updates,omitempty"`
	Security    *int              `json:"security,omitempty"`
}

// EnrollToken is a token as the API shows it (the secret only on create).
type EnrollToken struct {
	ID            string            `json:"id"`
	Token         string            `json:"token,omitempty"`
	CAFingerprint string            `json:"ca_fingerprint,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	ExpiresAt     *time.Time        `json:"expires_at,omitempty"`
	MaxUses       int               `json:"max_uses"`
	Uses          int               `json:"uses"`
	Revoked       bool              `json:"revoked"`
	Note          string            `json:"note,omitempty"`
}

// CreateTokenRequest is POST /api/v1/tokens.
type CreateTokenRequest struct {
	ExpiresIn string            `json:"expires_in,omitempty"` // Go duration, e.g. "24h"; "" never
	MaxUses   int               `json:"max_uses,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Note      string            `json:"note,omitempty"`
}

// HostUpdates is GET /api/v1/hosts/{id}/updates.
type HostUpdates struct {
	HostID     string          `json:"host_id"`
	Hostname   string          `json:"hostname"`
	ComputedAt *time.Time      `json:"computed_at,omitempty"`
	Error      string          `json:"error,omitempty"`
	Updates    json.RawMessage `json:"updates"`
}

// CreateJobRequest is POST /api/v1/jobs.
type CreateJobRequest struct {
	Kind  string   `json:"kind"`  // one of JobKinds
	Hosts []string `json:"hosts"` // host IDs; empty: every active host
	// Params are the kind's parameters (ParseJobParams); empty is {}.
	Params json.RawMessage `json:"params,omitempty"`
}

// JobStatus is GET /api/v1/jobs/{id}.
type JobStatus struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	CreatedAt time.Time       `json:"created_at"`
	Hosts     []JobHostStatus `json:"hosts"`
}

// JobHostStatus is one host's part of a job.
type JobHostStatus struct {
	HostID   string          `json:"host_id"`
	State    string          `json:"state"`
	Attempts int             `json:"attempts"`
	Status   string          `json:"status,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	// Error: the stored result could not be read.
	Error      string     `json:"error,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}
