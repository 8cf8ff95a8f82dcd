package feeds

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const feedsDir = "../../../shared/feeds"

func readFeed(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(feedsDir, rel))
	if err != nil {
		t.Skipf("real feed data absent: %v", err)
	}
	return data
}

// feedServer serves one file whose content, and failure mode, the test
// changes between requests. It answers conditional requests by ETag.
type feedServer struct {
	mu       sync.Mutex
	body     []byte
	status   int  // if not 0, answer this status instead
	short    bool // announce the full length, send half, close
	requests int
	cond     int // conditional requests seen
}

func (s *feedServer) set(body []byte, status int, short bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status, s.short = body, status, short
}

func (s *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, status, short := s.body, s.status, s.short
	s.requests++
	if r.Header.Get("If-None-Match") != "" {
		s.cond++
	}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "broken", status)
		return
	}
	sum := sha256.Sum256(body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	if short {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		return // the server closes the connection: a truncated transfer
	}
	http.ServeContent(w, r, "feed", time.Time{}, bytes.NewReader(body))
}

func newLoader(t *testing.T) (*Loader, *time.Time) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	return &Loader{CacheDir: t.TempDir(), Timeout: 10 * time.Second, Now: func() time.Time { return now }}, &now
}

func TestLoadKEVKeepsLastGoodCopy(t *testing.T) {
	good := readFeed(t, "kev/known_exploited_vulnerabilities.json")
	srv := &feedServer{body: good}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	l, now := newLoader(t)
	src := Source{Name: "kev", Location: ts.URL + "/known_exploited_vulnerabilities.json"}
	ctx := context.Background()

	got, err := Load(ctx, l, src, KEV)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(good)
	p := got.Provenance
	if got.Stale || p.Records != 1404 || p.Bad != 0 || p.Version != "2025.08.25" || p.Source != src.Location ||
		p.SHA256 != hex.EncodeToString(sum[:]) || p.Size != int64(len(good)) || !p.FetchedAt.Equal(*now) {
		t.Fatalf("first load: stale %v provenance %+v", got.Stale, p)
	}
	first := *now

	// Unchanged: a conditional request, 304, the cached copy, not stale.
	*now = now.Add(time.Hour)
	got, err = Load(ctx, l, src, KEV)
	if err != nil || got.Stale || srv.cond != 1 || len(got.Value.Vulnerabilities) != 1404 ||
		!got.Provenance.FetchedAt.Equal(first) || !got.Provenance.CheckedAt.Equal(*now) {
		t.Fatalf("304: err %v stale %v cond %d provenance %+v", err, got.Stale, srv.cond, got.Provenance)
	}

	changed := bytes.Replace(good, []byte(`"vulnerabilities"`), []byte(`"vulns"`), 1)
	failures := []struct {
		name   string
		body   []byte
		status int
		short  bool
		want   string
	}{
		{"truncated file", good[:len(good)/3], 0, false, "truncated"},
		{"truncated transfer", good, 0, true, "unexpected EOF"},
		{"format changed", changed, 0, false, `no "vulnerabilities" field`},
		{"server error", nil, http.StatusInternalServerError, false, "500 Internal Server Error"},
		{"not found", nil, http.StatusNotFound, false, "404 Not Found"},
	}
	for _, f := range failures {
		srv.set(f.body, f.status, f.short)
		got, err := Load(ctx, l, src, KEV)
		if err != nil {
			t.Errorf("%s: %v, want the last good copy", f.name, err)
			continue
		}
		if !got.Stale || got.RefreshErr == nil || !strings.Contains(got.RefreshErr.Error(), f.want) ||
			len(got.Value.Vulnerabilities) != 1404 || !got.Provenance.FetchedAt.Equal(first) {
			t.Errorf("%s: stale %v refresh error %v, %d entries, provenance %+v", f.name, got.Stale, got.RefreshErr,
				len(got.Value.Vulnerabilities), got.Provenance)
		}
		t.Logf("%s: kept last good copy; reported: %v", f.name, got.RefreshErr)
	}

	// A good new copy replaces the last one, and the old file goes.
	// One entry broken: counted, the others served.
	fewer := bytes.Replace(good, []byte(`"cveID": "CVE-2025-48384"`), []byte(`"cveID": "CVE-2025-48384x"`), 1)
	srv.set(fewer, 0, false)
	*now = now.Add(time.Hour)
	got, err = Load(ctx, l, src, KEV)
	if err != nil || got.Stale || got.Provenance.Records != 1403 || got.Provenance.Bad != 1 || !got.Provenance.FetchedAt.Equal(*now) {
		t.Fatalf("new copy: err %v stale %v provenance %+v (refresh error %v)", err, got.Stale, got.Provenance, got.RefreshErr)
	}
	if files, _ := filepath.Glob(filepath.Join(l.CacheDir, "*")); len(files) != 2 {
		t.Errorf("cache holds %v, want kev.json and one data file", files)
	}

	// Offline: the cached copy, with its provenance.
	c, err := Cached(l, src, KEV)
	if err != nil || c.Provenance.Records != 1403 {
		t.Errorf("Cached: %v, %+v", err, c)
	}
}

