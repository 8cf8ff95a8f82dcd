package changelog

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/repo"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testFetcher(t testing.TB, srv *server) *Fetcher {
	return &Fetcher{Client: srv.Client(), CacheDir: t.TempDir(), TempDir: t.TempDir(), Timeout: time.Minute,
		Now: func() time.Time { return testNow }}
}

// realUpdatesMirror serves the captured bookworm-updates suite: its real
// signed InRelease, its real Packages.xz files and three real .debs.
func realUpdatesMirror(t testing.TB) *server {
	files := map[string][]byte{"/debian/dists/bookworm-updates/InRelease": readFile(t, updRelease)}
	for _, arch := range []string{"amd64", "all"} {
		data := testdata(t, "bookworm-updates_main_binary-"+arch+"_Packages.xz")
		dir := "/debian/dists/bookworm-updates/main/binary-" + arch
		files[dir+"/Packages.xz"] = data
		files[dir+"/by-hash/SHA256/"+sha256hex(data)] = data
	}
	for _, deb := range []string{sambaDeb, ldbDeb} {
		files["/debian/pool/main/s/samba/"+deb] = testdata(t, deb)
	}
	files["/debian/pool/main/o/openssh/"+sftpDeb] = testdata(t, sftpDeb)
	return newServer(t, files)
}

func readFile(t testing.TB, p string) []byte {
	data, err := os.ReadFile(p)
	must(t, err)
	return data
}

// fetchRealIndexes verifies the served suite with the real Debian keyring,
// the clock set just after the InRelease's Date.
func fetchRealIndexes(t testing.TB, srv *server) []repo.Index {
	kr, err := filepath.Abs(keyring)
	must(t, err)
	rf := &repo.Fetcher{Client: srv.Client(), CacheDir: t.TempDir(), CheckValidUntil: true, CheckDate: true,
		Now: func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) }}
	ixs, err := rf.Fetch(context.Background(), repo.Source{URI: srv.URL + "/debian", Suite: "bookworm-updates",
		Components: []string{"main"}, Archs: []string{"amd64"}, SignedBy: []string{kr}})
	must(t, err)
	if len(ixs) == 0 || !ixs[0].Verified {
		t.Fatalf("indexes: %+v", ixs)
	}
	return ixs
}

var (
	sambaKey   = Key{"samba", "2:4.17.12+dfsg-0+deb12u2"}
	opensshKey = Key{"openssh", "1:9.2p1-2+deb12u7"}
)

