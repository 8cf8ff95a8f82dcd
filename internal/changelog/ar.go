package changelog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// arReader reads the members of an ar archive (the container of a .deb)
// one after the other from a stream, without seeking.
type arReader struct {
	r    io.Reader
	cur  *io.LimitedReader // unread rest of the current member
	pad  bool              // the current member is followed by a pad byte
	read bool              // the global header was read
}

// arMember is one member's header.
type arMember struct {
	Name string
	Size int64
}

const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
	// maxMemberSize bounds what a member may claim (dpkg's own limit is
	// the 10-digit decimal field).
	maxMemberSize = 1 << 40
)

// errNotAr is returned when the stream does not start with the ar magic.
var errNotAr = errors.New("not a Debian package (no ar archive header)")

// Next advances to the next member; io.EOF after the last.
func (a *arReader) Next() (arMember, error) {
	if !a.read {
		magic := make([]byte, len(arMagic))
		if _, err := io.ReadFull(a.r, magic); err != nil || string(magic) != arMagic {
			return arMember{}, errNotAr
		}
		a.read = true
	}
	if err := a.skipCurrent(); err != nil {
		return arMember{}, err
	}
	var hdr [arHeaderSize]byte
	n, err := io.ReadFull(a.r, hdr[:])
	if n == 0 && err == io.EOF {
		return arMember{}, io.EOF
	}
	if err != nil {
		return arMember{}, fmt.Errorf("ar member header: %w", io.ErrUnexpectedEOF)
	}
	m, err := parseArHeader(hdr[:])
	if err != nil {
		return arMember{}, err
	}
	a.cur = &io.LimitedReader{R: a.r, N: m.Size}
	a.pad = m.Size%2 == 1
	return m, nil
}

// Read reads from the current member.
func (a *arReader) Read(p []byte) (int, error) {
	if a.cur == nil {
		return 0, io.EOF
	}
	n, err := a.cur.Read(p)
	if err == io.EOF && a.cur.N > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// skipCurrent discards the rest of the current member and its padding.
func (a *arReader) skipCurrent() error {
	if a.cur == nil {
		return nil
	}
	rest := a.cur.N
	if a.pad {
		rest++
	}
	a.cur = nil
	if _, err := io.CopyN(io.Discard, a.r, rest); err != nil {
		if err == io.EOF && rest == 1 && a.pad {
			return nil // a missing final pad byte is tolerated, as by dpkg
		}
		return fmt.Errorf("ar member: %w", io.ErrUnexpectedEOF)
	}
	return nil
}

// parseArHeader decodes the fixed 60-byte header: name[16] mtime[12]
// uid[6] gid[6] mode[8] size[10] magic[2].
func parseArHeader(h []byte) (arMember, error) {
	if string(h[58:60]) != "`\n" {
		return arMember{}, fmt.Errorf("ar member header: bad magic %q", h[58:60])
	}
	name := strings.TrimRight(string(h[0:16]), " ")
	name = strings.TrimSuffix(name, "/") // GNU ar terminates names with '/'
	size, err := strconv.ParseInt(string(bytes.TrimRight(h[48:58], " ")), 10, 64)
	if err != nil || size < 0 || size > maxMemberSize {
		return arMember{}, fmt.Errorf("ar member %q: bad size field %q", name, h[48:58])
	}
	return arMember{Name: name, Size: size}, nil
}
