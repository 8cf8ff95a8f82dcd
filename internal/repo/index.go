package repo

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Open returns the decompressed Packages content. The reader hashes what it
// returns; at EOF it returns an error naming the file, instead of io.EOF,
// if the SHA256 or size of the content (or of the stored file, when the
// Release lists it) differs from the signed Release. Content beyond the
// signed size is refused as soon as it is read.
func (ix *Index) Open() (io.ReadCloser, error) {
	if ix.SHA256 == "" && ix.FileSHA256 == "" {
		return nil, fmt.Errorf("open %s: no signed hash to check it against", ix.Path)
	}
	f, err := os.Open(ix.Path)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	raw := &countingHash{r: bufio.NewReaderSize(f, 64<<10), h: sha256.New()}
	dec, err := decompressor(ix.Compress, raw)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("decompress %s: %w", ix.Path, err)
	}
	return &verifyingReader{
		ix:   ix,
		file: f,
		raw:  raw,
		dec:  dec,
		out:  &countingHash{r: dec, h: sha256.New()},
	}, nil
}

// Verify reads the whole content through Open and reports any mismatch.
func (ix *Index) Verify() error {
	rc, err := ix.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// decompressor wraps r by compression name.
func decompressor(compress string, r io.Reader) (io.Reader, error) {
	switch compress {
	case "":
		return r, nil
	case "gz":
		return gzip.NewReader(r)
	case "xz":
		return xz.NewReader(r)
	case "lz4":
		return lz4.NewReader(r), nil
	}
	return nil, fmt.Errorf("unsupported compression %q", compress)
}

// countingHash hashes and counts what is read through it.
type countingHash struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *countingHash) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// verifyingReader is what Open returns.
type verifyingReader struct {
	ix   *Index
	file *os.File
	raw  *countingHash // the stored (compressed) bytes
	dec  io.Reader     // the decompressor
	out  *countingHash // the decompressed bytes
	err  error         // sticky final result
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.out.Read(p)
	if v.ix.SHA256 != "" && v.out.n > v.ix.Size {
		v.err = fmt.Errorf("%s: content is longer than the %d bytes the signed Release lists", v.ix.Path, v.ix.Size)
		return 0, v.err
	}
	switch {
	case err == io.EOF:
		v.err = v.finish()
	case err != nil:
		v.err = fmt.Errorf("decompress %s: %w", v.ix.Path, err)
	}
	if v.err != nil && n == 0 {
		return 0, v.err
	}
	return n, nil
}

// finish runs at the end of the content: drain the stored file (so that
// trailing data is hashed too) and compare both hashes.
func (v *verifyingReader) finish() error {
	if _, err := io.Copy(io.Discard, v.raw); err != nil {
		return fmt.Errorf("read %s: %w", v.ix.Path, err)
	}
	ix := v.ix
	if ix.FileSHA256 != "" && (v.raw.n != ix.FileSize || v.raw.sum() != ix.FileSHA256) {
		return fmt.Errorf("%s: file has SHA256 %s size %d, signed Release lists %s size %d",
			ix.Path, v.raw.sum(), v.raw.n, ix.FileSHA256, ix.FileSize)
	}
	if ix.SHA256 != "" && (v.out.n != ix.Size || v.out.sum() != ix.SHA256) {
		return fmt.Errorf("%s: content has SHA256 %s size %d, signed Release lists %s size %d",
			ix.Path, v.out.sum(), v.out.n, ix.SHA256, ix.Size)
	}
	return io.EOF
}

// Close releases the file and the decompressor.
func (v *verifyingReader) Close() error {
	var errs []error
	if c, ok := v.dec.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	errs = append(errs, v.file.Close())
	return errors.Join(errs...)
}
