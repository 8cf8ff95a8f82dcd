package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// goodSig is a signature found good: who made it, with which key, and
// for how long the signature itself is valid.
type goodSig struct {
	Fingerprint string    // primary key fingerprint of the signer
	KeyID       uint64    // the key (primary or subkey) that made the signature
	Created     time.Time // the signature's creation time
	Expires     time.Time // zero: the signature does not expire
}

// SignatureMemo remembers, in files under Dir, which (signed text,
// signature, keyring) triples were checked good, so that a scan that finds
// the same InRelease as the last one does not redo the RSA work (about 5 ms
// per signature for Debian's 4096-bit keys; apt itself checks only at
// update time). A hit still requires that the signing key be in the
// keyring, unexpired and unrevoked at the time of checking, and the
// signature unexpired; only the arithmetic over the text is skipped. Any
// change to the text, the signature or the keyring's files is a miss.
//
// Dir must be writable only by whoever may also write the verified cache
// (root for the system cache): an entry there is trusted as a check done.
// A nil *SignatureMemo checks every time.
type SignatureMemo struct {
	Dir string
}

// check verifies sig over signed against kr, consulting and filling the memo.
func (m *SignatureMemo) check(kr *Keyring, signed, sig []byte, now time.Time) (goodSig, error) {
	if m == nil || m.Dir == "" || kr == nil || kr.Digest() == nil {
		return checkSignatures(kr, signed, sig, now)
	}
	path := filepath.Join(m.Dir, memoKey(kr, signed, sig))
	if g, ok := m.lookup(path, kr, now); ok {
		return g, nil
	}
	g, err := checkSignatures(kr, signed, sig, now)
	if err != nil {
		return g, err
	}
	if data, err := json.Marshal(g); err == nil {
		_ = WriteFileAtomic(path, data) // a memo that cannot be written only costs time
		m.prune(time.Now())             // file times are the real clock, not the checking clock
	}
	return g, nil
}

// memoMaxAge is how long an entry is kept: mirrors publish a new InRelease
// at least daily, so older entries are never hit again.
const memoMaxAge = 30 * 24 * time.Hour

// prune removes entries not written for memoMaxAge.
func (m *SignatureMemo) prune(now time.Time) {
	entries, _ := os.ReadDir(m.Dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > memoMaxAge {
			os.Remove(filepath.Join(m.Dir, e.Name()))
		}
	}
}

// lookup returns the remembered good signature at path when it is still
// valid at now against kr.
func (m *SignatureMemo) lookup(path string, kr *Keyring, now time.Time) (goodSig, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return goodSig{}, false
	}
	var g goodSig
	if json.Unmarshal(data, &g) != nil || g.Fingerprint == "" {
		return goodSig{}, false
	}
	if g.Created.After(now) || (!g.Expires.IsZero() && !now.Before(g.Expires)) {
		return goodSig{}, false
	}
	for _, e := range kr.entities(g.KeyID) {
		if fingerprint(e.PrimaryKey.Fingerprint) != g.Fingerprint {
			continue
		}
		if _, ok := e.SigningKeyById(now, g.KeyID); ok {
			return g, true
		}
	}
	return goodSig{}, false
}

// memoKey names the memo entry of one (keyring, text, signature) triple.
func memoKey(kr *Keyring, signed, sig []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "patchloop signature memo v1\x00%x\x00", kr.Digest())
	ts, ss := sha256.Sum256(signed), sha256.Sum256(sig)
	h.Write(ts[:])
	h.Write(ss[:])
	return hex.EncodeToString(h.Sum(nil))
}
