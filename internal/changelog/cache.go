package changelog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/repo"
)

// CacheSchema names the JSON form of a cache file.
const CacheSchema = "patchloop.changelog/v1"

// cacheEntry is one file of the cache: the full parsed changelog of one
// (source, version), or why that source version has none to read.
type cacheEntry struct {
	Schema    string    `json:"schema"`
	Source    string    `json:"source"`
	Version   string    `json:"version"`
	Package   string    `json:"package,omitempty"`    // the binary it was read from
	DebSHA256 string    `json:"deb_sha256,omitempty"` // of that .deb, as the index listed it
	Read      time.Time `json:"read"`
	Log       *Log      `json:"log,omitempty"`
	Gap       string    `json:"gap,omitempty"` // no changelog in any binary tried
}

// cachePath names the file of k: CacheDir/SOURCE_VERSION.json, the
// version's ':' written "%3a" as apt writes it in file names.
func (f *Fetcher) cachePath(k Key) (string, error) {
	if f.CacheDir == "" {
		return "", errors.New("changelog cache: no CacheDir")
	}
	if !validSourceName(k.Source) {
		return "", fmt.Errorf("changelog cache: bad source package name %q", k.Source)
	}
	if err := deb.ValidVersion(k.Version); err != nil || strings.ContainsAny(k.Version, "/%") {
		return "", fmt.Errorf("changelog cache: unusable version %q for %s", k.Version, k.Source)
	}
	name := k.Source + "_" + strings.ReplaceAll(k.Version, ":", "%3a") + ".json"
	return filepath.Join(f.CacheDir, name), nil
}

// validSourceName checks Debian policy 5.6.1: [a-z0-9][a-z0-9+.-]+.
func validSourceName(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '+' || c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// loadCache returns the cached entry of k, or nil if there is none or it
// is unreadable (then it is read again and rewritten).
func (f *Fetcher) loadCache(k Key) *cacheEntry {
	p, err := f.cachePath(k)
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Schema != CacheSchema ||
		e.Source != k.Source || e.Version != k.Version || (e.Log == nil) == (e.Gap == "") {
		f.log().Warn("ignoring unreadable changelog cache file", "path", p, "err", err)
		return nil
	}
	return &e
}

// storeCache writes e atomically; concurrent writers of one key write
// the same content, the last rename wins.
func (f *Fetcher) storeCache(e *cacheEntry) error {
	p, err := f.cachePath(Key{e.Source, e.Version})
	if err != nil {
		return err
	}
	e.Schema = CacheSchema
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("changelog cache %s: %w", p, err)
	}
	if err := repo.WriteFileAtomic(p, append(data, '\n')); err != nil {
		return fmt.Errorf("changelog cache %s: %w", p, err)
	}
	return nil
}
