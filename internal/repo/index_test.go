package repo

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeIndex stores data compressed as kind and returns an Index whose
// signed hashes are those of plain.
func writeIndex(t *testing.T, kind string, stored, plain []byte) Index {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Packages."+kind)
	must(t, os.WriteFile(p, stored, 0o644))
	return Index{Path: p, Compress: kind, SHA256: sha256hex(plain), Size: int64(len(plain))}
}

func TestIndexOpen(t *testing.T) {
	plain := samplePackages("open")
	other := samplePackages("other")
	for _, kind := range []string{"", "xz", "gz", "lz4"} {
		t.Run("kind="+kind, func(t *testing.T) {
			ix := writeIndex(t, kind, compress(t, kind, plain), plain)
			if err := ix.Verify(); err != nil {
				t.Errorf("good file: %v", err)
			}
			ix = writeIndex(t, kind, compress(t, kind, other), plain)
			if err := ix.Verify(); err == nil || !strings.Contains(err.Error(), ix.Path) {
				t.Errorf("other content: err = %v, want a mismatch naming the file", err)
			}
			longer := append(append([]byte{}, plain...), "Package: extra\n"...)
			ix = writeIndex(t, kind, compress(t, kind, longer), plain)
			if err := ix.Verify(); err == nil || !strings.Contains(err.Error(), "longer") {
				t.Errorf("longer content: err = %v", err)
			}
			if kind == "" {
				return
			}
			stored := compress(t, kind, plain)
			ix = writeIndex(t, kind, stored[:len(stored)*2/3], plain)
			if err := ix.Verify(); err == nil || !strings.Contains(err.Error(), ix.Path) {
				t.Errorf("truncated: err = %v, want an error naming the file", err)
			}
			ix = writeIndex(t, kind, []byte("this is not compressed at all, not even close"), plain)
			if err := ix.Verify(); err == nil || !strings.Contains(err.Error(), "decompress "+ix.Path) {
				t.Errorf("not compressed: err = %v", err)
			}
		})
	}
}

func TestIndexOpenChecksStoredFile(t *testing.T) {
	plain := samplePackages("stored")
	stored := compress(t, "xz", plain)
	// xz stream padding does not change the content, but the stored
	// file's hash catches it.
	ix := writeIndex(t, "xz", append(append([]byte{}, stored...), 0, 0, 0, 0), plain)
	ix.FileSHA256, ix.FileSize = sha256hex(stored), int64(len(stored))
	if err := ix.Verify(); err == nil || !strings.Contains(err.Error(), "file has SHA256") {
		t.Errorf("err = %v", err)
	}
	ix.SHA256 = "" // only the stored file listed
	must(t, os.WriteFile(ix.Path, stored, 0o644))
	if err := ix.Verify(); err != nil {
		t.Error(err)
	}
	ix.FileSHA256 = ""
	if _, err := ix.Open(); err == nil {
		t.Error("opened an index with no hash to check")
	}
}

func TestIndexReadAfterError(t *testing.T) {
	plain := samplePackages("x")
	ix := writeIndex(t, "", samplePackages("y"), plain)
	rc, err := ix.Open()
	must(t, err)
	defer rc.Close()
	_, err1 := io.ReadAll(rc)
	_, err2 := rc.Read(make([]byte, 10))
	if err1 == nil || err2 == nil || err2 == io.EOF {
		t.Errorf("errors %v then %v: the mismatch must stick", err1, err2)
	}
}
