package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// memoEntries reads the memo directory's entries.
func memoEntries(t *testing.T, dir string) map[string]goodSig {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]goodSig{}
	for _, f := range files {
		var g goodSig
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, f.Name())), &g); err != nil {
			t.Fatalf("memo entry %s: %v", f.Name(), err)
		}
		out[f.Name()] = g
	}
	return out
}

func TestSignatureMemoRealInRelease(t *testing.T) {
	kr := debianKeys(t)
	data := readFile(t, updatesCapture)
	memo := &SignatureMemo{Dir: t.TempDir()}
	at2026 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	opts := CheckOptions{Now: at2026, Memo: memo}

	rel, err := VerifyInRelease(updatesCapture, data, kr, opts)
	if err != nil || rel.Signer != bookwormArchiveKey {
		t.Fatalf("first check: signer %v, err %v", rel, err)
	}
	entries := memoEntries(t, memo.Dir)
	if len(entries) != 1 {
		t.Fatalf("memo has %d entries after a good check, want 1", len(entries))
	}
	var name string
	for n, g := range entries {
		name = n
		if g.Fingerprint != bookwormArchiveKey || g.KeyID == 0 || g.Created.IsZero() {
			t.Fatalf("memo entry %+v", g)
		}
	}

	// A hit answers from the memo: make the entry name the other archive
	// key (also in the keyring, also valid now) and see it come back.
	// This is why the memo directory must be as protected as the cache.
	forged := entries[name]
	forged.Fingerprint, forged.KeyID = trixieArchiveKey, 0x225629DF75B188BD
	b, _ := json.Marshal(forged)
	must(t, os.WriteFile(filepath.Join(memo.Dir, name), b, 0o644))
	if rel, err := VerifyInRelease(updatesCapture, data, kr, opts); err != nil || rel.Signer != trixieArchiveKey {
		t.Fatalf("memo hit not used: signer %v, err %v", rel, err)
	}

	// In 2032 the bookworm key has expired: a remembered bookworm
	// signature is not a hit, the full check runs and finds trixie's.
	must(t, os.WriteFile(filepath.Join(memo.Dir, name), mustJSON(t, entries[name]), 0o644))
	at2032 := time.Date(2032, 6, 1, 0, 0, 0, 0, time.UTC)
	rel, err = VerifyInRelease(updatesCapture, data, kr, CheckOptions{Now: at2032, Memo: memo})
	if err != nil || rel.Signer != trixieArchiveKey {
		t.Fatalf("2032: signer %v, err %v", rel, err)
	}
	if g := memoEntries(t, memo.Dir)[name]; g.Fingerprint != trixieArchiveKey {
		t.Errorf("memo not rewritten after a miss: %+v", g)
	}

	// A corrupt entry is a miss, not an error.
	must(t, os.WriteFile(filepath.Join(memo.Dir, name), []byte("{garbage"), 0o644))
	if _, err := VerifyInRelease(updatesCapture, data, kr, opts); err != nil {
		t.Fatalf("corrupt memo entry: %v", err)
	}
	if len(memoEntries(t, memo.Dir)) != 1 {
		t.Error("corrupt entry not replaced")
	}
}

func TestSignatureMemoNeverBypassesACheck(t *testing.T) {
	kr := debianKeys(t)
	data := readFile(t, updatesCapture)
	memo := &SignatureMemo{Dir: t.TempDir()}
	opts := CheckOptions{Now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Memo: memo}
	if _, err := VerifyInRelease(updatesCapture, data, kr, opts); err != nil {
		t.Fatal(err)
	}

	tampered := bytes.Replace(data, []byte("Codename: bookworm-updates"), []byte("Codename: bookworm-updatez"), 1)
	if bytes.Equal(tampered, data) {
		t.Fatal("tampering changed nothing")
	}
	if _, err := VerifyInRelease("tampered", tampered, kr, opts); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered text with a warm memo: %v, want ErrBadSignature", err)
	}

	// Another keyring, even one whose files were read from the same
	// place, is another digest: the signature must be checked against it.
	other := testKeyring(t, newKey(t, "other", opts.Now.Add(-time.Hour), 0))
	if _, err := VerifyInRelease(updatesCapture, data, other, opts); !errors.Is(err, ErrUntrusted) {
		t.Errorf("foreign keyring with a warm memo: %v, want ErrUntrusted", err)
	}

	// Restricting the keyring to one fingerprint changes its digest too.
	only, err := LoadKeyring("", []string{debianKeyring, bullseyeSecurityKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(only.Digest(), kr.Digest()) {
		t.Fatal("fingerprint restriction does not change the digest")
	}
	if _, err := VerifyInRelease(updatesCapture, data, only, opts); !errors.Is(err, ErrUntrusted) {
		t.Errorf("keyring restricted to another key, warm memo: %v, want ErrUntrusted", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
