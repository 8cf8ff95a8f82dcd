package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestURIToFileName(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"http://deb.debian.org/debian/dists/bookworm/InRelease", "deb.debian.org_debian_dists_bookworm_InRelease"},
		{"http://deb.debian.org/debian-security/dists/bookworm-security/main/binary-amd64/Packages",
			"deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages"},
		{"https://user:secret@example.org:8080/apt/dists/x/InRelease", "example.org:8080_apt_dists_x_InRelease"},
		{"http://ppa.example/~team/ubuntu_x/dists/a=b/InRelease", "ppa.example_%7eteam_ubuntu%5fx_dists_a%3db_InRelease"},
		{"http://h/a%20b/dists/s/InRelease", "h_a%20b_dists_s_InRelease"},
		{"http://u:p@h/%zz/InRelease", "h_%25zz_InRelease"}, // not a valid URL: quoted as is
	}
	for _, tc := range tests {
		if got := URIToFileName(tc.uri); got != tc.want {
			t.Errorf("URIToFileName(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}

// TestURIToFileNameMatchesApt compares with the names apt itself prints
// (apt-get update --print-uris needs no network).
func TestURIToFileNameMatchesApt(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get")
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "sources.list")
	must(t, os.WriteFile(list, []byte("deb http://ppa.example/~team/ubuntu_x a=b/c main\n"+
		"deb http://user:pw@example.org:8080/apt%20x/ s non_free+x\n"+
		"deb http://deb.debian.org/debian-security bookworm-security main\n"), 0o644))
	out, err := exec.Command("apt-get", "update", "--print-uris",
		"-o", "Dir::Etc::sourcelist="+list, "-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists="+filepath.Join(dir, "lists"), "-o", "APT::Architecture=amd64").Output()
	if err != nil {
		t.Skipf("apt-get --print-uris: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		// 'URI' FILENAME SIZE HASH; apt drops the compression suffix.
		uri, rest, ok := strings.Cut(strings.TrimPrefix(line, "'"), "' ")
		if !ok {
			continue
		}
		uri = strings.TrimSuffix(uri, ".xz")
		if name := strings.Fields(rest)[0]; URIToFileName(uri) != name {
			t.Errorf("URIToFileName(%q) = %q, apt says %q", uri, URIToFileName(uri), name)
		}
		n++
	}
	if n < 3 {
		t.Fatalf("apt printed %d URIs:\n%s", n, out)
	}
}

func TestOfflineFromCache(t *testing.T) {
	srv, f, src, online, err := fetchRepo(t, repoOpts{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	f.Offline = true
	f.ListsDir = t.TempDir() // empty: everything must come from the cache
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != len(online) {
		t.Fatalf("offline gave %d indexes, online %d", len(ixs), len(online))
	}
	for i := range ixs {
		if ixs[i].Path != online[i].Path || ixs[i].SHA256 != online[i].SHA256 || !ixs[i].Verified {
			t.Errorf("index %d: offline %+v\nonline %+v", i, ixs[i], online[i])
		}
		readIndex(t, ixs[i])
	}
	// A cached index that no longer matches is refused, naming the file.
	must(t, os.WriteFile(ixs[0].Path, []byte("garbage"), 0o644))
	if _, err := f.Fetch(context.Background(), src); err == nil || !strings.Contains(err.Error(), ixs[0].Path) {
		t.Errorf("corrupt cache: err = %v", err)
	}
}

// aptLists writes an apt-style lists directory for the generated repo at
// uri: InRelease plus Packages stored as kinds[component].
func aptLists(t *testing.T, files map[string][]byte, uri string, kinds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	base := uri + "/dists/test"
	must(t, os.WriteFile(filepath.Join(dir, URIToFileName(base+"/InRelease")), files["dists/test/InRelease"], 0o644))
	for comp, kind := range kinds {
		name := comp + "/binary-amd64/Packages"
		plain := samplePackages(comp + "/binary-amd64")
		ext := map[string]string{"": "", "lz4": ".lz4", "gz": ".gz", "xz": ".xz"}[kind]
		must(t, os.WriteFile(filepath.Join(dir, URIToFileName(base+"/"+name)+ext), compress(t, kind, plain), 0o644))
	}
	return dir
}

func TestOfflineFromAptLists(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-time.Hour), 0)
	files := buildRepo(t, repoOpts{key: key})
	uri := "http://mirror.example/debian"
	f := testFetcher(t, t.TempDir()) // empty cache
	f.Offline = true
	f.ListsDir = aptLists(t, files, uri, map[string]string{"main": "lz4", "contrib": ""})
	src := testSource(uri, writeKeyring(t, t.TempDir(), "k.gpg", key))
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 2 || ixs[0].Compress != "lz4" || ixs[1].Compress != "" || ixs[0].FileSHA256 != "" {
		t.Fatalf("indexes = %+v", ixs)
	}
	if got := readIndex(t, ixs[0]); !bytes.Equal(got, samplePackages("main/binary-amd64")) {
		t.Error("wrong content")
	}

	// A stale .lz4 beside a good plain copy: the good one is used.
	stem := filepath.Join(f.ListsDir, URIToFileName(uri+"/dists/test/main/binary-amd64/Packages"))
	must(t, os.WriteFile(stem+".lz4", compress(t, "lz4", samplePackages("stale")), 0o644))
	must(t, os.WriteFile(stem, samplePackages("main/binary-amd64"), 0o644))
	if ixs, err = f.Fetch(context.Background(), src); err != nil || ixs[0].Compress != "" {
		t.Fatalf("stale lz4 beside a good copy: %v", err)
	}
	// Only the stale one: refused, naming it.
	must(t, os.Remove(stem))
	if _, err := f.Fetch(context.Background(), src); err == nil || !strings.Contains(err.Error(), stem+".lz4") {
		t.Errorf("stale lz4: err = %v", err)
	}
	// None at all.
	must(t, os.Remove(stem+".lz4"))
	if _, err := f.Fetch(context.Background(), src); err == nil || !strings.Contains(err.Error(), "no local copy of main/binary-amd64/Packages") {
		t.Errorf("missing: err = %v", err)
	}
	// A lists dir whose InRelease is not signed by the source's key.
	src.SignedBy = []string{writeKeyring(t, t.TempDir(), "other.gpg", newKey(t, "Other", testNow, 0))}
	if _, err := f.Fetch(context.Background(), src); !errors.Is(err, ErrUntrusted) {
		t.Errorf("other key: err = %v", err)
	}
	f.ListsDir = t.TempDir()
	if _, err := f.Fetch(context.Background(), src); err == nil || !strings.Contains(err.Error(), "no InRelease or Release") {
		t.Errorf("empty lists dir: err = %v", err)
	}
}

func TestOfflineDetachedAptLists(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-time.Hour), 0)
	files := buildRepo(t, repoOpts{key: key, detached: true})
	uri := "http://mirror.example/debian"
	dir := t.TempDir()
	base := uri + "/dists/test"
	must(t, os.WriteFile(filepath.Join(dir, URIToFileName(base+"/Release")), files["dists/test/Release"], 0o644))
	must(t, os.WriteFile(filepath.Join(dir, URIToFileName(base+"/Release.gpg")), files["dists/test/Release.gpg"], 0o644))
	must(t, os.WriteFile(filepath.Join(dir, URIToFileName(base+"/main/binary-amd64/Packages.gz")), files["dists/test/main/binary-amd64/Packages.gz"], 0o644))
	f := &Fetcher{Offline: true, ListsDir: dir, Now: clockAt(testNow.Add(time.Hour))}
	src := testSource(uri, writeKeyring(t, t.TempDir(), "k.gpg", key))
	src.Components = []string{"main"}
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 1 || ixs[0].Compress != "gz" || ixs[0].FileSHA256 == "" {
		t.Fatalf("indexes = %+v", ixs)
	}
}

// TestOfflineRealLists reads this machine's apt lists for bookworm-updates
// (copied, so that apt updating them meanwhile does not matter).
func TestOfflineRealLists(t *testing.T) {
	const lists = "/var/lib/apt/lists"
	names := []string{
		"deb.debian.org_debian_dists_bookworm-updates_InRelease",
		"deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages.lz4",
	}
	dir := t.TempDir()
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(lists, n))
		if err != nil {
			t.Skipf("no apt lists for bookworm-updates here: %v", err)
		}
		must(t, os.WriteFile(filepath.Join(dir, n), data, 0o644))
	}
	keyring, err := filepath.Abs(debianKeyring)
	must(t, err)
	f := &Fetcher{Offline: true, ListsDir: dir, CheckDate: true}
	src := Source{
		URI: "http://deb.debian.org/debian", Suite: "bookworm-updates",
		Components: []string{"main"}, Archs: []string{"amd64"}, SignedBy: []string{keyring},
	}
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 1 || ixs[0].Compress != "lz4" || ixs[0].Release.Codename != "bookworm-updates" || ixs[0].Site != "deb.debian.org" {
		t.Fatalf("indexes = %+v", ixs)
	}
	if got := readIndex(t, ixs[0]); int64(len(got)) != ixs[0].Size || !bytes.HasPrefix(got, []byte("Package: ")) {
		t.Errorf("content: %d bytes, want %d", len(got), ixs[0].Size)
	}
}

