package repo

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Errors that verification failures wrap; test them with errors.Is.
var (
	// ErrUnsigned: an InRelease that is not clear-signed, or a Release without Release.gpg.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature: a signature by a known key does not match the text,
	// or the signature data is malformed.
	ErrBadSignature = errors.New("bad signature")
	// ErrUntrusted: no signature by a key of the keyring that is valid now
	// (unknown key, expired or revoked key, expired signature).
	ErrUntrusted = errors.New("no valid signature by a trusted key")
	// ErrExpired: Valid-Until is in the past.
	ErrExpired = errors.New("expired")
	// ErrNotYetValid: Date is in the future.
	ErrNotYetValid = errors.New("not valid yet")
)

// CheckOptions says how strictly a Release is checked.
type CheckOptions struct {
	Now             time.Time // the clock for key expiry and the date checks
	CheckValidUntil bool      // refuse a Valid-Until in the past (Acquire::Check-Valid-Until)
	CheckDate       bool      // refuse a Date in the future (Acquire::Check-Date)
	// Memo, when set, remembers signatures found good so that the same
	// file checked against the same keyring again skips the public-key
	// arithmetic; key expiry and revocation are still checked at Now.
	Memo *SignatureMemo
}

// withDefaults fills in a zero Now with the current time.
func (o CheckOptions) withDefaults() CheckOptions {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// VerifyInRelease checks the clear-signed InRelease data against kr and
// returns its parsed signed text; name is used in errors. Nothing outside
// the signed text is parsed, and any data around the signed block is
// refused.
func VerifyInRelease(name string, data []byte, kr *Keyring, opts CheckOptions) (*Release, error) {
	opts = opts.withDefaults()
	text, signer, err := opts.Memo.checkClearSigned(kr, data, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rel, err := parseReleaseAt(name, text, signedTextStart(data))
	if err != nil {
		return nil, err
	}
	rel.Signer = signer.Fingerprint
	return rel, checkDates(name, rel, opts)
}

// VerifyRelease checks a Release file against its detached signature
// (Release.gpg, armored or binary) and returns it parsed.
func VerifyRelease(name string, release, sig []byte, kr *Keyring, opts CheckOptions) (*Release, error) {
	opts = opts.withDefaults()
	if len(bytes.TrimSpace(sig)) == 0 {
		return nil, fmt.Errorf("%s: empty signature file: %w", name, ErrUnsigned)
	}
	raw := sig
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN")) {
		b, err := armor.Decode(bytes.NewReader(sig))
		if err != nil || b.Type != openpgp.SignatureType {
			return nil, fmt.Errorf("%s.gpg: not an armored signature: %w", name, ErrBadSignature)
		}
		if raw, err = io.ReadAll(b.Body); err != nil {
			return nil, fmt.Errorf("%s.gpg: %w: %v", name, ErrBadSignature, err)
		}
	}
	signer, err := opts.Memo.check(kr, release, raw, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rel, err := ParseRelease(name, release)
	if err != nil {
		return nil, err
	}
	rel.Signer = signer.Fingerprint
	return rel, checkDates(name, rel, opts)
}

// parseUnverified parses an InRelease or Release without checking any
// signature; only for sources the operator marked trusted=yes.
func parseUnverified(name string, data []byte, opts CheckOptions) (*Release, error) {
	opts = opts.withDefaults()
	text, first := data, 1
	if block, err := decodeClearSigned(data); err == nil {
		text, first = block.Plaintext, signedTextStart(data)
	}
	rel, err := parseReleaseAt(name, text, first)
	if err != nil {
		return nil, err
	}
	return rel, checkDates(name, rel, opts)
}

// decodeClearSigned splits a clear-signed file, refusing data outside the
// signed block (apt refuses it too: it could be mistaken for signed text).
func decodeClearSigned(data []byte) (*clearsign.Block, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, fmt.Errorf("not a clear-signed file: %w", ErrUnsigned)
	}
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("malformed clear-signed file: %w", ErrBadSignature)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("data after the signature: %w", ErrBadSignature)
	}
	return block, nil
}

