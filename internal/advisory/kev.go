package advisory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// KEV is the CISA Known Exploited Vulnerabilities catalog
// (known_exploited_vulnerabilities.json). Entries that break the
// catalog's schema are counted in Problems and left out.
type KEV struct {
	Title           string
	CatalogVersion  string
	DateReleased    time.Time
	Count           int // the catalog's own count of entries
	Vulnerabilities []KEVEntry
	Problems

	byCVE map[string]int
}

// KEVEntry is one known exploited vulnerability.
type KEVEntry struct {
	CVEID                      string
	VendorProject              string
	Product                    string
	VulnerabilityName          string
	DateAdded                  time.Time // a date, UTC midnight
	ShortDescription           string
	RequiredAction             string
	DueDate                    time.Time // a date, UTC midnight
	KnownRansomwareCampaignUse string    // "Known" or "Unknown"
	Notes                      string
	CWEs                       []string
}

// Ransomware reports whether CISA knows the vulnerability to have been
// used in ransomware campaigns.
func (e *KEVEntry) Ransomware() bool { return e.KnownRansomwareCampaignUse == "Known" }

// Lookup returns the catalog's entry for a CVE ID.
func (k *KEV) Lookup(cve string) (*KEVEntry, bool) {
	i, ok := k.byCVE[cve]
	if !ok {
		return nil, false
	}
	return &k.Vulnerabilities[i], true
}

// kevEntryJSON is an entry as the schema types it.
type kevEntryJSON struct {
	CVEID                      string   `json:"cveID"`
	VendorProject              string   `json:"vendorProject"`
	Product                    string   `json:"product"`
	VulnerabilityName          string   `json:"vulnerabilityName"`
	DateAdded                  string   `json:"dateAdded"`
	ShortDescription           string   `json:"shortDescription"`
	RequiredAction             string   `json:"requiredAction"`
	DueDate                    string   `json:"dueDate"`
	KnownRansomwareCampaignUse string   `json:"knownRansomwareCampaignUse"`
	Notes                      string   `json:"notes"`
	CWEs                       []string `json:"cwes"`
}

// ParseKEV parses the KEV catalog JSON read from the file name. A catalog
// whose shape changed (not a JSON object; catalogVersion, dateReleased,
// count or vulnerabilities missing or of another type; a count that does
// not match the entries) is an error naming the file and line. An entry
// that breaks the schema (a required field missing or mistyped, a bad
// CVE ID or date, a repeated CVE ID) is a problem with its line.
func ParseKEV(name string, data []byte) (*KEV, error) {
	p := kevParser{name: name, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	k, err := p.parse()
	if err != nil {
		off := p.dec.InputOffset()
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = se.Offset
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errors.New("unexpected end of data: truncated?")
		}
		return nil, fmt.Errorf("parse %s line %d: %w", name, p.lineAt(off), err)
	}
	return k, nil
}

type kevParser struct {
	name string
	data []byte
	dec  *json.Decoder
	// line is the 1-based line of byte offset off, advanced by lineAt.
	off  int64
	line int
}

func (p *kevParser) parse() (*KEV, error) {
	if err := p.delim('{'); err != nil {
		return nil, err
	}
	k := &KEV{byCVE: make(map[string]int)}
	seen := map[string]bool{}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("field %q repeated", key)
		}
		seen[key] = true
		switch key {
		case "title":
			err = p.field(key, &k.Title)
		case "catalogVersion":
			err = p.field(key, &k.CatalogVersion)
		case "count":
			err = p.field(key, &k.Count)
		case "dateReleased":
			var s string
			if err = p.field(key, &s); err == nil {
				if k.DateReleased, err = time.Parse(time.RFC3339, s); err != nil {
					err = fmt.Errorf("field \"dateReleased\": %w", err)
				}
			}
		case "vulnerabilities":
			err = p.entries(k)
		default:
			err = p.dec.Decode(new(json.RawMessage))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.delim('}'); err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, errors.New("data after the catalog object")
	}
	for _, f := range []string{"catalogVersion", "dateReleased", "count", "vulnerabilities"} {
		if !seen[f] {
			return nil, fmt.Errorf("catalog has no %q field: not a KEV catalog, or its format changed", f)
		}
	}
	if n := len(k.Vulnerabilities) + k.Bad; n != k.Count {
		return nil, fmt.Errorf("catalog count is %d but it has %d entries", k.Count, n)
	}
	return k, nil
}

