package deb

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// SourceEntry is one line of a one-line sources.list or one stanza of a
// deb822 .sources file, as apt's pkgSourceList parses it (apt-pkg/
// sourcelist.cc, deb/debmetaindex.cc). Values are as written: apt's
// "$(ARCH)" in suites and URIs is not substituted, and URIs keep their
// form (apt appends a "/").
type SourceEntry struct {
	Types         []string // "deb", "deb-src"
	URIs          []string
	Suites        []string
	Components    []string // empty for a flat repository
	Architectures []string // arch= / Architectures:; empty means APT::Architectures
	// SignedBy is apt's normalized Signed-By: absolute keyring paths and
	// upper-case fingerprints, or a single inline ASCII-armored key (lines
	// trimmed, deb822's " ." lines empty).
	SignedBy []string
	Trusted  bool // trusted=yes
	Enabled  bool // false for a deb822 stanza with "Enabled: no" (apt ignores it)
	// Flat marks a flat repository: every suite ends in "/" and there are
	// no components.
	Flat bool
	// Options are all options under apt's names ("arch", "arch+", "arch-",
	// "lang", "target", "signed-by", "trusted", "check-valid-until",
	// "by-hash", ...); deb822 fields are mapped as apt maps them
	// (Architectures-Add becomes "arch+").
	Options map[string]string
	File    string
	Line    int // the line, or the first line of the stanza
}

// ArchitecturesFor is the architecture list apt uses for the entry, given
// the configured ones (AptConfig.Architectures): arch= or all of them, then
// arch+= additions and arch-= removals. apt's implicit "all" is left out.
func (e *SourceEntry) ArchitecturesFor(all []string) []string {
	vals := append([]string(nil), all...)
	if v, ok := e.Options["arch"]; ok {
		vals = aptVectorize(v, ',')
	}
	if v, ok := e.Options["arch+"]; ok {
		for _, a := range aptVectorize(v, ',') {
			if !aptContains(vals, a) {
				vals = append(vals, a)
			}
		}
	}
	if v, ok := e.Options["arch-"]; ok {
		minus := aptVectorize(v, ',')
		kept := vals[:0]
		for _, a := range vals {
			if !aptContains(minus, a) {
				kept = append(kept, a)
			}
		}
		vals = kept
	}
	return vals
}

