package rpm

// The rpm header as the rpm database stores it, one per installed package
// (a "header blob" without the 8-byte magic of a .rpm file), following
// rpm 4.18 lib/header.c (hdrblobInit, hdrblobVerifyInfo):
//
//	il uint32, dl uint32               big-endian, always
//	il index entries of 16 bytes:      tag, type, offset, count
//	dl bytes of data
//
// Only the few tags inventory needs are read, and every offset is checked
// against the data, so a corrupt record is an error, never a panic.

import (
	"encoding/binary"
	"fmt"
)

const (
	tagName      = 1000
	tagVersion   = 1001
	tagRelease   = 1002
	tagEpoch     = 1003
	tagArch      = 1022
	tagSourceRPM = 1044

	typeInt32  = 4
	typeString = 6

	// The limits rpm puts on a header (HEADER_TAGS_MAX, HEADER_DATA_MAX).
	maxHeaderTags = 0xffff
	maxHeaderData = 0x0fffffff
)

// parseHeader reads the package fields out of one header blob.
func parseHeader(blob []byte) (Package, error) {
	if len(blob) < 8 {
		return Package{}, fmt.Errorf("header of %d bytes is too short", len(blob))
	}
	il, dl := binary.BigEndian.Uint32(blob), binary.BigEndian.Uint32(blob[4:])
	if il < 1 || il > maxHeaderTags || dl > maxHeaderData {
		return Package{}, fmt.Errorf("header has %d tags and %d bytes of data, out of range", il, dl)
	}
	if want := 8 + 16*uint64(il) + uint64(dl); uint64(len(blob)) != want {
		return Package{}, fmt.Errorf("header of %d bytes, its index says %d", len(blob), want)
	}
	index, data := blob[8:8+16*il], blob[8+16*il:]
	var p Package
	var have [3]bool // name, version, release
	for i := 0; i < len(index); i += 16 {
		tag := binary.BigEndian.Uint32(index[i:])
		typ := binary.BigEndian.Uint32(index[i+4:])
		off := binary.BigEndian.Uint32(index[i+8:])
		count := binary.BigEndian.Uint32(index[i+12:])
		var dst *string
		switch tag {
		case tagName:
			dst, have[0] = &p.Name, true
		case tagVersion:
			dst, have[1] = &p.Version, true
		case tagRelease:
			dst, have[2] = &p.Release, true
		case tagArch:
			dst = &p.Arch
		case tagSourceRPM:
			dst = &p.SourceRPM
		case tagEpoch:
			if typ != typeInt32 || count < 1 || off%4 != 0 || uint64(off)+4 > uint64(len(data)) {
				return Package{}, fmt.Errorf("header tag EPOCH: bad entry (type %d, offset %d, count %d)", typ, off, count)
			}
			p.Epoch = int(binary.BigEndian.Uint32(data[off:]))
			continue
		default:
			continue
		}
		s, err := headerString(data, typ, off, count)
		if err != nil {
			return Package{}, fmt.Errorf("header tag %s: %w", tagLabel(tag), err)
		}
		// A later entry for the same tag (a "dribble" entry, written after
		// the immutable region) replaces the earlier one, as in rpm.
		*dst = s
	}
	// rpm 4.14 and older wrote the gpg-pubkey entries with a SOURCERPM
	// of "(none)", the text rpm shows for a missing tag.
	if p.SourceRPM == "(none)" {
		p.SourceRPM = ""
	}
	for i, name := range []string{"NAME", "VERSION", "RELEASE"} {
		if !have[i] {
			return Package{}, fmt.Errorf("header has no %s", name)
		}
	}
	return p, nil
}

// headerString is the NUL-terminated string of a STRING entry.
func headerString(data []byte, typ, off, count uint32) (string, error) {
	if typ != typeString || count != 1 {
		return "", fmt.Errorf("want a STRING entry, got type %d count %d", typ, count)
	}
	if uint64(off) >= uint64(len(data)) {
		return "", fmt.Errorf("string at offset %d is past the %d bytes of data", off, len(data))
	}
	for i := off; int(i) < len(data); i++ {
		if data[i] == 0 {
			return string(data[off:i]), nil
		}
	}
	return "", fmt.Errorf("string at offset %d is not terminated", off)
}

func tagLabel(tag uint32) string {
	switch tag {
	case tagName:
		return "NAME"
	case tagVersion:
		return "VERSION"
	case tagRelease:
		return "RELEASE"
	case tagArch:
		return "ARCH"
	case tagSourceRPM:
		return "SOURCERPM"
	}
	return fmt.Sprint(tag)
}
