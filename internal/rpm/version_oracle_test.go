package rpm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// oracleScript is the differential oracle: the real librpm through
// python3-rpm. It reads JSON lines and answers each with one JSON line:
//
//	["s", A, B]  ->  [labelCompare(A, B), labelCompare((e,v,r)A, (e,v,r)B), [e,v,r]A, [e,v,r]B]
//	["t", [e,v,r], [e,v,r]]  ->  [labelCompare((e,v,r), (e,v,r))]
//
// where (e,v,r) is what rpm.ver parses from the string (None for a
// missing epoch or release, null in JSON) and a verdict is "-1", "0", "1"
// or "E" when rpm refuses the input (ValueError: "invalid version").
const oracleScript = `
import json, sys
import rpm

def parse(s):
    try:
        v = rpm.ver(s)
    except ValueError:
        return None
    return [v.e, v.v, v.r]

def cmp(a, b):
    try:
        return str(rpm.labelCompare(a, b))
    except ValueError:
        return "E"

flush = len(sys.argv) > 1 and sys.argv[1] == "-i"
for line in sys.stdin:
    rec = json.loads(line)
    if rec[0] == "s":
        pa, pb = parse(rec[1]), parse(rec[2])
        t = cmp(tuple(pa), tuple(pb)) if pa and pb else "E"
        out = [cmp(rec[1], rec[2]), t, pa, pb]
    else:
        out = [cmp(tuple(rec[1]), tuple(rec[2]))]
    sys.stdout.write(json.dumps(out) + "\n")
    if flush:
        sys.stdout.flush()
`

// rpmPython finds a python3 that can import rpm (python3-rpm): the first
// python3 on PATH may be another installation (pyenv, venv) than the
// system's, which is where Debian's python3-rpm lives.
var rpmPython = sync.OnceValues(func() (string, error) {
	var tried []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "import rpm; print(rpm.__version__)").CombinedOutput()
		if err == nil {
			return path, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %s", path, strings.TrimSpace(string(out))))
	}
	return "", fmt.Errorf("no python3 with the rpm module (apt-get install python3-rpm): tried %v", tried)
})

// oracleOrSkip returns the python3 to run oracleScript with, skips the
// test if there is none, or fails it if PATCHLOOP_REQUIRE_ORACLES=1 (as
// CI sets it).
func oracleOrSkip(t testing.TB) string {
	t.Helper()
	py, err := rpmPython()
	if err != nil {
		if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
			t.Fatalf("PATCHLOOP_REQUIRE_ORACLES=1 but the rpm oracle is unavailable: %v", err)
		}
		t.Skipf("skipping: rpm oracle unavailable: %v", err)
	}
	return py
}

// oracleAnswer is one line of the oracle's output.
type oracleAnswer struct {
	String, Tuple string      // verdicts of the string and the tuple forms
	ParsedA       *[3]*string // rpm.ver(A) as [e, v, r]; nil if refused
	ParsedB       *[3]*string
}

// tuple is an (e, v, r) as python3-rpm takes it; nil is None.
func tuple(e EVR) [3]*string {
	t := [3]*string{nil, &e.Version, nil}
	if e.Epoch != "" {
		t[0] = &e.Epoch
	}
	if e.hasRelease() {
		t[2] = &e.Release
	}
	return t
}

// runOracle sends every string pair and then every tuple pair through one
// python3 process and returns its answers in the same order.
func runOracle(py string, strs [][2]string, tuples [][2]EVR) ([]oracleAnswer, error) {
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, p := range strs {
		if !utf8.ValidString(p[0]) || !utf8.ValidString(p[1]) {
			return nil, fmt.Errorf("pair %q is not UTF-8, which python3-rpm cannot take", p)
		}
		enc.Encode([]any{"s", p[0], p[1]})
	}
	for _, p := range tuples {
		enc.Encode([]any{"t", tuple(p[0]), tuple(p[1])})
	}
	cmd := exec.Command(py, "-c", oracleScript)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("python3-rpm oracle: %w: %s", err, stderr.Bytes())
	}
	var answers []oracleAnswer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var raw []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("oracle line %d: %q: %v", len(answers)+1, sc.Bytes(), err)
		}
		var a oracleAnswer
		if err := json.Unmarshal(raw[0], &a.String); err != nil {
			return nil, err
		}
		if len(raw) == 4 {
			if err := errors.Join(json.Unmarshal(raw[1], &a.Tuple), json.Unmarshal(raw[2], &a.ParsedA),
				json.Unmarshal(raw[3], &a.ParsedB)); err != nil {
				return nil, fmt.Errorf("oracle line %d: %w", len(answers)+1, err)
			}
		}
		answers = append(answers, a)
	}
	if len(answers) != len(strs)+len(tuples) {
		return nil, fmt.Errorf("oracle gave %d answers for %d pairs", len(answers), len(strs)+len(tuples))
	}
	return answers, sc.Err()
}

