package changelog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/patchloop/patchloop/internal/repo"
)

// Real captures; see testdata/README.md.
const (
	sambaDeb   = "samba-ad-dc_4.17.12+dfsg-0+deb12u2_all.deb"
	ldbDeb     = "python3-ldb-dev_2.6.2+samba4.17.12+dfsg-0+deb12u2_amd64.deb"
	sftpDeb    = "openssh-sftp-server_9.2p1-2+deb12u7_amd64.deb"
	jqDeb      = "jq_1.6-2.1+deb12u3_amd64.deb"
	jqStanza   = "bookworm-security_jq.stanza"
	updRelease = "../repo/testdata/deb.debian.org_debian_dists_bookworm-updates_InRelease"
	keyring    = "../repo/testdata/debian-archive-keyring.gpg"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	must(t, err)
	return data
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tarEntry is one member of a generated data.tar.
type tarEntry struct {
	name string
	body []byte
	link string // symlink target; body unused
}

// buildDeb writes a .deb: debian-binary, an empty control.tar.gz, and
// data.tar with compression comp ("", gz, xz, zst, bz2, lzma).
func buildDeb(t testing.TB, comp string, entries ...tarEntry) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e.link, 0, 0o777
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(e.body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	data := compress(t, comp, tb.Bytes())
	member := "data.tar"
	if comp != "" {
		member += "." + comp
	}
	return arArchive(t, [][2]string{
		{"debian-binary", "2.0\n"},
		{"control.tar.gz", string(compress(t, "gz", nil))},
		{member, string(data)},
	})
}

// arArchive writes members as ar does, padding odd sizes.
func arArchive(t testing.TB, members [][2]string) []byte {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m[0], 0, 0, 0, "100644", len(m[1]))
		b.WriteString(m[1])
		if len(m[1])%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func compress(t testing.TB, comp string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch comp {
	case "":
		return data
	case "gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		must(t, w.Close())
	case "xz":
		w, err := xz.NewWriter(&b)
		must(t, err)
		w.Write(data)
		must(t, w.Close())
	case "lzma":
		w, err := lzma.NewWriter(&b)
		must(t, err)
		w.Write(data)
		must(t, w.Close())
	case "zst":
		w, err := zstd.NewWriter(&b)
		must(t, err)
		w.Write(data)
		must(t, w.Close())
	case "bz2":
		if _, err := exec.LookPath("bzip2"); err != nil {
			t.Skip("bzip2 not installed")
		}
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin, cmd.Stdout = bytes.NewReader(data), &b
		must(t, cmd.Run())
	default:
		t.Fatalf("compression %q", comp)
	}
	return b.Bytes()
}

// server serves a fixed set of paths on loopback and counts requests.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	hits   map[string]int
	handle func(w http.ResponseWriter, r *http.Request) bool // optional override
}

func newServer(t testing.TB, files map[string][]byte) *server {
	s := &server{files: files, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		data, ok := s.files[r.URL.Path]
		handle := s.handle
		s.mu.Unlock()
		if handle != nil && handle(w, r) {
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// plainIndex writes a Packages text as a verified, uncompressed index of
// a repository at uri, as repo.Fetcher would return it.
func plainIndex(t testing.TB, uri, packages string) repo.Index {
	p := filepath.Join(t.TempDir(), "Packages")
	must(t, os.WriteFile(p, []byte(packages), 0o644))
	return repo.Index{
		Source: repo.Source{URI: uri, Suite: "test"}, Component: "main", Arch: "amd64",
		SHA256: sha256hex([]byte(packages)), Size: int64(len(packages)), Path: p, Verified: true,
	}
}

// stanza is a Packages entry for a generated .deb served at uri/file.
func stanza(pkg, version, source, file string, deb []byte) string {
	s := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\n", pkg, version)
	if source != "" {
		s += "Source: " + source + "\n"
	}
	return s + fmt.Sprintf("Filename: %s\nSize: %d\nSHA256: %s\n\n", file, len(deb), sha256hex(deb))
}

// gzChangelog compresses a changelog text as it sits in a .deb.
func gzChangelog(t testing.TB, text string) []byte { return compress(t, "gz", []byte(text)) }
