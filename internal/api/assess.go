package api

import (
	"time"

	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/policy"
)

// MaxPolicyBody is the largest policy (YAML) a PUT accepts.
const MaxPolicyBody = MaxBody

// Policy is a patch baseline as GET /api/v1/policies{,/NAME} shows it.
// Source, the YAML, is given for one policy and left out of the list.
type Policy struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Priority    int       `json:"priority"` // lowest is tried first, then by name
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
	Source      string    `json:"source,omitempty"`
}

// PolicyPut is the answer to PUT /api/v1/policies/{name}.
type PolicyPut struct {
	Policy
	// Changed is false when the same source and priority were stored
	// already (the version did not change), or on a dry run.
	Changed bool `json:"changed"`
	DryRun  bool `json:"dry_run,omitempty"`
}

// Finding is one missing update on one host with its CVEs (and what KEV,
// EPSS and CVSS say of them), its risk on that host and the decision of
// the host's baseline.
type Finding struct {
	assess.Finding
	// Evidence lists, per CVE, the sources naming it ("changelog", a
	// DSA/DLA ID, an OSV record ID); Notes say what could not be known,
	// in which case the CVEs are a lower bound.
	Evidence map[string][]string `json:"evidence,omitempty"`
	Notes    []string            `json:"notes,omitempty"`
	KEV      bool                `json:"kev"`      // a CVE is in CISA's KEV catalog
	Overdue  bool                `json:"overdue"`  // and its KEV due date has passed
	Severity assess.Severity     `json:"severity"` // the highest CVSS rating of its CVEs
	Risk     assess.Risk         `json:"risk"`
	Decision policy.Decision     `json:"decision"`
}

// HostFindings is one host's findings, highest risk first
// (GET /api/v1/hosts/{id}/findings, and each host of GET /api/v1/findings).
type HostFindings struct {
	HostID     string     `json:"host_id"`
	Hostname   string     `json:"hostname"`
	ComputedAt *time.Time `json:"computed_at,omitempty"` // of the detection result
	// Baseline is the policy the host's labels chose ("" none: pending).
	Baseline string `json:"baseline,omitempty"`
	// Error says why the host has no findings to show (no inventory yet,
	// detection failed); Warning is a problem that did not stop them
	// (a criticality label the risk score does not know).
	Error    string    `json:"error,omitempty"`
	Warning  string    `json:"warning,omitempty"`
	Findings []Finding `json:"findings"`
}

// Findings is GET /api/v1/findings: the hosts with at least one finding
// the filters select, and the hosts nothing can be said of.
type Findings struct {
	AssessedAt time.Time      `json:"assessed_at"`
	Hosts      []HostFindings `json:"hosts"`
	// Unassessed hosts have no detection result (Error says why): they
	// may be exposed to anything the filters ask for.
	Unassessed []HostFindings `json:"unassessed,omitempty"`
}

// Feed is the provenance of an advisory feed in service (GET /api/v1/feeds).
type Feed struct {
	Kind      string     `json:"kind"` // kev, epss, osv, dsa, dla
	Name      string     `json:"name"`
	Source    string     `json:"source"` // URL or absolute path
	FetchedAt *time.Time `json:"fetched_at,omitempty"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	Records   int        `json:"records"`
	Bad       int        `json:"bad"`
	Version   string     `json:"version,omitempty"`
	SHA256    string     `json:"sha256,omitempty"`
	// Stale is set when the last refresh failed and the copy in service
	// is older; Error says why the refresh failed.
	Stale bool   `json:"stale"`
	Error string `json:"error,omitempty"`
	// Problems are the first bad records skipped (file and line).
	Problems []string `json:"problems,omitempty"`
}
