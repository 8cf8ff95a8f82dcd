package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// URIToFileName is apt's URItoFileName: the name under which apt keeps a
// downloaded file in /var/lib/apt/lists. The scheme and any user:password
// are dropped, some characters (among them "_" and "~") and all
// non-printable bytes are percent-quoted in lower-case hex, then "/"
// becomes "_". For example
// http://deb.debian.org/debian/dists/bookworm/InRelease becomes
// deb.debian.org_debian_dists_bookworm_InRelease.
func URIToFileName(uri string) string {
	s := uri
	if u, err := url.Parse(uri); err == nil && u.Host != "" {
		s = u.Hostname()
		if p := u.Port(); p != "" {
			s += ":" + p
		}
		s += u.Path // apt de-quotes the URI of a source before quoting it again
	} else if _, rest, ok := strings.Cut(uri, "://"); ok {
		host, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			rest = rest[i+1:]
		}
		s = rest
	}
	const bad = "\\|{}[]<>\"^~_=!@#$%^&*"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(bad, c) >= 0 {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return strings.ReplaceAll(b.String(), "/", "_")
}

// cacheMeta is what the cache keeps beside a metadata file for
// conditional requests.
type cacheMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// readMeta reads path+".meta"; a missing or unreadable one is empty.
func readMeta(path string) cacheMeta {
	var m cacheMeta
	data, err := os.ReadFile(path + ".meta")
	if err == nil {
		_ = json.Unmarshal(data, &m) // a corrupt meta only costs a full download
	}
	return m
}

// pendingFile is a verified metadata file to store, or a superseded one
// to remove, once the whole suite has been fetched.
type pendingFile struct {
	path   string
	data   []byte
	meta   cacheMeta
	remove bool
}

// commit writes the file and its .meta atomically, or removes them.
func (p pendingFile) commit() error {
	if p.remove {
		for _, name := range []string{p.path, p.path + ".meta"} {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	if err := WriteFileAtomic(p.path, p.data); err != nil {
		return err
	}
	meta, err := json.Marshal(p.meta)
	if err != nil {
		return err
	}
	return WriteFileAtomic(p.path+".meta", meta)
}

// WriteFileAtomic writes data to path through a temporary file and rename,
// creating the directory; readers never see a partial file.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic creates path from what fill writes, through a temporary file
// in the same directory that is renamed over path only if fill succeeds.
func writeAtomic(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("create cache file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fileMatches reports whether the file at path exists and has hash want.
func fileMatches(path string, want FileHash) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != want.Size {
		return false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == want.SHA256, nil
}
