package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// fetchRepo serves a repository built from o and fetches it.
func fetchRepo(t *testing.T, o repoOpts) (*testServer, *Fetcher, Source, []Index, error) {
	t.Helper()
	if o.key == nil {
		o.key = newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	}
	srv := newTestServer(t, buildRepo(t, o))
	kr := writeKeyring(t, t.TempDir(), "repo.gpg", o.key)
	f := testFetcher(t, t.TempDir())
	src := testSource(srv.URL, kr)
	ix, err := f.Fetch(context.Background(), src)
	return srv, f, src, ix, err
}

func readIndex(t *testing.T, ix Index) []byte {
	t.Helper()
	rc, err := ix.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", ix.Path, err)
	}
	return data
}

func TestFetchHappyPath(t *testing.T) {
	var progress []string
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	srv := newTestServer(t, buildRepo(t, repoOpts{key: key}))
	f := testFetcher(t, t.TempDir())
	f.Progress = func(m string) { progress = append(progress, m) }
	ixs, err := f.Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.asc", key)))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ comp, compress, seed string }{
		{"main", "xz", "main/binary-amd64"},
		{"contrib", "gz", "contrib/binary-amd64"},
	}
	if len(ixs) != len(want) {
		t.Fatalf("got %d indexes, want %d (i386 and non-free must be skipped)", len(ixs), len(want))
	}
	for i, w := range want {
		ix := ixs[i]
		if ix.Component != w.comp || ix.Arch != "amd64" || ix.Compress != w.compress || !ix.Verified {
			t.Errorf("index %d = %s/%s %q verified=%v, want %s/amd64 %q", i, ix.Component, ix.Arch, ix.Compress, ix.Verified, w.comp, w.compress)
		}
		plain := samplePackages(w.seed)
		if ix.SHA256 != sha256hex(plain) || ix.Size != int64(len(plain)) {
			t.Errorf("index %d: SHA256/Size are not those of the uncompressed Packages", i)
		}
		if got := readIndex(t, ix); !bytes.Equal(got, plain) {
			t.Errorf("index %d content = %q", i, got)
		}
		if ix.Site != "127.0.0.1" || ix.Release.Codename != "testing-codename" || ix.Release.Signer == "" {
			t.Errorf("index %d: site %q release %+v", i, ix.Site, ix.Release)
		}
	}
	if len(progress) != 3 {
		t.Errorf("progress = %q, want one line per download", progress)
	}
}

func TestFetchNotModified(t *testing.T) {
	srv, f, src, _, err := fetchRepo(t, repoOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatalf("second fetch: %v", err)
	}
	if len(ixs) != 2 {
		t.Fatalf("got %d indexes", len(ixs))
	}
	if srv.notModified != 1 || srv.count("dists/test/InRelease") != 1 {
		t.Errorf("InRelease: %d full answers, %d 304s; want 1 and 1", srv.count("dists/test/InRelease"), srv.notModified)
	}
	if n := srv.count("dists/test/main/binary-amd64/Packages.xz"); n != 1 {
		t.Errorf("Packages.xz downloaded %d times, want 1 (cached copy has the right hash)", n)
	}
	// The reused copy is verified again: with another keyring it is refused.
	other := newKey(t, "Other", testNow.Add(-time.Hour), 0)
	src.SignedBy = []string{writeKeyring(t, t.TempDir(), "other.gpg", other)}
	if _, err := f.Fetch(context.Background(), src); !errors.Is(err, ErrUntrusted) {
		t.Errorf("304 with another keyring: err = %v, want ErrUntrusted", err)
	}
}

func TestFetchNotModifiedReverifiesValidUntil(t *testing.T) {
	o := repoOpts{validUntil: testNow.Add(48 * time.Hour)}
	srv, f, src, _, err := fetchRepo(t, o)
	if err != nil {
		t.Fatal(err)
	}
	f.Now = clockAt(testNow.Add(72 * time.Hour))
	_, err = f.Fetch(context.Background(), src)
	if !errors.Is(err, ErrExpired) || srv.notModified != 1 {
		t.Errorf("err = %v (304s: %d), want ErrExpired on the re-verified cached copy", err, srv.notModified)
	}
}

