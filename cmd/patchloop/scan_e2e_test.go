package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/repo/repotest"
	"github.com/patchloop/patchloop/internal/scan"
)

// These tests run the real patchloop binary against a root directory and
// a signed repository served over HTTP on loopback by this test process.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "patchloop-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "patchloop")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const e2eStatus = `Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: foo
Status: install ok installed
Architecture: amd64
Version: 1.0-1

Package: bar
Status: hold ok installed
Architecture: amd64
Source: barsrc
Version: 2.0-1

Package: baz
Status: install ok installed
Architecture: all
Version: 1.0

`

func pkgs(entries ...string) string {
	var b strings.Builder
	for i := 0; i+2 < len(entries); i += 3 {
		b.WriteString("Package: " + entries[i] + "\nArchitecture: " + entries[i+1] + "\nVersion: " + entries[i+2] + "\nDescription: test\n\n")
	}
	return b.String()
}

type e2e struct {
	root, repo, cache string
	srv               *httptest.Server
}

// newE2E builds a root with a dpkg status and apt sources (one-line and
// deb822) pointing at a signed three-suite repository served on loopback.
func newE2E(t *testing.T) *e2e {
	t.Helper()
	e := &e2e{root: t.TempDir(), repo: t.TempDir(), cache: t.TempDir()}
	key, err := repotest.NewKey("Test Archive")
	if err != nil {
		t.Fatal(err)
	}
	suites := []repotest.Suite{
		{Name: "stable", Codename: "bookworm", Origin: "Debian", Label: "Debian",
			Packages: map[string]string{"main/binary-amd64": pkgs("dpkg", "amd64", "1.21.22", "foo", "amd64", "1.0-1", "bar", "amd64", "2.0-1", "baz", "all", "1.0")}},
		{Name: "stable-security", Codename: "bookworm-security", Origin: "Debian", Label: "Debian-Security",
			Packages: map[string]string{"main/binary-amd64": pkgs("foo", "amd64", "1.0-1+deb12u1", "bar", "amd64", "2.0-1+deb12u1")}},
		{Name: "stable-updates", Codename: "bookworm-updates", Origin: "Debian", Label: "Debian",
			Packages: map[string]string{"main/binary-amd64": pkgs("baz", "all", "1.1")}},
	}
	for _, s := range suites {
		if err := repotest.WriteSuite(e.repo, s, key); err != nil {
			t.Fatal(err)
		}
	}
	e.srv = httptest.NewServer(http.FileServer(http.Dir(e.repo)))
	t.Cleanup(e.srv.Close)
	keyring := "/usr/share/keyrings/test-archive.gpg"
	mustWrite(t, filepath.Join(e.root, "var/lib/dpkg/status"), e2eStatus)
	if err := repotest.WriteKeyring(filepath.Join(e.root, keyring), key); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(e.root, "etc/apt/sources.list"),
		"deb [signed-by="+keyring+"] "+e.srv.URL+" bookworm-updates main\n")
	mustWrite(t, filepath.Join(e.root, "etc/apt/sources.list.d/debian.sources"),
		"Types: deb\nURIs: "+e.srv.URL+"\nSuites: bookworm bookworm-security\nComponents: main\nSigned-By: "+keyring+"\n")
	return e
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs the binary on the e2e root and returns stdout, stderr and the exit code.
func (e *e2e) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"scan", "--root", e.root, "--cache-dir", e.cache}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestScanE2E(t *testing.T) {
	e := newE2E(t)
	out, stderr, code := e.run(t, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var res scan.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if res.Schema != scan.SchemaVersion || res.Host.Arch != "amd64" || res.Summary.Installed != 4 {
		t.Errorf("schema/host/summary = %q %+v %+v", res.Schema, res.Host, res.Summary)
	}
	got := map[string]string{}
	for _, u := range res.Updates {
		got[u.Package] = strings.Join([]string{u.Arch, u.Installed, u.Candidate, u.Suite, flag(u.Security, "security"), flag(u.Held, "held"), u.Source}, " ")
	}
	want := map[string]string{
		"foo": "amd64 1.0-1 1.0-1+deb12u1 bookworm-security security - foo",
		"bar": "amd64 2.0-1 2.0-1+deb12u1 bookworm-security security held bar",
		"baz": "all 1.0 1.1 bookworm-updates - - baz",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d updates, want %d: %v", len(got), len(want), got)
	}
	if len(res.Indexes) != 3 || !res.Indexes[0].Verified {
		t.Errorf("indexes = %+v", res.Indexes)
	}

	table, _, code := e.run(t)
	if code != 0 || !strings.Contains(table, "4 installed, 3 updates (2 security, 1 held)") ||
		strings.Index(table, "bar") > strings.Index(table, "baz") {
		t.Errorf("table (exit %d), want counts and security first:\n%s", code, table)
	}
	if _, _, code := e.run(t, "--fail-on", "security"); code != exitUpdates {
		t.Errorf("--fail-on security: exit %d, want %d", code, exitUpdates)
	}
	// Offline from the cache the online runs filled.
	e.srv.Close()
	if out, stderr, code := e.run(t, "--offline", "--format", "json"); code != 0 || !strings.Contains(out, "1.0-1+deb12u1") {
		t.Errorf("offline from cache: exit %d\n%s\n%s", code, out, stderr)
	}
}

func flag(b bool, word string) string {
	if b {
		return word
	}
	return "-"
}

// TestScanE2EBadInput: each corruption gives exit 1 and a one-line error
// on stderr that names the file, never a result from unverified data.
func TestScanE2EBadInput(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, e *e2e)
		want    []string
	}{
		{"truncated status", func(t *testing.T, e *e2e) {
			mustWrite(t, filepath.Join(e.root, "var/lib/dpkg/status"), e2eStatus[:len(e2eStatus)-40])
		}, []string{"var/lib/dpkg/status:", "truncated"}},
		{"corrupt status", func(t *testing.T, e *e2e) {
			mustWrite(t, filepath.Join(e.root, "var/lib/dpkg/status"), strings.Replace(e2eStatus, "Status: install ok installed\nArchitecture: all", "Status: install ok bogus\nArchitecture: all", 1))
		}, []string{"var/lib/dpkg/status:", "bad Status"}},
		{"Packages hash mismatch", func(t *testing.T, e *e2e) {
			replaceInRepo(t, e, "dists/bookworm-security/main/binary-amd64/Packages.xz", "dists/bookworm/main/binary-amd64/Packages.xz")
		}, []string{"bookworm-security/main/binary-amd64/Packages.xz", "signed Release"}},
		{"Packages same size, one byte changed", func(t *testing.T, e *e2e) {
			p := filepath.Join(e.repo, "dists/bookworm-security/main/binary-amd64/Packages.xz")
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			mustWrite(t, p, string(data))
		}, []string{"bookworm-security/main/binary-amd64/Packages", "SHA256"}},
		{"InRelease tampered", func(t *testing.T, e *e2e) {
			p := filepath.Join(e.repo, "dists/bookworm-security/InRelease")
			data, _ := os.ReadFile(p)
			mustWrite(t, p, strings.Replace(string(data), "Codename: bookworm-security", "Codename: bookworm-insecure", 1))
		}, []string{"bookworm-security/InRelease"}},
		{"InRelease unsigned", func(t *testing.T, e *e2e) {
			p := filepath.Join(e.repo, "dists/bookworm-updates/InRelease")
			data, _ := os.ReadFile(p)
			body := string(data)
			body = body[strings.Index(body, "Origin:"):strings.Index(body, "-----BEGIN PGP SIGNATURE")]
			mustWrite(t, p, body)
		}, []string{"bookworm-updates/InRelease"}},
		{"signed by another key", func(t *testing.T, e *e2e) {
			other, _ := repotest.NewKey("Other")
			if err := repotest.WriteKeyring(filepath.Join(e.root, "usr/share/keyrings/test-archive.gpg"), other); err != nil {
				t.Fatal(err)
			}
		}, []string{"InRelease"}},
		{"unreachable mirror", func(t *testing.T, e *e2e) { e.srv.Close() }, []string{e2eURLPrefix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newE2E(t)
			tt.corrupt(t, e)
			out, stderr, code := e.run(t, "--format", "json")
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
			if out != "" {
				t.Errorf("printed a result despite the error:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			want := tt.want
			if want[0] == e2eURLPrefix {
				want = []string{e.srv.URL}
			}
			for _, w := range want {
				if !strings.Contains(last, w) {
					t.Errorf("error line %q does not contain %q", last, w)
				}
			}
		})
	}
}

const e2eURLPrefix = "<server URL>"

// replaceInRepo overwrites the file at dst with the one at src (both valid
// indexes, so only the signed hash can tell them apart).
func replaceInRepo(t *testing.T, e *e2e, dst, src string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.repo, src))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(e.repo, dst), string(data))
}
