package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// keyChunk is one transferable public key (a primary key with its user
// IDs, subkeys and signatures) as raw packets. Reading an entity checks
// all its self-signatures, which for Debian's keyring of RSA-4096 keys
// costs more than a whole scan; so a keyring is only split into chunks
// when loaded, and a chunk is read into an entity the first time a
// signature by one of its keys is checked.
type keyChunk struct {
	data []byte
	ids  []uint64 // key IDs of the primary key and each subkey
	fprs []string // fingerprints, same order

	once   sync.Once
	entity *openpgp.Entity
	err    error
}

// entity reads the chunk once, checking its self-signatures.
func (c *keyChunk) read() (*openpgp.Entity, error) {
	c.once.Do(func() {
		c.entity, c.err = openpgp.ReadEntity(packet.NewReader(bytes.NewReader(c.data)))
	})
	return c.entity, c.err
}

func (c *keyChunk) hasID(id uint64) bool {
	for _, have := range c.ids {
		if have == id {
			return true
		}
	}
	return false
}

// OpenPGP packet tags used here (RFC 9580 section 5).
const (
	tagPublicKey    = 6
	tagPublicSubkey = 14
)

// splitKeys cuts a binary keyring into one chunk per primary public key,
// reading only packet framing and the key packets themselves (no
// signature checks).
func splitKeys(data []byte) ([]*keyChunk, error) {
	var chunks []*keyChunk
	for off := 0; off < len(data); {
		tag, hdr, body, err := packetFrame(data[off:])
		if err != nil {
			return nil, fmt.Errorf("packet at byte %d: %w", off, err)
		}
		end := off + hdr + body
		switch tag {
		case tagPublicKey, tagPublicSubkey:
			p, err := packet.Read(bytes.NewReader(data[off:end]))
			pk, ok := p.(*packet.PublicKey)
			if err != nil || !ok {
				return nil, fmt.Errorf("key packet at byte %d: %v", off, err)
			}
			if tag == tagPublicKey {
				chunks = append(chunks, &keyChunk{})
			}
			if len(chunks) == 0 {
				return nil, fmt.Errorf("subkey at byte %d before any primary key", off)
			}
			c := chunks[len(chunks)-1]
			c.ids = append(c.ids, pk.KeyId)
			c.fprs = append(c.fprs, fingerprint(pk.Fingerprint))
		default:
			if len(chunks) == 0 {
				return nil, fmt.Errorf("packet with tag %d at byte %d before any public key", tag, off)
			}
		}
		c := chunks[len(chunks)-1]
		c.data = append(c.data, data[off:end]...)
		off = end
	}
	if len(chunks) == 0 {
		return nil, errors.New("no public keys")
	}
	return chunks, nil
}

// packetFrame reads one packet header: the tag, the header's length and
// the body's length. Partial (streamed) lengths never occur in keyrings
// and are refused.
func packetFrame(b []byte) (tag, hdr, body int, err error) {
	if len(b) == 0 || b[0]&0x80 == 0 {
		return 0, 0, 0, errors.New("not an OpenPGP packet")
	}
	short := errors.New("truncated packet header")
	if b[0]&0x40 != 0 { // new format
		tag = int(b[0] & 0x3f)
		if len(b) < 2 {
			return 0, 0, 0, short
		}
		switch l := int(b[1]); {
		case l < 192:
			hdr, body = 2, l
		case l < 224:
			if len(b) < 3 {
				return 0, 0, 0, short
			}
			hdr, body = 3, (l-192)<<8+int(b[2])+192
		case l == 255:
			if len(b) < 6 {
				return 0, 0, 0, short
			}
			hdr, body = 6, int(binary.BigEndian.Uint32(b[2:6]))
		default:
			return 0, 0, 0, errors.New("partial body length in a keyring")
		}
	} else { // old format
		tag = int(b[0]>>2) & 0xf
		n := [4]int{1, 2, 4, 0}[b[0]&3]
		if n == 0 {
			return 0, 0, 0, errors.New("indeterminate packet length in a keyring")
		}
		if len(b) < 1+n {
			return 0, 0, 0, short
		}
		for _, c := range b[1 : 1+n] {
			body = body<<8 | int(c)
		}
		hdr = 1 + n
	}
	if body < 0 || hdr+body > len(b) {
		return 0, 0, 0, errors.New("packet runs past the end of the keyring")
	}
	return tag, hdr, body, nil
}