func TestFetchPackagesHashMismatch(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	srv := newTestServer(t, buildRepo(t, repoOpts{key: key}))
	srv.set("dists/test/main/binary-amd64/Packages.xz", compress(t, "xz", samplePackages("evil")))
	f := testFetcher(t, t.TempDir())
	_, err := f.Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if err == nil || !strings.Contains(err.Error(), "main/binary-amd64/Packages.xz") {
		t.Fatalf("err = %v, want a mismatch naming Packages.xz", err)
	}
	if _, err := os.Stat(f.cachePath(srv.URL + "/dists/test/InRelease")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("InRelease was cached although an index failed: %v", err)
	}
	if _, err := os.Stat(f.cachePath(srv.URL + "/dists/test/main/binary-amd64/Packages.xz")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the bad Packages.xz was kept: %v", err)
	}
}

func TestFetchTruncatedPackages(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	files := buildRepo(t, repoOpts{key: key})
	p := "dists/test/contrib/binary-amd64/Packages.gz"
	srv := newTestServer(t, files)
	srv.set(p, files[p][:len(files[p])/2])
	_, err := testFetcher(t, t.TempDir()).Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if err == nil || !strings.Contains(err.Error(), "contrib/binary-amd64/Packages.gz") || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("err = %v, want a size error naming Packages.gz", err)
	}
}

func TestFetchRefusesBadInRelease(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	tampered := func(files map[string][]byte) {
		files["dists/test/InRelease"] = bytes.Replace(files["dists/test/InRelease"], []byte("Origin: Test"), []byte("Origin: Evil"), 1)
	}
	tests := []struct {
		name   string
		opts   repoOpts
		modify func(map[string][]byte)
		want   error
	}{
		{"unsigned", repoOpts{key: key, unsigned: true}, nil, ErrUnsigned},
		{"tampered", repoOpts{key: key}, tampered, ErrBadSignature},
		{"other key", repoOpts{key: newKey(t, "Evil", testNow.Add(-time.Hour), 0)}, nil, ErrUntrusted},
		{"not yet valid", repoOpts{key: key, date: testNow.Add(48 * time.Hour), signedAt: testNow}, nil, ErrNotYetValid},
		{"expired", repoOpts{key: key, validUntil: testNow.Add(-time.Minute)}, nil, ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := buildRepo(t, tc.opts)
			if tc.modify != nil {
				tc.modify(files)
			}
			srv := newTestServer(t, files)
			f := testFetcher(t, t.TempDir())
			ixs, err := f.Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
			if !errors.Is(err, tc.want) || ixs != nil {
				t.Fatalf("err = %v, indexes %d; want %v", err, len(ixs), tc.want)
			}
			if !strings.Contains(err.Error(), srv.URL+"/dists/test/InRelease") {
				t.Errorf("error does not name the URL: %v", err)
			}
			if srv.count("dists/test/main/binary-amd64/Packages.xz") != 0 {
				t.Error("fetched an index of a refused Release")
			}
		})
	}
}

func TestFetchUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uri := "http://" + l.Addr().String() + "/debian"
	l.Close()
	key := newKey(t, "Repo", testNow, 0)
	_, err = testFetcher(t, t.TempDir()).Fetch(context.Background(), testSource(uri, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if err == nil || !strings.Contains(err.Error(), uri+"/dists/test/InRelease") {
		t.Fatalf("err = %v, want it to name the URL", err)
	}
}

func TestFetchHonoursContext(t *testing.T) {
	block := make(chan struct{})
	srv := newTestServer(t, nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	defer close(block)
	key := newKey(t, "Repo", testNow, 0)
	f := testFetcher(t, t.TempDir())
	f.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := f.Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v, want a deadline error", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := testFetcher(t, t.TempDir()).Fetch(ctx, testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key))); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: err = %v", err)
	}
}

