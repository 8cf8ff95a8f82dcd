// Package repotest builds real, OpenPGP-signed apt repositories on disk
// for tests: a generated key, Packages indexes (plain, .gz, .xz), and a
// clear-signed InRelease whose SHA256 list covers them. Serve the tree
// with net/http (http.FileServer) on loopback to test real fetching.
package repotest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ulikunitz/xz"
)

// NewKey generates an Ed25519 signing key that never expires.
func NewKey(name string) (*openpgp.Entity, error) {
	return openpgp.NewEntity(name, "test", strings.ToLower(name)+"@example.invalid",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
}

// WriteKeyring writes the keys' public parts as a binary keyring (.gpg).
func WriteKeyring(path string, keys ...*openpgp.Entity) error {
	var buf bytes.Buffer
	for _, k := range keys {
		if err := k.Serialize(&buf); err != nil {
			return err
		}
	}
	return writeFile(path, buf.Bytes())
}

// Suite is one suite of a generated repository, published under
// dists/CODENAME as Debian does; Name is its Release "Suite" field.
type Suite struct {
	Name, Codename, Origin, Label      string
	NotAutomatic, ButAutomaticUpgrades bool
	Date, ValidUntil                   time.Time // zero Date: now
	// Packages maps "COMPONENT/binary-ARCH" to the Packages text.
	Packages map[string]string
}

// WriteSuite writes dists/CODENAME/ under root: each Packages file plain, .gz
// and .xz, and an InRelease clear-signed by key listing all of them.
func WriteSuite(root string, s Suite, key *openpgp.Entity) error {
	dists := filepath.Join(root, "dists", s.Codename)
	listed := map[string][]byte{}
	var comps, archs []string
	for ca, text := range s.Packages {
		comp, arch, _ := strings.Cut(ca, "/binary-")
		comps, archs = appendNew(comps, comp), appendNew(archs, arch)
		plain := []byte(text)
		gz, err := gzipBytes(plain)
		if err != nil {
			return err
		}
		xzb, err := xzBytes(plain)
		if err != nil {
			return err
		}
		listed[ca+"/Packages"], listed[ca+"/Packages.gz"], listed[ca+"/Packages.xz"] = plain, gz, xzb
	}
	for name, data := range listed {
		if err := writeFile(filepath.Join(dists, name), data); err != nil {
			return err
		}
	}
	signed, err := ClearSign(key, ReleaseText(s, listed, comps, archs))
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dists, "InRelease"), signed)
}

// ReleaseText is the Release body for s listing files (relative to dists/CODENAME).
func ReleaseText(s Suite, files map[string][]byte, comps, archs []string) []byte {
	date := s.Date
	if date.IsZero() {
		date = time.Now()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\n", s.Origin, s.Label, s.Name, s.Codename)
	fmt.Fprintf(&b, "Date: %s\n", date.UTC().Format(time.RFC1123))
	if !s.ValidUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", s.ValidUntil.UTC().Format(time.RFC1123))
	}
	if s.NotAutomatic {
		b.WriteString("NotAutomatic: yes\n")
	}
	if s.ButAutomaticUpgrades {
		b.WriteString("ButAutomaticUpgrades: yes\n")
	}
	sort.Strings(comps)
	sort.Strings(archs)
	fmt.Fprintf(&b, "Architectures: %s\nComponents: %s\nSHA256:\n", strings.Join(archs, " "), strings.Join(comps, " "))
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, " %x %d %s\n", sha256.Sum256(files[n]), len(files[n]), n)
	}
	return []byte(b.String())
}

// ClearSign clear-signs text with key.
func ClearSign(key *openpgp.Entity, text []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, key.PrivateKey, nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(text); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	err := w.Close()
	return buf.Bytes(), err
}

func xzBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	err = w.Close()
	return buf.Bytes(), err
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
