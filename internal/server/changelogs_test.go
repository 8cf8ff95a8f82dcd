package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/changelog"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/repo/repotest"
)

// The real captures of package changelog: jq from bookworm-security with
// its real index stanza, and samba-ad-dc, which the test repository lists
// with its real size and SHA256 but serves with one byte changed.
const (
	debDir    = "../changelog/testdata"
	jqDeb     = "jq_1.6-2.1+deb12u3_amd64.deb"
	sambaDeb  = "samba-ad-dc_4.17.12+dfsg-0+deb12u2_all.deb"
	sambaPool = "pool/main/s/samba/" + sambaDeb
)

var (
	jqKey    = changelog.Key{Source: "jq", Version: "1.6-2.1+deb12u3"}
	sambaKey = changelog.Key{Source: "samba", Version: "2:4.17.12+dfsg-0+deb12u2"}
	// clFleet: bookworm hosts and their installed jq and samba-ad-dc; the
	// two jq versions cut the changelog at different entries.
	clFleet = []struct {
		name      string
		installed map[string]string
	}{
		{"app1", map[string]string{"jq": "1.6-2.1+deb12u1", "samba-ad-dc": "2:4.17.11+dfsg-0+deb12u1"}},
		{"app2", map[string]string{"jq": "1.6-2.1"}},
	}
	agePolicy = `name: fleet
hosts:
  all: true
rules:
  - {name: security, classification: [security], approve_after_days: 7}
`
)

// TestFindingsChangelogs: the server reads each distinct candidate
// changelog once, from a .deb checked against the signed index, and its
// findings then list the CVEs dpkg-parsechangelog finds since each host's
// installed version, with the urgency and the release date age rules
// count from; a .deb whose hash the index does not list is refused,
// reported, and tried again later.
func TestFindingsChangelogs(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg-parsechangelog", "tar", "gzip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the oracle needs %s (dpkg-dev): %v", tool, err)
		}
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { tFindingsChangelogs(t, backend) })
	}
}

