package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/repo/repotest"
	"github.com/patchloop/patchloop/internal/store"
)

// When the indexes change, the server recomputes the hosts that use them
// without waiting for the hosts to report again.
func TestRefreshRecomputesHosts(t *testing.T) {
	key, err := repotest.NewKey("refresh test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyring := filepath.Join(dir, "key.gpg")
	if err := repotest.WriteKeyring(keyring, key); err != nil {
		t.Fatal(err)
	}
	publish := func(version string) {
		t.Helper()
		s := repotest.Suite{Name: "stable-security", Codename: "bookworm-security", Origin: "Debian", Label: "Debian-Security",
			Packages: map[string]string{"main/binary-amd64": fmt.Sprintf("Package: jq\nVersion: %s\nArchitecture: amd64\n\n", version)}}
		if err := repotest.WriteSuite(filepath.Join(dir, "repo"), s, key); err != nil {
			t.Fatal(err)
		}
	}
	publish("1.6-2.1")
	mirror := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "repo"))))
	defer mirror.Close()

	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := central.New(central.Config{CacheDir: filepath.Join(dir, "cache"),
		Trust: []repo.Source{{URI: mirror.URL, Suite: "bookworm-security", SignedBy: []string{keyring}}}})
	srv, err := New(ctx, Config{Store: st, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateEnrollToken(ctx, store.EnrollToken{ID: "t", SecretHash: hashSecret("s"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h, err := st.Enroll(ctx, "t", hashSecret("s"), store.Host{ID: "h1", MachineID: fmt.Sprintf("%032d", 1), SecretHash: hashSecret("c")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inv := &api.Inventory{NativeArch: "amd64",
		Packages: []api.Package{{Name: "jq", Arch: "amd64", Version: "1.6-2.1", Status: "install ok installed"}},
		Sources:  []api.Source{{URI: mirror.URL, Suite: "bookworm-security", Components: []string{"main"}, Archs: []string{"amd64"}}}}
	data := mustMarshal(t, inv)
	if err := st.PutInventory(ctx, h.ID, inv.Hash(), data, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := srv.detectHost(ctx, h.ID, inv.Hash(), nil); err != nil {
		t.Fatal(err)
	}
	if u, err := st.HostUpdates(ctx, h.ID); err != nil || u.Count != 0 || u.Error != "" {
		t.Fatalf("before the update: %+v, %v", u, err)
	}

	time.Sleep(1100 * time.Millisecond) // a new Release Date
	publish("1.6-2.1+deb12u1")
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := st.HostUpdates(ctx, h.ID)
	if err != nil || u.Count != 1 || u.Security != 1 {
		t.Fatalf("after the refresh: %+v, %v", u, err)
	}
}

func mustMarshal(t *testing.T, inv *api.Inventory) []byte {
	t.Helper()
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
