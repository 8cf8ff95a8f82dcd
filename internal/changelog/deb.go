package changelog

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// maxChangelogSize bounds a decompressed changelog (the largest in
// Debian, gcc's and the kernel's, are a few MB).
const maxChangelogSize = 64 << 20

// DocLinkError reports that the changelog is not in this .deb because
// /usr/share/doc/PACKAGE, or the changelog file itself, is a symbolic
// link into another package's documentation directory (Debian policy
// 12.7 allows this between binaries of one source).
type DocLinkError struct {
	Deb           string // the .deb, for messages
	Package       string // the binary package read
	Path          string // the link inside the package, e.g. usr/share/doc/openssh-sftp-server
	Target        string // the link target as written, e.g. openssh-client
	TargetPackage string // the package whose doc dir it points to; "" if not under usr/share/doc
}

func (e *DocLinkError) Error() string {
	where := "outside /usr/share/doc"
	if e.TargetPackage != "" {
		where = "in package " + e.TargetPackage
	}
	return fmt.Sprintf("%s: changelog %s (/%s is a symlink to %s)", e.Deb, where, e.Path, e.Target)
}

// NoChangelogError reports a .deb without the changelog where Debian
// policy puts it.
type NoChangelogError struct {
	Deb, Package string
	DocDir       bool // whether /usr/share/doc/PACKAGE exists at all
	Native       bool // whether changelog.gz was looked for too
}

func (e *NoChangelogError) Error() string {
	if !e.DocDir {
		return fmt.Sprintf("%s: no /usr/share/doc/%s in the package", e.Deb, e.Package)
	}
	if e.Native {
		return fmt.Sprintf("%s: no changelog.Debian.gz or changelog.gz in /usr/share/doc/%s", e.Deb, e.Package)
	}
	return fmt.Sprintf("%s: no changelog.Debian.gz in /usr/share/doc/%s", e.Deb, e.Package)
}

// ReadDeb finds and parses the changelog of binary package pkg in the .deb
// streamed from r: ./usr/share/doc/PKG/changelog.Debian.gz, or for a
// native source package (native: its version has no Debian revision)
// changelog.Debian.gz or changelog.gz (in a non-native package,
// changelog.gz is the upstream changelog and is ignored). It decompresses
// data.tar only up to that file and stops there. debName names the
// package in errors. Only pass bytes already verified against a signed
// index (Fetcher.Read does).
//
// The error is a *DocLinkError when the doc directory or the changelog is
// a symlink to another package's, a *NoChangelogError when there is none.
func ReadDeb(r io.Reader, debName, pkg string, native bool) (*Log, error) {
	var log *Log
	err := findChangelog(r, debName, pkg, native, func(cr io.Reader, name string) error {
		var err error
		log, err = Parse(cr, name)
		return err
	})
	return log, err
}

// findChangelog calls fn with the decompressed changelog of pkg.
func findChangelog(r io.Reader, debName, pkg string, native bool, fn func(io.Reader, string) error) error {
	ar := &arReader{r: bufio.NewReaderSize(r, 64<<10)}
	m, err := ar.Next()
	if err != nil {
		return fmt.Errorf("%s: %w", debName, err)
	}
	if m.Name != "debian-binary" {
		return fmt.Errorf("%s: not a Debian binary package (first member is %q)", debName, m.Name)
	}
	for {
		m, err = ar.Next()
		if err == io.EOF {
			return fmt.Errorf("%s: no data.tar member", debName)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", debName, err)
		}
		if strings.HasPrefix(m.Name, "data.tar") {
			break
		}
	}
	data, closeData, err := decompressor(m.Name, ar)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", debName, m.Name, err)
	}
	defer closeData()
	return walkData(tar.NewReader(data), debName+": "+m.Name, debName, pkg, native, fn)
}

// decompressor opens a data.tar member by its extension.
func decompressor(member string, r io.Reader) (io.Reader, func(), error) {
	nop := func() {}
	switch ext := strings.TrimPrefix(member, "data.tar"); ext {
	case "":
		return r, nop, nil
	case ".gz":
		zr, err := gzip.NewReader(r)
		return zr, nop, err
	case ".xz":
		zr, err := xz.NewReader(r)
		return zr, nop, err
	case ".zst":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nop, err
		}
		return zr, zr.Close, nil
	case ".bz2":
		return bzip2.NewReader(r), nop, nil
	case ".lzma":
		zr, err := lzma.NewReader(r)
		return zr, nop, err
	default:
		return nil, nop, fmt.Errorf("unsupported compression %q", ext)
	}
}

// walkData looks through data.tar for pkg's doc directory and changelog.
func walkData(tr *tar.Reader, member, debName, pkg string, native bool, fn func(io.Reader, string) error) error {
	docDir := "usr/share/doc/" + pkg
	sawDocDir := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return &NoChangelogError{Deb: debName, Package: pkg, DocDir: sawDocDir, Native: native}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", member, err)
		}
		name := tarPath(h.Name)
		if name == docDir || strings.HasPrefix(name, docDir+"/") {
			sawDocDir = true
		}
		if name == docDir && h.Typeflag == tar.TypeSymlink {
			return docLink(debName, pkg, name, h.Linkname)
		}
		if !isChangelog(name, docDir, native) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeReg:
		case tar.TypeSymlink:
			return docLink(debName, pkg, name, h.Linkname)
		default:
			return fmt.Errorf("%s: /%s is not a regular file (tar type %q)", member, name, h.Typeflag)
		}
		return readGzip(tr, debName+": /"+name, fn)
	}
}

func isChangelog(name, docDir string, native bool) bool {
	return name == docDir+"/changelog.Debian.gz" || (native && name == docDir+"/changelog.gz")
}

// readGzip decompresses one changelog and hands it to fn. Errors name it.
func readGzip(r io.Reader, name string, fn func(io.Reader, string) error) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	lr := &limitReader{r: zr, n: maxChangelogSize, name: name}
	if err := fn(lr, name); err != nil {
		return err
	}
	// Read to the end so that a corrupt tail (bad CRC) is noticed even
	// when the parser stopped early.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// limitReader fails, instead of ending, past n bytes.
type limitReader struct {
	r    io.Reader
	n    int64
	name string
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return 0, fmt.Errorf("%s: larger than %d bytes decompressed", l.name, maxChangelogSize)
	}
	return n, err
}

// tarPath normalises a member name: no leading "./" or "/", no trailing "/".
func tarPath(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

func docLink(debName, pkg, name, target string) error {
	resolved := target
	if !strings.HasPrefix(target, "/") {
		resolved = path.Join(path.Dir(name), target)
	}
	resolved = tarPath(resolved)
	e := &DocLinkError{Deb: debName, Package: pkg, Path: name, Target: target}
	if rest, ok := strings.CutPrefix(resolved, "usr/share/doc/"); ok && rest != "" {
		e.TargetPackage, _, _ = strings.Cut(rest, "/")
	}
	return e
}
