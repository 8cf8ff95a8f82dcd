package repo

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const (
	updatesCapture  = "testdata/deb.debian.org_debian_dists_bookworm-updates_InRelease"
	securityCapture = "testdata/deb.debian.org_debian-security_dists_bookworm-security_InRelease"
	debianKeyring   = "testdata/debian-archive-keyring.gpg"

	bookwormArchiveKey  = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
	trixieArchiveKey    = "04B54C3CDCA79751B16BC6B5225629DF75B188BD"
	bullseyeSecurityKey = "AC530D520F2F3269F5E98313A48449044AAD5C5D"
	bookwormSecurityKey = "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func debianKeys(t testing.TB) *Keyring {
	t.Helper()
	kr, err := LoadKeyring("", []string{debianKeyring}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestVerifyRealInRelease(t *testing.T) {
	kr := debianKeys(t)
	updatesDate := time.Date(2026, 11, 23, 8, 10, 14, 0, time.UTC)
	securityDate := time.Date(2026, 11, 23, 11, 22, 37, 0, time.UTC)
	tests := []struct {
		file       string
		now        time.Time
		signer     string
		codename   string
		entry      string
		hash       string
		size       int64
		validUntil time.Time
	}{
		{updatesCapture, updatesDate.Add(time.Hour), bookwormArchiveKey, "bookworm-updates", "main/binary-amd64/Packages",
			"80a1f6ee524222c49f230fc5700d00f946d0a47eb5258180106dd03df126e16a", 32757, time.Time{}},
		// In 2032 the bookworm key has expired; the trixie signature still holds.
		{updatesCapture, time.Date(2032, 6, 1, 0, 0, 0, 0, time.UTC), trixieArchiveKey, "bookworm-updates", "main/binary-amd64/Packages.xz",
			"87e7e94047fb7fb6f4ceecc7022d4bee55b66031cc2a7666d3196f3e0aabb846", 6924, time.Time{}},
		{securityCapture, securityDate.Add(time.Hour), bullseyeSecurityKey, "bookworm-security", "main/binary-amd64/Packages",
			"6a76270e9f19326bc8681136eba244cc44c18da5f16a5f0d427189e16f24bac1", 2526003, securityDate.Add(7 * 24 * time.Hour)},
		{securityCapture, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), bookwormSecurityKey, "bookworm-security", "main/binary-amd64/Packages.xz",
			"36712c7d22dfc0a49c79e3e7a22e7f545a50bbf09d6111fe0ce4149addd93cad", 378656, securityDate.Add(7 * 24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.file+"@"+tc.now.Format("2006"), func(t *testing.T) {
			opts := CheckOptions{Now: tc.now, CheckDate: true, CheckValidUntil: tc.now.Year() == 2026}
			rel, err := VerifyInRelease(tc.file, readFile(t, tc.file), kr, opts)
			if err != nil {
				t.Fatal(err)
			}
			if rel.Signer != tc.signer || rel.Codename != tc.codename || !rel.AcquireByHash || rel.Origin != "Debian" {
				t.Errorf("got signer %s codename %s by-hash %v origin %s", rel.Signer, rel.Codename, rel.AcquireByHash, rel.Origin)
			}
			if got := rel.Files[tc.entry]; got != (FileHash{tc.hash, tc.size}) {
				t.Errorf("%s = %+v", tc.entry, got)
			}
			if !rel.ValidUntil.Equal(tc.validUntil) || !rel.HasComponent("main") || !rel.HasArch("amd64") {
				t.Errorf("Valid-Until %v, main %v, amd64 %v", rel.ValidUntil, rel.HasComponent("main"), rel.HasArch("amd64"))
			}
		})
	}
}

func TestVerifyRealInReleaseRefused(t *testing.T) {
	kr := debianKeys(t)
	after := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	_, err := VerifyInRelease(securityCapture, readFile(t, securityCapture), kr, CheckOptions{Now: after, CheckValidUntil: true})
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), securityCapture) {
		t.Errorf("past Valid-Until: err = %v", err)
	}
	_, err = VerifyInRelease(updatesCapture, readFile(t, updatesCapture), kr, CheckOptions{Now: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("all keys expired: err = %v", err)
	}
	other := testKeyring(t, newKey(t, "Other", testNow, 0))
	_, err = VerifyInRelease(updatesCapture, readFile(t, updatesCapture), other, CheckOptions{Now: after})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "6ED0E7B82643E131") {
		t.Errorf("keyring without Debian keys: err = %v", err)
	}
	tampered := bytes.Replace(readFile(t, updatesCapture), []byte("Origin: Debian"), []byte("Origin: Debiam"), 1)
	if _, err = VerifyInRelease(updatesCapture, tampered, kr, CheckOptions{Now: after}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered capture: err = %v", err)
	}
}