func (p *kevParser) delim(want json.Delim) error {
	tok, err := p.dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("found %v where %q was expected: not a KEV catalog, or its format changed", tok, want)
	}
	return nil
}

// field decodes the value of a top-level field into v, which must match
// its JSON type.
func (p *kevParser) field(key string, v any) error {
	if err := p.dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %q is a JSON %s, want %s", key, te.Value, te.Type)
		}
		return err
	}
	return nil
}

// entries reads the vulnerabilities array, one entry at a time.
func (p *kevParser) entries(k *KEV) error {
	if err := p.delim('['); err != nil {
		return fmt.Errorf("field \"vulnerabilities\": %w", err)
	}
	for p.dec.More() {
		line := p.lineAt(p.valueStart())
		var raw json.RawMessage
		if err := p.dec.Decode(&raw); err != nil {
			return err
		}
		e, err := parseKEVEntry(raw)
		if err == nil {
			if _, dup := k.byCVE[e.CVEID]; dup {
				err = fmt.Errorf("%s listed again", e.CVEID)
			}
		}
		if err != nil {
			k.add(p.name, line, err)
			continue
		}
		k.byCVE[e.CVEID] = len(k.Vulnerabilities)
		k.Vulnerabilities = append(k.Vulnerabilities, e)
	}
	return p.delim(']')
}

func parseKEVEntry(raw json.RawMessage) (KEVEntry, error) {
	var j kevEntryJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		var id struct {
			CVEID string `json:"cveID"`
		}
		json.Unmarshal(raw, &id) // for context only
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return KEVEntry{}, fmt.Errorf("entry %s: field %q is a JSON %s, want %s", id.CVEID, te.Field, te.Value, te.Type)
		}
		return KEVEntry{}, fmt.Errorf("entry %s: %w", id.CVEID, err)
	}
	if !IsCVE(j.CVEID) {
		return KEVEntry{}, fmt.Errorf("entry has a bad cveID %q", j.CVEID)
	}
	for _, f := range [...]struct{ name, v string }{
		{"vendorProject", j.VendorProject}, {"product", j.Product}, {"vulnerabilityName", j.VulnerabilityName},
		{"shortDescription", j.ShortDescription}, {"requiredAction", j.RequiredAction},
	} {
		if f.v == "" {
			return KEVEntry{}, fmt.Errorf("%s: required field %q missing or empty", j.CVEID, f.name)
		}
	}
	added, err := time.Parse(time.DateOnly, j.DateAdded)
	if err != nil {
		return KEVEntry{}, fmt.Errorf("%s: bad dateAdded %q", j.CVEID, j.DateAdded)
	}
	due, err := time.Parse(time.DateOnly, j.DueDate)
	if err != nil {
		return KEVEntry{}, fmt.Errorf("%s: bad dueDate %q", j.CVEID, j.DueDate)
	}
	return KEVEntry{
		CVEID: j.CVEID, VendorProject: j.VendorProject, Product: j.Product,
		VulnerabilityName: j.VulnerabilityName, DateAdded: added, ShortDescription: j.ShortDescription,
		RequiredAction: j.RequiredAction, DueDate: due, KnownRansomwareCampaignUse: j.KnownRansomwareCampaignUse,
		Notes: j.Notes, CWEs: j.CWEs,
	}, nil
}

// valueStart is the offset of the next value: the decoder's offset is
// just after the previous token, before any blank and comma.
func (p *kevParser) valueStart() int64 {
	off := p.dec.InputOffset()
	for off < int64(len(p.data)) {
		switch p.data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
			continue
		}
		break
	}
	return off
}

// lineAt returns the 1-based line of byte offset off; offsets must not
// decrease between calls.
func (p *kevParser) lineAt(off int64) int {
	if p.line == 0 {
		p.line = 1
	}
	off = min(off, int64(len(p.data)))
	if off > p.off {
		p.line += bytes.Count(p.data[p.off:off], []byte{'\n'})
		p.off = off
	}
	return p.line
}
