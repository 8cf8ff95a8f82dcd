package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/repo/repotest"
)

// The assess half of scan, end to end: the real binary on a bullseye root
// whose signed loopback repository serves the real jq .deb of
// internal/changelog/testdata, with the real feeds of ../shared/feeds.
// Every expected CVE, advisory, KEV and EPSS value is computed here
// independently: dpkg-parsechangelog on the same changelog, and a Python
// reading of the DSA/DLA lists (dpkg --compare-versions), the KEV JSON and
// the EPSS files.

const sharedFeedsDir = "../../../shared/feeds"

const assessStatus = `Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.20.13

Package: jq
Status: install ok installed
Architecture: amd64
Version: 1.6-2.1+deb12u1

Package: policykit-1
Status: install ok installed
Architecture: amd64
Version: 0.105-31

Package: liblog4j2-java
Status: install ok installed
Architecture: all
Source: apache-log4j2
Version: 2.13.3-1

`

const jqDebName = "jq_1.6-2.1+deb12u3_amd64.deb"

// absentDeb is a stanza whose .deb the repository does not serve.
func absentDeb(pkg, arch, version, source string) string {
	s := "Package: " + pkg + "\nArchitecture: " + arch + "\nVersion: " + version + "\n"
	if source != "" {
		s += "Source: " + source + "\n"
	}
	return s + "Filename: pool/updates/main/x/" + pkg + "_" + version + "_" + arch + ".deb\nSize: 1234\n" +
		"SHA256: " + strings.Repeat("ab", 32) + "\nDescription: test\n\n"
}

func newAssessE2E(t *testing.T) *e2e {
	t.Helper()
	e := &e2e{root: t.TempDir(), repo: t.TempDir(), cache: t.TempDir()}
	key, err := repotest.NewKey("Test Archive")
	if err != nil {
		t.Fatal(err)
	}
	stanza, err := os.ReadFile("../../internal/changelog/testdata/bookworm-security_jq.stanza")
	if err != nil {
		t.Fatal(err)
	}
	deb, err := os.ReadFile("../../internal/changelog/testdata/" + jqDebName)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(e.repo, "pool/updates/main/j/jq", jqDebName), string(deb))
	security := strings.TrimRight(string(stanza), "\n") + "\n\n" +
		absentDeb("policykit-1", "amd64", "0.105-31+deb11u1", "") +
		absentDeb("liblog4j2-java", "all", "2.16.0-1~deb11u1", "apache-log4j2")
	suites := []repotest.Suite{
		{Name: "stable", Codename: "bullseye", Origin: "Debian", Label: "Debian",
			Packages: map[string]string{"main/binary-amd64": pkgs("dpkg", "amd64", "1.20.13")}},
		{Name: "stable-security", Codename: "bullseye-security", Origin: "Debian", Label: "Debian-Security",
			Packages: map[string]string{"main/binary-amd64": security}},
	}
	for _, s := range suites {
		if err := repotest.WriteSuite(e.repo, s, key); err != nil {
			t.Fatal(err)
		}
	}
	e.srv = httptest.NewServer(http.FileServer(http.Dir(e.repo)))
	t.Cleanup(e.srv.Close)
	keyring := "/usr/share/keyrings/test-archive.gpg"
	if err := repotest.WriteKeyring(filepath.Join(e.root, keyring), key); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(e.root, "var/lib/dpkg/status"), assessStatus)
	mustWrite(t, filepath.Join(e.root, "etc/os-release"),
		"PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nID=debian\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\n")
	mustWrite(t, filepath.Join(e.root, "etc/hostname"), "web-1\n")
	mustWrite(t, filepath.Join(e.root, "etc/apt/sources.list"),
		"deb [signed-by="+keyring+"] "+e.srv.URL+" bullseye main\ndeb [signed-by="+keyring+"] "+e.srv.URL+" bullseye-security main\n")
	return e
}

