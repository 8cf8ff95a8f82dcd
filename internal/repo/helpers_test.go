package repo

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// testNow is the clock of the generated repositories.
var testNow = time.Date(2026, 5, 16, 9, 14, 41, 0, time.UTC)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// newKey generates an Ed25519 signing key created at created; lifetime 0
// means it never expires.
func newKey(t testing.TB, name string, created time.Time, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	cfg := &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Time:            clockAt(created),
		KeyLifetimeSecs: uint32(lifetime / time.Second),
	}
	e, err := openpgp.NewEntity(name, "", strings.ToLower(name)+"@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publicKeyring serializes the public keys, armored or binary.
func publicKeyring(t testing.TB, armored bool, keys ...*openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, k := range keys {
		if armored {
			w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
			if err != nil {
				t.Fatal(err)
			}
			must(t, k.Serialize(w))
			must(t, w.Close())
			buf.WriteString("\n")
		} else {
			must(t, k.Serialize(&buf))
		}
	}
	return buf.Bytes()
}

// testKeyring is a Keyring holding keys.
func testKeyring(t testing.TB, keys ...*openpgp.Entity) *Keyring {
	t.Helper()
	kr, err := ReadKeyring("test.gpg", publicKeyring(t, false, keys...))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// writeKeyring writes the public keys to dir/name and returns its path.
func writeKeyring(t testing.TB, dir, name string, keys ...*openpgp.Entity) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(p, publicKeyring(t, strings.HasSuffix(name, ".asc"), keys...), 0o644))
	return p
}

// clearSign clear-signs text with key at time at.
func clearSign(t testing.TB, key *openpgp.Entity, text []byte, at time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, key.PrivateKey, &packet.Config{Time: clockAt(at)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(text)
	must(t, err)
	must(t, w.Close())
	return buf.Bytes()
}

// detachSign makes an armored detached signature.
func detachSign(t testing.TB, key *openpgp.Entity, text []byte, at time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	must(t, openpgp.ArmoredDetachSign(&buf, key, bytes.NewReader(text), &packet.Config{Time: clockAt(at)}))
	return buf.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func compress(t testing.TB, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	var err error
	switch kind {
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "gz":
		w = gzip.NewWriter(&buf)
	case "lz4":
		w = lz4.NewWriter(&buf)
	default:
		return data
	}
	must(t, err)
	_, err = w.Write(data)
	must(t, err)
	must(t, w.Close())
	return buf.Bytes()
}

// samplePackages is a small Packages file whose content depends on seed.
func samplePackages(seed string) []byte {
	var b strings.Builder
	for i := range 3 {
		fmt.Fprintf(&b, "Package: pkg%d-%s\nVersion: 1.%d\nArchitecture: amd64\nDescription: test %s\n\n", i, seed, i, seed)
	}
	return []byte(b.String())
}

// repoOpts describes a generated repository with suite "test".
type repoOpts struct {
	key        *openpgp.Entity
	date       time.Time // Date field; zero: testNow
	signedAt   time.Time // zero: date
	validUntil time.Time
	byHash     bool
	detached   bool // Release + Release.gpg, no InRelease
	unsigned   bool // InRelease is the plain Release text
}

// buildRepo returns a repository tree: paths relative to the server root.
// main/binary-amd64 has Packages, .xz and .gz; contrib/binary-amd64 only
// .gz; the Release declares amd64 and arm64 (arm64 files listed too).
func buildRepo(t testing.TB, o repoOpts) map[string][]byte {
	t.Helper()
	if o.date.IsZero() {
		o.date = testNow
	}
	if o.signedAt.IsZero() {
		o.signedAt = o.date
	}
	files := map[string][]byte{}
	listed := map[string][]byte{} // relative to dists/test
	for _, ca := range []string{"main/binary-amd64", "main/binary-arm64", "contrib/binary-amd64"} {
		plain := samplePackages(ca)
		listed[ca+"/Packages"] = plain
		listed[ca+"/Packages.gz"] = compress(t, "gz", plain)
		if strings.HasPrefix(ca, "main/") {
			listed[ca+"/Packages.xz"] = compress(t, "xz", plain)
		}
	}
	for name, data := range listed {
		if name == "contrib/binary-amd64/Packages" {
			continue // listed, not served: clients must not need it
		}
		files["dists/test/"+name] = data
		if o.byHash {
			files["dists/test/"+filepath.Dir(name)+"/by-hash/SHA256/"+sha256hex(data)] = data
		}
	}
	rel := releaseText(o, listed)
	switch {
	case o.unsigned:
		files["dists/test/InRelease"] = rel
	case o.detached:
		files["dists/test/Release"] = rel
		files["dists/test/Release.gpg"] = detachSign(t, o.key, rel, o.signedAt)
	default:
		files["dists/test/InRelease"] = clearSign(t, o.key, rel, o.signedAt)
	}
	return files
}

// releaseText writes a Release listing files.
func releaseText(o repoOpts, files map[string][]byte) []byte {
	var b strings.Builder
	b.WriteString("Origin: Test\nLabel: Test\nSuite: test\nCodename: testing-codename\nVersion: 1.0\n")
	fmt.Fprintf(&b, "Date: %s\n", o.date.Format("Mon, 02 Jan 2006 15:04:05 MST"))
	if !o.validUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", o.validUntil.Format("Mon, 02 Jan 2006 15:04:05 MST"))
	}
	if o.byHash {
		b.WriteString("Acquire-By-Hash: yes\n")
	}
	b.WriteString("Architectures: amd64 arm64\nComponents: main contrib\nSHA256:\n")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, " %s %8d %s\n", sha256hex(files[n]), len(files[n]), n)
	}
	return []byte(b.String())
}

// testServer serves a file tree over loopback HTTP with ETags, and counts
// what it answered.
type testServer struct {
	*httptest.Server
	mu          sync.Mutex
	files       map[string][]byte
	gets        map[string]int // 200 answers per path
	notModified int
	requests    []string
}

func newTestServer(t testing.TB, files map[string][]byte) *testServer {
	s := &testServer{files: files, gets: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	data, ok := s.files[p]
	s.requests = append(s.requests, p)
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", `"`+sha256hex(data)[:16]+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	http.ServeContent(rec, r, "", testNow, bytes.NewReader(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.code == http.StatusNotModified {
		s.notModified++
	} else if rec.code == http.StatusOK {
		s.gets[p]++
	}
}

func (s *testServer) set(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if data == nil {
		delete(s.files, path)
		return
	}
	s.files[path] = data
}

func (s *testServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[path]
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// testFetcher is a Fetcher for a generated repository, trusting key.
func testFetcher(t testing.TB, cacheDir string) *Fetcher {
	return &Fetcher{
		CacheDir:        cacheDir,
		CheckValidUntil: true,
		CheckDate:       true,
		Now:             clockAt(testNow.Add(time.Hour)),
		Timeout:         20 * time.Second,
	}
}

// testSource is the source of a generated repository served at uri.
func testSource(uri, keyring string) Source {
	return Source{
		URI: uri, Suite: "test",
		Components: []string{"main", "contrib", "non-free"},
		Archs:      []string{"amd64", "i386"},
		SignedBy:   []string{keyring},
		Where:      "test.sources:1",
	}
}
