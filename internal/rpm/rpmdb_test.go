package rpm

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// qaLines renders packages as the fixtures' rpm -qa lines:
// --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n',
// sorted as LC_ALL=C sort does.
func qaLines(pkgs []Package) []string {
	none := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	var lines []string
	for _, p := range pkgs {
		lines = append(lines, fmt.Sprintf("%s %d:%s-%s %s %s", p.Name, p.Epoch, p.Version, p.Release, none(p.Arch), none(p.SourceRPM)))
	}
	slices.Sort(lines)
	return lines
}

func splitLines(t testing.TB, data []byte) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no lines")
	}
	return lines
}

func readLines(t testing.TB, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return splitLines(t, data)
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: %d packages, want %d", what, len(got), len(want))
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Errorf("  unexpected: %s", l)
		}
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("  missing:    %s", l)
		}
	}
}

func checkSorted(t *testing.T, pkgs []Package) {
	t.Helper()
	if !slices.IsSortedFunc(pkgs, ComparePackages) {
		t.Errorf("packages not sorted: %v", pkgs)
	}
}

// decompress writes testdata/name (.gz or .xz) to path.
func decompress(t testing.TB, name, path string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader
	switch filepath.Ext(name) {
	case ".gz":
		r, err = gzip.NewReader(f)
	case ".xz":
		r, err = xz.NewReader(f)
	default:
		t.Fatalf("%s: not .gz or .xz", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dirState lists the files of dir with their sizes and times.
func dirState(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var state []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		state = append(state, fmt.Sprintf("%s %d %s", e.Name(), fi.Size(), fi.ModTime()))
	}
	return state
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestReadInstalledSQLite reads the committed rpmdb.sqlite that the real
// rpm 4.18 wrote (testdata/mkrpmdb.sh) and compares with what rpm -qa
// listed from it, and checks that reading left no file beside it.
func TestReadInstalledSQLite(t *testing.T) {
	dir := filepath.Join("testdata", "alma9", "var", "lib", "rpm")
	before := dirNames(t, dir)
	pkgs, err := ReadInstalled(filepath.Join("testdata", "alma9"))
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, "testdata/alma9", qaLines(pkgs), readLines(t, "alma9-rpm-qa.txt"))
	checkSorted(t, pkgs)
	if after := dirNames(t, dir); !slices.Equal(before, after) {
		t.Errorf("reading the database changed %s: %v, then %v", dir, before, after)
	}
	// Spot checks of the fields, in sorted order.
	want := map[string]string{
		"openssl-libs":       "openssl-libs-1:3.0.7-27.el9.x86_64 openssl-3.0.7-27.el9.src.rpm",
		"gpg-pubkey":         "gpg-pubkey-8dd47936-60041d0c ",
		"glibc":              "glibc-2.34-100.el9_4.2.i686 glibc-2.34-100.el9_4.2.src.rpm",
		"kernel-core":        "kernel-core-5.14.0-427.13.1.el9_4.x86_64 kernel-5.14.0-427.13.1.el9_4.src.rpm",
		"python3-setuptools": "python3-setuptools-53.0.0-10.el9_1.1.noarch python-setuptools-53.0.0-10.el9_1.1.src.rpm",
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		if w, ok := want[p.Name]; ok && !seen[p.Name] {
			seen[p.Name] = true
			if got := p.String() + " " + p.SourceRPM; got != w {
				t.Errorf("first %s: %q, want %q", p.Name, got, w)
			}
		}
	}
}

// TestReadDBBerkeley reads the Berkeley DB copies of the same database
// (testdata/mkbdb.sh: written by Berkeley DB 5.3, read back by rpm's
// bdb_ro with the same result): 512-byte pages in big-endian order, where
// every header spans a chain of overflow pages, and 8 KiB pages, where
// the headers sit on the hash pages.
func TestReadDBBerkeley(t *testing.T) {
	want := readLines(t, "alma9-rpm-qa.txt")
	for _, name := range []string{"alma9-bdb-512-be.Packages.gz", "alma9-bdb-8k.Packages.gz"} {
		root := t.TempDir()
		decompress(t, name, filepath.Join(root, "var", "lib", "rpm", "Packages"))
		pkgs, err := ReadInstalled(root)
		if err != nil {
			t.Fatal(err)
		}
		sameLines(t, name, qaLines(pkgs), want)
		checkSorted(t, pkgs)
	}
}

// TestReadInstalledNDB reads a real ndb Packages.db (SUSE BCI 15, from
// go-rpmdb's test data), laid out as openSUSE does: the database in
// usr/lib/sysimage/rpm and var/lib/rpm an absolute symbolic link to it,
// which must resolve inside the root.
func TestReadInstalledNDB(t *testing.T) {
	root := t.TempDir()
	decompress(t, "sle15-bci-Packages.db.xz", filepath.Join(root, "usr", "lib", "sysimage", "rpm", "Packages.db"))
	if err := os.MkdirAll(filepath.Join(root, "var", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/sysimage/rpm", filepath.Join(root, "var", "lib", "rpm")); err != nil {
		t.Fatal(err)
	}
	path, err := FindDB(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "usr", "lib", "sysimage", "rpm", "Packages.db"); path != want {
		t.Errorf("FindDB = %s, want %s", path, want)
	}
	pkgs, err := ReadInstalled(root)
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, "sle15-bci", qaLines(pkgs), readLines(t, "sle15-bci-rpm-qa.txt"))
	checkSorted(t, pkgs)
}

func TestFindDB(t *testing.T) {
	root := t.TempDir()
	_, err := FindDB(root)
	if !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), "var/lib/rpm/rpmdb.sqlite") {
		t.Errorf("FindDB(empty root) = %v, want ErrNoDatabase naming the paths", err)
	}
	if _, err := ReadInstalled(root); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("ReadInstalled(empty root) = %v, want ErrNoDatabase", err)
	}
	dir := filepath.Join(root, "var", "lib", "rpm")
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"Packages", "Packages.db", "rpmdb.sqlite"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if p, err := FindDB(root); err != nil || p != filepath.Join(dir, name) {
			t.Errorf("with %s: FindDB = %s, %v", name, p, err)
		}
	}
	// A symbolic link that would lead out of the root, to this machine's
	// database if it has one, stays inside.
	root = t.TempDir()
	os.MkdirAll(filepath.Join(root, "var", "lib"), 0o755)
	os.Symlink("/../../../../usr/lib/sysimage/rpm", filepath.Join(root, "var", "lib", "rpm"))
	if p, err := FindDB(root); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("FindDB through an escaping link = %s, %v; want ErrNoDatabase", p, err)
	}
	// A directory where the file should be.
	root = t.TempDir()
	os.MkdirAll(filepath.Join(root, "var", "lib", "rpm", "rpmdb.sqlite"), 0o755)
	if _, err := FindDB(root); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FindDB with a directory rpmdb.sqlite = %v", err)
	}
}

