package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

// memoEntry is what the memo keeps of one check found good.
type memoEntry struct {
	goodSig
	// Text, for a clear-signed file remembered whole, is where in the file
	// its signed plaintext lies (verbatim: no dash-escaped lines).
	Text *textSpan `json:",omitempty"`
}

// textSpan is a byte range of a file and the SHA-256 of its bytes.
type textSpan struct {
	Start, End int
	SHA256     string
}

// in returns the span's bytes of data when they are the remembered ones.
func (s *textSpan) in(data []byte) ([]byte, bool) {
	if s == nil || s.Start < 0 || s.End < s.Start || s.End > len(data) {
		return nil, false
	}
	text := data[s.Start:s.End]
	sum := sha256.Sum256(text)
	return text, hex.EncodeToString(sum[:]) == s.SHA256
}

// SignatureMemo remembers, in files under Dir, which (signed text,
// signature, keyring) triples were checked good, so that a scan that finds
// the same InRelease as the last one does not redo the RSA work (about 5 ms
// per signature for Debian's 4096-bit keys; apt itself checks only at
// update time). A clear-signed InRelease is remembered whole, with where
// its plaintext lies, so that a hit also skips decoding the clear-signed
// armour. A hit still requires that the signing key be in the keyring,
// unexpired and unrevoked at the time of checking, and the signature
// unexpired; only the work over the text is skipped. Any change to the
// file, the text, the signature or the keyring's files is a miss.
//
// Dir must be writable only by whoever may also write the verified cache
// (root for the system cache): an entry there is trusted as a check done.
// A nil *SignatureMemo checks every time.
type SignatureMemo struct {
	Dir string
}

// enabled reports whether the memo may be used with kr.
func (m *SignatureMemo) enabled(kr *Keyring) bool {
	return m != nil && m.Dir != "" && kr != nil && kr.Digest() != nil
}

// check verifies sig over signed against kr, consulting and filling the memo.
func (m *SignatureMemo) check(kr *Keyring, signed, sig []byte, now time.Time) (goodSig, error) {
	if !m.enabled(kr) {
		return checkSignatures(kr, signed, sig, now)
	}
	path := filepath.Join(m.Dir, memoKey(kr, signed, sig))
	if e, ok := m.lookup(path, kr, now); ok {
		return e.goodSig, nil
	}
	g, err := checkSignatures(kr, signed, sig, now)
	if err != nil {
		return g, err
	}
	m.store(path, memoEntry{goodSig: g})
	return g, nil
}

// checkClearSigned verifies the clear-signed file data against kr and
// returns its plaintext, consulting and filling the memo with the file
// whole.
func (m *SignatureMemo) checkClearSigned(kr *Keyring, data []byte, now time.Time) ([]byte, goodSig, error) {
	var path string
	if m.enabled(kr) {
		path = filepath.Join(m.Dir, fileMemoKey(kr, data))
		if e, ok := m.lookup(path, kr, now); ok {
			if text, ok := e.Text.in(data); ok {
				return text, e.goodSig, nil
			}
		}
	}
	block, err := decodeClearSigned(data)
	if err != nil {
		return nil, goodSig{}, err
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, goodSig{}, fmt.Errorf("read signature: %w: %v", ErrBadSignature, err)
	}
	g, err := checkSignatures(kr, block.Bytes, sig, now)
	if err != nil {
		return nil, g, err
	}
	// Remember where the plaintext lies when it is there verbatim (it is
	// not when lines were dash-escaped: those files are checked each time).
	if i := bytes.Index(data, block.Plaintext); path != "" && i >= 0 && len(block.Plaintext) > 0 {
		sum := sha256.Sum256(block.Plaintext)
		m.store(path, memoEntry{goodSig: g, Text: &textSpan{Start: i, End: i + len(block.Plaintext), SHA256: hex.EncodeToString(sum[:])}})
	}
	return block.Plaintext, g, nil
}

// store writes one entry; a memo that cannot be written only costs time.
func (m *SignatureMemo) store(path string, e memoEntry) {
	if data, err := json.Marshal(e); err == nil {
		_ = WriteFileAtomic(path, data)
		m.prune(time.Now()) // file times are the real clock, not the checking clock
	}
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

// lookup returns the remembered entry at path when its good signature is
// still valid at now against kr.
func (m *SignatureMemo) lookup(path string, kr *Keyring, now time.Time) (memoEntry, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return memoEntry{}, false
	}
	var me memoEntry
	if json.Unmarshal(data, &me) != nil || me.Fingerprint == "" {
		return memoEntry{}, false
	}
	if me.Created.After(now) || (!me.Expires.IsZero() && !now.Before(me.Expires)) {
		return memoEntry{}, false
	}
	for _, e := range kr.entities(me.KeyID) {
		if fingerprint(e.PrimaryKey.Fingerprint) != me.Fingerprint {
			continue
		}
		if _, ok := e.SigningKeyById(now, me.KeyID); ok {
			return me, true
		}
	}
	return memoEntry{}, false
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

// fileMemoKey names the memo entry of one (keyring, clear-signed file) pair.
func fileMemoKey(kr *Keyring, data []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "patchloop clear-signed file memo v1\x00%x\x00", kr.Digest())
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}