// assessedScan is the part of the JSON this test reads.
type assessedScan struct {
	Schema  string `json:"schema"`
	Updates []struct {
		Package, Installed, Candidate, Source string
		SourceVersion                         string   `json:"source_version"`
		Security                              bool     `json:"security"`
		Classification                        string   `json:"classification"`
		Advisories                            []string `json:"advisories"`
		KEV                                   bool     `json:"kev"`
		Notes                                 []string `json:"notes"`
		CVEs                                  []struct {
			ID      string   `json:"id"`
			Sources []string `json:"sources"`
			KEV     *struct {
				DateAdded string `json:"date_added"`
			} `json:"kev"`
			EPSS *struct {
				Probability float64 `json:"probability"`
			} `json:"epss"`
		} `json:"cves"`
		Risk struct {
			Score   float64  `json:"score"`
			CVE     string   `json:"cve"`
			Reasons []string `json:"reasons"`
		} `json:"risk"`
		Decision *struct {
			Verdict, Rule, Baseline string
		} `json:"decision"`
	} `json:"updates"`
	Assessment struct {
		Ecosystem  string `json:"ecosystem"`
		Changelogs struct {
			Downloaded, Cached, Missing int
		} `json:"changelogs"`
	} `json:"assessment"`
	Feeds []struct {
		Kind       string `json:"kind"`
		Provenance *struct {
			Records int `json:"records"`
		} `json:"provenance"`
	} `json:"feeds"`
	Notices []string `json:"notices"`
}

// oracleScript reads the feeds without patchloop: argv[1] the feeds
// directory, argv[2] the release codename, argv[3] a JSON list of
// [source, installed, candidate]; prints the advisories and CVEs per
// source, and KEV dateAdded and EPSS per CVE of those advisories.
const oracleScript = `
import glob, json, os, re, subprocess, sys
feeds, codename, ups = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def gt(a, op, b):
    return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
out = {"sources": {}, "kev": {}, "epss": {}}
lists = glob.glob(os.path.join(feeds, "**/DSA/list"), recursive=True) + glob.glob(os.path.join(feeds, "**/DLA/list"), recursive=True)
for src, inst, cand in ups:
    ids, cves = set(), set()
    for path in lists:
        adv, adv_cves = None, []
        for line in open(path, encoding="utf-8", errors="replace"):
            m = re.match(r"^\[[^]]+\] (D[SL]A-\d+(?:-\d+)?) ", line)
            if m:
                adv, adv_cves = m.group(1), []
                continue
            if line.strip().startswith("{"):
                adv_cves = re.findall(r"CVE-\d{4}-\d{4,}", line)
                continue
            m = re.match(r"^\s+\[" + re.escape(codename) + r"\] - " + re.escape(src) + r"\s+([^\s<(]+)", line)
            if m and adv and gt(m.group(1), "gt", inst) and gt(m.group(1), "le", cand):
                ids.add(adv); cves.update(adv_cves)
    out["sources"][src] = {"advisories": sorted(ids), "cves": sorted(cves)}
kev = json.load(open(glob.glob(os.path.join(feeds, "kev", "known_exploited_vulnerabilities.json"))[0]))
out["kev"] = {v["cveID"]: v["dateAdded"] for v in kev["vulnerabilities"]}
for path in sorted(glob.glob(os.path.join(feeds, "epss", "**", "*.csv"), recursive=True)):
    for line in open(path):
        p = line.strip().split(";")
        if len(p) == 3 and p[0] not in out["epss"]:
            try: out["epss"][p[0]] = float(p[1])
            except ValueError: pass
json.dump(out, sys.stdout)
`

type oracle struct {
	Sources map[string]struct{ Advisories, CVEs []string } `json:"sources"`
	KEV     map[string]string                              `json:"kev"`
	EPSS    map[string]float64                             `json:"epss"`
}

