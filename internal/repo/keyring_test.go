package repo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

func TestLoadKeyring(t *testing.T) {
	a := newKey(t, "A", testNow, 0)
	b := newKey(t, "B", testNow, 0)
	dir := t.TempDir()
	gpg := writeKeyring(t, dir, "a.gpg", a)
	asc := writeKeyring(t, dir, "ab.asc", a, b) // two armored blocks in one file
	inline := string(publicKeyring(t, true, b))
	// As a deb822 Signed-By field holds it: indented, blank lines as ".".
	folded := strings.ReplaceAll(strings.ReplaceAll(inline, "\n\n", "\n.\n"), "\n", "\n ")
	fprA := fingerprint(a.PrimaryKey.Fingerprint)
	fprSubB := fingerprint(b.Subkeys[0].PublicKey.Fingerprint)

	tests := []struct {
		name     string
		signedBy []string
		want     int
	}{
		{"binary file", []string{gpg}, 1},
		{"armored file with two blocks", []string{asc}, 2},
		{"inline key block", []string{inline}, 1},
		{"inline key block, deb822-folded", []string{folded}, 1},
		{"two files", []string{gpg, asc}, 3},
		{"file restricted by fingerprint", []string{asc, fprA}, 1},
		{"file restricted by subkey fingerprint", []string{asc, strings.ToLower(fprSubB) + "!"}, 1},
	}
	for _, tc := range tests {
		kr, err := LoadKeyring("", tc.signedBy, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if kr.Len() != tc.want {
			t.Errorf("%s: %d keys, want %d (%v)", tc.name, kr.Len(), tc.want, kr.Names())
		}
	}
}

func TestLoadKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	a := newKey(t, "A", testNow, 0)
	garbage := filepath.Join(dir, "garbage.gpg")
	must(t, os.WriteFile(garbage, []byte("not a key"), 0o644))
	keybox := filepath.Join(dir, "pubring.gpg")
	must(t, os.WriteFile(keybox, []byte("\x00\x00\x00\x20\x01\x01\x00\x00KBXf\x00\x00\x00\x00"), 0o644))
	tests := []struct {
		name     string
		signedBy []string
		want     string
	}{
		{"missing file", []string{filepath.Join(dir, "nope.gpg")}, "nope.gpg"},
		{"garbage", []string{garbage}, "garbage.gpg"},
		{"keybox", []string{keybox}, "keybox"},
		{"fingerprint matching nothing", []string{writeKeyring(t, dir, "a.gpg", a), strings.Repeat("A", 40)}, "no usable keys"},
	}
	for _, tc := range tests {
		_, err := LoadKeyring("", tc.signedBy, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadKeyringDefaults(t *testing.T) {
	root := t.TempDir()
	a := newKey(t, "A", testNow, 0)
	b := newKey(t, "B", testNow, 0)
	c := newKey(t, "C", testNow, 0)
	writeKeyring(t, filepath.Join(root, "etc/apt"), "trusted.gpg", a)
	d := filepath.Join(root, "etc/apt/trusted.gpg.d")
	writeKeyring(t, d, "b.asc", b)
	writeKeyring(t, d, "c.gpg", c)
	writeKeyring(t, d, "ignored.key", c) // neither .gpg nor .asc: apt ignores it
	must(t, os.WriteFile(filepath.Join(d, "broken.gpg"), []byte("junk"), 0o644))
	kr, err := LoadKeyring(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kr.Len() != 3 || len(kr.Names()) != 3 {
		t.Errorf("got %d keys from %v, want 3 (broken.gpg skipped)", kr.Len(), kr.Names())
	}
	// A relative Signed-By path is read under root too.
	if kr, err := LoadKeyring(root, []string{"/etc/apt/trusted.gpg.d/b.asc"}, nil); err != nil || kr.Len() != 1 {
		t.Errorf("Signed-By under root: %v", err)
	}
	if _, err := LoadKeyring(t.TempDir(), nil, nil); err == nil || !strings.Contains(err.Error(), "trusted.gpg") {
		t.Errorf("no default keyrings: err = %v", err)
	}
}

func TestFetchDefaultKeyringUnderRoot(t *testing.T) {
	key := newKey(t, "Repo", testNow.Add(-time.Hour), 0)
	srv := newTestServer(t, buildRepo(t, repoOpts{key: key}))
	f := testFetcher(t, t.TempDir())
	f.Root = t.TempDir()
	writeKeyring(t, filepath.Join(f.Root, "etc/apt/trusted.gpg.d"), "repo.asc", key)
	src := testSource(srv.URL, "")
	src.SignedBy = nil
	if _, err := f.Fetch(t.Context(), src); err != nil {
		t.Fatal(err)
	}
}

// The lazy split must find exactly the keys go-crypto's full reader finds.
func TestSplitKeysMatchesReadKeyRing(t *testing.T) {
	data := readFile(t, debianKeyring)
	full, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := splitKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != len(full) {
		t.Fatalf("%d chunks, ReadKeyRing finds %d keys", len(chunks), len(full))
	}
	for i, e := range full {
		c := chunks[i]
		if c.fprs[0] != fingerprint(e.PrimaryKey.Fingerprint) || len(c.ids) != 1+len(e.Subkeys) {
			t.Errorf("key %d: chunk %v with %d ids, want %X with %d subkeys", i, c.fprs[0], len(c.ids), e.PrimaryKey.Fingerprint, len(e.Subkeys))
		}
		got, err := c.read()
		if err != nil || !bytes.Equal(got.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint) {
			t.Errorf("key %d: read %v", i, err)
		}
	}
	for _, cut := range []int{1, 3, len(data) / 2, len(data) - 1} {
		if _, err := splitKeys(data[:cut]); err == nil {
			t.Errorf("keyring cut at %d bytes: no error", cut)
		}
	}
}

func FuzzSplitKeys(f *testing.F) {
	f.Add(readFile(f, debianKeyring)[:4000])
	f.Add([]byte{0x99, 0x00, 0x01, 0x04})
	f.Add([]byte{0xc6, 0xff, 0x00, 0x00, 0x00, 0x01, 0x04})
	f.Fuzz(func(t *testing.T, data []byte) {
		chunks, err := splitKeys(data)
		if err != nil {
			return
		}
		total := 0
		for _, c := range chunks {
			if len(c.ids) == 0 || len(c.ids) != len(c.fprs) {
				t.Fatalf("chunk without key ids: %+v", c)
			}
			total += len(c.data)
			c.read() // may fail, must not panic
		}
		if total != len(data) {
			t.Fatalf("chunks hold %d bytes of %d", total, len(data))
		}
	})
}
