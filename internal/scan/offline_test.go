package scan

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/repo/repotest"
)

// offlineEnv is a root whose only source is one signed suite served on
// loopback, with a patchloop cache and apt's lists under the root.
type offlineEnv struct {
	root, repo, cache string
	key               *openpgp.Entity
	srv               *httptest.Server
}

const offlineStatus = "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\n\n" +
	"Package: foo\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n"

func newOfflineEnv(t *testing.T) *offlineEnv {
	t.Helper()
	e := &offlineEnv{root: t.TempDir(), repo: t.TempDir(), cache: t.TempDir()}
	var err error
	if e.key, err = repotest.NewKey("Test Archive"); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(http.FileServer(http.Dir(e.repo)))
	t.Cleanup(e.srv.Close)
	keyring := "/usr/share/keyrings/test-archive.gpg"
	if err := repotest.WriteKeyring(filepath.Join(e.root, keyring), e.key); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.root, "var/lib/dpkg/status"), []byte(offlineStatus))
	writeFile(t, filepath.Join(e.root, "etc/apt/sources.list"),
		[]byte("deb [signed-by="+keyring+"] "+e.srv.URL+" bookworm-updates main\n"))
	return e
}

// publish (re)writes the suite on the mirror with foo at version fooVer.
func (e *offlineEnv) publish(t *testing.T, date time.Time, fooVer string) {
	t.Helper()
	s := repotest.Suite{Name: "stable-updates", Codename: "bookworm-updates", Origin: "Debian", Label: "Debian",
		Date: date, Packages: map[string]string{
			"main/binary-amd64": "Package: foo\nArchitecture: amd64\nVersion: " + fooVer + "\nDescription: test\n\n"}}
	if err := repotest.WriteSuite(e.repo, s, e.key); err != nil {
		t.Fatal(err)
	}
	// The mirror's Last-Modified is the Release date, so that a
	// republication within the same second is not answered 304.
	err := filepath.Walk(filepath.Join(e.repo, "dists"), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, date, date)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// aptUpdate copies the mirror's current InRelease and plain Packages into
// the root's apt lists, as apt-get update stores them.
func (e *offlineEnv) aptUpdate(t *testing.T) {
	t.Helper()
	lists := filepath.Join(e.root, "var/lib/apt/lists")
	base := e.srv.URL + "/dists/bookworm-updates"
	for _, name := range []string{"InRelease", "main/binary-amd64/Packages"} {
		data, err := os.ReadFile(filepath.Join(e.repo, "dists/bookworm-updates", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(lists, repo.URIToFileName(base+"/"+name)), data)
	}
}

func (e *offlineEnv) scan(t *testing.T, offline bool) (*Result, error) {
	t.Helper()
	return Run(context.Background(), Options{Root: e.root, CacheDir: e.cache, Offline: offline,
		Client: e.srv.Client(), Now: func() time.Time { return time.Now().Add(time.Hour) }})
}

// cachedPackages lists the Packages files of the suite in patchloop's cache.
func (e *offlineEnv) cachedPackages(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(e.cache, "repo/lists", "*bookworm-updates_main_binary-amd64_Packages*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func candidate(res *Result, pkg string) string {
	for _, u := range res.Updates {
		if u.Package == pkg {
			return u.Candidate
		}
	}
	return ""
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOfflineCacheNewerThanAptLists: the cache holds a newer verified
// InRelease than apt's lists, and of its Packages only the compact index.
// The offline scan uses the cache's Release and that compact index, says
// so, and never the older Packages of apt's lists.
func TestOfflineCacheNewerThanAptLists(t *testing.T) {
	e := newOfflineEnv(t)
	oldDate := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	newDate := oldDate.Add(24 * time.Hour)
	e.publish(t, oldDate, "1.1")
	e.aptUpdate(t) // apt's lists: the old InRelease and Packages
	if res, err := e.scan(t, false); err != nil || candidate(res, "foo") != "1.1" {
		t.Fatalf("first online scan: %v", err)
	}
	e.publish(t, newDate, "1.2") // the mirror republishes; apt is not updated
	res, err := e.scan(t, false)
	if err != nil || candidate(res, "foo") != "1.2" {
		t.Fatalf("second online scan: %v", err)
	}
	newSHA := res.Indexes[0].SHA256
	// Only the compact index of the new Packages is kept, as when its
	// content was parsed before the Release naming it was fetched.
	for _, p := range e.cachedPackages(t) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if !HaveIndexCache(e.cache, newSHA) {
		t.Fatal("no compact index of the new Packages in the cache")
	}
	e.srv.Close()

	res, err = e.scan(t, true)
	if err != nil {
		t.Fatalf("offline scan: %v", err)
	}
	if got := candidate(res, "foo"); got != "1.2" {
		t.Errorf("offline candidate %q, want 1.2 (the cache's verified Release)", got)
	}
	ix := res.Indexes[0]
	if ix.SHA256 != newSHA || !ix.Verified || ix.Date != newDate.UTC().Format(time.RFC3339) {
		t.Errorf("index = %+v, want the cache's Release of %s", ix, newDate.UTC().Format(time.RFC3339))
	}
	if !strings.Contains(ix.From, filepath.Join(e.cache, "repo/lists")) {
		t.Errorf("index from %q, want the cache", ix.From)
	}
	if n := strings.Join(res.Notices, "\n"); !strings.Contains(n, "bookworm-updates") ||
		!strings.Contains(n, newDate.UTC().Format(time.RFC3339)) || !strings.Contains(n, "cache") {
		t.Errorf("notices do not say which Release was used:\n%s", n)
	}

	// A compact index whose recorded hash is not the one the Release
	// lists is refused, naming it, and nothing else is used instead.
	oldSHA := ""
	entries, err := os.ReadDir(filepath.Join(e.cache, "compact"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		if sha := strings.TrimSuffix(d.Name(), ".idx"); sha != newSHA {
			oldSHA = sha
		}
	}
	if oldSHA == "" {
		t.Fatal("no compact index of the old Packages")
	}
	newPath := filepath.Join(e.cache, "compact", newSHA+".idx")
	old, err := os.ReadFile(filepath.Join(e.cache, "compact", oldSHA+".idx"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, newPath, old)
	if HaveIndexCache(e.cache, newSHA) {
		t.Error("HaveIndexCache accepts a compact index recording another hash")
	}
	res, err = e.scan(t, true)
	if err == nil || !strings.Contains(err.Error(), newPath) || !strings.Contains(err.Error(), oldSHA) {
		t.Fatalf("mismatching compact index: err = %v, candidate %q", err, candidate(res, "foo"))
	}
	t.Logf("refused: %v", err)
}