// TestOfflineCacheHeldContent: the cache holds a Release newer than apt's
// lists and none of its Packages files, but the caller holds the content
// those files have (HaveContent). The cache's Release is used, every index
// naming a hash it lists; apt's older files are not read.
func TestOfflineCacheHeldContent(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-24*time.Hour), 0)
	srv, f, src, online, err := fetchRepo(t, repoOpts{key: key})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	cacheLists := filepath.Join(f.CacheDir, "lists")
	stale, err := filepath.Glob(filepath.Join(cacheLists, "*_Packages*"))
	if err != nil || len(stale) == 0 {
		t.Fatalf("cached Packages files: %v %v", stale, err)
	}
	for _, p := range stale {
		must(t, os.Remove(p))
	}
	// apt's lists: an older Release of the same repository and key.
	older := buildRepo(t, repoOpts{key: key, date: testNow.Add(-2 * time.Hour)})
	f.Offline = true
	f.ListsDir = aptLists(t, older, src.URI, map[string]string{"main": "", "contrib": ""})
	// Held: the contents of the cache's Release (as online).
	held := map[string]bool{}
	for _, ix := range online {
		held[ix.SHA256] = true
	}
	f.HaveContent = func(sha string) bool { return held[sha] }
	ixs, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != len(online) {
		t.Fatalf("offline gave %d indexes, online %d", len(ixs), len(online))
	}
	for i, ix := range ixs {
		if ix.SHA256 != online[i].SHA256 || ix.Release.Date != testNow || !ix.Verified || ix.From != cacheLists {
			t.Errorf("index %d: %+v, want the cache's Release and hash %s", i, ix, online[i].SHA256)
		}
	}
	// Content not held and no local copy: refused, naming the index.
	delete(held, online[0].SHA256)
	_, err = f.Fetch(context.Background(), src)
	if err == nil || !strings.Contains(err.Error(), "no local copy of main/binary-amd64/Packages") ||
		!strings.Contains(err.Error(), online[0].SHA256) {
		t.Errorf("content not held: err = %v", err)
	}
}