// parsedString renders ParseEVR(s) as rpm.ver's [e, v, r], "refused" if
// it is an error.
func parsedString(s string) string {
	e, err := ParseEVR(s)
	if err != nil {
		return "refused"
	}
	return renderTuple(tuple(e))
}

func renderTuple(t [3]*string) string {
	var parts []string
	for _, p := range t {
		if p == nil {
			parts = append(parts, "None")
		} else {
			parts = append(parts, strconv.Quote(*p))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func renderOracleParse(p *[3]*string) string {
	if p == nil {
		return "refused"
	}
	return renderTuple(*p)
}

// stringVerdict is CompareEVR(a, b) in the oracle's notation, "E" where
// rpm would refuse a or b.
func stringVerdict(a, b string) string {
	_, errA := ParseEVR(a)
	_, errB := ParseEVR(b)
	if errA != nil || errB != nil {
		return "E"
	}
	return strconv.Itoa(CompareEVR(a, b))
}

// checkAgainstOracle compares everything the oracle said with our
// answers and reports the first few differences.
func checkAgainstOracle(t *testing.T, strs [][2]string, tuples [][2]EVR, answers []oracleAnswer) {
	t.Helper()
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	tally := map[string]int{}
	for i, p := range strs {
		a := answers[i]
		tally[a.String]++
		if got := stringVerdict(p[0], p[1]); got != a.String {
			report("CompareEVR(%q, %q) = %s, rpm.labelCompare says %s", p[0], p[1], got, a.String)
		}
		for k, s := range []string{p[0], p[1]} {
			want := renderOracleParse([]*[3]*string{a.ParsedA, a.ParsedB}[k])
			if got := parsedString(s); got != want {
				report("ParseEVR(%q) = %s, rpm.ver says %s", s, got, want)
			}
		}
		// The tuple form refuses an empty version, which the string
		// form accepts; otherwise the two must agree.
		if a.Tuple != a.String && a.Tuple != "E" {
			report("rpm.labelCompare disagrees with itself on %q, %q: %s for strings, %s for tuples",
				p[0], p[1], a.String, a.Tuple)
		}
	}
	for i, p := range tuples {
		a := answers[len(strs)+i]
		tally["tuple "+a.String]++
		if got := strconv.Itoa(p[0].Compare(p[1])); got != a.String {
			report("%s.Compare(%s) = %s, rpm.labelCompare%s says %s", renderTuple(tuple(p[0])),
				renderTuple(tuple(p[1])), got, renderTuple(tuple(p[0]))+", "+renderTuple(tuple(p[1])), a.String)
		}
	}
	if bad > 0 {
		t.Errorf("%d differences from rpm on %d string pairs and %d tuple pairs", bad, len(strs), len(tuples))
	}
	t.Logf("%d string pairs and %d tuple pairs compared with python3-rpm: %v", len(strs), len(tuples), tally)
}

// TestCompareEVROracle checks ParseEVR, CompareEVR and EVR.Compare
// against rpm.labelCompare and rpm.ver of python3-rpm (librpm 4.18) on
// 150,000 generated string pairs and 30,000 (e, v, r) tuple pairs, all
// sent to one python3 process.
func TestCompareEVROracle(t *testing.T) {
	py := oracleOrSkip(t)
	nStr, nTup := 150_000, 30_000
	if testing.Short() {
		nStr, nTup = 15_000, 3_000
	}
	c := loadCorpus(t)
	strs := genPairs(c, 1, nStr)
	tuples := genTuplePairs(c, 2, nTup)
	answers, err := runOracle(py, strs, tuples)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstOracle(t, strs, tuples, answers)
}

// corpus is testdata/evrs.txt: real EVRs of the AlmaLinux OSV feed and,
// for each package, its other EVRs.
type corpus struct {
	evrs     []string
	pkg      []string            // pkg[i] is the package of evrs[i]
	siblings map[string][]string // package -> its EVRs
	versions []string            // the version parts, for tuples
	releases []string            // the release parts
}

func loadCorpus(t testing.TB) corpus {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "evrs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c := corpus{siblings: map[string][]string{}}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("testdata/evrs.txt:%d: want \"ecosystem package evr\", got %q", i+1, line)
		}
		key := f[0] + " " + f[1]
		c.evrs = append(c.evrs, f[2])
		c.pkg = append(c.pkg, key)
		c.siblings[key] = append(c.siblings[key], f[2])
		e, err := ParseEVR(f[2])
		if err != nil {
			t.Fatalf("testdata/evrs.txt:%d: %v", i+1, err)
		}
		c.versions = append(c.versions, e.Version)
		c.releases = append(c.releases, e.Release)
	}
	return c
}

