package repo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFetchRealSecurity fetches the real bookworm-security suite. It needs
// the network: set PATCHLOOP_NET_TESTS=1.
func TestFetchRealSecurity(t *testing.T) {
	if os.Getenv("PATCHLOOP_NET_TESTS") != "1" {
		t.Skip("set PATCHLOOP_NET_TESTS=1 to fetch from deb.debian.org")
	}
	keyring, err := filepath.Abs(debianKeyring)
	must(t, err)
	var progress []string
	f := &Fetcher{
		CacheDir: t.TempDir(), CheckValidUntil: true, CheckDate: true, Timeout: 5 * time.Minute,
		Progress: func(m string) { progress = append(progress, m) },
	}
	src := Source{
		URI: "http://deb.debian.org/debian-security", Suite: "bookworm-security",
		Components: []string{"main"}, Archs: []string{"amd64"}, SignedBy: []string{keyring},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ixs, err := f.Fetch(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ixs) != 1 || !ixs[0].Verified || ixs[0].Release.Codename != "bookworm-security" {
		t.Fatalf("indexes = %+v", ixs)
	}
	got := readIndex(t, ixs[0])
	if int64(len(got)) != ixs[0].Size || !bytes.HasPrefix(got, []byte("Package: ")) {
		t.Errorf("content: %d bytes, want %d", len(got), ixs[0].Size)
	}
	t.Logf("signer %s, %s, %d bytes (%s); progress %q", ixs[0].Release.Signer, ixs[0].Release.Date, ixs[0].Size, ixs[0].Compress, progress)

	// Again: the InRelease must be answered 304 or re-sent, the index reused.
	progress = nil
	if _, err := f.Fetch(ctx, src); err != nil {
		t.Fatal(err)
	}
	t.Logf("second run: %q", progress)
}