func runOracle(t *testing.T, codename string, ups [][3]string) *oracle {
	t.Helper()
	for _, tool := range []string{"python3", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	arg, _ := json.Marshal(ups)
	out, err := exec.Command("python3", "-c", oracleScript, sharedFeedsDir, codename, string(arg)).Output()
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	var o oracle
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

// changelogCVEs is dpkg-parsechangelog's view of jq's changelog since the
// installed version.
func changelogCVEs(t *testing.T, since string) []string {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "dpkg-parsechangelog"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	cl := filepath.Join(t.TempDir(), "changelog")
	script := `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/share/doc/jq/changelog.Debian.gz | zcat > "$2" && dpkg-parsechangelog -l "$2" --since "$3" -S Changes`
	out, err := exec.Command("sh", "-c", script, "sh", "../../internal/changelog/testdata/"+jqDebName, cl, since).Output()
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`CVE-[0-9]{4}-[0-9]{4,}`).FindAllString(string(out), -1)
	sort.Strings(ids)
	return slices.Compact(ids)
}

func TestScanAssessE2E(t *testing.T) {
	if _, err := os.Stat(sharedFeedsDir); err != nil {
		t.Skipf("real feeds not available: %v", err)
	}
	e := newAssessE2E(t)
	args := []string{"--format", "json", "--feeds-dir", sharedFeedsDir, "--policy", "../../docs/policies",
		"--label", "env=prod", "--label", "role=web", "--label", "criticality=high"}
	out, stderr, code := e.run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var res assessedScan
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	o := runOracle(t, "bullseye", [][3]string{{"policykit-1", "0.105-31", "0.105-31+deb11u1"},
		{"apache-log4j2", "2.13.3-1", "2.16.0-1~deb11u1"}, {"jq", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3"}})
	jqCVEs := changelogCVEs(t, "1.6-2.1+deb12u1")

	if res.Schema != "patchloop.scan/v1" || len(res.Updates) != 3 || res.Assessment.Ecosystem != "Debian:11" {
		t.Fatalf("schema %q, %d updates, ecosystem %q", res.Schema, len(res.Updates), res.Assessment.Ecosystem)
	}
	kevSeen := 0
	for _, u := range res.Updates {
		var got []string
		for _, c := range u.CVEs {
			got = append(got, c.ID)
			// KEV and EPSS of every CVE, as the Python reading of the files says.
			added, inKEV := o.KEV[c.ID]
			if inKEV != (c.KEV != nil) || inKEV && !strings.HasPrefix(c.KEV.DateAdded, added) {
				t.Errorf("%s %s: KEV %+v, catalog %q (%v)", u.Package, c.ID, c.KEV, added, inKEV)
			}
			if inKEV {
				kevSeen++
			}
			p, inEPSS := o.EPSS[c.ID]
			if inEPSS != (c.EPSS != nil) || inEPSS && c.EPSS.Probability != p {
				t.Errorf("%s %s: EPSS %+v, files %v (%v)", u.Package, c.ID, c.EPSS, p, inEPSS)
			}
		}
		sort.Strings(got)
		want := slices.Clone(o.Sources[u.Source].CVEs)
		if u.Source == "jq" {
			want = append(want, jqCVEs...)
		}
		sort.Strings(want)
		want = slices.Compact(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: CVEs %v\nwant %v", u.Package, got, want)
		}
		if wantAdv := o.Sources[u.Source].Advisories; !slices.Equal(u.Advisories, wantAdv) && len(wantAdv)+len(u.Advisories) > 0 {
			t.Errorf("%s: advisories %v, want %v", u.Package, u.Advisories, wantAdv)
		}
		if u.Decision == nil || u.Decision.Baseline != "production" {
			t.Errorf("%s: decision %+v, want one from the production baseline", u.Package, u.Decision)
		}
		if u.KEV && (u.Decision == nil || u.Decision.Rule != "rules[0]" || u.Risk.Score < 100) {
			t.Errorf("%s: KEV but decision %+v risk %v", u.Package, u.Decision, u.Risk.Score)
		}
		if u.Package != "jq" && (len(u.Notes) == 0 || !strings.Contains(strings.Join(u.Notes, " "), "404 Not Found")) {
			t.Errorf("%s: notes %v, want the failed .deb download", u.Package, u.Notes)
		}
	}
	if kevSeen == 0 || len(jqCVEs) == 0 {
		t.Errorf("%d KEV CVEs, %d jq CVEs: the case does not exercise KEV or changelogs", kevSeen, len(jqCVEs))
	}
	if c := res.Assessment.Changelogs; c.Downloaded != 1 || c.Missing != 2 {
		t.Errorf("changelogs %+v, want 1 downloaded, 2 missing", c)
	}
	kinds := map[string]int{}
	for _, f := range res.Feeds {
		if f.Provenance == nil || f.Provenance.Records == 0 {
			t.Errorf("feed %s without records: %+v", f.Kind, f)
		}
		kinds[f.Kind]++
	}
	if kinds["kev"] != 1 || kinds["dsa"] != 1 || kinds["dla"] != 1 || kinds["epss"] == 0 {
		t.Errorf("feeds %v", kinds)
	}
	if !slices.Contains(res.Notices, "feeds not configured: osv") {
		t.Errorf("notices %q", res.Notices)
	}

	// The table: KEV fixes first among security updates, reasons on request.
	table, stderr, code := e.run(t, "--feeds-dir", sharedFeedsDir, "--reasons")
	if code != 0 {
		t.Fatalf("table: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(table, "RISK") || !strings.Contains(table, "risk ") ||
		strings.Index(table, "\npolicykit-1") > strings.Index(table, "\njq ") {
		t.Errorf("table:\n%s", table)
	}

	// Offline: jq's changelog from the cache, the same CVEs.
	e.srv.Close()
	out, stderr, code = e.run(t, append(args, "--offline")...)
	if code != 0 {
		t.Fatalf("offline: exit %d\n%s", code, stderr)
	}
	var off assessedScan
	if err := json.Unmarshal([]byte(out), &off); err != nil {
		t.Fatal(err)
	}
	if c := off.Assessment.Changelogs; c.Cached != 1 || c.Downloaded != 0 {
		t.Errorf("offline changelogs %+v", c)
	}
	for i := range off.Updates {
		if len(off.Updates[i].CVEs) != len(res.Updates[i].CVEs) {
			t.Errorf("offline %s: %d CVEs, online %d", off.Updates[i].Package, len(off.Updates[i].CVEs), len(res.Updates[i].CVEs))
		}
	}
}

// TestScanAssessNoFeeds: without feeds the scan still assesses from the
// changelogs and says which feeds are absent; a broken feed is an error
// naming it; a bad record is a notice naming its line.
func TestScanAssessNoFeeds(t *testing.T) {
	e := newAssessE2E(t)
	out, stderr, code := e.run(t, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var res assessedScan
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	jqCVEs := changelogCVEs(t, "1.6-2.1+deb12u1")
	for _, u := range res.Updates {
		if u.Package == "jq" && len(u.CVEs) != len(jqCVEs) {
			t.Errorf("jq: %d CVEs, dpkg-parsechangelog %d", len(u.CVEs), len(jqCVEs))
		}
		if u.Package == "jq" && (len(u.CVEs) == 0 || !slices.Equal(u.CVEs[0].Sources, []string{"changelog"})) {
			t.Errorf("jq CVEs %+v", u.CVEs)
		}
		if u.Decision != nil {
			t.Errorf("%s: decision without --policy", u.Package)
		}
	}
	if !slices.Contains(res.Notices, "feeds not configured: kev, epss, osv, dsa, dla") {
		t.Errorf("notices %q", res.Notices)
	}

	_, stderr, code = e.run(t, "--kev", "../../internal/intel/testdata/kev-changed-format.json")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; code != 1 || !strings.Contains(last, "kev feed ../../internal/intel/testdata/kev-changed-format.json") {
		t.Errorf("broken feed: exit %d, %q", code, last)
	}
	out, stderr, code = e.run(t, "--kev", "../../internal/intel/testdata/kev-bad-record.json")
	if code != 0 || !strings.Contains(out, "notice: feed kev: 1 bad records skipped, first: kev-bad-record.json line ") {
		t.Errorf("bad record: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, stderr, code = e.run(t, "--label", "criticality"); code != 1 || !strings.Contains(stderr, "key=value") {
		t.Errorf("bad label: exit %d %s", code, stderr)
	}
}