// genPairs returns n deterministic pairs: EVRs of the same package,
// neighbours and strangers from the corpus, and mutations of them.
func genPairs(c corpus, seed uint64, n int) [][2]string {
	rng := rand.New(rand.NewPCG(seed, 0x79a))
	pairs := make([][2]string, 0, n)
	for len(pairs) < n {
		i := rng.IntN(len(c.evrs))
		a := c.evrs[i]
		var b string
		switch r := rng.IntN(100); {
		case r < 25:
			sib := c.siblings[c.pkg[i]]
			b = sib[rng.IntN(len(sib))]
		case r < 35:
			b = c.evrs[min(i+1+rng.IntN(3), len(c.evrs)-1)]
		case r < 45:
			b = c.evrs[rng.IntN(len(c.evrs))]
		case r < 50:
			b = a
		default:
			b = mutate(rng, a, 1+rng.IntN(3))
		}
		if rng.IntN(5) == 0 {
			a = mutate(rng, a, 1)
		}
		if rng.IntN(2) == 0 {
			a, b = b, a
		}
		pairs = append(pairs, [2]string{a, b})
	}
	return pairs
}

// genTuplePairs returns n pairs of EVRs built field by field, with
// epochs rpm's parser never makes (letters, "~") and missing or empty
// releases, to test EVR.Compare as labelCompare((e,v,r), (e,v,r)).
func genTuplePairs(c corpus, seed uint64, n int) [][2]EVR {
	rng := rand.New(rand.NewPCG(seed, 0x7e1))
	epochs := []string{"", "", "", "0", "1", "2", "00", "01", "10", "a", "1a", "~", "^", "1.0"}
	one := func() EVR {
		i := rng.IntN(len(c.evrs))
		e := EVR{Epoch: epochs[rng.IntN(len(epochs))], Version: c.versions[i], Release: c.releases[i]}
		switch rng.IntN(6) {
		case 0:
			e.Release = ""
		case 1:
			e.Release, e.HasRelease = "", true
		case 2:
			e.Release = mutate(rng, e.Release, 1)
		case 3:
			e.Version = mutate(rng, e.Version, 1)
		}
		// python3-rpm refuses an empty version and NUL bytes in tuples.
		e.Version = strings.ReplaceAll(e.Version, "\x00", "")
		e.Release = strings.ReplaceAll(e.Release, "\x00", "")
		if e.Version == "" {
			e.Version = "0"
		}
		return e
	}
	pairs := make([][2]EVR, 0, n)
	for len(pairs) < n {
		a := one()
		b := a
		if rng.IntN(4) != 0 {
			b = one()
		}
		if rng.IntN(3) == 0 {
			// Same version, so that releases and epochs decide.
			b.Version = a.Version
		}
		pairs = append(pairs, [2]EVR{a, b})
	}
	return pairs
}

var (
	suffixes = []string{"~rc1", "~", "~~", "^", "^git1", "^20160101", ".1", "-1", "-", ".alma.1", "_1",
		"a", "p1", ".0", "0", "~a^b", "^~", "~^", "+", ".el9_4", "%", "-0", ":1", ".module_el8.6.0+3162+01a09e5a"}
	fragments = []string{"a", "Z", "~", "^", ".", "-", ":", "_", "+", "0", "00", "9", "el", "p", "~~", "^^", "alma"}
	// odd holds what rpm treats in unusual ways: NUL ends a C string,
	// non-ASCII bytes and control characters separate.
	odd = []string{"\x00", "\u00e9", "\u00df0", "\t", "\n", " ", "::", ":", "--", "~-", "-~", "\x7f", "\x01", "\u03b1"}
)