// checkSignatures checks each signature in sig (raw packets) over signed.
// As apt does, it accepts if at least one signature is good and made by a
// key of kr valid at now, and refuses if any signature by a known key is bad.
// It returns the accepted signature.
func checkSignatures(kr *Keyring, signed, sig []byte, now time.Time) (goodSig, error) {
	var good goodSig
	sigs, err := signatureIssuers(sig)
	if err != nil {
		return good, err
	}
	if kr == nil || kr.Len() == 0 {
		return good, fmt.Errorf("empty keyring: %w", ErrUntrusted)
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	var problems []string
	for _, s := range sigs {
		id := s.id
		if isWeakHash(s.hash) {
			problems = append(problems, fmt.Sprintf("key %016X signed with weak digest %v", id, s.hash))
			continue
		}
		list := kr.entities(id)
		if err := kr.readError(id); len(list) == 0 && err != nil {
			problems = append(problems, fmt.Sprintf("key %016X in %s is unusable: %v", id, strings.Join(kr.names, ", "), err))
			continue
		}
		if len(list.KeysByIdUsage(id, packet.KeyFlagSign)) == 0 {
			problems = append(problems, fmt.Sprintf("key %016X is not in %s", id, strings.Join(kr.names, ", ")))
			continue
		}
		only := keyringByID{list: list, id: id}
		ps, signer, err := openpgp.VerifyDetachedSignature(only, bytes.NewReader(signed), bytes.NewReader(sig), cfg)
		switch {
		case err == nil:
			if good.Fingerprint == "" {
				good = goodSig{Fingerprint: fingerprint(signer.PrimaryKey.Fingerprint), KeyID: id, Created: ps.CreationTime}
				if ps.SigLifetimeSecs != nil && *ps.SigLifetimeSecs != 0 {
					good.Expires = ps.CreationTime.Add(time.Duration(*ps.SigLifetimeSecs) * time.Second)
				}
			}
		case isKeyValidityError(err):
			problems = append(problems, fmt.Sprintf("key %016X: %v", id, err))
		default:
			return goodSig{}, fmt.Errorf("signature by key %016X: %w: %v", id, ErrBadSignature, err)
		}
	}
	if good.Fingerprint == "" {
		return good, fmt.Errorf("%w (%s)", ErrUntrusted, strings.Join(problems, "; "))
	}
	return good, nil
}

// isKeyValidityError reports whether err says the signature is intact but
// its key or the signature itself is not valid at the time of checking.
func isKeyValidityError(err error) bool {
	return errors.Is(err, pgperrors.ErrKeyExpired) || errors.Is(err, pgperrors.ErrSignatureExpired) ||
		errors.Is(err, pgperrors.ErrKeyRevoked)
}

// isWeakHash reports digests apt no longer accepts in signatures.
func isWeakHash(h crypto.Hash) bool {
	return h == crypto.MD5 || h == crypto.SHA1 || h == crypto.RIPEMD160
}

// sigInfo is what checkSignatures needs to know of one signature packet.
type sigInfo struct {
	id   uint64
	hash crypto.Hash
}

// signatureIssuers lists the signature packets in sig by distinct issuer
// key ID, in order.
func signatureIssuers(sig []byte) ([]sigInfo, error) {
	var ids []sigInfo
	seen := map[uint64]bool{}
	r := packet.NewReader(bytes.NewReader(sig))
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read signature: %w: %v", ErrBadSignature, err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("non-signature packet in signature: %w", ErrBadSignature)
		}
		if s.IssuerKeyId == nil {
			return nil, fmt.Errorf("signature without issuer: %w", ErrBadSignature)
		}
		if id := *s.IssuerKeyId; !seen[id] {
			seen[id] = true
			ids = append(ids, sigInfo{id: id, hash: s.Hash})
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no signature: %w", ErrUnsigned)
	}
	return ids, nil
}

// checkDates applies the Valid-Until and Date checks.
func checkDates(name string, rel *Release, opts CheckOptions) error {
	now := opts.Now
	if opts.CheckValidUntil && !rel.ValidUntil.IsZero() && now.After(rel.ValidUntil) {
		return fmt.Errorf("%s: %w: Valid-Until %s is in the past (now %s)", name, ErrExpired,
			rel.ValidUntil.Format(time.RFC1123), now.UTC().Format(time.RFC1123))
	}
	if opts.CheckDate && rel.Date.After(now) {
		return fmt.Errorf("%s: %w: Date %s is in the future (now %s)", name, ErrNotYetValid,
			rel.Date.Format(time.RFC1123), now.UTC().Format(time.RFC1123))
	}
	return nil
}

// keyringByID is a KeyRing that shows only the keys with one key ID, so
// that go-crypto checks the signature made by that key and no other.
type keyringByID struct {
	list openpgp.EntityList
	id   uint64
}

func (k keyringByID) KeysById(id uint64) []openpgp.Key {
	if id != k.id {
		return nil
	}
	return k.list.KeysById(id)
}

func (k keyringByID) KeysByIdUsage(id uint64, usage byte) []openpgp.Key {
	if id != k.id {
		return nil
	}
	return k.list.KeysByIdUsage(id, usage)
}

func (k keyringByID) DecryptionKeys() []openpgp.Key { return nil }
