package feeds

import (
	"io"
	"strings"

	"github.com/patchloop/patchloop/internal/advisory"
)

// The parsers of the feeds package advisory reads, for Load and Cached.

// KEV parses the CISA KEV catalog JSON.
func KEV(name string, r *io.SectionReader) (*advisory.KEV, Stats, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, Stats{}, err
	}
	k, err := advisory.ParseKEV(name, data)
	if err != nil {
		return nil, Stats{}, err
	}
	return k, Stats{Records: len(k.Vulnerabilities), Bad: k.Bad, Version: k.CatalogVersion}, nil
}

// EPSS parses an EPSS CSV, plain or gzip.
func EPSS(name string, r *io.SectionReader) (*advisory.EPSS, Stats, error) {
	e, err := advisory.ParseEPSS(name, r)
	if err != nil {
		return nil, Stats{}, err
	}
	st := Stats{Records: e.Len(), Bad: e.Bad, Version: e.ModelVersion}
	if !e.ScoreDate.IsZero() {
		st.Version = strings.TrimSpace(st.Version + " " + e.ScoreDate.Format("2006-01-02"))
	}
	return e, st, nil
}

// OSVZip parses an OSV all.zip.
func OSVZip(name string, r *io.SectionReader) (*advisory.OSVSet, Stats, error) {
	s, err := advisory.ParseOSVZip(r, r.Size())
	if err != nil {
		return nil, Stats{}, err
	}
	return s, Stats{Records: len(s.Records), Bad: s.Bad}, nil
}

// DebianList parses a Debian Security Tracker DSA or DLA list.
func DebianList(name string, r *io.SectionReader) (*advisory.DebianList, Stats, error) {
	l, err := advisory.ParseDebianList(name, r)
	if err != nil {
		return nil, Stats{}, err
	}
	return l, Stats{Records: len(l.Advisories), Bad: l.Bad}, nil
}