func TestChangelogsRealSignedChain(t *testing.T) {
	srv := realUpdatesMirror(t)
	ixs := fetchRealIndexes(t, srv)
	f := testFetcher(t, srv)
	ctx := context.Background()
	res := f.Changelogs(ctx, ixs, []Key{sambaKey, opensshKey, sambaKey})
	if len(res) != 2 {
		t.Fatalf("%d results, want 2 (keys deduplicated)", len(res))
	}
	samba := res[0]
	if samba.Err != nil || samba.Cached || !strings.HasSuffix(samba.From, "/"+sambaDeb) || len(samba.Log.Entries) != 91 {
		t.Fatalf("samba: %+v", samba)
	}
	// Cut per host by installed source version: before and after entries.
	for installed, want := range map[string]int{
		"2:4.17.12+dfsg-0+deb12u2": 0, "2:4.17.12+dfsg-0+deb12u1": 0,
		"2:4.17.11+dfsg-0+deb12u1": 5, "2:4.17.9+dfsg-0+deb12u3": 10,
	} {
		c, err := samba.Log.Newer(installed)
		must(t, err)
		if len(c.CVEs) != want {
			t.Errorf("samba newer than %s: %d CVEs %v, want %d", installed, len(c.CVEs), c.CVEs, want)
		}
	}
	// openssh-sftp-server (the smallest openssh .deb) links its doc dir to
	// openssh-client, which this mirror lacks: reported, not cached.
	ssh := res[1]
	if ssh.Err == nil || IsGap(ssh.Err) || !strings.Contains(ssh.Err.Error(),
		"changelog in package openssh-client (/usr/share/doc/openssh-sftp-server is a symlink to openssh-client)") ||
		!strings.Contains(ssh.Err.Error(), "404") {
		t.Errorf("openssh: %v", ssh.Err)
	}
	if srv.count("/debian/pool/main/s/samba/"+sambaDeb) != 1 || srv.count("/debian/pool/main/s/samba/"+ldbDeb) != 0 {
		t.Errorf("downloads: %v", srv.hits)
	}

	// Again: samba from the cache (shared by all its binaries), openssh retried.
	res = f.Changelogs(ctx, ixs, []Key{sambaKey, opensshKey})
	if !res[0].Cached || res[0].Err != nil || len(res[0].Log.Entries) != 91 || res[1].Err == nil {
		t.Errorf("second run: %+v", res)
	}
	if srv.count("/debian/pool/main/s/samba/"+sambaDeb) != 1 || srv.count("/debian/pool/main/o/openssh/"+sftpDeb) != 2 {
		t.Errorf("downloads after second run: %v", srv.hits)
	}
	st, err := os.Stat(filepath.Join(f.CacheDir, "samba_2%3a4.17.12+dfsg-0+deb12u2.json"))
	must(t, err)
	if st.Size() > 64<<10 {
		t.Errorf("cache file is %d bytes", st.Size())
	}
	if entries, _ := os.ReadDir(f.CacheDir); len(entries) != 1 {
		t.Errorf("cache holds %d files, want 1", len(entries))
	}
}

// jqArtifact is the real bookworm-security stanza of jq 1.6-2.1+deb12u3,
// served by srv.
func jqArtifact(t testing.TB, srv *server) Artifact {
	ix := plainIndex(t, srv.URL+"/debian-security", string(testdata(t, jqStanza)))
	found, errs := Locate([]repo.Index{ix}, map[Key]bool{{"jq", "1.6-2.1+deb12u3"}: true})
	if len(errs) > 0 || len(found[Key{"jq", "1.6-2.1+deb12u3"}]) != 1 {
		t.Fatalf("Locate: %v %v", found, errs)
	}
	return found[Key{"jq", "1.6-2.1+deb12u3"}][0]
}

const jqPath = "/debian-security/pool/updates/main/j/jq/" + jqDeb

func TestReadVerified(t *testing.T) {
	deb := testdata(t, jqDeb)
	srv := newServer(t, map[string][]byte{jqPath: deb})
	f := testFetcher(t, srv)
	a := jqArtifact(t, srv)
	if a.Size != 64432 || a.SHA256 != "c25f3fda201207ed98b1d63686f2d81b9dfeb99f1ab2d1d35fb3f7b6a1c107dc" || a.URL != srv.URL+jqPath {
		t.Fatalf("artifact %+v", a)
	}
	log, err := f.Read(context.Background(), a)
	must(t, err)
	c, err := log.Newer("1.6-2.1+deb12u1")
	must(t, err)
	if len(c.CVEs) != 15 || c.CVEs[0] != "CVE-2026-32316" || c.Urgency != "high" {
		t.Errorf("jq: %+v", c)
	}
	if left, _ := os.ReadDir(f.TempDir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestReadRefusesBadDownloads(t *testing.T) {
	deb := testdata(t, jqDeb)
	flipped := bytes.Clone(deb)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name    string
		handle  func(w http.ResponseWriter, r *http.Request) bool
		wantErr []string
	}{
		{"flipped byte", serveBytes(flipped, true), []string{jqPath, "SHA256 " + sha256hex(flipped),
			"lists c25f3fda201207ed98b1d63686f2d81b9dfeb99f1ab2d1d35fb3f7b6a1c107dc", "refused"}},
		{"short, announced", serveBytes(deb[:1000], true), []string{jqPath, "server announces 1000 bytes, the index lists 64432"}},
		{"short, chunked", serveBytes(deb[:1000], false), []string{jqPath, "got 1000 bytes, the index lists 64432"}},
		{"longer, chunked", serveBytes(append(bytes.Clone(deb), 'x'), false), []string{"got 64433 bytes"}},
		{"connection cut", cutAfter(deb, 1000), []string{jqPath, "after 1000 of 64432 bytes", "unexpected EOF"}},
		{"not found", func(w http.ResponseWriter, r *http.Request) bool { http.NotFound(w, r); return true },
			[]string{jqPath, "404 Not Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, nil)
			srv.handle = tt.handle
			f := testFetcher(t, srv)
			_, err := f.Read(context.Background(), jqArtifact(t, srv))
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to contain %q", err, want)
				}
			}
			if left, _ := os.ReadDir(f.TempDir); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func serveBytes(data []byte, withLength bool) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		} else {
			w.(http.Flusher).Flush() // chunked: no length announced
		}
		w.Write(data)
		return true
	}
}

