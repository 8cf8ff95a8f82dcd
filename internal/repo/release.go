package repo

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseRelease parses the text of a Release file (or the signed text of an
// InRelease). name is used in error messages, which have the form
// "parse NAME line N: ...". It checks syntax only; signatures, dates and
// hashes are checked by the callers.
func ParseRelease(name string, data []byte) (*Release, error) {
	return parseReleaseAt(name, data, 1)
}

// field is one deb822 field: its name, value lines and where it started.
type field struct {
	name  string
	value string   // text after the colon on the first line, trimmed
	cont  []string // continuation lines, trimmed
	line  int      // line number of the field name
}

// parseReleaseAt parses data whose first line is line first of the file name.
func parseReleaseAt(name string, data []byte, first int) (*Release, error) {
	fields, err := splitFields(data, first)
	if err != nil {
		return nil, fmt.Errorf("parse %s %w", name, err)
	}
	rel := &Release{Files: map[string]FileHash{}}
	seenHashes := false
	for _, f := range fields {
		if strings.EqualFold(f.name, "SHA256") {
			seenHashes = true
		}
		if err := rel.setField(f); err != nil {
			return nil, fmt.Errorf("parse %s line %d: %s: %w", name, f.line, f.name, err)
		}
	}
	if !seenHashes {
		return nil, fmt.Errorf("parse %s: no SHA256 field: the Release lists no usable hashes", name)
	}
	return rel, nil
}

// splitFields splits one deb822 paragraph into fields. Errors start with
// "line N:" so that the caller can prefix the file name.
func splitFields(data []byte, first int) ([]field, error) {
	var fields []field
	seen := map[string]bool{}
	ended := false // a blank line was seen
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		n := first + i
		l := strings.TrimSuffix(raw, "\r")
		switch {
		case strings.TrimSpace(l) == "":
			ended = ended || len(fields) > 0
		case ended:
			return nil, fmt.Errorf("line %d: unexpected second paragraph", n)
		case strings.HasPrefix(l, "#"):
			// deb822 comment
		case l[0] == ' ' || l[0] == '\t':
			if len(fields) == 0 {
				return nil, fmt.Errorf("line %d: continuation line before any field", n)
			}
			last := &fields[len(fields)-1]
			last.cont = append(last.cont, strings.TrimSpace(l))
		default:
			f, err := newField(l, n)
			if err != nil {
				return nil, err
			}
			key := strings.ToLower(f.name)
			if seen[key] {
				return nil, fmt.Errorf("line %d: duplicate field %s", n, f.name)
			}
			seen[key] = true
			fields = append(fields, f)
		}
	}
	return fields, nil
}

// newField parses a "Name: value" line.
func newField(l string, n int) (field, error) {
	name, value, ok := strings.Cut(l, ":")
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return field{}, fmt.Errorf("line %d: expected \"Field: value\", got %q", n, truncate(l, 60))
	}
	return field{name: name, value: strings.TrimSpace(value), line: n}, nil
}

// setField stores one field into rel. Unknown fields are ignored.
func (rel *Release) setField(f field) error {
	var err error
	switch strings.ToLower(f.name) {
	case "origin":
		rel.Origin = f.value
	case "label":
		rel.Label = f.value
	case "suite":
		rel.Suite = f.value
	case "codename":
		rel.Codename = f.value
	case "version":
		rel.Version = f.value
	case "date":
		rel.Date, err = parseReleaseDate(f.value)
	case "valid-until":
		rel.ValidUntil, err = parseReleaseDate(f.value)
	case "notautomatic":
		rel.NotAutomatic, err = parseYesNo(f.value)
	case "butautomaticupgrades":
		rel.ButAutomaticUpgrades, err = parseYesNo(f.value)
	case "acquire-by-hash":
		rel.AcquireByHash, err = parseYesNo(f.value)
	case "no-support-for-architecture-all":
		rel.NoArchAllPackages = f.value == "Packages"
	case "architectures":
		rel.Architectures = strings.Fields(f.value)
	case "components":
		rel.Components = strings.Fields(f.value)
	case "sha256":
		return rel.setHashes(f)
	}
	return err
}

