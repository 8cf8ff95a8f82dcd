package scan

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/repo"
)

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// plainIndex writes Packages text to dir and returns its verified Index.
func plainIndex(t *testing.T, dir, name, text string) repo.Index {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, []byte(text))
	return repo.Index{Path: p, SHA256: hexSum([]byte(text)), Size: int64(len(text))}
}

func names(t *testing.T, cacheDir string, ix *repo.Index) string {
	t.Helper()
	recs, err := LoadIndex(cacheDir, ix, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Name+"="+r.Version)
	}
	return strings.Join(out, " ")
}

// TestLoadIndexRecordedHash: a compact index is used only when its first
// line records the content hash it is looked up by; otherwise it is
// rebuilt from the verified index, or refused naming it.
func TestLoadIndexRecordedHash(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	a := plainIndex(t, dir, "a", "Package: a\nVersion: 1\nArchitecture: amd64\n\n")
	b := plainIndex(t, dir, "b", "Package: b\nVersion: 2\nArchitecture: amd64\n\n")
	if got := names(t, cache, &a); got != "a=1" || !HaveIndexCache(cache, a.SHA256) {
		t.Fatalf("a: %q", got)
	}
	pathA := indexCachePath(cache, a.SHA256)
	pathB := indexCachePath(cache, b.SHA256)
	for name, content := range map[string][]byte{
		"another content's": mustRead(t, pathA),
		"no header":         []byte("a\tamd64\t1\t\t\n"),
		"empty":             nil,
	} {
		writeFile(t, pathB, content)
		if HaveIndexCache(cache, b.SHA256) {
			t.Errorf("%s: HaveIndexCache accepts it", name)
		}
		// Rebuilt from the verified index when it is there.
		if got := names(t, cache, &b); got != "b=2" || !HaveIndexCache(cache, b.SHA256) {
			t.Errorf("%s: got %q, want it rebuilt", name, got)
		}
		// Refused, naming it, when it is not.
		writeFile(t, pathB, content)
		gone := b
		gone.Path = filepath.Join(dir, "missing")
		if _, err := LoadIndex(cache, &gone, nil); err == nil || !strings.Contains(err.Error(), pathB) ||
			!strings.Contains(err.Error(), b.SHA256) {
			t.Errorf("%s, no index to rebuild from: err = %v", name, err)
		}
	}
}

// TestLoadIndexCompressedOnly: when the signed Release lists only the
// compressed forms (no content hash), indexes are kept apart by the hash
// of the listed file, never all under one empty key.
func TestLoadIndexCompressedOnly(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	var ixs []repo.Index
	for _, name := range []string{"one", "two"} {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write([]byte("Package: " + name + "\nVersion: 1\nArchitecture: amd64\n\n"))
		must(t, w.Close())
		p := filepath.Join(dir, name+".gz")
		writeFile(t, p, buf.Bytes())
		ixs = append(ixs, repo.Index{Path: p, Compress: "gz", FileSHA256: hexSum(buf.Bytes()), FileSize: int64(buf.Len())})
	}
	for _, want := range []string{"one=1", "two=1", "one=1"} {
		ix := ixs[0]
		if want == "two=1" {
			ix = ixs[1]
		}
		if got := names(t, cache, &ix); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestLoadIndexVersion1: compact indexes written before the first line
// recorded the hash are still read (their name is the hash).
func TestLoadIndexVersion1(t *testing.T) {
	cache := t.TempDir()
	ix := repo.Index{Path: filepath.Join(t.TempDir(), "missing"), SHA256: hexSum([]byte("x")), Size: 1}
	writeFile(t, indexCachePath(cache, ix.SHA256), []byte("patchloop-index 1\na\tamd64\t1\t\t\n"))
	if !HaveIndexCache(cache, ix.SHA256) {
		t.Error("HaveIndexCache refuses a version 1 file")
	}
	if got := names(t, cache, &ix); got != "a=1" {
		t.Errorf("got %q", got)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	return data
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
