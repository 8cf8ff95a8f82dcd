package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// Keyring is a set of OpenPGP public keys trusted to sign one source's
// Release files, with the names of where they were read from.
type Keyring struct {
	keys  []*keyChunk
	names []string
	// digest accumulates every input the keys were read from (names and
	// bytes, and fingerprint restrictions): equal digests mean the same
	// trusted keys, so a signature check done against one holds for the other.
	digest hash.Hash
}

// Digest identifies the keyring's content: the SHA-256 over what it was
// read from. A changed key file (a new, revoked or removed key) changes it.
func (k *Keyring) Digest() []byte {
	if k.digest == nil {
		return nil
	}
	return k.digest.Sum(nil)
}

// note adds one input to the digest, length-prefixed so inputs cannot run
// into each other.
func (k *Keyring) note(parts ...string) {
	if k.digest == nil {
		k.digest = sha256.New()
	}
	for _, p := range parts {
		fmt.Fprintf(k.digest, "%d:%s;", len(p), p)
	}
}

// Names lists where the keys came from (files, or "inline key block").
func (k *Keyring) Names() []string { return k.names }

// Len is the number of keys (primary keys with their subkeys).
func (k *Keyring) Len() int { return len(k.keys) }

const armorKeyBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

// LoadKeyring loads the keys a source's Signed-By names. Each entry is a
// keyring file (binary .gpg or ASCII-armored .asc, read under root when
// root is set), an inline ASCII-armored key block, or a key fingerprint.
// Fingerprints restrict the other keys (or, alone, the default keyrings) to
// those whose primary key or a subkey has that fingerprint. Empty signedBy
// means apt's defaults: ROOT/etc/apt/trusted.gpg and
// ROOT/etc/apt/trusted.gpg.d/*.{gpg,asc}; unreadable files there are
// skipped with a warning, as apt does.
func LoadKeyring(root string, signedBy []string, log *slog.Logger) (*Keyring, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kr := &Keyring{}
	var fprs []string
	for _, entry := range signedBy {
		entry = strings.TrimSpace(entry)
		switch {
		case entry == "":
		case strings.Contains(entry, armorKeyBegin):
			keys, err := readArmoredKeys([]byte(unfoldDeb822(entry)))
			if err != nil {
				return nil, fmt.Errorf("read inline Signed-By key block: %w", err)
			}
			kr.note("inline", entry)
			kr.add("inline key block", keys)
		case isFingerprint(entry):
			fprs = append(fprs, strings.ToUpper(strings.TrimSuffix(entry, "!")))
		default:
			if err := kr.addFile(filepath.Join(root, entry)); err != nil {
				return nil, err
			}
		}
	}
	if len(kr.names) == 0 {
		if err := kr.addDefaults(root, log); err != nil {
			return nil, err
		}
	}
	if len(fprs) > 0 {
		kr.note(append([]string{"only"}, fprs...)...)
		kr.keep(fprs)
	}
	if len(kr.keys) == 0 {
		return nil, fmt.Errorf("no usable keys in %s", strings.Join(kr.names, ", "))
	}
	return kr, nil
}

// ReadKeyring reads one keyring file's content (binary or armored); name is
// used in errors and in Names.
func ReadKeyring(name string, data []byte) (*Keyring, error) {
	keys, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", name, err)
	}
	kr := &Keyring{keys: keys, names: []string{name}}
	kr.note("file", name, string(data))
	return kr, nil
}

func (k *Keyring) add(name string, keys []*keyChunk) {
	k.keys = append(k.keys, keys...)
	k.names = append(k.names, name)
}

// addFile reads one keyring file.
func (k *Keyring) addFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read keyring: %w", err)
	}
	keys, err := parseKeys(data)
	if err != nil {
		return fmt.Errorf("read keyring %s: %w", path, err)
	}
	k.note("file", path, string(data))
	k.add(path, keys)
	return nil
}

// addDefaults reads apt's default trusted keyrings under root.
func (k *Keyring) addDefaults(root string, log *slog.Logger) error {
	if root == "" {
		root = "/"
	}
	files := []string{filepath.Join(root, "etc/apt/trusted.gpg")}
	dir := filepath.Join(root, "etc/apt/trusted.gpg.d")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read keyring directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".gpg" || ext == ".asc") {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(names)
	for _, f := range append(files, names...) {
		err := k.addFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			log.Warn("skipping trusted keyring", "file", f, "err", err)
		}
	}
	if len(k.names) == 0 {
		return fmt.Errorf("no keyring in %s or %s", files[0], dir)
	}
	return nil
}

// keep drops keys that match none of the fingerprints.
func (k *Keyring) keep(fprs []string) {
	var kept []*keyChunk
	for _, e := range k.keys {
		if entityMatches(e, fprs) {
			kept = append(kept, e)
		}
	}
	k.keys = kept
	k.names = append(k.names, "restricted to "+strings.Join(fprs, ", "))
}

func entityMatches(c *keyChunk, fprs []string) bool {
	for _, f := range fprs {
		for _, h := range c.fprs {
			if f == h {
				return true
			}
		}
	}
	return false
}

func fingerprint(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// isFingerprint reports whether s is a v4 (40 hex) or v5/v6 (64 hex)
// fingerprint, optionally with apt's "!" exact-subkey suffix.
func isFingerprint(s string) bool {
	s = strings.TrimSuffix(s, "!")
	return isHexLen(s, 40) || isHexLen(s, 64)
}

// entities returns the keys having a primary key or subkey with this key
// ID, reading them now if not yet read. Keys that fail to read (bad
// self-signatures, unsupported algorithms) are left out, as go-crypto's
// ReadKeyRing leaves them out.
func (k *Keyring) entities(id uint64) openpgp.EntityList {
	var out openpgp.EntityList
	for _, c := range k.keys {
		if !c.hasID(id) {
			continue
		}
		if e, err := c.read(); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// readError is why a key with this key ID could not be read, if one could not.
func (k *Keyring) readError(id uint64) error {
	for _, c := range k.keys {
		if c.hasID(id) {
			if _, err := c.read(); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseKeys reads a binary keyring, or one or more ASCII-armored key blocks.
func parseKeys(data []byte) ([]*keyChunk, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return readArmoredKeys(trimmed)
	}
	if len(data) >= 12 && string(data[8:12]) == "KBXf" {
		return nil, errors.New("GnuPG keybox format is not supported; export the keys with gpg --export")
	}
	return splitKeys(data)
}

// readArmoredKeys reads every armored public key block in data.
func readArmoredKeys(data []byte) ([]*keyChunk, error) {
	var all []*keyChunk
	blocks := strings.Split(string(data), armorKeyBegin)
	for _, b := range blocks[1:] {
		block, err := armor.Decode(strings.NewReader(armorKeyBegin + b))
		if err != nil {
			return nil, err
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("armored block of type %q, want %q", block.Type, openpgp.PublicKeyType)
		}
		raw, err := io.ReadAll(block.Body)
		if err != nil {
			return nil, err
		}
		keys, err := splitKeys(raw)
		if err != nil {
			return nil, err
		}
		all = append(all, keys...)
	}
	if len(all) == 0 {
		return nil, errors.New("no public key block found")
	}
	return all, nil
}

// unfoldDeb822 turns a key block as it appears in a deb822 field (lines
// indented, empty lines written as ".") back into plain armor.
func unfoldDeb822(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "." {
			l = ""
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}