// ParseSourcesList parses one-line sources.list syntax:
// "deb [opt=val ...] URI suite [component...]" and "deb-src ...", with "#"
// comments (not inside [...]), options quoted and %xx-decoded as apt does,
// "opt+=v" and "opt-=v" kept as options "opt+" and "opt-". A suite ending in
// "/" is a flat repository and takes no components. Errors name file and
// line.
func ParseSourcesList(r io.Reader, name string) ([]SourceEntry, error) {
	br := bufio.NewReader(r)
	var out []SourceEntry
	for line := 1; ; line++ {
		raw, err := br.ReadString('\n')
		if raw == "" && err == io.EOF {
			return out, nil
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		e, ok, perr := parseSourcesLine(aptReadLine(raw), name, line)
		if perr != nil {
			return nil, perr
		}
		if ok {
			out = append(out, e)
		}
	}
}

func parseSourcesLine(line, name string, lineNo int) (SourceEntry, bool, error) {
	e := SourceEntry{Enabled: true, File: name, Line: lineNo, Options: map[string]string{}}
	fail := func(what string) (SourceEntry, bool, error) {
		return e, false, fmt.Errorf("%s:%d: malformed entry in source list (%s)", name, lineNo, what)
	}
	line = strings.Trim(aptCutListComment(line), " \t\r")
	if line == "" {
		return e, false, nil
	}
	typ := line
	if i := strings.IndexAny(line, " \t\v"); i >= 0 {
		typ = line[:i]
	}
	if typ == "" || typ == line {
		return fail("type")
	}
	if typ != "deb" && typ != "deb-src" {
		return e, false, fmt.Errorf("%s:%d: type '%s' is not known", name, lineNo, typ)
	}
	e.Types = []string{typ}
	rest, bad := parseListOptions(line[len(typ):], e.Options)
	if bad != "" {
		return fail(bad)
	}
	uri, rest, ok := aptParseQuoteWord(rest)
	if !ok {
		return fail("URI")
	}
	suite, rest, ok := aptParseQuoteWord(rest)
	if !ok {
		return fail("Suite")
	}
	if !aptValidURI(uri) {
		return fail("URI parse")
	}
	e.URIs, e.Suites = []string{uri}, []string{suite}
	for {
		comp, r, ok := aptParseQuoteWord(rest)
		if !ok {
			break
		}
		e.Components, rest = append(e.Components, comp), r
	}
	e.Flat = strings.HasSuffix(suite, "/")
	switch {
	case e.Flat && len(e.Components) > 0:
		return fail("absolute Suite Component")
	case !e.Flat && len(e.Components) == 0:
		return fail("Component")
	}
	if bad := e.applyOptions(); bad != "" {
		return fail(bad)
	}
	return e, true, nil
}

// aptCutListComment removes a "#" comment unless the "#" is inside [...].
func aptCutListComment(line string) string {
	for pos := 0; ; {
		i := strings.IndexByte(line[pos:], '#')
		if i < 0 {
			return line
		}
		i += pos
		if strings.Count(line[:i], "[") > strings.Count(line[:i], "]") {
			pos = i + 1
			continue
		}
		return line[:i]
	}
}

// parseListOptions reads an optional "[ k=v ... ]" block into opts and
// returns the text after it, or the reason it is malformed.
func parseListOptions(s string, opts map[string]string) (string, string) {
	pos := 0
	skip := func() {
		for pos < len(s) && aptIsSpace(s[pos]) {
			pos++
		}
	}
	skip()
	if pos == len(s) || s[pos] != '[' {
		return s[pos:], ""
	}
	pos++
	skip()
	for pos >= len(s) || s[pos] != ']' {
		opt, rest, ok := aptParseQuoteWord(s[pos:])
		if !ok {
			return "", "[option] unparsable"
		}
		if len(opt) < 3 {
			return "", "[option] too short"
		}
		pos = len(s) - len(rest)
		if strings.HasSuffix(opt, "]") { // "[arch=amd64]" without a space
			if pos = strings.LastIndexByte(s[:pos], ']'); pos < 0 {
				return "", "[option] unparsable"
			}
			opt = opt[:len(opt)-1]
		}
		key, val, found := strings.Cut(opt, "=")
		switch {
		case !found:
			return "", "[option] not assignment"
		case key == "":
			return "", "[option] no key"
		case val == "":
			return "", "[option] no value"
		}
		opts[key] = val
	}
	pos++
	skip()
	return s[pos:], ""
}

// aptValidURI is the check of Type::FixupURI: non-empty with a ":".
func aptValidURI(uri string) bool { return strings.Contains(uri, ":") }

// applyOptions derives Architectures, SignedBy and Trusted from Options.
func (e *SourceEntry) applyOptions() string {
	if v, ok := e.Options["arch"]; ok {
		e.Architectures = aptVectorize(v, ',')
	}
	if v, ok := e.Options["trusted"]; ok {
		e.Trusted = aptStringToBool(v, 0) == 1
	}
	if v := e.Options["signed-by"]; v != "" {
		keys, ok := aptNormalizeSignedBy(v)
		if !ok {
			return "Signed-By: not a fingerprint"
		}
		e.SignedBy = keys
	}
	return ""
}

const aptArmorBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

// aptNormalizeSignedBy is NormalizeSignedBy(value, true): an inline key
// with its lines trimmed and "." lines emptied, or a list of absolute
// paths and fingerprints (40 hex digits, optionally followed by "!").
func aptNormalizeSignedBy(v string) ([]string, bool) {
	if strings.Contains(v, aptArmorBegin) {
		var b strings.Builder
		for _, line := range strings.SplitAfter(v, "\n") {
			if line == "" {
				continue
			}
			if line = aptTrimSpace(line); line == "." {
				line = ""
			}
			b.WriteString(line + "\n")
		}
		return []string{b.String()}, true
	}
	keys := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r < 0x80 && aptIsSpace(byte(r)) })
	for i, k := range keys {
		if strings.HasPrefix(k, "/") {
			continue
		}
		k = strings.ToUpper(k)
		hex := strings.TrimRight(strings.TrimSuffix(k, "!"), "0123456789ABCDEF")
		if hex != "" || len(strings.TrimSuffix(k, "!")) != 40 || strings.Count(k, "!") > 1 {
			return nil, false
		}
		keys[i] = k
	}
	return keys, len(keys) > 0
}

// deb822SourceOptions maps .sources fields to apt's option names; the
// multi-valued ones are joined with ",".
var deb822SourceOptions = []struct {
	field, option string
	multi         bool
}{
	{"Architectures", "arch", true}, {"Architectures-Add", "arch+", true}, {"Architectures-Remove", "arch-", true},
	{"Languages", "lang", true}, {"Languages-Add", "lang+", true}, {"Languages-Remove", "lang-", true},
	{"Targets", "target", true}, {"Targets-Add", "target+", true}, {"Targets-Remove", "target-", true},
	{"Trusted", "trusted", false}, {"Check-Valid-Until", "check-valid-until", false},
	{"Valid-Until-Min", "valid-until-min", false}, {"Valid-Until-Max", "valid-until-max", false},
	{"Check-Date", "check-date", false}, {"Date-Max-Future", "date-max-future", false},
	{"Signed-By", "signed-by", false}, {"PDiffs", "pdiffs", false}, {"By-Hash", "by-hash", false},
}