// cutAfter announces the full length and closes the connection after n bytes.
func cutAfter(data []byte, n int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
}

func TestReadRefusesBadIndexEntry(t *testing.T) {
	f := &Fetcher{CacheDir: t.TempDir()}
	_, err := f.Read(context.Background(), Artifact{URL: "http://127.0.0.1:1/x.deb", Size: 10})
	if err == nil || !strings.Contains(err.Error(), "no usable Size and SHA256") {
		t.Errorf("err = %v", err)
	}
}

func TestChangelogsDocLinkFallback(t *testing.T) {
	gz := gzChangelog(t, tinyChangelog)
	docLink := buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello-doc", link: "hello"})
	real := buildDeb(t, "xz", tarEntry{name: "./usr/bin/hello", body: bytes.Repeat([]byte("x"), 4000)},
		tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: gz})
	other := buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello-other/README", body: []byte("hi")})
	srv := newServer(t, map[string][]byte{"/d/hello-doc.deb": docLink, "/d/hello.deb": real, "/d/hello-other.deb": other})
	key := Key{"hello", "1.0-2"}

	// The smallest binary links to "hello", which is listed: read that.
	ix := plainIndex(t, srv.URL, stanza("hello-doc", "1.0-2", "hello", "d/hello-doc.deb", docLink)+
		stanza("hello-other", "1.0-2", "hello", "d/hello-other.deb", other)+
		stanza("hello", "1.0-2", "", "d/hello.deb", real))
	f := testFetcher(t, srv)
	res := f.Changelogs(context.Background(), []repo.Index{ix}, []Key{key})
	if res[0].Err != nil || !strings.HasSuffix(res[0].From, "/d/hello.deb") || srv.count("/d/hello-other.deb") != 0 {
		t.Fatalf("fallback: %+v, hits %v", res[0], srv.hits)
	}

	// Only the linking binary and one without a changelog are listed: a
	// gap, cached, not downloaded again.
	ix = plainIndex(t, srv.URL, stanza("hello-doc", "1.0-2", "hello", "d/hello-doc.deb", docLink)+
		stanza("hello-other", "1.0-2", "hello", "d/hello-other.deb", other))
	f = testFetcher(t, srv)
	for run := 0; run < 2; run++ {
		res = f.Changelogs(context.Background(), []repo.Index{ix}, []Key{key})
		var gap *GapError
		if !errors.As(res[0].Err, &gap) || res[0].Cached != (run == 1) ||
			!strings.Contains(res[0].Err.Error(), "changelog in package hello (/usr/share/doc/hello-doc is a symlink to hello)") ||
			!strings.Contains(res[0].Err.Error(), "no changelog.Debian.gz in /usr/share/doc/hello-other") {
			t.Errorf("run %d: %+v", run, res[0])
		}
	}
	if srv.count("/d/hello-doc.deb") != 2 {
		t.Errorf("hits %v", srv.hits)
	}
}

