package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/health"
)

// Job kinds: a closed set. The server can ask an agent for nothing else,
// and nothing of the server's reaches a shell: every parameter is a
// package pin, a unit name, a job or record ID, a number or a flag.
const (
	JobScan            = "scan"             // send the inventory now
	JobPlan            = "plan"             // simulate installing exact versions
	JobInstall         = "install"          // install exact versions, run health gates
	JobRollback        = "rollback"         // put back what an install replaced
	JobReboot          = "reboot"           // reboot, if the agent's configuration allows
	JobRestartServices = "restart-services" // systemctl try-restart what maps replaced files
)

// JobKinds lists every job kind, in the order above.
var JobKinds = []string{JobScan, JobPlan, JobInstall, JobRollback, JobReboot, JobRestartServices}

// Bounds on job parameters.
const (
	MaxJobPackages     = 2000
	MaxLockTimeout     = time.Hour
	DefaultLockTimeout = 5 * time.Minute
)

// ScanParams are a scan job's (none).
type ScanParams struct{}

// PlanParams are a plan job's: the exact versions to simulate.
type PlanParams struct {
	Packages []apply.Pin `json:"packages"`
}

// InstallParams are an install job's.
type InstallParams struct {
	Packages []apply.Pin `json:"packages"`
	// AllowRemovals lets a plan that removes packages go ahead.
	AllowRemovals bool `json:"allow_removals,omitempty"`
	// LockTimeoutSeconds is how long to wait for the dpkg lock; 0 is
	// DefaultLockTimeout, at most MaxLockTimeout.
	LockTimeoutSeconds int `json:"lock_timeout_seconds,omitempty"`
	// RollbackOnFailure rolls back when the install fails after changing
	// something, or when a health gate fails.
	RollbackOnFailure bool `json:"rollback_on_failure,omitempty"`
}

// RollbackParams are a rollback job's: exactly one of InstallJob (the ID
// of an install job this host ran) and Record (the record ID its result
// named).
type RollbackParams struct {
	InstallJob         string `json:"install_job,omitempty"`
	Record             string `json:"record,omitempty"`
	LockTimeoutSeconds int    `json:"lock_timeout_seconds,omitempty"`
}

// RebootParams are a reboot job's. The agent reboots only if its own
// configuration sets allow_reboot.
type RebootParams struct {
	// IfRequired reboots only when the system says it needs it
	// (apply.RebootRequired); otherwise the job reports it did not.
	IfRequired bool `json:"if_required,omitempty"`
}

// RestartServicesParams are a restart-services job's.
type RestartServicesParams struct {
	// Units limits the restart to these of the units that map replaced
	// files; empty is all of them. A unit named here that needs no
	// restart is reported as skipped, never restarted.
	Units []string `json:"units,omitempty"`
}

var (
	// jobIDPattern is what a job ID may be wherever it names a file.
	jobIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	recordPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	// versionStart: an upstream version starts with a digit (Debian
	// policy 5.6.12), after the epoch if any.
	versionStart = regexp.MustCompile(`^([0-9]+:)?[0-9]`)
)

// ValidJobID reports whether id can name a job's files on an agent.
func ValidJobID(id string) bool { return jobIDPattern.MatchString(id) }

// ValidRecordID reports whether id is an apply.Record ID.
func ValidRecordID(id string) bool { return recordPattern.MatchString(id) }

// ParseJobParams decodes and validates the parameters of a job of kind:
// unknown kinds and fields, trailing data, bad pins and out-of-range
// numbers are refused. Empty params are {}. The value is a pointer to
// the kind's params type (*InstallParams for "install").
func ParseJobParams(kind string, raw json.RawMessage) (any, error) {
	var p interface{ validate() error }
	switch kind {
	case JobScan:
		p = &ScanParams{}
	case JobPlan:
		p = &PlanParams{}
	case JobInstall:
		p = &InstallParams{}
	case JobRollback:
		p = &RollbackParams{}
	case JobReboot:
		p = &RebootParams{}
	case JobRestartServices:
		p = &RestartServicesParams{}
	default:
		return nil, fmt.Errorf("unknown job kind %q (known: %v)", kind, JobKinds)
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = json.RawMessage("{}")
	}
	if err := Decode(bytes.NewReader(raw), MaxBody, p); err != nil {
		return nil, fmt.Errorf("%s params: %w", kind, err)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%s params: %w", kind, err)
	}
	return p, nil
}

func (*ScanParams) validate() error   { return nil }
func (p *PlanParams) validate() error { return validatePins(p.Packages) }
func (*RebootParams) validate() error { return nil }
func (p *InstallParams) validate() error {
	if err := validatePins(p.Packages); err != nil {
		return err
	}
	return validateLock(p.LockTimeoutSeconds)
}

