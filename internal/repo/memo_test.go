package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// memoEntries reads the memo directory's entries.
func memoEntries(t *testing.T, dir string) map[string]memoEntry {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]memoEntry{}
	for _, f := range files {
		var g memoEntry
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
		if g.Fingerprint != bookwormArchiveKey || g.KeyID == 0 || g.Created.IsZero() || g.Text == nil {
			t.Fatalf("memo entry %+v", g)
		}
	}

	// A hit gives the same Release as the full check.
	again, err := VerifyInRelease(updatesCapture, data, kr, opts)
	if err != nil || !reflect.DeepEqual(again, rel) {
		t.Fatalf("memo hit: %+v, %v; want %+v", again, err, rel)
	}

	// An entry whose text span does not hash to what it says is a miss:
	// the full check runs and rewrites it.
	bad := entries[name]
	bad.Text = &textSpan{Start: bad.Text.Start + 1, End: bad.Text.End, SHA256: bad.Text.SHA256}
	must(t, os.WriteFile(filepath.Join(memo.Dir, name), mustJSON(t, bad), 0o644))
	if again, err := VerifyInRelease(updatesCapture, data, kr, opts); err != nil || !reflect.DeepEqual(again, rel) {
		t.Fatalf("memo entry with a wrong span: %+v, %v", again, err)
	}
	if g := memoEntries(t, memo.Dir)[name]; !reflect.DeepEqual(g, entries[name]) {
		t.Errorf("entry with a wrong span not rewritten: %+v", g)
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

// A clear-signed file whose text has dash-escaped lines has no verbatim
// plaintext to point at: it is checked fully every time, and gives the
// same text with a warm memo as without one.
func TestSignatureMemoDashEscaped(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	key := newKey(t, "archive", now.Add(-time.Hour), 0)
	kr := testKeyring(t, key)
	text := []byte("Origin: Test\n-dashed\n")
	data := clearSign(t, key, text, now)
	if !bytes.Contains(data, []byte("\n- -dashed")) {
		t.Fatalf("the signer did not dash-escape:\n%s", data)
	}
	memo := &SignatureMemo{Dir: t.TempDir()}
	for i := range 2 {
		got, g, err := memo.checkClearSigned(kr, data, now)
		if err != nil || !bytes.Equal(bytes.TrimRight(got, "\n"), bytes.TrimRight(text, "\n")) || g.Fingerprint == "" {
			t.Fatalf("check %d: %q, %+v, %v; want %q", i, got, g, err, text)
		}
	}
	if n := len(memoEntries(t, memo.Dir)); n != 0 {
		t.Errorf("memo has %d entries for a dash-escaped file, want none", n)
	}
}