func TestLocate(t *testing.T) {
	deb := []byte("x")
	good := stanza("a", "1.0-1", "src (1.0-1)", "pool/a.deb", deb)
	bad := plainIndex(t, "http://h", good)
	bad.SHA256 = sha256hex([]byte("other content"))
	unverified := plainIndex(t, "http://u", good)
	unverified.Verified = false
	traversal := plainIndex(t, "http://h", stanza("a", "1.0-1", "src", "../etc/a.deb", deb))
	found, errs := Locate([]repo.Index{bad, unverified, traversal, plainIndex(t, "http://h/", good)},
		map[Key]bool{{"src", "1.0-1"}: true})
	arts := found[Key{"src", "1.0-1"}]
	if len(arts) != 1 || arts[0].URL != "http://h/pool/a.deb" || len(errs) != 2 ||
		!strings.Contains(errs[0].Error(), "SHA256") || !strings.Contains(errs[1].Error(), `unusable Filename "../etc/a.deb"`) {
		t.Errorf("found %+v, errs %v", found, errs)
	}
}

func TestCachePath(t *testing.T) {
	f := &Fetcher{CacheDir: "/c"}
	for _, k := range []Key{{"../x", "1"}, {"Samba", "1"}, {"samba", "1/2"}, {"samba", "1 2"}, {"samba", ""}} {
		if p, err := f.cachePath(k); err == nil {
			t.Errorf("cachePath(%v) = %s, want an error", k, p)
		}
	}
	if p, _ := f.cachePath(Key{"libc++", "1:2.0~rc1-1"}); p != "/c/libc++_1%3a2.0~rc1-1.json" {
		t.Errorf("cachePath = %s", p)
	}
}

// Workers bounds the downloads at once, every key is still read, and Done
// sees each result once (cache hits included).
func TestChangelogsWorkers(t *testing.T) {
	const n, workers = 6, 2
	files := map[string][]byte{}
	var idx strings.Builder
	var keys []Key
	for i := range n {
		name := "pkg" + strconv.Itoa(i)
		text := strings.Replace(tinyChangelog, "hello", name, 1)
		deb := buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/" + name + "/changelog.Debian.gz", body: gzChangelog(t, text)})
		files["/d/"+name+".deb"] = deb
		idx.WriteString(stanza(name, "1.0-2", "", "d/"+name+".deb", deb))
		keys = append(keys, Key{name, "1.0-2"})
	}
	srv := newServer(t, files)
	var mu sync.Mutex
	active, most := 0, 0
	srv.handle = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		active++
		most = max(most, active)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond) // long enough for the others to start
		mu.Lock()
		active--
		mu.Unlock()
		return false
	}
	ix := plainIndex(t, srv.URL, idx.String())
	f := testFetcher(t, srv)
	f.Workers = workers
	var done []Key
	f.Done = func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		if r.Err != nil || r.Log == nil {
			t.Errorf("%s: %v", r.Key, r.Err)
		}
		done = append(done, r.Key)
	}
	for run := range 2 {
		done = nil
		res := f.Changelogs(context.Background(), []repo.Index{ix}, keys)
		for i, r := range res {
			if r.Key != keys[i] || r.Err != nil || r.Cached != (run == 1) || r.Log.Entries[0].CVEs[0] != "CVE-2025-0002" {
				t.Errorf("run %d: %+v", run, r)
			}
		}
		slices.SortFunc(done, func(a, b Key) int { return strings.Compare(a.Source, b.Source) })
		if !slices.Equal(done, keys) {
			t.Errorf("run %d: Done saw %v", run, done)
		}
	}
	if most != workers {
		t.Errorf("%d downloads at once, want %d", most, workers)
	}
}
