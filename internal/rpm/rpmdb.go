package rpm

// The inventory of installed packages, read from the rpm database files
// without running rpm. rpm 4.16 and later keep it in SQLite (RHEL and
// AlmaLinux 9 and 10, Fedora 33+), openSUSE and SLE 15 in rpm's own "ndb"
// format, and rpm before 4.16 in a Berkeley DB hash file (RHEL 7 and 8).
// All three hold one header blob per package; header.go reads those.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Package is one installed package as the rpm database records it.
type Package struct {
	Name string
	// Epoch is 0 when the package has none, as rpm's %{EPOCHNUM}; the two
	// compare equal in rpm.
	Epoch   int
	Version string
	Release string
	// Arch is e.g. x86_64, noarch, i686; "" for the gpg-pubkey entries
	// of imported signing keys, which have none (rpm shows "(none)").
	Arch string
	// SourceRPM is the file name of the source package, e.g.
	// "openssl-3.0.7-27.el9.src.rpm"; "" when the header has none
	// (gpg-pubkey).
	SourceRPM string
}

// EVR returns the package's epoch:version-release, without the epoch
// when it is 0.
func (p Package) EVR() EVR {
	e := EVR{Version: p.Version, Release: p.Release, HasRelease: true}
	if p.Epoch != 0 {
		e.Epoch = strconv.Itoa(p.Epoch)
	}
	return e
}

// String returns name-[epoch:]version-release.arch, rpm's NEVRA.
func (p Package) String() string {
	s := p.Name + "-" + p.EVR().String()
	if p.Arch != "" {
		s += "." + p.Arch
	}
	return s
}

// ComparePackages orders packages by name, then EVR (as rpm), then arch.
func ComparePackages(a, b Package) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := a.EVR().Compare(b.EVR()); c != 0 {
		return c
	}
	return strings.Compare(a.Arch, b.Arch)
}

// ErrNoDatabase is returned, wrapped, by FindDB and ReadInstalled when a
// root has no rpm database: not an RPM-based system.
var ErrNoDatabase = errors.New("no rpm database")

// FindDB returns the path of the rpm package database under root ("/" for
// this machine): the first of rpmdb.sqlite (SQLite), Packages.db (ndb)
// and Packages (Berkeley DB) in var/lib/rpm, else in usr/lib/sysimage/rpm.
// Symbolic links are followed as if root were "/", so an absolute link in
// an image does not lead out of it. The configured %_dbpath of a machine
// whose rpm macros move the database is not consulted.
func FindDB(root string) (string, error) {
	// The traditional place first (RHEL 7 to 9), then that of rpm 4.17+
	// distributions (Fedora 36+, openSUSE, RHEL 10), where /var/lib/rpm is
	// a symbolic link to it; in each, the package files of the backends,
	// newest first, as rpm's backend auto-detection knows them.
	var tried []string
	for _, dir := range []string{"var/lib/rpm", "usr/lib/sysimage/rpm"} {
		for _, name := range []string{"rpmdb.sqlite", "Packages.db", "Packages"} {
			rel := path.Join(dir, name)
			tried = append(tried, rel)
			p, err := resolveInRoot(root, rel)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("find rpm database under %s: %w", root, err)
			}
			fi, err := os.Stat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("find rpm database: %w", err)
			}
			if !fi.Mode().IsRegular() {
				return "", fmt.Errorf("find rpm database: %s is not a regular file", p)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("%w under %s (looked for %s)", ErrNoDatabase, root, strings.Join(tried, ", "))
}

// ReadInstalled returns the packages of the rpm database under root ("/"
// for this machine), found as FindDB does, sorted by ComparePackages.
func ReadInstalled(root string) ([]Package, error) {
	p, err := FindDB(root)
	if err != nil {
		return nil, err
	}
	return ReadDB(p)
}

// ReadDB returns the packages of one rpm database file, SQLite, ndb or
// Berkeley DB as its content says, sorted by ComparePackages. It only
// reads: a SQLite database is opened read-only and, unless its
// write-ahead log holds data, as immutable, so that no -shm or -wal
// file is created beside it. An error names the file, and the record for
// a corrupt package header.
func ReadDB(path string) ([]Package, error) {
	format, err := dbFormat(path)
	if err != nil {
		return nil, fmt.Errorf("read rpm database %s: %w", path, err)
	}
	var pkgs []Package
	add := func(record uint32, blob []byte) error {
		p, err := parseHeader(blob)
		if err != nil {
			return fmt.Errorf("package record %d: %w", record, err)
		}
		pkgs = append(pkgs, p)
		return nil
	}
	switch format {
	case formatSQLite:
		err = readSQLite(path, add)
	case formatNDB:
		err = readNDB(path, add)
	case formatBDB:
		err = readBDB(path, add)
	}
	if err != nil {
		return nil, fmt.Errorf("read rpm database %s (%s): %w", path, format, err)
	}
	slices.SortFunc(pkgs, ComparePackages)
	return pkgs, nil
}

type dbFormatKind int

const (
	formatSQLite dbFormatKind = iota + 1
	formatNDB
	formatBDB
)

func (f dbFormatKind) String() string {
	switch f {
	case formatSQLite:
		return "sqlite"
	case formatNDB:
		return "ndb"
	case formatBDB:
		return "bdb"
	}
	return "unknown"
}

// dbFormat tells the backend from the first bytes of the file.
func dbFormat(path string) (dbFormatKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var head [16]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, err
	}
	switch {
	case n == 16 && bytes.Equal(head[:], []byte("SQLite format 3\x00")):
		return formatSQLite, nil
	case n >= 4 && string(head[:4]) == "RpmP":
		return formatNDB, nil
	case n == 16 && isBDBMagic(head[12:16]):
		return formatBDB, nil
	}
	return 0, fmt.Errorf("not an rpm database (SQLite, ndb or Berkeley DB hash): %d bytes of %q at the start", n, head[:n])
}

// resolveInRoot returns root joined with rel, following symbolic links
// with root as "/": an absolute target starts again at root, and ".."
// never climbs above it. The last element need not exist.
func resolveInRoot(root, rel string) (string, error) {
	var done []string // resolved elements below root
	todo := strings.Split(path.Clean("/" + rel)[1:], "/")
	for links := 0; len(todo) > 0; {
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		p := filepath.Join(root, filepath.Join(done...), elem)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) && len(todo) == 0 {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, elem)
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return filepath.Join(root, filepath.Join(done...)), nil
}

// readFullAt reads len(buf) bytes at off; a file that ends first is
// truncated.
func readFullAt(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	switch {
	case n == len(buf):
		return nil
	case err == nil || errors.Is(err, io.EOF):
		return fmt.Errorf("file ends within the %d bytes at offset %d: truncated", len(buf), off)
	}
	return err
}