// setHashes parses the SHA256 list: one "hash size path" per continuation line.
func (rel *Release) setHashes(f field) error {
	if f.value != "" {
		return errors.New("expected the list on the following lines")
	}
	for i, l := range f.cont {
		parts := strings.Fields(l)
		if len(parts) != 3 {
			return fmt.Errorf("entry %d: expected \"sha256 size path\", got %q", i+1, truncate(l, 60))
		}
		if !isHexLen(parts[0], 64) {
			return fmt.Errorf("entry %d: bad SHA256 %q", i+1, truncate(parts[0], 70))
		}
		size, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("entry %d: bad size %q", i+1, truncate(parts[1], 30))
		}
		if _, dup := rel.Files[parts[2]]; dup {
			return fmt.Errorf("entry %d: %s listed twice", i+1, parts[2])
		}
		rel.Files[parts[2]] = FileHash{SHA256: strings.ToLower(parts[0]), Size: size}
	}
	return nil
}

// parseReleaseDate parses a Date or Valid-Until value in the forms apt
// accepts: RFC 1123/2822 with a numeric zone or UTC/GMT, the day of week
// optional. Other alphabetic zones are refused: Go would read them as
// offset zero.
func parseReleaseDate(s string) (time.Time, error) {
	layouts := [...]string{
		"Mon, 2 Jan 2006 15:04:05 -0700",
		"Mon, 2 Jan 2006 15:04:05 MST",
		"2 Jan 2006 15:04:05 -0700",
		"2 Jan 2006 15:04:05 MST",
	}
	for _, layout := range layouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if strings.HasSuffix(layout, "MST") {
			if zone, _ := t.Zone(); zone != "UTC" && zone != "GMT" {
				return time.Time{}, fmt.Errorf("date %q: time zone must be UTC, GMT or numeric", s)
			}
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("date %q: want RFC 2822 form such as \"Sat, 16 May 2026 09:14:41 UTC\"", truncate(s, 60))
}

// parseYesNo parses a boolean field as apt's StringToBool does.
func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "true", "with", "on", "enable":
		return true, nil
	case "no", "false", "without", "off", "disable":
		return false, nil
	}
	return false, fmt.Errorf("want yes or no, got %q", truncate(s, 30))
}

// HasComponent reports whether the Release declares component c. An empty
// Components field declares everything. As in apt, "updates/main" (the
// debian-security form) also declares "main".
func (rel *Release) HasComponent(c string) bool {
	if len(rel.Components) == 0 {
		return true
	}
	for _, have := range rel.Components {
		if have == c {
			return true
		}
		if i := strings.LastIndexByte(have, '/'); i >= 0 && have[i+1:] == c {
			return true
		}
	}
	return false
}

// HasArch reports whether the Release declares architecture a. An empty
// Architectures field declares everything. "all" is not declared for
// Packages when the Release says No-Support-for-Architecture-all: Packages.
func (rel *Release) HasArch(a string) bool {
	if a == "all" && rel.NoArchAllPackages {
		return false
	}
	if len(rel.Architectures) == 0 {
		return true
	}
	for _, have := range rel.Architectures {
		if have == a {
			return true
		}
	}
	return false
}

// isHexLen reports whether s is n hexadecimal digits.
func isHexLen(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// signedTextStart returns the line number at which the signed text of a
// clear-signed file begins: the line after the blank line that ends the
// armor headers following the BEGIN line.
func signedTextStart(data []byte) int {
	begun := false
	for i := 0; len(data) > 0; i++ {
		l, rest, _ := bytes.Cut(data, []byte("\n"))
		switch {
		case !begun:
			begun = bytes.HasPrefix(l, []byte("-----BEGIN PGP SIGNED MESSAGE-----"))
		case len(bytes.TrimSpace(l)) == 0:
			return i + 2
		}
		data = rest
	}
	return 1
}
