package changelog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/repo"
)

// TestRealMirrorJq fetches and verifies today's bookworm-security from
// deb.debian.org, locates jq's candidate in it, downloads and reads its
// changelog. It needs the network: set PATCHLOOP_NET=1 (or
// PATCHLOOP_NET_TESTS=1, as package repo's network tests).
func TestRealMirrorJq(t *testing.T) {
	if os.Getenv("PATCHLOOP_NET") != "1" && os.Getenv("PATCHLOOP_NET_TESTS") != "1" {
		t.Skip("set PATCHLOOP_NET=1 to fetch from deb.debian.org")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kr, err := filepath.Abs(keyring)
	must(t, err)
	rf := &repo.Fetcher{CacheDir: t.TempDir(), CheckValidUntil: true, CheckDate: true}
	ixs, err := rf.Fetch(ctx, repo.Source{URI: "http://deb.debian.org/debian-security", Suite: "bookworm-security",
		Components: []string{"main"}, Archs: []string{"amd64"}, SignedBy: []string{kr}})
	must(t, err)

	// Whatever jq version is current there; deb12u3 was on 2026-11-25.
	key := Key{"jq", jqVersion(t, ixs)}
	f := &Fetcher{CacheDir: t.TempDir(), Timeout: 5 * time.Minute}
	res := f.Changelogs(ctx, ixs, []Key{key})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	c, err := res[0].Log.Newer("1.6-2.1+deb12u1")
	must(t, err)
	t.Logf("jq %s read from %s: %d entries newer than 1.6-2.1+deb12u1, urgency %s, CVEs %v",
		key.Version, res[0].From, len(c.Entries), c.Urgency, c.CVEs)
	if len(c.CVEs) < 15 || c.CVEs[0] != "CVE-2026-32316" || !c.Complete {
		t.Errorf("jq: %+v", c)
	}
}

// jqVersion returns the version of jq the verified indexes list.
func jqVersion(t *testing.T, ixs []repo.Index) string {
	var version string
	for i := range ixs {
		rc, err := ixs[i].Open()
		must(t, err)
		err = deb.ParsePackages(rc, ixs[i].Path, func(r deb.IndexRecord) error {
			if r.Name == "jq" {
				version = r.Version
			}
			return nil
		})
		rc.Close()
		must(t, err)
	}
	if version == "" {
		t.Fatal("jq is not in bookworm-security")
	}
	return version
}
