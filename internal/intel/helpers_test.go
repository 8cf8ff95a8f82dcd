package intel

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/patchloop/patchloop/internal/changelog"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/feeds"
)

// sharedFeeds is the directory of real public feeds; tests that need
// the whole feeds skip without it.
const sharedFeeds = "../../../shared/feeds"

func needShared(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(sharedFeeds); err != nil {
		t.Skipf("real feeds not available (%v)", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// realLog reads the changelog of pkg out of a real .deb captured in
// package changelog's testdata.
func realLog(t testing.TB, debFile, pkg string) *changelog.Log {
	t.Helper()
	f, err := os.Open(filepath.Join("../changelog/testdata", debFile))
	must(t, err)
	defer f.Close()
	l, err := changelog.ReadDeb(f, debFile, pkg, false)
	must(t, err)
	return l
}

// dpkgSince is the oracle for changelog cuts: the CVE IDs and urgency
// dpkg-parsechangelog gives for the entries after since, read from the
// .deb with dpkg-deb.
func dpkgSince(t *testing.T, debFile, pkg, since string) ([]string, string) {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "dpkg-parsechangelog", "tar", "zcat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	cl := filepath.Join(t.TempDir(), "changelog")
	script := `dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/share/doc/$2/changelog.Debian.gz" | zcat > "$3"`
	out, err := exec.Command("sh", "-c", script, "sh", filepath.Join("../changelog/testdata", debFile), pkg, cl).CombinedOutput()
	if err != nil {
		t.Fatalf("extract changelog: %v\n%s", err, out)
	}
	changes, err := exec.Command("dpkg-parsechangelog", "-l", cl, "--since", since, "-S", "Changes").Output()
	must(t, err)
	urgency, err := exec.Command("dpkg-parsechangelog", "-l", cl, "--since", since, "-S", "Urgency").Output()
	must(t, err)
	ids := regexp.MustCompile(`CVE-[0-9]{4}-[0-9]{4,}`).FindAllString(string(changes), -1)
	slices.SortFunc(ids, compareCVE)
	return slices.Compact(ids), strings.TrimSpace(string(urgency))
}

// oracleFix is one "[release] - source version" line of a DSA/DLA list
// with its advisory's ID and CVEs.
type oracleFix struct {
	id                       string
	cves                     []string
	release, source, version string
}

var oracleCache sync.Map // path -> []oracleFix

// oracleFixes reads a DSA/DLA list as plain text, independently of
// package advisory.
func oracleFixes(t *testing.T, path string) []oracleFix {
	t.Helper()
	if v, ok := oracleCache.Load(path); ok {
		return v.([]oracleFix)
	}
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	header := regexp.MustCompile(`^\[[^]]+\] (D[SL]A-[0-9]+(?:-[0-9]+)?) `)
	fix := regexp.MustCompile(`^\s+\[([a-z0-9-]+)\] - (\S+)\s+([^\s<(]+)`)
	cveRe := regexp.MustCompile(`CVE-[0-9]{4}-[0-9]{4,}`)
	var out []oracleFix
	var id string
	var cur []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := header.FindStringSubmatch(line); m != nil {
			id, cur = m[1], nil
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "{") {
			cur = cveRe.FindAllString(line, -1)
			continue
		}
		if m := fix.FindStringSubmatch(line); m != nil && id != "" {
			out = append(out, oracleFix{id, cur, m[1], m[2], m[3]})
		}
	}
	must(t, sc.Err())
	oracleCache.Store(path, out)
	return out
}

// debianOracle returns the IDs of the advisories of a list fixing source
// in release at a version above installed and at or below candidate, and
// their CVE IDs.
func debianOracle(t *testing.T, path, release, source, installed, candidate string) (ids, cves []string) {
	t.Helper()
	for _, fx := range oracleFixes(t, path) {
		if fx.release == release && fx.source == source &&
			deb.CompareValid(fx.version, installed) > 0 && deb.CompareValid(fx.version, candidate) <= 0 {
			ids = append(ids, fx.id)
			cves = append(cves, fx.cves...)
		}
	}
	slices.Sort(ids)
	slices.SortFunc(cves, compareCVE)
	return slices.Compact(ids), slices.Compact(cves)
}

// kevOracle reads a KEV catalog as generic JSON: cveID -> dateAdded.
func kevOracle(t testing.TB, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	var cat struct {
		Vulnerabilities []map[string]any `json:"vulnerabilities"`
	}
	must(t, json.Unmarshal(data, &cat))
	out := map[string]string{}
	for _, v := range cat.Vulnerabilities {
		id, _ := v["cveID"].(string)
		added, _ := v["dateAdded"].(string)
		out[id] = added
	}
	return out
}

// epssOracle reads "CVE;epss;percentile" lines: the first good value per CVE.
func epssOracle(t testing.TB, paths ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		must(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.Split(line, ";")
			if len(parts) != 3 {
				continue
			}
			v, err := strconv.ParseFloat(parts[1], 64)
			if _, seen := out[parts[0]]; err == nil && !seen {
				out[parts[0]] = v
			}
		}
	}
	return out
}

// loadTestFeeds loads c through a feeds.Loader on a temporary cache.
func loadTestFeeds(t testing.TB, c Config) (*Feeds, error) {
	t.Helper()
	return Load(context.Background(), &feeds.Loader{CacheDir: t.TempDir()}, c, false)
}

func cveIDs(f *Finding) []string {
	var out []string
	for _, c := range f.CVEs {
		out = append(out, c.ID)
	}
	return out
}
