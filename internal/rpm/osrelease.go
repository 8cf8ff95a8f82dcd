package rpm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// OSRelease is what os-release(5) says of the system under a root: the
// fields that tell which distribution and release its packages are from.
type OSRelease struct {
	ID         string   // "almalinux", "rocky", "rhel", "fedora"
	IDLike     []string // ID_LIKE, e.g. ["rhel", "centos", "fedora"]
	VersionID  string   // "9.4"
	PrettyName string   // "AlmaLinux 9.4 (Seafoam Ocelot)"
	Path       string   // the file read, under root
}

// ReadOSRelease reads ROOT/etc/os-release, or ROOT/usr/lib/os-release
// when there is none, as systemd does; symbolic links are followed inside
// root (etc/os-release is usually a link to ../usr/lib/os-release).
// Values may be quoted with " or ' and use shell backslash escapes inside
// double quotes. A line that is neither blank, a comment nor KEY=value is
// an error naming the file and line.
func ReadOSRelease(root string) (OSRelease, error) {
	var tried []string
	for _, rel := range []string{"etc/os-release", "usr/lib/os-release"} {
		p, err := resolveInRoot(root, rel)
		if err == nil {
			var f *os.File
			f, err = os.Open(p)
			if err == nil {
				defer f.Close()
				return parseOSRelease(p, f)
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return OSRelease{}, fmt.Errorf("read os-release under %s: %w", root, err)
		}
		tried = append(tried, rel)
	}
	return OSRelease{}, fmt.Errorf("read os-release under %s: %w (looked for %s)",
		root, fs.ErrNotExist, strings.Join(tried, ", "))
}

func parseOSRelease(name string, r io.Reader) (OSRelease, error) {
	o := OSRelease{Path: name}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return OSRelease{}, fmt.Errorf("%s line %d: not KEY=value: %q", name, line, text)
		}
		v, err := unquoteOSRelease(v)
		if err != nil {
			return OSRelease{}, fmt.Errorf("%s line %d: %s: %w", name, line, k, err)
		}
		switch k {
		case "ID":
			o.ID = v
		case "ID_LIKE":
			o.IDLike = strings.Fields(v)
		case "VERSION_ID":
			o.VersionID = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	if err := sc.Err(); err != nil {
		return OSRelease{}, fmt.Errorf("read %s: %w", name, err)
	}
	return o, nil
}

// unquoteOSRelease undoes the shell-style quoting os-release(5) allows.
func unquoteOSRelease(v string) (string, error) {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		return v, nil
	}
	q := v[0]
	if len(v) < 2 || v[len(v)-1] != q {
		return "", fmt.Errorf("unterminated quote in %s", v)
	}
	v = v[1 : len(v)-1]
	if q == '\'' || !strings.Contains(v, `\`) {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}
