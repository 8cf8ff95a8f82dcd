package rpm

// The Berkeley DB hash file Packages of rpm before 4.16 (RHEL 7 and 8),
// read as rpm 4.18's read-only backend lib/backend/bdb_ro.c reads it,
// without Berkeley DB: walk the hash buckets page by page, take each
// key/value pair (key: the 4-byte header number; value: the header blob,
// on the page or in a chain of overflow pages). The file is in the byte
// order of the machine that wrote it (s390x: big-endian); the header
// blobs are always big-endian.

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

const (
	bdbHashMagic   = 0x00061561
	bdbBtreeMagic  = 0x00053162
	bdbPageHeader  = 26
	bdbOverflow    = 7 // page type of overflow pages
	bdbKeyData     = 1 // H_KEYDATA: item on the page
	bdbOffPage     = 3 // H_OFFPAGE: item in overflow pages
	bdbMaxPageSize = 65536
)

// isBDBMagic reports whether the 4 bytes at offset 12 of a file are
// Berkeley DB's hash magic, in either byte order.
func isBDBMagic(b []byte) bool {
	return binary.LittleEndian.Uint32(b) == bdbHashMagic || binary.BigEndian.Uint32(b) == bdbHashMagic ||
		binary.LittleEndian.Uint32(b) == bdbBtreeMagic || binary.BigEndian.Uint32(b) == bdbBtreeMagic
}

type bdbFile struct {
	r         io.ReaderAt
	order     binary.ByteOrder
	pageSize  uint32
	lastPage  uint32
	maxBucket uint32
	spares    [32]uint32
}