func tFindingsChangelogs(t *testing.T, backend string) {
	ctx := context.Background()
	mirror := publishChangelogSuite(t)
	cacheDir := t.TempDir()
	logs := &syncBuffer{}
	e := newEnvWith(t, backend, func(c *Config) {
		c.Engine = central.New(central.Config{CacheDir: t.TempDir(), Trust: []repo.Source{mirror.Source}})
		c.Changelogs = &ChangelogConfig{CacheDir: cacheDir, RetryAfter: time.Hour}
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	day0 := time.Date(2026, 10, 20, 10, 0, 0, 0, time.UTC) // jq's candidate was released on 2026-10-16
	e.clock.mu.Lock()
	e.clock.t = day0
	e.clock.mu.Unlock()
	if code, body := e.putPolicy("fleet", "", agePolicy); code != http.StatusCreated {
		t.Fatalf("put policy: %d %s", code, body)
	}
	for i, h := range clFleet {
		e.enrollBookworm(200+i, h.name, h.installed, mirror.Source)
	}
	if len(e.srv.changelogs.wake) != 1 {
		t.Error("a detection did not ask for the changelogs of its updates")
	}

	// Not read yet: said in the notes, and the age rule cannot count.
	all := e.findingsByHost()
	for _, h := range clFleet {
		f := all[h.name+" jq"]
		if f == nil {
			t.Fatalf("%s: no jq finding: %v", h.name, all)
		}
		if !hasNote(f, "not read yet") || !f.Released.IsZero() || f.Decision.Verdict != policy.Pending ||
			!strings.Contains(f.Decision.Reason, "release date unknown") {
			t.Errorf("%s jq before its changelog is read: notes %q released %v decision %+v", h.name, f.Notes, f.Released, f.Decision)
		}
	}

	// The background reader, woken by the detections above.
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); e.srv.RunChangelogs(runCtx) }()
	deadline := time.Now().Add(60 * time.Second)
	for !e.srv.changelogs.settled(jqKey, sambaKey) {
		if time.Now().After(deadline) {
			t.Fatalf("changelogs not read within 60 s; log:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	<-stopped

	jqLog := dpkgChangelog(t, filepath.Join(debDir, jqDeb), "jq")
	all = e.findingsByHost()
	for _, h := range clFleet {
		f := all[h.name+" jq"]
		inst := h.installed["jq"]
		want := dpkgSince(t, jqLog, inst)
		if got := cveIDs(f); !slices.Equal(got, want.cves) {
			t.Errorf("%s jq (installed %s): CVEs\n got %v\nwant %v (dpkg-parsechangelog --since)", h.name, inst, got, want.cves)
		}
		for _, c := range f.CVEs {
			if !slices.Equal(f.Evidence[c.ID], []string{"changelog"}) {
				t.Errorf("%s jq %s: evidence %v", h.name, c.ID, f.Evidence[c.ID])
			}
		}
		approveAt := time.Date(want.date.Year(), want.date.Month(), want.date.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 7)
		switch {
		case f.Urgency != want.urgency:
			t.Errorf("%s jq: urgency %q, dpkg-parsechangelog %q", h.name, f.Urgency, want.urgency)
		case !f.Released.Equal(want.date):
			t.Errorf("%s jq: released %v, dpkg-parsechangelog %v", h.name, f.Released, want.date)
		case f.Decision.Verdict != policy.Pending || !f.Decision.ApproveAt.Equal(approveAt):
			t.Errorf("%s jq on %v: decision %+v, want pending until %v", h.name, day0, f.Decision, approveAt)
		case len(f.Notes) != 0:
			t.Errorf("%s jq: notes %q", h.name, f.Notes)
		}
	}
	if n15, n16 := len(cveIDs(all["app1 jq"])), len(cveIDs(all["app2 jq"])); n15 != 15 || n16 != 16 {
		t.Errorf("jq CVEs since deb12u1 %d (README: 15), since 1.6-2.1 %d", n15, n16)
	}

	// The tampered .deb: refused, reported, nothing read or cached.
	samba := all["app1 samba-ad-dc"]
	if samba == nil || len(samba.CVEs) != 0 || !hasNote(samba, "SHA256") || !hasNote(samba, "refused") {
		t.Errorf("samba-ad-dc from a .deb the index does not list: %+v", samba)
	}
	if m, _ := filepath.Glob(filepath.Join(cacheDir, "samba_*")); len(m) != 0 {
		t.Errorf("a refused .deb was cached: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(cacheDir, "jq_*")); len(m) != 1 {
		t.Errorf("jq's changelog not cached once: %v", m)
	}
	if s := logs.String(); !strings.Contains(s, "changelog not read, tried again later") || !strings.Contains(s, "refused") {
		t.Errorf("the refusal is not logged:\n%s", s)
	}
	if got := mirror.gets(jqDeb); got != 1 {
		t.Errorf("jq's .deb downloaded %d times for two hosts, want once", got)
	}
	e.wantMetric(`patchloop_changelogs_total{result="downloaded"} 1`)
	e.wantMetric(`patchloop_changelogs_total{result="failed"} 1`)
	// A failure waits for RetryAfter; what was read is not read again.
	if err := e.srv.changelogs.readRound(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mirror.gets(sambaDeb); got != 1 {
		t.Errorf("the refused .deb was fetched %d times before its retry was due", got)
	}

	// The age rule approves 7 days after the changelog's date.
	e.clock.Add(approveIn(t, all["app1 jq"].Decision.ApproveAt, day0))
	all = e.findingsByHost()
	for _, h := range clFleet {
		if d := all[h.name+" jq"].Decision; d.Verdict != policy.Approved || d.Name != "security" {
			t.Errorf("%s jq on the approval day: %+v", h.name, d)
		}
	}

	// Served right, the refused .deb is read once its retry is due.
	mirror.serveReal(t)
	if err := e.srv.changelogs.readRound(ctx); err != nil {
		t.Fatal(err)
	}
	all = e.findingsByHost()
	want := dpkgSince(t, dpkgChangelog(t, filepath.Join(debDir, sambaDeb), "samba-ad-dc"), clFleet[0].installed["samba-ad-dc"])
	if got := cveIDs(all["app1 samba-ad-dc"]); len(want.cves) == 0 || !slices.Equal(got, want.cves) {
		t.Errorf("samba-ad-dc after the retry: CVEs\n got %v\nwant %v", got, want.cves)
	}
	e.wantMetric(`patchloop_changelogs_total{result="downloaded"} 2`)
	if got := mirror.gets(jqDeb); got != 1 {
		t.Errorf("jq's .deb downloaded again: %d", got)
	}
}

// A server with --changelogs=false says so in every finding's notes.
func TestFindingsWithoutChangelogs(t *testing.T) {
	mirror := publishChangelogSuite(t)
	e := newEnvWith(t, "sqlite", func(c *Config) {
		c.Engine = central.New(central.Config{CacheDir: t.TempDir(), Trust: []repo.Source{mirror.Source}})
	})
	e.enrollBookworm(300, "app1", clFleet[0].installed, mirror.Source)
	e.srv.RunChangelogs(context.Background()) // returns at once
	all := e.findingsByHost()
	if len(all) != 2 {
		t.Fatalf("findings: %v", all)
	}
	for k, f := range all {
		if !hasNote(f, "--changelogs=false") || len(f.CVEs) != 0 {
			t.Errorf("%s: notes %q, CVEs %v", k, f.Notes, f.CVEs)
		}
	}
	if got := mirror.gets(jqDeb); got != 0 {
		t.Errorf("jq's .deb downloaded %d times with changelogs off", got)
	}
}

// changelogMirror is the loopback repository of the test, counting GETs.
type changelogMirror struct {
	repo.Source
	root string
	mu   sync.Mutex
	hits map[string]int
}

func (m *changelogMirror) gets(file string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[file]
}

// serveReal puts the real samba-ad-dc .deb in place of the tampered one.
func (m *changelogMirror) serveReal(t *testing.T) {
	copyFile(t, filepath.Join(debDir, sambaDeb), filepath.Join(m.root, sambaPool))
}

// publishChangelogSuite serves a signed bookworm-security suite listing
// jq (its real stanza) and samba-ad-dc (its real size and SHA256, and one
// byte changed in the file served).
func publishChangelogSuite(t *testing.T) *changelogMirror {
	key, err := repotest.NewKey("changelog test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyring := filepath.Join(dir, "key.gpg")
	if err := repotest.WriteKeyring(keyring, key); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "repo")
	jqStanza, err := os.ReadFile(filepath.Join(debDir, "bookworm-security_jq.stanza"))
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(debDir, jqDeb), filepath.Join(root, "pool/updates/main/j/jq", jqDeb))
	real, err := os.ReadFile(filepath.Join(debDir, sambaDeb))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(real)
	sambaStanza := fmt.Sprintf("Package: samba-ad-dc\nSource: samba\nVersion: %s\nArchitecture: all\nFilename: %s\nSize: %d\nSHA256: %s\n",
		sambaKey.Version, sambaPool, len(real), hex.EncodeToString(sum[:]))
	tampered := bytes.Clone(real)
	tampered[len(tampered)/2] ^= 0xff
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, sambaPool)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, sambaPool), tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	s := repotest.Suite{Name: "stable-security", Codename: "bookworm-security", Origin: "Debian", Label: "Debian-Security",
		Packages: map[string]string{"main/binary-amd64": strings.TrimSpace(string(jqStanza)) + "\n\n" + sambaStanza}}
	if err := repotest.WriteSuite(root, s, key); err != nil {
		t.Fatal(err)
	}
	m := &changelogMirror{root: root, hits: map[string]int{}}
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.hits[filepath.Base(r.URL.Path)]++
		m.mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	m.Source = repo.Source{URI: srv.URL, Suite: "bookworm-security", SignedBy: []string{keyring}}
	return m
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// enrollBookworm enrolls a Debian 12 host whose inventory has these
// packages (jq amd64, samba-ad-dc all) from the mirror.
func (e *env) enrollBookworm(n int, name string, installed map[string]string, mirror repo.Source) {
	e.t.Helper()
	ctx := context.Background()
	c, err := agent.NewClient(e.ts.URL, e.fpr, "", 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	f := api.Facts{Hostname: name, MachineID: machineID(n), Distro: "debian", Release: "12", Codename: "bookworm", Arch: "amd64"}
	resp, err := c.Enroll(ctx, e.token(api.CreateTokenRequest{}), f)
	if err != nil {
		e.t.Fatal(err)
	}
	hc, err := agent.NewClient(e.ts.URL, e.fpr, resp.Credential, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	inv := &api.Inventory{NativeArch: "amd64", Sources: []api.Source{{URI: mirror.URI, Suite: mirror.Suite, Components: []string{"main"}, Archs: []string{"amd64"}}}}
	for _, p := range []struct{ name, arch, source string }{{"jq", "amd64", "jq"}, {"samba-ad-dc", "all", "samba"}} {
		if v, ok := installed[p.name]; ok {
			inv.Packages = append(inv.Packages, api.Package{Name: p.name, Arch: p.arch, Version: v, Source: p.source, Status: "install ok installed"})
		}
	}
	if err := hc.PutInventory(ctx, inv); err != nil {
		e.t.Fatal(err)
	}
}

// findingsByHost is GET /api/v1/findings by "HOST PACKAGE".
func (e *env) findingsByHost() map[string]*api.Finding {
	e.t.Helper()
	var all api.Findings
	e.adminJSON("GET", "/api/v1/findings", nil, &all)
	if len(all.Unassessed) != 0 {
		e.t.Fatalf("unassessed hosts: %+v", all.Unassessed)
	}
	out := map[string]*api.Finding{}
	for _, h := range all.Hosts {
		for i := range h.Findings {
			out[h.Hostname+" "+h.Findings[i].Package] = &h.Findings[i]
		}
	}
	return out
}

// wantMetric checks /metrics has this exact sample line.
func (e *env) wantMetric(line string) {
	e.t.Helper()
	code, body := e.call("GET", "/metrics", "", "", nil)
	if code != http.StatusOK || !slices.Contains(strings.Split(body, "\n"), line) {
		e.t.Errorf("/metrics lacks %q:\n%s", line, grepLines(body, "patchloop_changelogs"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func hasNote(f *api.Finding, sub string) bool {
	return slices.ContainsFunc(f.Notes, func(n string) bool { return strings.Contains(n, sub) })
}

func cveIDs(f *api.Finding) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, c := range f.CVEs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

// approveIn is how far to move the clock from now to the approval day.
func approveIn(t *testing.T, at, now time.Time) time.Duration {
	if at.IsZero() || !at.After(now) {
		t.Fatalf("approve_at %v is not after %v", at, now)
	}
	return at.Sub(now) + time.Hour
}

// dpkgChangelog extracts a .deb's changelog.Debian.gz with dpkg-deb, tar
// and gzip, into a file for dpkg-parsechangelog.
func dpkgChangelog(t *testing.T, deb, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), pkg+".changelog")
	abs, err := filepath.Abs(deb)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("dpkg-deb --fsys-tarfile %q | tar -xO ./usr/share/doc/%s/changelog.Debian.gz | gzip -dc > %q", abs, pkg, out)
	if b, err := exec.Command("bash", "-c", "set -o pipefail; "+script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Fatalf("%s: no changelog (%v)", script, err)
	}
	return out
}

// parsed is what dpkg-parsechangelog says of the entries since a version.
type parsed struct {
	cves    []string
	urgency string
	date    time.Time
}

var cveRe = regexp.MustCompile(`CVE-[0-9]{4}-[0-9]{4,}`)

func dpkgSince(t *testing.T, file, since string) parsed {
	t.Helper()
	field := func(name string) string {
		b, err := exec.Command("dpkg-parsechangelog", "-l", file, "--since", since, "-S", name).Output()
		if err != nil {
			t.Fatalf("dpkg-parsechangelog -l %s --since %s -S %s: %v", file, since, name, err)
		}
		return strings.TrimSpace(string(b))
	}
	var p parsed
	p.cves = cveRe.FindAllString(field("Changes"), -1)
	slices.Sort(p.cves)
	p.cves = slices.Compact(p.cves)
	p.urgency = field("Urgency")
	d, err := time.Parse(time.RFC1123Z, field("Date"))
	if err != nil {
		t.Fatal(err)
	}
	p.date = d.UTC()
	return p
}

// syncBuffer is a bytes.Buffer for a logger writing from goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// settled reports whether each key has been read or has failed.
func (c *changelogReader) settled(keys ...changelog.Key) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, k := range keys {
		_, read := c.read[k]
		_, failed := c.failed[k]
		if !read && !failed {
			return false
		}
	}
	return true
}
