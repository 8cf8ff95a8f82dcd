package rpm

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // pure-Go SQLite, registered as "sqlite"
)

// readSQLite calls fn with each package header of an rpm 4.16+ SQLite
// database (rpm's lib/backend/sqlite.c: table Packages(hnum, blob)), in
// hnum order.
//
// rpm keeps the database in WAL mode with a persistent -wal and -shm
// beside it. An ordinary SQLite reader would create those files if
// missing, or checkpoint and delete them on close, which a scanner must
// not do to the system or image it reads. So the database is opened
// read-only and, when its -wal is missing or empty (rpm checkpoints on
// every close, so it is, unless rpm is running), as immutable, which
// touches nothing but the file itself. Otherwise the log holds committed
// transactions the file lacks, and it is opened read-only with locking,
// which needs the -shm that rpm keeps (and root, as rpm -qa does).
func readSQLite(path string, fn func(record uint32, blob []byte) error) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	immutable := true
	if fi, err := os.Stat(abs + "-wal"); err == nil && fi.Size() > 0 {
		immutable = false
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?mode=ro"
	if immutable {
		dsn += "&immutable=1"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.Query("SELECT hnum, blob FROM Packages ORDER BY hnum")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var hnum int64
		var blob []byte
		if err := rows.Scan(&hnum, &blob); err != nil {
			return fmt.Errorf("package record: %w", err)
		}
		if hnum <= 0 || hnum > 1<<32-1 {
			return fmt.Errorf("package record number %d out of range", hnum)
		}
		if err := fn(uint32(hnum), blob); err != nil {
			return err
		}
	}
	// A corrupt page met halfway through ends the rows with an error
	// here; without this check the list would just be short.
	return rows.Err()
}
