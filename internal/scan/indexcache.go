package scan

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/repo"
)

// The compact index cache keeps, per verified Packages content, only the
// fields detection needs: one line "name\tarch\tversion\tsource\tsrcver"
// per stanza, with source and srcver left empty when they equal the
// binary's name and version. It is keyed by the SHA256 of the Packages
// content as given by the signed Release, which its first line records
// too, and written only after that content was read to its end with a
// matching hash, so a cache hit is as trustworthy as re-reading the index
// (this is what apt's pkgcache.bin is to apt, minus everything a scan
// does not need). A file whose first line records another hash is never
// used: it is rebuilt from the verified index, or refused. Version 1
// files, written before the first line recorded the hash, record it only
// in their name and are read as they were.
const (
	indexCacheMagic   = "patchloop-index 2 "
	indexCacheMagicV1 = "patchloop-index 1\n"
)

// compactHeader is the first line of the compact index of content sha256.
func compactHeader(sha256 string) string { return indexCacheMagic + sha256 + "\n" }

// compactBody returns the records of a compact index when its first line
// is the one of content key.
func compactBody(data []byte, key string) ([]byte, bool) {
	for _, h := range []string{compactHeader(key), indexCacheMagicV1} {
		if bytes.HasPrefix(data, []byte(h)) {
			return data[len(h):], true
		}
	}
	return nil, false
}

// compactKey is what the compact index of ix is kept under: the SHA256 of
// its content, or, when the signed Release lists only compressed forms,
// of the listed file (which determines the content as well).
func compactKey(ix *repo.Index) string {
	if ix.SHA256 != "" {
		return ix.SHA256
	}
	if ix.FileSHA256 != "" {
		return "file-" + ix.FileSHA256
	}
	return ""
}

func indexCachePath(cacheDir, key string) string {
	return filepath.Join(cacheDir, "compact", key+".idx")
}

// HaveIndexCache reports whether the compact cache of this content exists
// and records this hash.
func HaveIndexCache(cacheDir, sha256 string) bool {
	if sha256 == "" {
		return false
	}
	f, err := os.Open(indexCachePath(cacheDir, sha256))
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(compactHeader(sha256)))
	n, _ := io.ReadFull(f, buf)
	_, ok := compactBody(buf[:n], sha256)
	return ok
}

// haveIndexCacheFile reports whether a compact cache file of this content
// exists at all, valid or not: offline, one that is there is handed to
// LoadIndex, which uses it or refuses it naming it.
func haveIndexCacheFile(cacheDir, sha256 string) bool {
	if sha256 == "" {
		return false
	}
	_, err := os.Stat(indexCachePath(cacheDir, sha256))
	return err == nil
}

// LoadIndex returns the records of ix whose package name is in want (all
// when want is nil), building the compact cache under cacheDir from the
// verified index if needed. A compact cache that does not record the
// content hash of ix is rebuilt, or refused, naming it, when the index
// cannot be read to rebuild it.
func LoadIndex(cacheDir string, ix *repo.Index, want map[string]bool) ([]deb.IndexRecord, error) {
	key := compactKey(ix)
	if key == "" {
		return nil, fmt.Errorf("%s: the signed Release lists no hash for it", ix.Path)
	}
	path := indexCachePath(cacheDir, key)
	data, unmap, err := mapFile(path)
	if err == nil {
		defer unmap()
		if body, ok := compactBody(data, key); ok {
			return filterCompact(body, want, path)
		}
	}
	var refused error
	if err == nil {
		want := "content SHA256 " + key
		if sha, ok := strings.CutPrefix(key, "file-"); ok {
			want = "file SHA256 " + sha
		}
		refused = fmt.Errorf("%s: compact index records %s, the signed Release lists %s",
			path, recordedHash(data), want)
	}
	header := compactHeader(key)
	built, err := buildIndexCache(path, header, ix)
	if err != nil {
		if refused != nil {
			return nil, fmt.Errorf("%w; not rebuilt from the index: %v", refused, err)
		}
		return nil, err
	}
	return filterCompact(built[len(header):], want, path)
}

// recordedHash describes what the first line of a compact index records.
func recordedHash(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	if sha, ok := bytes.CutPrefix(line, []byte(indexCacheMagic)); ok {
		return "content SHA256 " + string(sha)
	}
	if len(line) > 64 {
		line = line[:64]
	}
	return fmt.Sprintf("no content hash (first line %q)", line)
}

// mapFile maps a file read-only: the compact caches are read once per
// scan, and mapping them costs no copy and no garbage.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() {}, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() { syscall.Munmap(data) }, nil
}

func buildIndexCache(path, header string, ix *repo.Index) ([]byte, error) {
	rc, err := ix.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.WriteString(header)
	err = deb.ParsePackages(rc, ix.Path, func(r deb.IndexRecord) error {
		if strings.ContainsAny(r.Name+r.Arch+r.Version+r.Source+r.SourceVersion, "\t\n") {
			return fmt.Errorf("%s: package %s: tab or newline in a field", ix.Path, r.Name)
		}
		src, srcVer := r.Source, r.SourceVersion
		if src == r.Name {
			src = ""
		}
		if srcVer == r.Version {
			srcVer = ""
		}
		fmt.Fprintf(&buf, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Arch, r.Version, src, srcVer)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := repo.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("write index cache: %w", err)
	}
	return buf.Bytes(), nil
}

// filterCompact decodes the compact lines whose name is wanted (all
// lines when want is nil).
func filterCompact(data []byte, want map[string]bool, path string) ([]deb.IndexRecord, error) {
	var out []deb.IndexRecord
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("%s: truncated compact index (remove it to rebuild)", path)
		}
		line := data[:nl]
		data = data[nl+1:]
		tab := bytes.IndexByte(line, '\t')
		if tab < 0 || (want != nil && !want[string(line[:tab])]) {
			continue
		}
		f := strings.Split(string(line), "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("%s: corrupt compact index line (remove it to rebuild)", path)
		}
		r := deb.IndexRecord{Name: f[0], Arch: f[1], Version: f[2], Source: f[3], SourceVersion: f[4]}
		if r.Source == "" {
			r.Source = r.Name
		}
		if r.SourceVersion == "" {
			r.SourceVersion = r.Version
		}
		out = append(out, r)
	}
	return out, nil
}
