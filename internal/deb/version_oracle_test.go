package deb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// oracleSource is a differential oracle built on the real libdpkg. It reads
// NUL-terminated versions from stdin two by two and prints, per pair, "<",
// "=" or ">" from dpkg_version_compare, or "E <reason>" with parseversion's
// message for the first version dpkg rejects (warnings are ignored, as the
// dpkg CLI ignores them). With -i it flushes after every pair.
const oracleSource = `#define LIBDPKG_VOLATILE_API 1
#include <stdio.h>
#include <string.h>
#include <dpkg/dpkg.h>
#include <dpkg/dpkg-db.h>
#include <dpkg/version.h>

static int parse(struct dpkg_version *v, const char *s) {
	struct dpkg_error err = DPKG_ERROR_INIT;
	int bad = parseversion(v, s, &err) < 0 && err.type == DPKG_MSG_ERROR;
	if (bad)
		printf("E %s\n", err.str);
	dpkg_error_destroy(&err);
	return bad ? -1 : 0;
}

int main(int argc, char **argv) {
	int flush = argc > 1 && strcmp(argv[1], "-i") == 0;
	char *a = NULL, *b = NULL;
	size_t ca = 0, cb = 0;
	while (getdelim(&a, &ca, '\0', stdin) > 0 && getdelim(&b, &cb, '\0', stdin) > 0) {
		struct dpkg_version va, vb;
		if (parse(&va, a) == 0 && parse(&vb, b) == 0) {
			int rc = dpkg_version_compare(&va, &vb);
			puts(rc < 0 ? "<" : rc > 0 ? ">" : "=");
		}
		if (flush)
			fflush(stdout);
	}
	return 0;
}
`

// dpkgOracle builds the oracle once per test process.
var dpkgOracle = sync.OnceValues(buildDpkgOracle)

// buildDpkgOracle compiles oracleSource against libdpkg into the user
// cache directory, keyed by the source and the libdpkg version, so that
// repeated runs and parallel fuzz workers reuse one binary.
func buildDpkgOracle() (string, error) {
	modver, err := exec.Command("pkg-config", "--modversion", "libdpkg").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg oracle needs pkg-config and libdpkg-dev: %w", err)
	}
	flags, err := exec.Command("pkg-config", "--static", "--cflags", "--libs", "libdpkg").Output()
	if err != nil {
		return "", fmt.Errorf("pkg-config --libs libdpkg: %w", err)
	}
	sum := sha256.Sum256([]byte(oracleSource + string(modver) + string(flags)))
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "patchloop")
	bin := filepath.Join(dir, "dpkg-version-oracle-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("dpkg oracle: %w", err)
	}
	// Per-process names, then an atomic rename: parallel fuzz workers
	// may build at the same time.
	src, tmp := fmt.Sprintf("%s.%d.c", bin, os.Getpid()), fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	defer os.Remove(src)
	defer os.Remove(tmp)
	if err := os.WriteFile(src, []byte(oracleSource), 0o644); err != nil {
		return "", fmt.Errorf("dpkg oracle: %w", err)
	}
	args := append([]string{"-O2", "-o", tmp, src}, strings.Fields(string(flags))...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("dpkg oracle: %w", err)
	}
	return bin, nil
}

// oracleOrSkip returns the oracle binary, or skips the test if it cannot be
// built, or fails it if PATCHLOOP_REQUIRE_ORACLES=1 (as CI sets it).
func oracleOrSkip(t testing.TB) string {
	t.Helper()
	bin, err := dpkgOracle()
	if err != nil {
		missingOracle(t, err)
	}
	return bin
}

func missingOracle(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("PATCHLOOP_REQUIRE_ORACLES") == "1" {
		t.Fatalf("PATCHLOOP_REQUIRE_ORACLES=1 but the oracle is unavailable: %v", err)
	}
	t.Skipf("skipping: oracle unavailable (install gcc, pkg-config, libdpkg-dev, dpkg): %v", err)
}

