package deb

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// NeverPinPriority is the priority of "Pin-Priority: never" (apt's
// NEVER_PIN): versions pinned so are never candidates.
const NeverPinPriority = -32768

// Pin is one record of apt_preferences(5) as apt's ReadPinFile
// (apt-pkg/policy.cc) keeps it.
type Pin struct {
	// Packages are the names of "Package:", as written (globs, /regex/,
	// "src:" and ":arch" forms included); empty for "Package: *".
	Packages []string
	Type     string // "version", "release" or "origin"
	Data     string // the rest of the Pin line, e.g. "a=stable,n=bookworm"
	// Priority is the Pin-Priority; NeverPinPriority when Never.
	Priority int
	Never    bool // "Pin-Priority: never" (only allowed with "Package: *")
	File     string
	Line     int // first line of the record
}

// ParsePreferences parses an apt preferences file as apt 2.6 does; see
// ParsePreferencesWarn. Warnings are dropped.
func ParsePreferences(r io.Reader, name string) ([]Pin, error) {
	return ParsePreferencesWarn(r, name, nil)
}

// ParsePreferencesWarn parses an apt preferences file as ReadPinFile: deb822
// records with "#" comment lines; a record without Package is an error,
// one without Pin is skipped; the pin type (first word of Pin) is
// "release", "origin", or "version" (not with "Package: *"), anything else
// is reported to warn (when not nil) and skipped; Pin-Priority must be a
// non-zero number in -32768..32767 (its leading digits count, as with
// strtol; -32768 written as a number becomes -32767) or "never", which only
// "Package: *" may use. Other fields, such as Explanation, are ignored.
// Errors and warnings name the file and the record's first line.
func ParsePreferencesWarn(r io.Reader, name string, warn func(msg string)) ([]Pin, error) {
	stanzas, err := aptReadStanzas(r, name)
	if err != nil {
		return nil, err
	}
	var pins []Pin
	for i := range stanzas {
		pin, ok, err := parsePin(&stanzas[i], name, warn)
		if err != nil {
			return nil, err
		}
		if ok {
			pins = append(pins, pin)
		}
	}
	return pins, nil
}

func parsePin(st *aptStanza, file string, warn func(string)) (Pin, bool, error) {
	p := Pin{File: file, Line: st.line}
	errorf := func(format string, args ...any) (Pin, bool, error) {
		return p, false, fmt.Errorf("%s:%d: %s", file, st.line, fmt.Sprintf(format, args...))
	}
	pkgs := st.findS("Package")
	if pkgs == "" {
		return errorf("invalid record in the preferences file, no Package header")
	}
	if pkgs != "*" {
		p.Packages = aptFields(pkgs)
	}
	pin, ok := st.find("Pin")
	if !ok {
		return p, false, nil
	}
	word := pin
	if i := strings.IndexFunc(pin, func(r rune) bool { return r < 0x80 && aptIsSpace(byte(r)) }); i >= 0 {
		word = pin[:i]
	}
	switch t := aptLowerString(word); {
	case t == "version" && len(p.Packages) > 0, t == "release", t == "origin":
		p.Type = t
	default:
		if warn != nil {
			warn(fmt.Sprintf("%s:%d: did not understand pin type %s", file, st.line, word))
		}
		return p, false, nil
	}
	p.Data = strings.TrimLeft(pin[len(word):], " \t\n\v\f\r")
	prio, err := pinPriority(st, len(p.Packages) > 0)
	if err != "" {
		return errorf("%s", err)
	}
	p.Priority, p.Never = prio, st.findS("Pin-Priority") == "never"
	return p, true, nil
}

// pinPriority reads Pin-Priority as ReadPinFile does.
func pinPriority(st *aptStanza, named bool) (int, string) {
	s, present := st.find("Pin-Priority")
	if s == "never" {
		if named {
			return 0, "the special 'Pin-Priority: never' can only be used for 'Package: *' records"
		}
		return NeverPinPriority, ""
	}
	prio, bad := 0, false
	if present && len(s) < 300 {
		if i := strings.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		n, end, overflow := aptStrtol(s, 10)
		bad = overflow || n < -1<<31 || n > 1<<31-1
		if end > 0 {
			prio = int(int32(n))
		}
	}
	if prio == NeverPinPriority {
		prio++
	}
	if bad || prio < -32768 || prio > 32767 {
		return 0, fmt.Sprintf("value %s is outside the range of valid pin priorities (-32768 to 32767)", s)
	}
	if prio == 0 {
		return 0, "no priority (or zero) specified for pin"
	}
	return prio, ""
}

// LoadPreferences reads the pins of the system under root in apt's order:
// Dir::Etc::preferences (ROOT/etc/apt/preferences), then the files of
// Dir::Etc::preferencesparts (ROOT/etc/apt/preferences.d) that have no
// extension or end in .pref (letters, digits, "_-:." only), in byte order.
// Skipped pins and ignored file names are reported through conf.Warn. A nil
// conf means apt's defaults.
func LoadPreferences(root string, conf *AptConfig) ([]Pin, error) {
	if conf == nil {
		conf = aptDefaultConfig()
	}
	var files []string
	if main := conf.FindFile("Dir::Etc::preferences", ""); main != "" && aptIsRegular(aptUnder(root, main)) {
		files = append(files, aptUnder(root, main))
	}
	parts := conf.FindDir("Dir::Etc::preferencesparts", "/dev/null")
	switch dir := aptUnder(root, parts); {
	case strings.HasSuffix(parts, "/dev/null"):
	case aptIsDir(dir):
		list, err := conf.filesInDir(dir, []string{"pref", ""})
		if err != nil {
			return nil, err
		}
		files = append(files, list...)
	default:
		conf.warn("Unable to read %s", parts)
	}
	var pins []Pin
	for _, path := range files {
		p, err := readPinFile(path, conf)
		if err != nil {
			return nil, err
		}
		pins = append(pins, p...)
	}
	return pins, nil
}

func readPinFile(path string, conf *AptConfig) ([]Pin, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParsePreferencesWarn(f, path, conf.Warn)
}