// ParseDeb822Sources parses a deb822 .sources file: stanzas of Types, URIs,
// Suites, Components, Architectures, Signed-By (paths or an inline key
// spread over continuation lines, " ." for its empty lines), Trusted,
// Enabled, ... with "#" comment lines. A stanza with "Enabled: no" is
// returned with Enabled false and, as apt does, not checked further.
// Errors name the file and the stanza's first line.
func ParseDeb822Sources(r io.Reader, name string) ([]SourceEntry, error) {
	stanzas, err := aptReadStanzas(r, name)
	if err != nil {
		return nil, err
	}
	out := make([]SourceEntry, 0, len(stanzas))
	for i := range stanzas {
		e, err := deb822Entry(&stanzas[i], name, i+1)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func deb822Entry(st *aptStanza, name string, index int) (SourceEntry, error) {
	e := SourceEntry{File: name, Line: st.line, Enabled: true, Options: map[string]string{}}
	fail := func(what string) (SourceEntry, error) {
		return e, fmt.Errorf("%s:%d: malformed stanza %d (%s)", name, st.line, index, what)
	}
	types, ok := st.find("Types")
	if !ok {
		return fail("type")
	}
	e.Types = aptFields(types)
	for _, t := range e.Types {
		if t != "deb" && t != "deb-src" {
			return e, fmt.Errorf("%s:%d: type '%s' is not known on stanza %d", name, st.line, t, index)
		}
	}
	if v := st.findS("Enabled"); v != "" && aptStringToBool(v, -1) == 0 {
		e.Enabled = false
	}
	for _, m := range deb822SourceOptions {
		if v, ok := st.find(m.field); ok {
			if m.multi {
				v = strings.Join(aptFields(v), ",")
			}
			e.Options[m.option] = v
		}
	}
	e.URIs = aptFields(st.findS("URIs"))
	e.Suites = aptFields(st.findS("Suites"))
	e.Components = aptFields(st.findS("Components"))
	e.Flat = len(e.Suites) > 0 && len(e.Components) == 0
	for _, s := range e.Suites {
		e.Flat = e.Flat && strings.HasSuffix(s, "/")
	}
	msg := e.applyOptions()
	if !e.Enabled || len(e.Types) == 0 {
		return e, nil // apt looks no further
	}
	if what := e.checkDeb822(); what != "" {
		return fail(what)
	}
	if msg != "" {
		return fail(msg)
	}
	return e, nil
}

// checkDeb822 is ParseStanza's validation of an enabled stanza.
func (e *SourceEntry) checkDeb822() string {
	switch {
	case len(e.URIs) == 0:
		return "URI"
	case len(e.Suites) == 0:
		return "Suite"
	}
	for _, u := range e.URIs {
		if !aptValidURI(u) {
			return "URI parse"
		}
	}
	for _, s := range e.Suites {
		flat := strings.HasSuffix(s, "/")
		if flat && len(e.Components) > 0 {
			return "absolute Suite Component"
		}
		if !flat && len(e.Components) == 0 {
			return "Component"
		}
	}
	return ""
}

// LoadSources reads apt's sources of the system under root as
// pkgSourceList::ReadMainList does: Dir::Etc::sourcelist (one-line, or
// deb822 when its name ends in .sources), then the files of
// Dir::Etc::sourceparts whose names end in .list or .sources (letters,
// digits, "_-:." only; others, such as *.disabled-by-farm, ignored with a
// notice through conf.Warn unless Dir::Ignore-Files-Silently matches), in
// byte order. A nil conf means apt's defaults.
func LoadSources(root string, conf *AptConfig) ([]SourceEntry, error) {
	if conf == nil {
		conf = aptDefaultConfig()
	}
	main := conf.FindFile("Dir::Etc::sourcelist", "/dev/null")
	parts := conf.FindDir("Dir::Etc::sourceparts", "/dev/null")
	var files []string
	if !strings.HasSuffix(main, "/dev/null") && aptIsRegular(aptUnder(root, main)) {
		files = append(files, aptUnder(root, main))
	}
	switch dir := aptUnder(root, parts); {
	case strings.HasSuffix(parts, "/dev/null"):
	case aptIsDir(dir):
		list, err := conf.filesInDir(dir, []string{"list", "sources"})
		if err != nil {
			return nil, err
		}
		files = append(files, list...)
	case len(files) == 0:
		conf.warn("Unable to read %s", parts)
	}
	var out []SourceEntry
	for _, f := range files {
		entries, err := ReadSourcesFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, entries...)
	}
	return out, nil
}

// ReadSourcesFile reads one sources file: deb822 when its name ends in
// .sources, one-line format otherwise.
func ReadSourcesFile(path string) ([]SourceEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".sources") {
		return ParseDeb822Sources(f, path)
	}
	return ParseSourcesList(f, path)
}

// aptUnder maps a path apt would open to the file under root.
func aptUnder(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}