func TestFetchDetachedRelease(t *testing.T) {
	srv, _, _, ixs, err := fetchRepo(t, repoOpts{detached: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 2 || srv.count("dists/test/Release.gpg") != 1 {
		t.Fatalf("got %d indexes, Release.gpg fetched %d times", len(ixs), srv.count("dists/test/Release.gpg"))
	}
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	files := buildRepo(t, repoOpts{key: key, detached: true})
	delete(files, "dists/test/Release.gpg")
	srv = newTestServer(t, files)
	_, err = testFetcher(t, t.TempDir()).Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if !errors.Is(err, ErrUnsigned) {
		t.Fatalf("Release without Release.gpg: err = %v, want ErrUnsigned", err)
	}
}

func TestFetchByHash(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	files := buildRepo(t, repoOpts{key: key, byHash: true})
	delete(files, "dists/test/main/binary-amd64/Packages.xz") // only by-hash is served
	srv := newTestServer(t, files)
	ixs, err := testFetcher(t, t.TempDir()).Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range srv.requests {
		if strings.HasSuffix(p, "/Packages.xz") || strings.HasSuffix(p, "/Packages.gz") {
			t.Errorf("requested %s by name although the Release says Acquire-By-Hash", p)
		}
	}
	if got := readIndex(t, ixs[0]); !bytes.Equal(got, samplePackages("main/binary-amd64")) {
		t.Error("wrong content")
	}
}

func TestFetchListedFileMissing(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	files := buildRepo(t, repoOpts{key: key})
	delete(files, "dists/test/contrib/binary-amd64/Packages.gz")
	srv := newTestServer(t, files)
	_, err := testFetcher(t, t.TempDir()).Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if err == nil || !strings.Contains(err.Error(), "contrib/binary-amd64/Packages.gz is listed") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchTrustedUnsigned(t *testing.T) {
	srv := newTestServer(t, buildRepo(t, repoOpts{unsigned: true}))
	src := testSource(srv.URL, "")
	src.SignedBy, src.Trusted = nil, true
	f := testFetcher(t, t.TempDir())
	f.Root = t.TempDir() // no default keyrings at all
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 2 || ixs[0].Verified {
		t.Fatalf("got %d indexes, verified=%v; want 2 unverified", len(ixs), ixs[0].Verified)
	}
	readIndex(t, ixs[0]) // hashes are still checked
}

func TestFetchArchAllSkipped(t *testing.T) {
	rel := &Release{Architectures: []string{"all", "amd64"}, NoArchAllPackages: true, Files: map[string]FileHash{}}
	if rel.HasArch("all") || !rel.HasArch("amd64") || rel.HasArch("i386") {
		t.Error("HasArch")
	}
	s, err := newSuite(Source{URI: "http://x/debian", Suite: "s", Components: []string{"main"}, Archs: []string{"all"}})
	must(t, err)
	if ts, err := indexTargets(s, rel, testFetcher(t, "").log()); err != nil || len(ts) != 0 {
		t.Errorf("targets = %v, %v", ts, err)
	}
	rel.NoArchAllPackages = false
	if _, err := indexTargets(s, rel, testFetcher(t, "").log()); err == nil || !strings.Contains(err.Error(), "main/binary-all/Packages") {
		t.Errorf("declared but unlisted index: err = %v", err)
	}
}

func TestNewSuiteRefuses(t *testing.T) {
	for _, src := range []Source{
		{URI: "ftp://x/debian", Suite: "s", Components: []string{"main"}, Archs: []string{"amd64"}},
		{URI: "http://x/debian", Suite: "./", Components: []string{"main"}, Archs: []string{"amd64"}},
		{URI: "http://x/debian", Suite: "s", Components: []string{"../../etc"}, Archs: []string{"amd64"}},
		{URI: "http://x/debian", Suite: "s", Components: []string{"main"}, Archs: nil},
	} {
		if _, err := newSuite(src); err == nil {
			t.Errorf("newSuite(%+v) accepted", src)
		}
	}
}

func TestFetchHaveContentSkipsDownload(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	srv := newTestServer(t, buildRepo(t, repoOpts{key: key}))
	f := testFetcher(t, t.TempDir())
	held := sha256hex(samplePackages("main/binary-amd64"))
	f.HaveContent = func(sha string) bool { return sha == held }
	ixs, err := f.Fetch(context.Background(), testSource(srv.URL, writeKeyring(t, t.TempDir(), "k.gpg", key)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 2 || ixs[0].SHA256 != held {
		t.Fatalf("indexes = %+v", ixs)
	}
	if srv.count("dists/test/main/binary-amd64/Packages.xz") != 0 || srv.count("dists/test/contrib/binary-amd64/Packages.gz") != 1 {
		t.Errorf("downloads: main %d, contrib %d; want 0 and 1",
			srv.count("dists/test/main/binary-amd64/Packages.xz"), srv.count("dists/test/contrib/binary-amd64/Packages.gz"))
	}
}