func (p *RollbackParams) validate() error {
	switch {
	case (p.InstallJob == "") == (p.Record == ""):
		return errors.New("give exactly one of install_job and record")
	case p.InstallJob != "" && !ValidJobID(p.InstallJob):
		return fmt.Errorf("install_job %q is not a job ID", p.InstallJob)
	case p.Record != "" && !ValidRecordID(p.Record):
		return fmt.Errorf("record %q is not a record ID (like 20240102T030405Z-0a1b2c3d)", p.Record)
	}
	return validateLock(p.LockTimeoutSeconds)
}

func (p *RestartServicesParams) validate() error {
	for i, u := range p.Units {
		if !health.ValidUnit(u) {
			return fmt.Errorf("units[%d]: %q is not a unit name (like nginx.service)", i, u)
		}
	}
	return nil
}

// LockTimeout is the lock wait the params ask for.
func (p *InstallParams) LockTimeout() time.Duration { return lockTimeout(p.LockTimeoutSeconds) }

// LockTimeout is the lock wait the params ask for.
func (p *RollbackParams) LockTimeout() time.Duration { return lockTimeout(p.LockTimeoutSeconds) }

func lockTimeout(s int) time.Duration {
	if s == 0 {
		return DefaultLockTimeout
	}
	return time.Duration(s) * time.Second
}

func validateLock(s int) error {
	if s < 0 || time.Duration(s)*time.Second > MaxLockTimeout {
		return fmt.Errorf("lock_timeout_seconds %d: want 0 (default %v) to %d", s, DefaultLockTimeout, int(MaxLockTimeout.Seconds()))
	}
	return nil
}

func validatePins(pins []apply.Pin) error {
	if len(pins) == 0 {
		return errors.New("packages: none given")
	}
	if len(pins) > MaxJobPackages {
		return fmt.Errorf("packages: %d given, at most %d", len(pins), MaxJobPackages)
	}
	seen := map[string]bool{}
	for i, p := range pins {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("packages[%d]: %w", i, err)
		}
		if !versionStart.MatchString(p.Version) {
			return fmt.Errorf("packages[%d]: %s: version %q does not start with a digit", i, p.Package, p.Version)
		}
		key := p.Package + ":" + p.Arch
		if seen[key] {
			return fmt.Errorf("packages[%d]: %s given twice", i, p.String())
		}
		seen[key] = true
	}
	return nil
}

// ChangeResult is what an install or rollback did, checked with dpkg.
type ChangeResult struct {
	Plan apply.InstallPlan `json:"plan"`
	// Packages are, per planned change, the version before, the one
	// wanted, and what dpkg-query -W shows now.
	Packages []apply.PackageResult `json:"packages"`
	// Repaired is set when an interrupted dpkg was repaired first;
	// Audit is what dpkg --audit said then.
	Repaired   bool      `json:"repaired,omitempty"`
	Audit      string    `json:"audit,omitempty"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	ExitCode   int       `json:"exit_code"` // apt-get's; -1 when it did not run
	Log        string    `json:"log"`       // the end of the commands' output, bounded
	Error      string    `json:"error,omitempty"`
}

// InstallResult is an install job's result.
type InstallResult struct {
	ChangeResult
	// Record is the rollback record's ID (a rollback job's "record").
	Record string `json:"record,omitempty"`
	// Healthy is false when the install failed or a health gate did.
	Healthy bool           `json:"healthy"`
	Health  *health.Report `json:"health,omitempty"`
	Reboot  *apply.Reboot  `json:"reboot,omitempty"`
	Restart *apply.Restart `json:"restart,omitempty"`
	// Interrupted is set when the agent stopped during the install and
	// this result was made afterwards from what dpkg shows, without
	// running anything again.
	Interrupted bool `json:"interrupted,omitempty"`
	// Rollback is the rollback done because the job asked for
	// rollback_on_failure and the install or a gate failed.
	Rollback *ChangeResult `json:"rollback,omitempty"`
}

// RollbackResult is a rollback job's result.
type RollbackResult struct {
	ChangeResult
	Record      string `json:"record"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// RebootResult is a reboot job's result.
type RebootResult struct {
	Required bool     `json:"required"`
	Reasons  []string `json:"reasons,omitempty"`
	// Rebooted is set once the agent has seen a new boot ID after asking
	// systemd to reboot.
	Rebooted     bool   `json:"rebooted"`
	BootIDBefore string `json:"boot_id_before,omitempty"`
	BootIDAfter  string `json:"boot_id_after,omitempty"`
	// Note says why no reboot was done (not required, or a chroot where
	// only the intent is recorded).
	Note string `json:"note,omitempty"`
}

// RestartResult is a restart-services job's result.
type RestartResult struct {
	// Needed are the units apply.RestartNeeded named before the restart.
	Needed    []string      `json:"needed"`
	Restarted []string      `json:"restarted,omitempty"`
	Skipped   []UnitOutcome `json:"skipped,omitempty"`
	Failed    []UnitOutcome `json:"failed,omitempty"`
	// Still are the units that map replaced files after the restart.
	Still []string `json:"still,omitempty"`
}

// UnitOutcome is a unit and why it was skipped or failed.
type UnitOutcome struct {
	Unit   string `json:"unit"`
	Detail string `json:"detail"`
}