func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.Symlink("/a/b", filepath.Join(root, "abs"))
	os.Symlink("..", filepath.Join(root, "a", "b", "up"))
	os.Symlink("../../../../a", filepath.Join(root, "a", "b", "far"))
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	for _, tc := range []struct{ rel, want string }{
		{"abs/x", "a/b/x"},
		{"a/b/up/b", "a/b"},
		{"a/b/far/b", "a/b"},
		{"../../a", "a"},
		{"abs/up/b/up", "a"},
	} {
		got, err := resolveInRoot(root, tc.rel)
		if want := filepath.Join(root, tc.want); err != nil || got != want {
			t.Errorf("resolveInRoot(%q) = %s, %v; want %s", tc.rel, got, err, want)
		}
	}
	if _, err := resolveInRoot(root, "loop1/x"); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("resolveInRoot(loop) = %v", err)
	}
}

// TestReadDBSQLiteWAL checks that packages committed to the write-ahead
// log but not yet to the database file (rpm is running) are seen.
func TestReadDBSQLiteWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpmdb.sqlite")
	data, err := os.ReadFile(filepath.Join("testdata", "alma9", "var", "lib", "rpm", "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, data, 0o644)
	w, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA journal_mode = WAL", "PRAGMA wal_autocheckpoint = 0",
		"DELETE FROM Packages WHERE hnum = (SELECT max(hnum) FROM Packages)"} {
		if _, err := w.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("want a non-empty -wal: %v", err)
	}
	pkgs, err := ReadDB(path)
	if err != nil {
		t.Fatal(err)
	}
	want := readLines(t, "alma9-rpm-qa.txt")
	if len(pkgs) != len(want)-1 {
		t.Errorf("with one package deleted in the WAL: %d packages, want %d", len(pkgs), len(want)-1)
	}
}

