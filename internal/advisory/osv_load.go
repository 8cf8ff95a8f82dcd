package advisory

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// maxRecordSize bounds one OSV record read from a zip or a directory.
const maxRecordSize = 64 << 20

// OSVSet is a collection of OSV records, as loaded from a directory or an
// all.zip. Withdrawn records are counted but not kept; bad records are
// counted in Problems and never hide the good ones.
type OSVSet struct {
	Records   []*Record
	Withdrawn int // withdrawn records skipped
	Problems

	byPackage map[pkgKey][]*Record
	byCVE     map[string][]*Record
}

type pkgKey struct{ ecosystem, name string }

// Add parses one record read from the file name and adds it, counts it as
// withdrawn, or counts it as a problem.
func (s *OSVSet) Add(name string, data []byte) {
	r, err := ParseOSV(data)
	if err != nil {
		s.add(name, 0, err)
		return
	}
	s.AddRecord(r)
}

// AddRecord adds a parsed record (or counts it if it is withdrawn).
func (s *OSVSet) AddRecord(r *Record) {
	if r.IsWithdrawn() {
		s.Withdrawn++
		return
	}
	s.Records = append(s.Records, r)
	if s.byPackage == nil {
		s.byPackage = make(map[pkgKey][]*Record)
		s.byCVE = make(map[string][]*Record)
	}
	for _, cve := range r.CVEs() {
		s.byCVE[cve] = append(s.byCVE[cve], r)
	}
	for _, a := range r.Affected {
		k := pkgKey{a.Package.Ecosystem, a.Package.Name}
		if l := s.byPackage[k]; len(l) == 0 || l[len(l)-1] != r {
			s.byPackage[k] = append(l, r)
		}
	}
}

// ForPackage returns the records with an affected entry for exactly this
// ecosystem and package name, in the order they were added.
func (s *OSVSet) ForPackage(ecosystem, name string) []*Record {
	return s.byPackage[pkgKey{ecosystem, name}]
}

// ForCVE returns the records that refer to a CVE ID (see Record.CVEs), in
// the order they were added.
func (s *OSVSet) ForCVE(cve string) []*Record {
	return s.byCVE[cve]
}

// Affecting returns the records that affect the version of the package,
// evaluated with m.
func (s *OSVSet) Affecting(m Matcher, ecosystem, name, version string) ([]*Record, error) {
	var out []*Record
	for _, r := range s.ForPackage(ecosystem, name) {
		ok, err := m.Affects(r, ecosystem, name, version)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// ParseOSVZip reads an ecosystem's all.zip (one JSON record per member, as
// the OSV project exports them). A zip that cannot be read is an error; a
// member that is not a valid record is a problem. Members not ending in
// ".json" are ignored.
func ParseOSVZip(r io.ReaderAt, size int64) (*OSVSet, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("read OSV zip: %w", err)
	}
	s := &OSVSet{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		data, err := readZipMember(f)
		if err != nil {
			// A damaged member (bad checksum, truncated data) means the
			// archive is damaged, not that one record is bad.
			return nil, fmt.Errorf("read OSV zip member %s: %w", f.Name, err)
		}
		s.Add(f.Name, data)
	}
	return s, nil
}

func readZipMember(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxRecordSize {
		return nil, fmt.Errorf("record of %d bytes is too large", f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxRecordSize+1))
}

// LoadOSVDir reads every *.json file under dir in fsys, recursively, in
// lexical order. An unreadable directory or file is an error; a file that
// is not a valid record is a problem.
func LoadOSVDir(fsys fs.FS, dir string) (*OSVSet, error) {
	s := &OSVSet{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".json" {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		s.Add(p, data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load OSV records from %s: %w", dir, err)
	}
	return s, nil
}