// runOracle sends all pairs to one oracle process and returns its verdicts.
func runOracle(bin string, pairs [][2]string) ([]string, error) {
	var in bytes.Buffer
	for _, p := range pairs {
		in.WriteString(p[0] + "\x00" + p[1] + "\x00")
	}
	cmd := exec.Command(bin)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", bin, err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(pairs) {
		return nil, fmt.Errorf("%s: %d verdicts for %d pairs", bin, len(lines), len(pairs))
	}
	return lines, nil
}

// verdict renders CompareVersions(a, b) in the oracle's notation.
func verdict(a, b string) string {
	c, err := CompareVersions(a, b)
	if err != nil {
		var ve *VersionError
		if !errors.As(err, &ve) {
			return "E (not a *VersionError) " + err.Error()
		}
		return "E " + ve.Reason
	}
	return [...]string{"<", "=", ">"}[c+1]
}

// corpus is testdata/versions.txt: real versions and, for each, the other
// versions of the same package.
type corpus struct {
	versions []string
	siblings map[string][]string // package -> its versions
	pkg      []string            // pkg[i] is the package of versions[i]
}

func loadCorpus(t testing.TB) corpus {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "versions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c := corpus{siblings: map[string][]string{}}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("testdata/versions.txt:%d: want \"package version\", got %q", i+1, line)
		}
		c.versions = append(c.versions, v)
		c.pkg = append(c.pkg, name)
		c.siblings[name] = append(c.siblings[name], v)
	}
	return c
}

// genPairs returns n deterministic pairs: versions of the same package,
// neighbours and strangers from the corpus, and mutations of them, some
// of which dpkg rejects.
func genPairs(c corpus, seed uint64, n int) [][2]string {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	pairs := make([][2]string, 0, n)
	for len(pairs) < n {
		i := rng.IntN(len(c.versions))
		a := c.versions[i]
		var b string
		switch r := rng.IntN(100); {
		case r < 30:
			sib := c.siblings[c.pkg[i]]
			b = sib[rng.IntN(len(sib))]
		case r < 40:
			b = c.versions[min(i+1+rng.IntN(3), len(c.versions)-1)]
		case r < 50:
			b = c.versions[rng.IntN(len(c.versions))]
		case r < 55:
			b = a
		default:
			b = mutate(rng, a, 1+rng.IntN(3))
		}
		if rng.IntN(6) == 0 {
			a = mutate(rng, a, 1)
		}
		if rng.IntN(2) == 0 {
			a, b = b, a
		}
		pairs = append(pairs, [2]string{a, b})
	}
	return pairs
}

var (
	suffixes = []string{"~rc1", "~", "~~", "~a", "+b1", "+deb12u1", "~deb12u1", ".1", "-1", "-0",
		"a", "+", ".0", "0", "~bpo12+1", "+really1.0", "+dfsg", "-", ".", "+~", "~+"}
	// odd holds inputs dpkg rejects or only warns about.
	odd = []string{"", " ", "\t", "<unknown>", "_", "\xc3\xa9", "\x7f", "\n", "\r", "%", "#", "!", "/",
		"-1:", "+1:", "a:", "\n1:", "99999999999:", "2147483647:", "2147483648:", "00:", ":", "-", " x"}
	fragments = []string{"a", "z", "A", "Z", "~", "+", ".", "-", ":", "0", "9", "00", "dfsg", "rc", "really"}
)

