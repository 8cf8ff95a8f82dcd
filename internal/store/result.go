package store

import (
	"database/sql"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Job results are stored compressed with zstd (host_jobs.result_zstd).
// An install result of a real patch set is 10-15 KB of JSON, every
// package's versions and the log, that compresses several times; stored
// whole, a burst of results kept SQLite's one writer busy with the bytes
// (BenchmarkCompleteJob). Compressing runs on the caller's goroutine,
// before the write is queued for the writer. Results stored before the
// column are in host_jobs.result and read as they were.

// maxResult bounds a stored result as it is decompressed: results come in
// bounded far below it (api.MaxBody), so a larger one is corrupt.
const maxResult = 16 << 20

var (
	resultEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	resultDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxResult))
		if err != nil {
			panic(err) // only for invalid options
		}
		return d
	})
)

// packResult is a job result as stored in result_zstd (NULL for none).
func packResult(b []byte) any {
	if b == nil {
		return nil
	}
	return resultEncoder().EncodeAll(b, make([]byte, 0, len(b)/4))
}

// unpackResult is the result of a host job's row: its compressed column
// when set, else its text column (a result stored before compression).
func unpackResult(text sql.NullString, z []byte) ([]byte, error) {
	if z == nil {
		return textBytes(text), nil
	}
	b, err := resultDecoder().DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("stored result unreadable (%d bytes compressed): %w", len(z), err)
	}
	return b, nil
}
