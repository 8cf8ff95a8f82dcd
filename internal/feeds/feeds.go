// Package feeds loads advisory feeds (KEV, EPSS, OSV all.zip, Debian's
// DSA/DLA lists) from a URL or a local file, records where each copy came
// from (provenance), and keeps the last good copy on disk: a refresh that
// fails, or brings data that does not parse, leaves the last good copy in
// service and reports the failure. A feed is never emptied by a refresh.
//
// Parsing is package advisory; this package only moves bytes and keeps
// them.
//
// # Cache layout
//
//	CacheDir/
//	  NAME.json                 provenance of the last good copy (the commit point)
//	  NAME-SHA256PREFIX.data    the last good copy, as fetched
//
// A new copy is downloaded to a temporary file, parsed, and only then
// renamed into place and recorded in NAME.json (written through a
// temporary file and renamed); the copy it replaces is removed after.
package feeds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

const (
	defaultTimeout = 5 * time.Minute
	defaultMaxSize = 2 << 30
)

// Source is where a feed comes from.
type Source struct {
	// Name keys the cache: letters, digits, '.', '_' and '-', for
	// example "kev", "epss" or "osv-debian".
	Name string
	// Location is an http:// or https:// URL, or a local file path.
	Location string
}

func (s Source) isURL() bool {
	return strings.HasPrefix(s.Location, "http://") || strings.HasPrefix(s.Location, "https://")
}

// Stats is what a parser reports about a copy.
type Stats struct {
	Records int    // good records
	Bad     int    // bad records skipped
	Version string // the feed's own version or date, if it has one
}

// Parser parses one copy of a feed. An error means the copy is unusable
// (its format changed, it is truncated); bad records are only counted.
type Parser[T any] func(name string, r *io.SectionReader) (T, Stats, error)

// Provenance records where the copy in service came from.
type Provenance struct {
	Source       string    `json:"source"`     // URL or absolute file path
	FetchedAt    time.Time `json:"fetched_at"` // when this content was fetched
	CheckedAt    time.Time `json:"checked_at"` // last time the source confirmed it (304 included)
	Records      int       `json:"records"`
	Bad          int       `json:"bad"`
	Version      string    `json:"version,omitempty"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
}

// Loaded is a parsed feed and the provenance of its copy.
type Loaded[T any] struct {
	Value      T
	Provenance Provenance
	// Stale is set when the refresh failed and Value is the last good
	// copy; RefreshErr says why.
	Stale      bool
	RefreshErr error
}

// Loader fetches feeds into a cache directory.
type Loader struct {
	CacheDir string
	Client   *http.Client     // nil: a client on http.DefaultTransport
	Timeout  time.Duration    // per request, body included; 0: 5 minutes
	MaxSize  int64            // largest copy accepted; 0: 2 GiB
	Now      func() time.Time // nil: time.Now
}

// Load refreshes the feed from its source and parses it. If the source
// cannot be fetched, answers an error status, or brings a copy that does
// not parse or has no records, Load returns the last good copy with Stale
// set and the failure in RefreshErr; only when there is no good copy
// either is it an error. A 304 answer to a conditional request keeps the
// cached copy (not stale).
func Load[T any](ctx context.Context, l *Loader, src Source, parse Parser[T]) (*Loaded[T], error) {
	if err := checkName(src.Name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("feed %s: %w", src.Name, err)
	}
	// replaced is the copy a new one replaces; prev is that copy if it
	// came from this source, for conditional requests and as fallback.
	replaced, prevErr := l.readMeta(src.Name)
	prev := replaced
	if prevErr == nil && prev.Source != sourceID(src) {
		prev, prevErr = nil, fmt.Errorf("cached copy is from %s", prev.Source)
	}
	got, err := refresh(ctx, l, src, prev, replaced, parse)
	if err == nil {
		return got, nil
	}
	err = fmt.Errorf("refresh feed %s from %s: %w", src.Name, src.Location, err)
	if prevErr != nil {
		return nil, fmt.Errorf("%w (no last good copy: %v)", err, prevErr)
	}
	last, cacheErr := cached(l, src, prev, parse)
	if cacheErr != nil {
		return nil, fmt.Errorf("%w (last good copy unusable: %v)", err, cacheErr)
	}
	last.Stale, last.RefreshErr = true, err
	return last, nil
}

// Cached parses the last good copy without contacting the source.
func Cached[T any](l *Loader, src Source, parse Parser[T]) (*Loaded[T], error) {
	if err := checkName(src.Name); err != nil {
		return nil, err
	}
	meta, err := l.readMeta(src.Name)
	if err != nil {
		return nil, fmt.Errorf("feed %s: no cached copy: %w", src.Name, err)
	}
	return cached(l, src, meta, parse)
}

func cached[T any](l *Loader, src Source, meta *Provenance, parse Parser[T]) (*Loaded[T], error) {
	if id := sourceID(src); meta.Source != "" && meta.Source != id {
		return nil, fmt.Errorf("feed %s: the cached copy is of %s, not %s", src.Name, meta.Source, id)
	}
	f, err := os.Open(l.dataPath(src.Name, meta.SHA256))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum, size, err := hashFile(f)
	if err != nil {
		return nil, err
	}
	if sum != meta.SHA256 || size != meta.Size {
		return nil, fmt.Errorf("cached copy %s does not match its recorded SHA256", f.Name())
	}
	v, _, err := parse(fileName(src), io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, fmt.Errorf("cached copy: %w", err)
	}
	return &Loaded[T]{Value: v, Provenance: *meta}, nil
}

func hashFile(f *os.File) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func (l *Loader) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Loader) metaPath(name string) string { return filepath.Join(l.CacheDir, name+".json") }

func (l *Loader) dataPath(name, sum string) string {
	return filepath.Join(l.CacheDir, name+"-"+sum[:min(16, len(sum))]+".data")
}

func (l *Loader) readMeta(name string) (*Provenance, error) {
	b, err := os.ReadFile(l.metaPath(name))
	if err != nil {
		return nil, err
	}
	var p Provenance
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", l.metaPath(name), err)
	}
	if len(p.SHA256) != 64 {
		return nil, fmt.Errorf("%s: no SHA256", l.metaPath(name))
	}
	return &p, nil
}

// writeMeta records p as the provenance of the copy in service, through a
// temporary file and a rename.
func (l *Loader) writeMeta(name string, p *Provenance) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(l.CacheDir, name+".json.tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.metaPath(name))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// sourceID is how the provenance names a source: the URL, or the
// absolute path of a file.
func sourceID(src Source) string {
	if src.isURL() {
		return src.Location
	}
	if abs, err := filepath.Abs(src.Location); err == nil {
		return abs
	}
	return src.Location
}

// fileName is the name the parser reports errors under: the last element
// of the URL's path or of the file path.
func fileName(src Source) string {
	if src.isURL() {
		if u, err := url.Parse(src.Location); err == nil {
			if b := path.Base(u.Path); b != "/" && b != "." {
				return b
			}
			return u.Host
		}
		return src.Location
	}
	return filepath.Base(src.Location)
}

func checkName(name string) error {
	if name == "" || name[0] == '.' {
		return fmt.Errorf("bad feed name %q", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("bad feed name %q", name)
		}
	}
	return nil
}
