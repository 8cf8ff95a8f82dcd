package repo

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

const hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestParseRelease(t *testing.T) {
	text := `Origin: Debian
Label: Debian-Security
Suite: oldstable-security
Version: 12
Codename: bookworm-security
Date: Sat, 16 May 2026 09:14:41 UTC
Valid-Until: Sat, 23 May 2026 09:14:41 +0200
NotAutomatic: yes
ButAutomaticUpgrades: yes
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: amd64 arm64
Components: updates/main updates/contrib
Description: Debian 12 - Security Updates
MD5Sum:
 0123456789abcdef0123456789abcdef 12 main/binary-amd64/Packages
SHA256:
 ` + hashA + `       12 main/binary-amd64/Packages
 ` + strings.ToUpper(hashA) + ` 3 main/binary-amd64/Packages.xz
`
	rel, err := ParseRelease("Release", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Release{
		Origin: "Debian", Label: "Debian-Security", Suite: "oldstable-security", Codename: "bookworm-security", Version: "12",
		Date:         time.Date(2026, 5, 16, 9, 14, 41, 0, time.UTC),
		ValidUntil:   time.Date(2026, 5, 23, 7, 14, 41, 0, time.UTC),
		NotAutomatic: true, ButAutomaticUpgrades: true, AcquireByHash: true, NoArchAllPackages: true,
	}
	got := *rel
	got.Files, got.Architectures, got.Components = nil, nil, nil
	if got.Origin != want.Origin || got.Label != want.Label || got.Suite != want.Suite || got.Codename != want.Codename ||
		got.Version != want.Version || !got.Date.Equal(want.Date) || !got.ValidUntil.Equal(want.ValidUntil) ||
		got.NotAutomatic != want.NotAutomatic || got.ButAutomaticUpgrades != want.ButAutomaticUpgrades ||
		got.AcquireByHash != want.AcquireByHash || got.NoArchAllPackages != want.NoArchAllPackages {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if len(rel.Files) != 2 || rel.Files["main/binary-amd64/Packages.xz"] != (FileHash{hashA, 3}) {
		t.Errorf("files = %v", rel.Files)
	}
	if !rel.HasComponent("main") || !rel.HasComponent("updates/main") || rel.HasComponent("non-free") {
		t.Error("HasComponent: updates/main must declare main")
	}
	if strings.Join(rel.Architectures, ",") != "amd64,arm64" {
		t.Errorf("architectures = %v", rel.Architectures)
	}
}

func TestParseReleaseErrors(t *testing.T) {
	ok := "SHA256:\n " + hashA + " 1 a\n"
	tests := []struct {
		name, text, want string
	}{
		{"no colon", "Origin: x\nbogus line\n" + ok, "line 2: expected"},
		{"continuation first", " leading\n" + ok, "line 1: continuation"},
		{"duplicate", "Suite: a\nsuite: b\n" + ok, "line 2: duplicate field suite"},
		{"second paragraph", ok + "\nOrigin: x\n", "line 4: unexpected second paragraph"},
		{"bad date", "Date: 2026-05-16\n" + ok, "line 1: Date: date"},
		{"alphabetic zone", "Date: Sat, 16 May 2026 09:14:41 CEST\n" + ok, "line 1: Date: date"},
		{"bad valid-until", "Valid-Until: tomorrow\n" + ok, "line 1: Valid-Until"},
		{"bad bool", "Acquire-By-Hash: maybe\n" + ok, "line 1: Acquire-By-Hash: want yes or no"},
		{"short hash", "SHA256:\n abc 1 a\n", "line 1: SHA256: entry 1: bad SHA256"},
		{"bad size", "SHA256:\n " + hashA + " -1 a\n", "entry 1: bad size"},
		{"two fields", "SHA256:\n " + hashA + " 1\n", "entry 1: expected"},
		{"duplicate path", "SHA256:\n " + hashA + " 1 a\n " + hashA + " 1 a\n", "entry 2: a listed twice"},
		{"value on first line", "SHA256: " + hashA + "\n", "line 1: SHA256: expected the list"},
		{"no SHA256", "Origin: x\n", "no SHA256 field"},
	}
	for _, tc := range tests {
		_, err := ParseRelease("dists/x/Release", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parse dists/x/Release") {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestParseReleaseDates(t *testing.T) {
	want := time.Date(2026, 5, 6, 9, 14, 41, 0, time.UTC)
	for _, s := range []string{
		"Wed, 06 May 2026 09:14:41 UTC",
		"Wed, 6 May 2026 09:14:41 UTC",
		"Wed, 06 May 2026 09:14:41 GMT",
		"Wed, 06 May 2026 09:14:41 +0000",
		"Wed, 06 May 2026 11:14:41 +0200",
		"06 May 2026 09:14:41 UTC",
	} {
		got, err := parseReleaseDate(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseReleaseDate(%q) = %v, %v", s, got, err)
		}
	}
}

func TestSignedTextStart(t *testing.T) {
	for _, tc := range []struct {
		data string
		want int
	}{
		{"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: x\n", 4},
		{"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\nHash: SHA512\n\nOrigin: x\n", 5},
		{"\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: x\n", 5},
		{"Origin: x\n", 1},
	} {
		if got := signedTextStart([]byte(tc.data)); got != tc.want {
			t.Errorf("signedTextStart(%q) = %d, want %d", tc.data, got, tc.want)
		}
	}
}

// FuzzParseRelease checks that the parser never panics, and that what it
// accepts is well-formed: every entry a 64-digit lower-case hash and a
// non-negative size, dates in UTC.
func FuzzParseRelease(f *testing.F) {
	// The head of each real capture (whole ones are so large that the
	// fuzzer spends its time minimizing them).
	for _, p := range []string{updatesCapture, securityCapture} {
		if b, _ := clearsign.Decode(readFile(f, p)); b != nil {
			lines := bytes.SplitAfter(b.Plaintext, []byte("\n"))
			f.Add(bytes.Join(lines[:min(len(lines), 24)], nil))
		}
	}
	f.Add([]byte("Origin: x\nDate: Sat, 16 May 2026 09:14:41 UTC\nSHA256:\n " + hashA + " 1 a\n"))
	f.Add([]byte("SHA256:\n\n Origin: x\n"))
	f.Add([]byte("Valid-Until: Sat, 16 May 2026 09:14:41 -0000\r\nSHA256:\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rel, err := ParseRelease("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse fuzz") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for name, fh := range rel.Files {
			if !isHexLen(fh.SHA256, 64) || strings.ToLower(fh.SHA256) != fh.SHA256 || fh.Size < 0 || name == "" {
				t.Fatalf("bad entry %q %+v", name, fh)
			}
		}
		for _, d := range []time.Time{rel.Date, rel.ValidUntil} {
			if d.Location() != time.UTC {
				t.Fatalf("date %v not in UTC", d)
			}
		}
	})
}