// sampleRelease is a minimal valid Release text.
func sampleRelease(extra string) []byte {
	return []byte("Origin: Test\nSuite: test\nCodename: test\nDate: Sat, 16 May 2026 09:14:41 UTC\n" + extra +
		"SHA256:\n " + strings.Repeat("ab", 32) + " 10 main/binary-amd64/Packages\n")
}

func TestVerifyInReleaseGenerated(t *testing.T) {
	created := testNow.Add(-48 * time.Hour)
	good := newKey(t, "Good", created, 0)
	other := newKey(t, "Other", created, 0)
	shortLived := newKey(t, "Short", created, time.Hour)
	revoked := newKey(t, "Revoked", created, 0)
	must(t, revoked.RevokeKey(packet.KeyCompromised, "test", &packet.Config{Time: clockAt(testNow.Add(-time.Hour))}))
	kr := testKeyring(t, good, shortLived, revoked)
	text := sampleRelease("Valid-Until: Sun, 17 May 2026 09:14:41 UTC\n")
	signed := clearSign(t, good, text, testNow)
	early := clearSign(t, good, text, created.Add(time.Minute))
	now := testNow.Add(time.Minute)

	tests := []struct {
		name string
		data []byte
		opts CheckOptions
		want error
	}{
		{"good", signed, CheckOptions{Now: now, CheckValidUntil: true, CheckDate: true}, nil},
		{"wrong key", clearSign(t, other, text, testNow), CheckOptions{Now: now}, ErrUntrusted},
		{"tampered body", bytes.Replace(signed, []byte("Suite: test"), []byte("Suite: tesT"), 1), CheckOptions{Now: now}, ErrBadSignature},
		{"missing signature", text, CheckOptions{Now: now}, ErrUnsigned},
		{"expired key", clearSign(t, shortLived, text, created.Add(time.Minute)), CheckOptions{Now: now}, ErrUntrusted},
		{"revoked key", clearSign(t, revoked, text, testNow.Add(-2*time.Hour)), CheckOptions{Now: now}, ErrUntrusted},
		{"valid-until past", signed, CheckOptions{Now: testNow.Add(48 * time.Hour), CheckValidUntil: true}, ErrExpired},
		{"valid-until past, unchecked", signed, CheckOptions{Now: testNow.Add(48 * time.Hour)}, nil},
		{"signature from the future", signed, CheckOptions{Now: testNow.Add(-time.Hour)}, ErrUntrusted},
		{"data before", append([]byte("Origin: Evil\n"), signed...), CheckOptions{Now: now}, ErrUnsigned},
		{"data after", append(append([]byte{}, signed...), "\nOrigin: Evil\n"...), CheckOptions{Now: now}, ErrBadSignature},
		{"signature cut", signed[:len(signed)-40], CheckOptions{Now: now}, ErrBadSignature},
		{"unknown then good", withSignatures(t, signed, sigPackets(t, clearSign(t, other, text, testNow)), sigPackets(t, signed)), CheckOptions{Now: now}, nil},
		{"good then bad", withSignatures(t, signed, sigPackets(t, early), sigPackets(t, clearSign(t, shortLived, []byte("other"), created.Add(time.Minute)))), CheckOptions{Now: created.Add(2 * time.Minute)}, ErrBadSignature},
		{"good then expired", withSignatures(t, signed, sigPackets(t, signed), sigPackets(t, clearSign(t, shortLived, text, created.Add(time.Minute)))), CheckOptions{Now: now}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := VerifyInRelease("InRelease", tc.data, kr, tc.opts)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && (rel.Signer != fingerprint(good.PrimaryKey.Fingerprint) || rel.Origin != "Test") {
				t.Errorf("signer %s origin %q", rel.Signer, rel.Origin)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "InRelease") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestVerifyDateInFuture(t *testing.T) {
	key := newKey(t, "Good", testNow.Add(-48*time.Hour), 0)
	text := []byte(strings.Replace(string(sampleRelease("")), "16 May 2026", "18 May 2026", 1))
	signed := clearSign(t, key, text, testNow)
	opts := CheckOptions{Now: testNow.Add(time.Hour), CheckDate: true}
	if _, err := VerifyInRelease("InRelease", signed, testKeyring(t, key), opts); !errors.Is(err, ErrNotYetValid) {
		t.Errorf("err = %v, want ErrNotYetValid", err)
	}
	opts.CheckDate = false
	if _, err := VerifyInRelease("InRelease", signed, testKeyring(t, key), opts); err != nil {
		t.Errorf("unchecked: %v", err)
	}
}

func TestVerifyDetached(t *testing.T) {
	key := newKey(t, "Good", testNow.Add(-time.Hour), 0)
	other := newKey(t, "Other", testNow.Add(-time.Hour), 0)
	kr := testKeyring(t, key)
	text := sampleRelease("")
	armored := detachSign(t, key, text, testNow)
	var binary bytes.Buffer
	must(t, openpgp.DetachSign(&binary, key, bytes.NewReader(text), &packet.Config{Time: clockAt(testNow)}))
	opts := CheckOptions{Now: testNow.Add(time.Minute)}
	tests := []struct {
		name      string
		text, sig []byte
		want      error
	}{
		{"armored", text, armored, nil},
		{"binary", text, binary.Bytes(), nil},
		{"tampered", append(append([]byte{}, text...), "Label: x\n"...), armored, ErrBadSignature},
		{"other key", text, detachSign(t, other, text, testNow), ErrUntrusted},
		{"empty", text, nil, ErrUnsigned},
		{"sha512", text, detachSignHash(t, key, text, crypto.SHA512), nil},
		{"weak digest", text, detachSignHash(t, key, text, crypto.SHA1), ErrUntrusted},
		{"garbage", text, []byte("-----BEGIN PGP SIGNATURE-----\n\nxx\n"), ErrBadSignature},
	}
	for _, tc := range tests {
		_, err := VerifyRelease("Release", tc.text, tc.sig, kr, opts)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if tc.name == "weak digest" && err != nil && !strings.Contains(err.Error(), "weak digest SHA-1") {
			t.Errorf("weak digest: err = %v", err)
		}
	}
}

func TestVerifyInReleaseErrorLine(t *testing.T) {
	key := newKey(t, "Good", testNow.Add(-time.Hour), 0)
	text := []byte("Origin: Test\nDate: Sat, 16 May 2026 09:14:41 CET\nSHA256:\n")
	_, err := VerifyInRelease("x_InRelease", clearSign(t, key, text, testNow), testKeyring(t, key), CheckOptions{Now: testNow})
	// BEGIN line, Hash: header, blank line, then Origin on line 4, Date on 5.
	if err == nil || !strings.Contains(err.Error(), "parse x_InRelease line 5: Date:") {
		t.Fatalf("err = %v", err)
	}
}

// detachSignHash makes a binary detached signature with a chosen digest,
// which go-crypto's high-level API would not use.
func detachSignHash(t *testing.T, key *openpgp.Entity, text []byte, h crypto.Hash) []byte {
	t.Helper()
	noSalt := false // the salt notation needs a hash go-crypto supports for v6
	cfg := &packet.Config{Time: clockAt(testNow), NonDeterministicSignaturesViaNotation: &noSalt}
	sig := &packet.Signature{
		Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: key.PrivateKey.PubKeyAlgo, Hash: h,
		CreationTime: testNow, IssuerKeyId: &key.PrivateKey.KeyId,
	}
	hasher, err := sig.PrepareSign(cfg)
	must(t, err)
	hasher.Write(text)
	must(t, sig.Sign(hasher, key.PrivateKey, cfg))
	var buf bytes.Buffer
	must(t, sig.Serialize(&buf))
	return buf.Bytes()
}

// sigPackets returns the raw signature packets of a clear-signed message.
func sigPackets(t *testing.T, signed []byte) []byte {
	t.Helper()
	b, _ := clearsign.Decode(signed)
	if b == nil {
		t.Fatal("not clear-signed")
	}
	raw, err := io.ReadAll(b.ArmoredSignature.Body)
	must(t, err)
	return raw
}

// withSignatures replaces the signature block of signed by the packets given.
func withSignatures(t *testing.T, signed []byte, packets ...[]byte) []byte {
	t.Helper()
	i := bytes.Index(signed, []byte("-----BEGIN PGP SIGNATURE-----"))
	var buf bytes.Buffer
	buf.Write(signed[:i])
	w, err := armor.Encode(&buf, openpgp.SignatureType, nil)
	must(t, err)
	for _, p := range packets {
		_, err = w.Write(p)
		must(t, err)
	}
	must(t, w.Close())
	buf.WriteString("\n")
	return buf.Bytes()
}