// mutate applies k random edits to v.
func mutate(rng *rand.Rand, v string, k int) string {
	for range k {
		pos := 0
		if len(v) > 0 {
			pos = rng.IntN(len(v) + 1)
		}
		switch rng.IntN(14) {
		case 0: // add an epoch
			v = strconv.Itoa([]int{0, 1, 2, 10, 7}[rng.IntN(5)]) + ":" + v
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
		case 9: // drop a character
			if pos < len(v) {
				v = v[:pos] + v[pos+1:]
			}
		case 10: // truncate
			v = v[:pos]
		case 11: // duplicate a tail
			v = v + v[pos:]
		case 12:
			if rng.IntN(3) == 0 {
				v = odd[rng.IntN(len(odd))] + v
			} else {
				v = v[:pos] + odd[rng.IntN(len(odd))] + v[pos:]
			}
		case 13: // surrounding blanks, which dpkg trims
			v = []string{" ", "\t", "  "}[rng.IntN(3)] + v + []string{"", " ", "\t"}[rng.IntN(3)]
		}
	}
	return v
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

// TestCompareVersionsOracle checks CompareVersions against libdpkg on
// 200,000 generated pairs.
func TestCompareVersionsOracle(t *testing.T) {
	bin := oracleOrSkip(t)
	pairs := genPairs(loadCorpus(t), 1, 200_000)
	want, err := runOracle(bin, pairs)
	if err != nil {
		t.Fatal(err)
	}
	tally := map[string]int{}
	bad := 0
	for i, p := range pairs {
		got := verdict(p[0], p[1])
		tally[want[i][:1]]++
		if got != want[i] {
			if bad++; bad <= 20 {
				t.Errorf("CompareVersions(%q, %q) = %s, libdpkg says %s", p[0], p[1], got, want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d pairs disagree with libdpkg", bad, len(pairs))
	}
	t.Logf("%d pairs: %v", len(pairs), tally)
}

// TestOracleMatchesDpkgCLI shows on 1,000 pairs that the libdpkg oracle
// agrees with `dpkg --compare-versions`, so that TestCompareVersionsOracle
// is a test against dpkg itself. One CLI run per pair suffices: it asks
// whether the oracle's relation holds (lt, eq or gt exits 0), or, where
// the oracle reports bad syntax, whether dpkg refuses too (exit status 2).
func TestOracleMatchesDpkgCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 1,000 dpkg runs (about 10 s) in -short mode")
	}
	bin := oracleOrSkip(t)
	if _, err := exec.LookPath("dpkg"); err != nil {
		missingOracle(t, err)
	}
	var pairs [][2]string
	for _, p := range genPairs(loadCorpus(t), 2, 1_100) {
		// The CLI reads "" and "<unknown>" as "no version"; parseversion,
		// and so CompareVersions, does not.
		if cliSpecial(p[0]) || cliSpecial(p[1]) {
			continue
		}
		if pairs = append(pairs, p); len(pairs) == 1_000 {
			break
		}
	}
	want, err := runOracle(bin, pairs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ops := map[byte]string{'<': "lt", '=': "eq", '>': "gt", 'E': "eq"}
	status := make([]int, len(pairs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 * runtime.NumCPU() {
		wg.Go(func() {
			for i := range work {
				a, b := pairs[i][0], pairs[i][1]
				err := exec.CommandContext(ctx, "dpkg", "--compare-versions", "--", a, ops[want[i][0]], b).Run()
				var exit *exec.ExitError
				switch {
				case err == nil:
				case errors.As(err, &exit):
					status[i] = exit.ExitCode()
				default:
					t.Errorf("dpkg --compare-versions %q %q: %v", a, b, err)
				}
			}
		})
	}
	for i := range pairs {
		work <- i
	}
	close(work)
	wg.Wait()
	rejected := 0
	for i, p := range pairs {
		wantStatus := 0
		if want[i][0] == 'E' {
			wantStatus = 2
			rejected++
		}
		if status[i] != wantStatus {
			t.Errorf("dpkg --compare-versions -- %q %s %q exited %d; the libdpkg oracle said %q",
				p[0], ops[want[i][0]], p[1], status[i], want[i])
		}
	}
	t.Logf("%d pairs through the dpkg CLI, %d of them rejected", len(pairs), rejected)
}

func cliSpecial(v string) bool { return v == "" || v == "<unknown>" }
