package rpm

// rpm's own "ndb" package database, Packages.db (openSUSE, SLE 15), read
// as rpm 4.18 lib/backend/ndb/rpmpkg.c writes it; all numbers are
// little-endian:
//
//	header, 32 bytes:  "RpmP", version 0, generation, slot pages, next index
//	slot pages of 4096 bytes from offset 0 (the header takes the first two
//	slots), slots of 16 bytes: "Slot", package index, block offset,
//	block count; offset 0 is a free slot
//	blob at block offset * 16: "BlbS", package index, generation, length;
//	the header blob; padding to the block count; tail: Adler-32 of all
//	before it, length, "BlbE"

import (
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"slices"
)

const (
	ndbPageSize  = 4096
	ndbSlotSize  = 16
	ndbBlockSize = 16
	ndbBlobHead  = 16
	ndbBlobTail  = 12
)

type ndbSlot struct{ pkgIdx, blkOff, blkCnt uint32 }

// readNDB calls fn with each package header of an ndb Packages.db, in
// package index order, checking each blob's framing and checksum.
func readNDB(path string, fn func(record uint32, blob []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return readNDBFrom(f, fi.Size(), fn)
}

// readNDBFrom is readNDB on the size bytes of f.
func readNDBFrom(f io.ReaderAt, size int64, fn func(record uint32, blob []byte) error) error {
	if size%ndbBlockSize != 0 {
		return fmt.Errorf("size %d is not a multiple of %d: truncated", size, ndbBlockSize)
	}
	var head [32]byte
	if err := readFullAt(f, head[:], 0); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	le := binary.LittleEndian
	if v := le.Uint32(head[4:]); v != 0 {
		return fmt.Errorf("ndb version %d, want 0", v)
	}
	slotPages := le.Uint32(head[12:])
	if slotPages == 0 || int64(slotPages)*ndbPageSize > size {
		return fmt.Errorf("%d slot pages in a file of %d bytes: truncated or corrupt", slotPages, size)
	}
	pages := make([]byte, int64(slotPages)*ndbPageSize)
	if err := readFullAt(f, pages, 0); err != nil {
		return fmt.Errorf("slot pages: %w", err)
	}
	minBlk := slotPages * (ndbPageSize / ndbBlockSize)
	fileBlks := size / ndbBlockSize
	var slots []ndbSlot
	for off := 32; off < len(pages); off += ndbSlotSize {
		s := pages[off : off+ndbSlotSize]
		if string(s[:4]) != "Slot" {
			return fmt.Errorf("slot at byte %d: bad magic %q", off, s[:4])
		}
		sl := ndbSlot{pkgIdx: le.Uint32(s[4:]), blkOff: le.Uint32(s[8:]), blkCnt: le.Uint32(s[12:])}
		if sl.blkOff == 0 {
			continue
		}
		if sl.pkgIdx == 0 || sl.blkCnt == 0 || sl.blkOff < minBlk ||
			int64(sl.blkOff)+int64(sl.blkCnt) > fileBlks {
			return fmt.Errorf("slot at byte %d (package %d, blocks %d+%d of %d): bad entry or truncated file",
				off, sl.pkgIdx, sl.blkOff, sl.blkCnt, fileBlks)
		}
		slots = append(slots, sl)
	}
	slices.SortFunc(slots, func(a, b ndbSlot) int { return int(int64(a.pkgIdx) - int64(b.pkgIdx)) })
	for _, sl := range slots {
		blob, err := readNDBBlob(f, sl)
		if err != nil {
			return fmt.Errorf("package record %d: %w", sl.pkgIdx, err)
		}
		if err := fn(sl.pkgIdx, blob); err != nil {
			return err
		}
	}
	return nil
}

// readNDBBlob reads and checks one blob as rpmpkgReadBlob and
// rpmpkgVerifyblob do; the slot was checked to lie within the file.
func readNDBBlob(f io.ReaderAt, sl ndbSlot) ([]byte, error) {
	if sl.blkCnt < (ndbBlobHead+ndbBlobTail+ndbBlockSize-1)/ndbBlockSize {
		return nil, fmt.Errorf("%d blocks is too small for a blob", sl.blkCnt)
	}
	buf := make([]byte, int64(sl.blkCnt)*ndbBlockSize)
	if err := readFullAt(f, buf, int64(sl.blkOff)*ndbBlockSize); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if string(buf[:4]) != "BlbS" {
		return nil, fmt.Errorf("bad blob magic %q", buf[:4])
	}
	if idx := le.Uint32(buf[4:]); idx != sl.pkgIdx {
		return nil, fmt.Errorf("blob is for package %d", idx)
	}
	n := le.Uint32(buf[12:])
	if want := (ndbBlobHead + uint64(n) + ndbBlobTail + ndbBlockSize - 1) / ndbBlockSize; want != uint64(sl.blkCnt) {
		return nil, fmt.Errorf("blob of %d bytes in %d blocks", n, sl.blkCnt)
	}
	tail := buf[len(buf)-ndbBlobTail:]
	if string(tail[8:]) != "BlbE" || le.Uint32(tail[4:]) != n {
		return nil, fmt.Errorf("bad blob tail")
	}
	if sum := adler32.Checksum(buf[:len(buf)-ndbBlobTail]); sum != le.Uint32(tail) {
		return nil, fmt.Errorf("blob checksum %08x, want %08x", sum, le.Uint32(tail))
	}
	return buf[ndbBlobHead : ndbBlobHead+n], nil
}