// mutate applies k random edits to v, keeping it valid UTF-8 (python3-rpm
// takes str).
func mutate(rng *rand.Rand, v string, k int) string {
	for range k {
		pos := 0
		if len(v) > 0 {
			pos = rng.IntN(len(v) + 1)
		}
		switch rng.IntN(15) {
		case 0: // add an epoch
			v = []string{"0", "1", "2", "10", "00", "007", ""}[rng.IntN(7)] + ":" + v
		case 1: // remove the epoch
			if _, rest, ok := strings.Cut(v, ":"); ok {
				v = rest
			}
		case 2: // bump the epoch
			if e, rest, ok := strings.Cut(v, ":"); ok {
				n, _ := strconv.Atoi(e)
				v = strconv.Itoa(n+1) + ":" + rest
			}
		case 3, 4:
			v += suffixes[rng.IntN(len(suffixes))]
		case 5: // change a digit
			if d := digitPositions(v); len(d) > 0 {
				p := d[rng.IntN(len(d))]
				v = v[:p] + string(rune('0'+rng.IntN(10))) + v[p+1:]
			}
		case 6, 7:
			v = v[:pos] + fragments[rng.IntN(len(fragments))] + v[pos:]
		case 8: // leading zeros
			if d := digitPositions(v); len(d) > 0 {
				p := d[rng.IntN(len(d))]
				v = v[:p] + strings.Repeat("0", 1+rng.IntN(3)) + v[p:]
			}
		case 9: // drop a byte
			if pos < len(v) {
				v = v[:pos] + v[pos+1:]
			}
		case 10: // truncate
			v = v[:pos]
		case 11: // duplicate a tail
			v += v[pos:]
		case 12:
			v = v[:pos] + odd[rng.IntN(len(odd))] + v[pos:]
		case 13: // swap the case of a letter
			if pos < len(v) && isAlpha(v[pos]) {
				v = v[:pos] + string(v[pos]^0x20) + v[pos+1:]
			}
		case 14: // change a separator
			if pos < len(v) && !isAlnum(v[pos]) {
				v = v[:pos] + []string{".", "_", "+", "~", "^", "-", ""}[rng.IntN(7)] + v[pos+1:]
			}
		}
	}
	return strings.ToValidUTF8(v, "")
}

func digitPositions(v string) []int {
	var d []int
	for i := range len(v) {
		if isDigit(v[i]) {
			d = append(d, i)
		}
	}
	return d
}

// feedDir is the AlmaLinux OSV feed of the shared data sets, present on
// the development machines beside the repository (see its README).
var feedDir = filepath.Join("..", "..", "..", "shared", "feeds", "almalinux-osv", "advisories")

// TestCompareEVRFeedOracle orders every "fixed" EVR of the AlmaLinux OSV
// feed as rpm does: per package, each EVR against the next one in the
// feed and against its neighbour once sorted by CompareEVR, plus the
// neighbours in the sorted list of all distinct EVRs. Skipped where the
// feed is absent.
func TestCompareEVRFeedOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 131,000 pairs of the feed in -short mode")
	}
	files, _ := filepath.Glob(filepath.Join(feedDir, "*", "*.json"))
	if len(files) == 0 {
		t.Skipf("skipping: no AlmaLinux OSV feed in %s", feedDir)
	}
	py := oracleOrSkip(t)
	byPkg := map[string][]string{}
	distinct := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var adv struct {
			Affected []struct {
				Package struct{ Ecosystem, Name string }
				Ranges  []struct {
					Events []struct{ Fixed string }
				}
			}
		}
		if err := json.Unmarshal(data, &adv); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, a := range adv.Affected {
			key := a.Package.Ecosystem + " " + a.Package.Name
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					if e.Fixed != "" {
						byPkg[key] = append(byPkg[key], e.Fixed)
						distinct[e.Fixed] = true
					}
				}
			}
		}
	}
	var pairs [][2]string
	for _, evrs := range byPkg {
		for i := 1; i < len(evrs); i++ {
			pairs = append(pairs, [2]string{evrs[i-1], evrs[i]})
		}
		sorted := slices.Clone(evrs)
		slices.SortFunc(sorted, CompareEVR)
		for i := 1; i < len(sorted); i++ {
			pairs = append(pairs, [2]string{sorted[i], sorted[i-1]})
		}
	}
	all := slices.Sorted(maps.Keys(distinct))
	slices.SortFunc(all, CompareEVR)
	for i := 1; i < len(all); i++ {
		pairs = append(pairs, [2]string{all[i-1], all[i]})
	}
	answers, err := runOracle(py, pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d advisories, %d packages, %d distinct EVRs", len(files), len(byPkg), len(all))
	checkAgainstOracle(t, pairs, nil, answers)
}
