package scan

import (
	"bytes"
	"fmt"
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
// content as given by the signed Release, and written only after that
// content was read to its end with a matching hash, so a cache hit is as
// trustworthy as re-reading the index (this is what apt's pkgcache.bin is
// to apt, minus everything a scan does not need).
const indexCacheMagic = "patchloop-index 1\n"

func indexCachePath(cacheDir, sha256 string) string {
	return filepath.Join(cacheDir, "compact", sha256+".idx")
}

// HaveIndexCache reports whether the compact cache of this content exists.
func HaveIndexCache(cacheDir, sha256 string) bool {
	_, err := os.Stat(indexCachePath(cacheDir, sha256))
	return err == nil
}

// LoadIndex returns the records of ix whose package name is in want (all
// when want is nil), building the compact cache under cacheDir from the
// verified index if needed.
func LoadIndex(cacheDir string, ix *repo.Index, want map[string]bool) ([]deb.IndexRecord, error) {
	path := indexCachePath(cacheDir, ix.SHA256)
	data, unmap, err := mapFile(path)
	if err == nil {
		defer unmap()
	}
	if err != nil || !bytes.HasPrefix(data, []byte(indexCacheMagic)) {
		if data, err = buildIndexCache(path, ix); err != nil {
			return nil, err
		}
	}
	return filterCompact(data[len(indexCacheMagic):], want, path)
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

func buildIndexCache(path string, ix *repo.Index) ([]byte, error) {
	rc, err := ix.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.WriteString(indexCacheMagic)
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