func TestReadDBCorrupt(t *testing.T) {
	dir := t.TempDir()
	sqlite, err := os.ReadFile(filepath.Join("testdata", "alma9", "var", "lib", "rpm", "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	decompress(t, "alma9-bdb-512-be.Packages.gz", filepath.Join(dir, "bdb"))
	decompress(t, "sle15-bci-Packages.db.xz", filepath.Join(dir, "ndb"))
	bdb, _ := os.ReadFile(filepath.Join(dir, "bdb"))
	ndb, _ := os.ReadFile(filepath.Join(dir, "ndb"))

	// Damage at the place of one package's SOURCERPM string, which is
	// only in the header blobs: zero the SQLite page (SQLite then finds
	// the database malformed), make the Berkeley DB page not an overflow
	// page, flip a byte of the ndb blob (its checksum no longer holds).
	at := func(db []byte, s string) int {
		i := bytes.LastIndex(db, []byte(s))
		if i < 0 {
			t.Fatalf("%q not found", s)
		}
		return i
	}
	sqlitePage := bytes.Clone(sqlite)
	i := at(sqlite, "openssl-3.0.7-27.el9.src.rpm") &^ 4095
	clear(sqlitePage[i : i+4096])
	bdbPage := bytes.Clone(bdb)
	bdbPage[at(bdb, "openssl-3.0.7-27.el9.src.rpm")&^511+25] = 0
	ndbBlob := bytes.Clone(ndb)
	ndbBlob[at(ndb, "libzypp")] ^= 1
	// And a header blob cut short, in an otherwise sound SQLite file.
	shortBlob := filepath.Join(dir, "sqlite-short-blob")
	os.WriteFile(shortBlob, sqlite, 0o644)
	w, err := sql.Open("sqlite", shortBlob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec("UPDATE Packages SET blob = substr(blob, 1, 100) WHERE hnum = 3"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	shortData, _ := os.ReadFile(shortBlob)

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an rpm database"},
		{"text", []byte("hello, world\n"), "not an rpm database"},
		{"sqlite-16", sqlite[:16], ""},
		{"sqlite-100", sqlite[:100], ""},
		{"sqlite-4096", sqlite[:4096], ""},
		{"sqlite-half", sqlite[:len(sqlite)/2], ""},
		{"sqlite-1", sqlite[:len(sqlite)-4096], ""},
		{"sqlite-page", sqlitePage, "malformed"},
		{"sqlite-short-blob", shortData, "package record 3: header of 100 bytes"},
		{"bdb-600", bdb[:600], "truncated"},
		{"bdb-half", bdb[:len(bdb)/2], "truncated"},
		{"bdb-page", bdbPage, "overflow chain"},
		{"ndb-100", ndb[:100], "truncated"},
		{"ndb-half", ndb[:len(ndb)/2&^15], "truncated"},
		{"ndb-odd", ndb[:len(ndb)-1], "truncated"},
		{"ndb-blob", ndbBlob, "checksum"},
	}
	for _, tc := range cases {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs, err := ReadDB(path)
		if err == nil {
			t.Errorf("%s: no error, %d packages", tc.name, len(pkgs))
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want one naming %s and saying %q", tc.name, err, path, tc.want)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	if _, err := ReadDB(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseHeader(t *testing.T) {
	// hdr builds a header blob from entries and data.
	type entry struct{ tag, typ, off, count uint32 }
	hdr := func(data string, entries ...entry) []byte {
		var b bytes.Buffer
		be := func(v uint32) { b.Write([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) }
		be(uint32(len(entries)))
		be(uint32(len(data)))
		for _, e := range entries {
			be(e.tag)
			be(e.typ)
			be(e.off)
			be(e.count)
		}
		b.WriteString(data)
		return b.Bytes()
	}
	nvr := "bash\x005.1.8\x006.el9\x00x86_64\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x07"
	ok := []entry{{tagName, typeString, 0, 1}, {tagVersion, typeString, 5, 1}, {tagRelease, typeString, 11, 1}}
	arch := entry{tagArch, typeString, 17, 1}
	epoch := entry{tagEpoch, typeInt32, 28, 1}

	p, err := parseHeader(hdr(nvr, append(ok, arch, epoch)...))
	if want := (Package{Name: "bash", Epoch: 7, Version: "5.1.8", Release: "6.el9", Arch: "x86_64"}); err != nil || p != want {
		t.Errorf("parseHeader = %+v, %v; want %+v", p, err, want)
	}
	// A later entry for a tag replaces an earlier one.
	if p, err := parseHeader(hdr(nvr, append(ok, entry{tagName, typeString, 17, 1})...)); err != nil || p.Name != "x86_64" {
		t.Errorf("dribble entry: %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name string
		blob []byte
		want string
	}{
		{"short", []byte{0, 0, 0}, "too short"},
		{"no tags", hdr(""), "out of range"},
		{"size", append(hdr(nvr, ok...), 0), "index says"},
		{"no name", hdr(nvr, ok[1:]...), "no NAME"},
		{"past data", hdr(nvr, append(ok, entry{tagArch, typeString, 99, 1})...), "past"},
		{"unterminated", hdr("bash", entry{tagName, typeString, 0, 1}), "not terminated"},
		{"wrong type", hdr(nvr, append(ok, entry{tagArch, typeInt32, 0, 1})...), "STRING"},
		{"epoch misaligned", hdr(nvr, append(ok, entry{tagEpoch, typeInt32, 3, 1})...), "EPOCH"},
		{"epoch past data", hdr(nvr, append(ok, entry{tagEpoch, typeInt32, 32, 1})...), "EPOCH"},
	} {
		_, err := parseHeader(tc.blob)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestReadInstalledAgainstRPM builds a fresh database with the real rpm
// and rpmbuild (testdata/mkrpmdb.sh) and compares the reader with
// `rpm -qa` on it; it also has rpm list the committed fixtures, the
// SQLite one and, through rpm's bdb_ro backend, the Berkeley DB ones
// (and, with sqlite3 and db5.3_load, ones made afresh by mkbdb.sh).
func TestReadInstalledAgainstRPM(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping rpmbuild runs (about 5 s) in -short mode")
	}
	for _, tool := range []string{"rpm", "rpmbuild"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
				t.Fatalf("PATCHLOOP_REQUIRE_ORACLES=1 but %s is missing (apt-get install rpm)", tool)
			}
			t.Skipf("skipping: %s not installed (apt-get install rpm)", tool)
		}
	}
	root := t.TempDir()
	out, err := exec.Command("bash", filepath.Join("testdata", "mkrpmdb.sh"), root).Output()
	if err != nil {
		t.Fatalf("mkrpmdb.sh: %v\n%s", err, stderrOf(err))
	}
	// rpm leaves an empty -wal and a -shm beside its database, on
	// purpose (PERSIST_WAL, for readers without write access); an
	// ordinary SQLite reader would delete both on closing.
	dbdir := filepath.Join(root, "var", "lib", "rpm")
	before := dirState(t, dbdir)
	pkgs, err := ReadInstalled(root)
	if err != nil {
		t.Fatal(err)
	}
	if after := dirState(t, dbdir); !slices.Equal(before, after) {
		t.Errorf("reading changed %s: %v, then %v", dbdir, before, after)
	}
	want := splitLines(t, out)
	sameLines(t, "fresh database", qaLines(pkgs), want)
	if len(want) < 10 {
		t.Errorf("rpm -qa listed only %d packages", len(want))
	}

	fixture := readLines(t, "alma9-rpm-qa.txt")
	// rpm may write beside a database it opens: give it copies.
	sqliteCopy := filepath.Join(t.TempDir(), "sqlite")
	data, _ := os.ReadFile(filepath.Join("testdata", "alma9", "var", "lib", "rpm", "rpmdb.sqlite"))
	os.MkdirAll(sqliteCopy, 0o755)
	os.WriteFile(filepath.Join(sqliteCopy, "rpmdb.sqlite"), data, 0o644)
	sameLines(t, "rpm -qa on testdata/alma9", rpmQA(t, sqliteCopy, "sqlite"), fixture)

	bdbs := []string{"alma9-bdb-512-be.Packages.gz", "alma9-bdb-8k.Packages.gz"}
	for _, name := range bdbs {
		dir := t.TempDir()
		decompress(t, name, filepath.Join(dir, "Packages"))
		sameLines(t, "rpm -qa (bdb_ro) on "+name, rpmQA(t, dir, "bdb_ro"), fixture)
	}
	_, errSQLite := exec.LookPath("sqlite3")
	_, errLoad := exec.LookPath("db5.3_load")
	if errSQLite != nil || errLoad != nil {
		t.Logf("not making fresh Berkeley DB files: needs sqlite3 and db5.3_load (apt-get install sqlite3 db5.3-util)")
		return
	}
	for _, layout := range [][2]string{{"512", "4321"}, {"4096", "1234"}, {"16384", "1234"}} {
		dir := t.TempDir()
		cmd := exec.Command("bash", filepath.Join("testdata", "mkbdb.sh"),
			filepath.Join(root, "var", "lib", "rpm", "rpmdb.sqlite"), filepath.Join(dir, "Packages"), layout[0], layout[1])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mkbdb.sh %v: %v\n%s", layout, err, out)
		}
		pkgs, err := ReadDB(filepath.Join(dir, "Packages"))
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("Berkeley DB with %s-byte pages, byte order %s", layout[0], layout[1])
		sameLines(t, what, qaLines(pkgs), want)
		sameLines(t, "rpm -qa (bdb_ro) on "+what, rpmQA(t, dir, "bdb_ro"), want)
	}
}

// rpmQA runs rpm -qa on the database in dbpath with the given backend.
func rpmQA(t *testing.T, dbpath, backend string) []string {
	t.Helper()
	out, err := exec.Command("rpm", "--dbpath", dbpath, "--define", "_db_backend "+backend, "-qa",
		"--qf", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n").Output()
	if err != nil {
		t.Fatalf("rpm -qa --dbpath %s: %v\n%s", dbpath, err, stderrOf(err))
	}
	lines := splitLines(t, out)
	slices.Sort(lines)
	return lines
}

func stderrOf(err error) []byte {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.Stderr
	}
	return nil
}

// FuzzParseHeader checks that no header blob makes parseHeader panic,
// starting from the real headers of the fixture.
func FuzzParseHeader(f *testing.F) {
	err := readSQLite(filepath.Join("testdata", "alma9", "var", "lib", "rpm", "rpmdb.sqlite"),
		func(_ uint32, blob []byte) error {
			f.Add(blob)
			return nil
		})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		if _, err := parseHeader(blob); err == nil && len(blob) < 8+16*3 {
			t.Fatalf("accepted a header of %d bytes, too short for NAME, VERSION and RELEASE", len(blob))
		}
	})
}

// FuzzReadBDB and FuzzReadNDB check that no file makes the Berkeley DB
// and ndb readers panic or loop, starting from the fixtures.
func FuzzReadBDB(f *testing.F) {
	dir := f.TempDir()
	for _, name := range []string{"alma9-bdb-512-be.Packages.gz", "alma9-bdb-8k.Packages.gz"} {
		decompress(f, name, filepath.Join(dir, name))
		data, _ := os.ReadFile(filepath.Join(dir, name))
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		readBDBFrom(bytes.NewReader(data), int64(len(data)), func(_ uint32, blob []byte) error {
			_, err := parseHeader(blob)
			return err
		})
	})
}

func FuzzReadNDB(f *testing.F) {
	dir := f.TempDir()
	decompress(f, "sle15-bci-Packages.db.xz", filepath.Join(dir, "ndb"))
	data, _ := os.ReadFile(filepath.Join(dir, "ndb"))
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		readNDBFrom(bytes.NewReader(data), int64(len(data)), func(_ uint32, blob []byte) error {
			_, err := parseHeader(blob)
			return err
		})
	})
}

func BenchmarkReadDBSQLite(b *testing.B) {
	path := filepath.Join("testdata", "alma9", "var", "lib", "rpm", "rpmdb.sqlite")
	for b.Loop() {
		if _, err := ReadDB(path); err != nil {
			b.Fatal(err)
		}
	}
}
