package central

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/repo/repotest"
	"github.com/patchloop/patchloop/internal/scan"
)

// lab is a signed repository with a main and a security suite, served
// over HTTP on loopback, and an engine that trusts it.
type lab struct {
	root, keyring, uri string
	engine             *Engine
	write              func(main, security string)
}

func stanza(name, version string) string {
	return fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nSource: %s\n\n", name, version, name)
}

func newLab(t *testing.T) *lab {
	t.Helper()
	key, err := repotest.NewKey("central test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l := &lab{root: filepath.Join(dir, "repo"), keyring: filepath.Join(dir, "key.gpg")}
	if err := repotest.WriteKeyring(l.keyring, key); err != nil {
		t.Fatal(err)
	}
	l.write = func(main, security string) {
		t.Helper()
		for _, s := range []repotest.Suite{
			{Name: "stable", Codename: "bookworm", Origin: "Debian", Label: "Debian", Packages: map[string]string{"main/binary-amd64": main}},
			{Name: "stable-security", Codename: "bookworm-security", Origin: "Debian", Label: "Debian-Security", Packages: map[string]string{"main/binary-amd64": security}},
		} {
			if err := repotest.WriteSuite(l.root, s, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	ts := httptest.NewServer(http.FileServer(http.Dir(l.root)))
	t.Cleanup(ts.Close)
	l.uri = ts.URL
	l.engine = New(Config{CacheDir: filepath.Join(dir, "cache"), Trust: []repo.Source{
		{URI: l.uri, Suite: "bookworm", SignedBy: []string{l.keyring}},
		{URI: l.uri + "/", Suite: "bookworm-security", SignedBy: []string{l.keyring}},
	}})
	return l
}

func (l *lab) inventory(pkgs map[string]string) *api.Inventory {
	inv := &api.Inventory{NativeArch: "amd64", Sources: []api.Source{
		{URI: l.uri, Suite: "bookworm", Components: []string{"main"}, Archs: []string{"amd64"}},
		{URI: l.uri, Suite: "bookworm-security", Components: []string{"main"}, Archs: []string{"amd64"}},
	}}
	for name, v := range pkgs {
		inv.Packages = append(inv.Packages, api.Package{Name: name, Arch: "amd64", Version: v, Status: "install ok installed"})
	}
	return inv
}

// direct computes the updates the plain way: one detect.Input with every
// record of every index, as package scan does on an endpoint.
func (l *lab) direct(t *testing.T, inv *api.Inventory) []detect.Update {
	t.Helper()
	f := &repo.Fetcher{CacheDir: t.TempDir(), CheckValidUntil: true, CheckDate: true}
	var srcs []repo.Source
	for _, s := range inv.Sources {
		srcs = append(srcs, repo.Source{URI: s.URI, Suite: s.Suite, Components: s.Components, Archs: s.Archs, SignedBy: []string{l.keyring}})
	}
	indexes, err := scan.FetchAll(context.Background(), f, srcs)
	if err != nil {
		t.Fatal(err)
	}
	in := detect.Input{NativeArch: inv.NativeArch, Installed: inv.InstalledPackages(), Pins: inv.DebPins(), DefaultRelease: inv.DefaultRelease}
	for i := range indexes {
		recs, err := scan.LoadIndex(f.CacheDir, &indexes[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		in.Files = append(in.Files, scan.PackageFile(&indexes[i]))
		for _, r := range recs {
			in.Available = append(in.Available, detect.Available{Name: r.Name, Arch: r.Arch, Version: r.Version,
				Source: r.Source, SourceVersion: r.SourceVersion, File: len(in.Files) - 1})
		}
	}
	return detect.Updates(in)
}

// The shared, remembered per-package path must give exactly what one
// whole-host detection gives, on many generated hosts and pins.
func TestDetectEqualsWholeHostDetection(t *testing.T) {
	l := newLab(t)
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"jq", "curl", "openssl", "bash", "tzdata", "vim", "zlib1g", "sudo"}
	var main, security strings.Builder
	for _, n := range names {
		main.WriteString(stanza(n, "1.0-1"))
		main.WriteString(stanza(n, "1.0-2"))
		if rng.IntN(2) == 0 {
			security.WriteString(stanza(n, "1.0-2+deb12u1"))
		}
	}
	l.write(main.String(), security.String())
	versions := []string{"0.9-1", "1.0-1", "1.0-2", "1.0-2+deb12u1", "1.1-1"}
	pinSets := [][]api.Pin{nil,
		{{Packages: []string{"curl"}, Type: "version", Data: "1.0-1", Priority: 1001}},
		{{Type: "release", Data: "n=bookworm-security", Priority: -1}},
	}
	for i := 0; i < 60; i++ {
		pkgs := map[string]string{"dpkg": "1.21.22"}
		for _, n := range names {
			if rng.IntN(4) > 0 {
				pkgs[n] = versions[rng.IntN(len(versions))]
			}
		}
		inv := l.inventory(pkgs)
		inv.Pins = pinSets[i%len(pinSets)]
		got, err := l.engine.Detect(context.Background(), inv)
		if err != nil {
			t.Fatal(err)
		}
		want := l.direct(t, inv)
		if !reflect.DeepEqual(got.Updates, want) {
			t.Fatalf("host %d (%v, pins %v):\n got %+v\nwant %+v", i, pkgs, inv.Pins, got.Updates, want)
		}
	}
	if n := len(l.engine.worlds); n != len(pinSets) {
		t.Errorf("%d worlds for %d distinct configurations", n, len(pinSets))
	}
}

func TestRefreshPicksUpNewIndexes(t *testing.T) {
	l := newLab(t)
	l.write(stanza("jq", "1.6-2.1"), "")
	inv := l.inventory(map[string]string{"jq": "1.6-2.1"})
	ctx := context.Background()
	r1, err := l.engine.Detect(ctx, inv)
	if err != nil || len(r1.Updates) != 0 {
		t.Fatalf("before the security update: %+v, %v", r1, err)
	}
	if changed, err := l.engine.Refresh(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("refresh without changes: %v, %v", changed, err)
	}
	time.Sleep(1100 * time.Millisecond) // a new Release Date
	l.write(stanza("jq", "1.6-2.1"), stanza("jq", "1.6-2.1+deb12u1"))
	changed, err := l.engine.Refresh(ctx)
	if err != nil || len(changed) != 1 || changed[0] != WorldOf(r1.Basis) {
		t.Fatalf("refresh after a change: %v, %v", changed, err)
	}
	r2, err := l.engine.Detect(ctx, inv)
	if err != nil || len(r2.Updates) != 1 || !r2.Updates[0].Security || r2.Updates[0].Candidate != "1.6-2.1+deb12u1" || r2.Basis == r1.Basis {
		t.Fatalf("after the security update: %+v, %v", r2, err)
	}
}

func TestUntrustedSourceIsNotFetched(t *testing.T) {
	l := newLab(t)
	l.write(stanza("jq", "1.6-2.1"), "")
	inv := l.inventory(map[string]string{"jq": "1.6-2.1"})
	inv.Sources = append(inv.Sources, api.Source{URI: "http://evil.example/debian", Suite: "bookworm", Components: []string{"main"}, Archs: []string{"amd64"}})
	_, err := l.engine.Detect(context.Background(), inv)
	if err == nil || !strings.Contains(err.Error(), "http://evil.example/debian bookworm is not mirrored") {
		t.Fatalf("untrusted source: %v", err)
	}
}

func TestTamperedIndexFailsDetection(t *testing.T) {
	l := newLab(t)
	l.write(stanza("jq", "1.6-2.1"), "")
	if err := writeFile(filepath.Join(l.root, "dists/bookworm/InRelease"), "tampered"); err != nil {
		t.Fatal(err)
	}
	_, err := l.engine.Detect(context.Background(), l.inventory(map[string]string{"jq": "1.6-2.1"}))
	if err == nil || !strings.Contains(err.Error(), "InRelease") {
		t.Fatalf("tampered InRelease: %v", err)
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }
