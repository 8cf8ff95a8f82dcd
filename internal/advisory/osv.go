package advisory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one OSV vulnerability record (OSV schema 1.x). Fields the
// schema leaves to databases and ecosystems are kept as raw JSON. Unknown
// fields are ignored, as the schema asks of clients reading a newer minor
// version.
type Record struct {
	SchemaVersion    string          `json:"schema_version,omitempty"`
	ID               string          `json:"id"`
	Modified         time.Time       `json:"modified"`
	Published        *time.Time      `json:"published,omitempty"`
	Withdrawn        *time.Time      `json:"withdrawn,omitempty"`
	Aliases          []string        `json:"aliases,omitempty"`
	Upstream         []string        `json:"upstream,omitempty"`
	Related          []string        `json:"related,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Details          string          `json:"details,omitempty"`
	Severity         []Severity      `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty"`
	References       []Reference     `json:"references,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Severity is a severity score: Type is CVSS_V2, CVSS_V3, CVSS_V4 (Score
// is then a CVSS vector) or a database's own scale such as "Ubuntu".
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Reference is a link about the vulnerability (type ADVISORY, FIX, ...).
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Package identifies an affected package within an ecosystem, for example
// {Ecosystem: "Debian:12", Name: "openssl"}.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Affected lists the affected versions of one package: a version is
// affected when it is listed in Versions or lies in any of Ranges.
type Affected struct {
	Package           Package         `json:"package"`
	Severity          []Severity      `json:"severity,omitempty"`
	Ranges            []Range         `json:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
}

// Range types defined by the OSV schema.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// Range is a timeline of events over one version ordering (Type).
type Range struct {
	Type             string          `json:"type"`
	Repo             string          `json:"repo,omitempty"`
	Events           []Event         `json:"events"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// EventKind is the kind of a range event.
type EventKind uint8

// The event kinds of the OSV schema.
const (
	Introduced EventKind = iota + 1
	Fixed
	LastAffected
	Limit
)

var eventKeys = [...]string{Introduced: "introduced", Fixed: "fixed", LastAffected: "last_affected", Limit: "limit"}

func (k EventKind) String() string {
	if k >= Introduced && k <= Limit {
		return eventKeys[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one event of a range: {"introduced": "1.0"} is
// Event{Introduced, "1.0"}.
type Event struct {
	Kind    EventKind
	Version string
}

// UnmarshalJSON reads an event object, which must have exactly one of the
// four keys (the schema's requirement) with a string value.
func (e *Event) UnmarshalJSON(b []byte) error {
	var raw struct {
		Introduced   *string `json:"introduced"`
		Fixed        *string `json:"fixed"`
		LastAffected *string `json:"last_affected"`
		Limit        *string `json:"limit"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Event{}
	for k, v := range [...]*string{Introduced: raw.Introduced, Fixed: raw.Fixed, LastAffected: raw.LastAffected, Limit: raw.Limit} {
		if v == nil {
			continue
		}
		if e.Kind != 0 {
			return fmt.Errorf("event has both %q and %q", e.Kind, EventKind(k))
		}
		*e = Event{Kind: EventKind(k), Version: *v}
	}
	if e.Kind == 0 {
		return errors.New("event has none of introduced, fixed, last_affected, limit")
	}
	return nil
}

// MarshalJSON writes the event as the one-key object it was read from.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Kind < Introduced || e.Kind > Limit {
		return nil, fmt.Errorf("marshal event: bad kind %d", e.Kind)
	}
	return json.Marshal(map[string]string{eventKeys[e.Kind]: e.Version})
}

// ParseOSV parses and validates one OSV record.
func ParseOSV(data []byte) (*Record, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks what matching relies on: an id, and for every range a
// type and at least one introduced event, and no range with both fixed
// and last_affected events (the schema's requirements). Field types are
// already checked by decoding.
func (r *Record) Validate() error {
	if strings.TrimSpace(r.ID) == "" {
		return errors.New("record has no id")
	}
	for i, a := range r.Affected {
		for j, rg := range a.Ranges {
			if err := rg.validate(); err != nil {
				return fmt.Errorf("%s: affected[%d] (%s %s) ranges[%d]: %w",
					r.ID, i, a.Package.Ecosystem, a.Package.Name, j, err)
			}
		}
	}
	return nil
}

func (rg *Range) validate() error {
	if rg.Type == "" {
		return errors.New("range has no type")
	}
	var introduced, fixed, lastAffected bool
	for _, e := range rg.Events {
		switch e.Kind {
		case Introduced:
			introduced = true
		case Fixed:
			fixed = true
		case LastAffected:
			lastAffected = true
		}
		if e.Version == "" {
			return fmt.Errorf("%s event with an empty version", e.Kind)
		}
	}
	if !introduced {
		return errors.New("range has no introduced event")
	}
	if fixed && lastAffected {
		return errors.New("range has both fixed and last_affected events")
	}
	return nil
}

// IsWithdrawn reports whether the record has been withdrawn; withdrawn
// records must not be used for matching.
func (r *Record) IsWithdrawn() bool { return r.Withdrawn != nil }

// AliasCVEs returns the CVE IDs of the same vulnerability: the record's
// own ID and its aliases, where they are CVE IDs or embed one (as the
// "UBUNTU-CVE-2021-3782" and "DEBIAN-CVE-2023-1234" records do).
func (r *Record) AliasCVEs() []string {
	var out []string
	out = appendCVEs(out, []string{r.ID})
	return appendCVEs(out, r.Aliases)
}

// CVEs returns every CVE ID the record refers to, without duplicates: its
// own ID and aliases (the same vulnerability), then upstream (the
// upstream vulnerabilities a distribution advisory bundles, as Ubuntu's
// USN and Debian's DLA records give them), then related. Related is
// included because distribution advisories written before schema 1.7
// list the CVEs they fix there: every AlmaLinux record (ALSA, ALBA, ALEA)
// does. For "which CVEs does this update close", this is the list; for
// strict identity use AliasCVEs.
func (r *Record) CVEs() []string {
	out := r.AliasCVEs()
	out = appendCVEs(out, r.Upstream)
	return appendCVEs(out, r.Related)
}

// appendCVEs appends to out the CVE IDs in ids (or embedded at their end
// after a "PREFIX-"), skipping those already in out.
func appendCVEs(out, ids []string) []string {
	have := make(map[string]bool, len(out)+len(ids)) // kernel records list thousands
	for _, cve := range out {
		have[cve] = true
	}
	for _, id := range ids {
		if cve := CVEOf(id); cve != "" && !have[cve] {
			have[cve] = true
			out = append(out, cve)
		}
	}
	return out
}

// CVEOf returns the CVE ID that id is or ends with ("CVE-2021-3782",
// "UBUNTU-CVE-2021-3782"), or "".
func CVEOf(id string) string {
	if IsCVE(id) {
		return id
	}
	if i := strings.Index(id, "-CVE-"); i >= 0 && IsCVE(id[i+1:]) {
		return id[i+1:]
	}
	return ""
}

// RPMEcosystem is the OSV ecosystem of an RPM distribution's major
// release, by its os-release ID: "AlmaLinux:9", "Rocky Linux:9"; "" for
// others (Red Hat's and SUSE's ecosystems go by product stream, which
// os-release does not tell).
func RPMEcosystem(id, major string) string {
	switch id {
	case "almalinux":
		return "AlmaLinux:" + major
	case "rocky":
		return "Rocky Linux:" + major
	}
	return ""
}