// readBDB calls fn with each package header of a Berkeley DB Packages
// file, in hash order.
func readBDB(path string, fn func(record uint32, blob []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return readBDBFrom(f, fi.Size(), fn)
}

// readBDBFrom is readBDB on the size bytes of r.
func readBDBFrom(r io.ReaderAt, size int64, fn func(record uint32, blob []byte) error) error {
	db, err := openBDB(r, size)
	if err != nil {
		return err
	}
	// Every page is visited at most once: a loop in the page chains of a
	// corrupt file is an error, not a hang.
	seen := make([]bool, int(db.lastPage)+1)
	page := make([]byte, db.pageSize)
	for bucket := uint32(0); bucket <= db.maxBucket; bucket++ {
		pgno := db.bucketPage(bucket)
		for pgno != 0 {
			if err := db.readPage(page, pgno, seen); err != nil {
				return fmt.Errorf("hash bucket %d: %w", bucket, err)
			}
			if t := page[25]; t != 2 && t != 8 && t != 13 {
				return fmt.Errorf("hash bucket %d: page %d has type %d, not a hash page", bucket, pgno, t)
			}
			if err := db.pagePairs(page, pgno, seen, fn); err != nil {
				return err
			}
			pgno = db.order.Uint32(page[16:])
		}
	}
	return nil
}

func openBDB(r io.ReaderAt, size int64) (*bdbFile, error) {
	meta := make([]byte, 512)
	if err := readFullAt(r, meta, 0); err != nil {
		return nil, fmt.Errorf("metadata page: %w", err)
	}
	db := &bdbFile{r: r, order: binary.LittleEndian}
	switch magic := binary.LittleEndian.Uint32(meta[12:]); magic {
	case bdbHashMagic:
	case bdbBtreeMagic, 0x62310500:
		return nil, fmt.Errorf("a Berkeley DB btree (an rpm index), not the hash database Packages")
	case 0x61150600:
		db.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a Berkeley DB hash database (magic %08x)", magic)
	}
	u32 := func(i int) uint32 { return db.order.Uint32(meta[4*i:]) }
	if v := u32(4); v < 8 || v > 10 {
		return nil, fmt.Errorf("unsupported Berkeley DB hash version %d", v)
	}
	if meta[24] != 0 {
		return nil, fmt.Errorf("encrypted Berkeley DB")
	}
	db.pageSize, db.lastPage, db.maxBucket = u32(5), u32(8), u32(18)
	if db.pageSize < 512 || db.pageSize > bdbMaxPageSize || db.pageSize&(db.pageSize-1) != 0 {
		return nil, fmt.Errorf("bad page size %d", db.pageSize)
	}
	if pages := size / int64(db.pageSize); int64(db.lastPage) >= pages {
		return nil, fmt.Errorf("last page is %d but the file has %d pages: truncated", db.lastPage, pages)
	}
	if db.maxBucket > db.lastPage {
		return nil, fmt.Errorf("%d hash buckets in %d pages", db.maxBucket+1, db.lastPage+1)
	}
	for i := range db.spares {
		db.spares[i] = u32(24 + i)
	}
	return db, nil
}

// bucketPage is hash_bucket_to_page of bdb_ro.c.
func (db *bdbFile) bucketPage(bucket uint32) uint32 {
	i := 0
	for b := bucket; b != 0; b >>= 1 {
		i++
	}
	return bucket + db.spares[i]
}

// readPage reads page pgno, once.
func (db *bdbFile) readPage(page []byte, pgno uint32, seen []bool) error {
	if pgno > db.lastPage {
		return fmt.Errorf("page %d is past the last page %d", pgno, db.lastPage)
	}
	if seen[pgno] {
		return fmt.Errorf("page %d is reached twice: the page chains loop", pgno)
	}
	seen[pgno] = true
	if err := readFullAt(db.r, page, int64(pgno)*int64(db.pageSize)); err != nil {
		return fmt.Errorf("page %d: %w", pgno, err)
	}
	return nil
}

// pagePairs calls fn with the value of each key/value pair on a hash page
// whose key is a header number other than 0 (key 0 holds rpm's counter).
func (db *bdbFile) pagePairs(page []byte, pgno uint32, seen []bool, fn func(uint32, []byte) error) error {
	n := int(db.order.Uint16(page[20:]))
	if n%2 != 0 || bdbPageHeader+2*n > len(page) {
		return fmt.Errorf("page %d: bad item count %d", pgno, n)
	}
	off := func(i int) int { return int(db.order.Uint16(page[bdbPageHeader+2*i:])) }
	for i := 0; i < n; i += 2 {
		// Items are stored from the end of the page down: the key at
		// off(i) runs to the previous item (or the page end), the value
		// at off(i+1) runs to the key.
		kOff, vOff := off(i), off(i+1)
		kEnd := len(page)
		if i > 0 {
			kEnd = off(i - 1)
		}
		if !(bdbPageHeader+2*n <= vOff && vOff < kOff && kOff < kEnd && kEnd <= len(page)) {
			return fmt.Errorf("page %d item %d: bad offsets %d, %d, %d", pgno, i, vOff, kOff, kEnd)
		}
		key, err := db.item(page[kOff:kEnd], seen)
		if err != nil {
			return fmt.Errorf("page %d item %d key: %w", pgno, i, err)
		}
		if len(key) != 4 {
			return fmt.Errorf("page %d item %d: key of %d bytes, want a 4-byte header number", pgno, i, len(key))
		}
		record := db.order.Uint32(key)
		if record == 0 {
			continue
		}
		val, err := db.item(page[vOff:kOff], seen)
		if err != nil {
			return fmt.Errorf("package record %d: %w", record, err)
		}
		if err := fn(record, val); err != nil {
			return err
		}
	}
	return nil
}

// item returns the bytes of one hash item: on the page (H_KEYDATA) or in
// a chain of overflow pages (H_OFFPAGE), as hash_getkv and ovfl_get.
func (db *bdbFile) item(it []byte, seen []bool) ([]byte, error) {
	switch it[0] {
	case bdbKeyData:
		return it[1:], nil
	case bdbOffPage:
	default:
		return nil, fmt.Errorf("item type %d, want %d or %d", it[0], bdbKeyData, bdbOffPage)
	}
	if len(it) != 12 {
		return nil, fmt.Errorf("off-page item of %d bytes, want 12", len(it))
	}
	pgno, total := db.order.Uint32(it[4:]), db.order.Uint32(it[8:])
	if total == 0 || uint64(total) > uint64(db.lastPage+1)*uint64(db.pageSize) {
		return nil, fmt.Errorf("off-page item of %d bytes in a file of %d pages", total, db.lastPage+1)
	}
	out := make([]byte, 0, total)
	page := make([]byte, db.pageSize)
	for uint32(len(out)) < total {
		if err := db.readPage(page, pgno, seen); err != nil {
			return nil, fmt.Errorf("overflow chain: %w", err)
		}
		if page[25] != bdbOverflow {
			return nil, fmt.Errorf("overflow chain: page %d has type %d", pgno, page[25])
		}
		n := uint32(db.order.Uint16(page[22:]))
		if n == 0 || bdbPageHeader+n > db.pageSize || uint32(len(out))+n > total {
			return nil, fmt.Errorf("overflow page %d holds %d bytes", pgno, n)
		}
		out = append(out, page[bdbPageHeader:bdbPageHeader+n]...)
		pgno = db.order.Uint32(page[16:])
	}
	return out, nil
}