func TestLoadNoLastGoodCopy(t *testing.T) {
	srv := &feedServer{status: http.StatusInternalServerError}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	l, _ := newLoader(t)
	_, err := Load(context.Background(), l, Source{Name: "kev", Location: ts.URL}, KEV)
	if err == nil || !strings.Contains(err.Error(), "no last good copy") {
		t.Errorf("err = %v, want a refresh error without a last good copy", err)
	}
}

func TestLoadEPSSGzipHeaderChanged(t *testing.T) {
	daily := readFeed(t, "samples/vunnel/tests/unit/providers/epss/test-fixtures/example-1.csv")
	srv := &feedServer{body: gz(daily)}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	l, _ := newLoader(t)
	src := Source{Name: "epss", Location: ts.URL + "/epss_scores-current.csv.gz"}
	got, err := Load(context.Background(), l, src, EPSS)
	if err != nil || got.Provenance.Records != 5 || got.Provenance.Version != "v2023.03.01 2025-02-20" {
		t.Fatalf("err %v provenance %+v", err, got)
	}
	changed := bytes.Replace(daily, []byte("cve,epss,percentile"), []byte("cve,epss,percentile,cwe"), 1)
	for name, body := range map[string][]byte{
		"header changed": gz(changed),
		"header only":    gz(daily[:bytes.Index(daily, []byte("CVE-"))]),
		"truncated gzip": gz(daily)[:40],
	} {
		srv.set(body, 0, false)
		got, err = Load(context.Background(), l, src, EPSS)
		if err != nil || !got.Stale || got.Value.Len() != 5 {
			t.Errorf("%s: err %v, %+v", name, err, got)
			continue
		}
		t.Logf("%s: kept last good copy; reported: %v", name, got.RefreshErr)
	}
}

func TestLoadLocalFiles(t *testing.T) {
	dir := filepath.Join(feedsDir, "debian-tracker-dsa-dla/data/DSA/list")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real feed data absent: %v", err)
	}
	l, _ := newLoader(t)
	got, err := Load(context.Background(), l, Source{Name: "dsa", Location: dir}, DebianList)
	if err != nil || got.Provenance.Records != 5406 || got.Provenance.Bad != 0 || !filepath.IsAbs(got.Provenance.Source) {
		t.Fatalf("err %v provenance %+v", err, got)
	}

	// The file disappears: the last good copy stays in service.
	missing := Source{Name: "dsa", Location: dir + ".gone"}
	if _, err := Load(context.Background(), l, missing, DebianList); err == nil {
		t.Error("another source's cached copy was served")
	}

	// A corrupted cached copy is refused rather than served.
	meta, err := l.readMeta("dsa")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.dataPath("dsa", meta.SHA256), []byte("[01 Jan 2000] DSA-1-1 x - y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Cached(l, Source{Name: "dsa", Location: dir}, DebianList); err == nil {
		t.Error("corrupted cache accepted")
	}
}

func TestSourceName(t *testing.T) {
	l, _ := newLoader(t)
	for _, name := range []string{"", "../x", ".hidden", "a/b", "kev feed"} {
		if _, err := Load(context.Background(), l, Source{Name: name, Location: "x"}, KEV); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
