package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/feeds"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/repo/repotest"
)

// sharedFeeds holds the whole real feeds on the project's machines.
const sharedFeeds = "/work/shared/feeds"

// TestFindings runs on SQLite and PostgreSQL, with the real records cut
// into testdata/feeds and, where present, the whole real feeds.
func TestFindings(t *testing.T) {
	dirs := map[string]string{"testdata": "testdata/feeds"}
	if _, err := os.Stat(filepath.Join(sharedFeeds, "kev")); err == nil {
		dirs["shared"] = sharedFeeds
	} else {
		t.Logf("%s absent: the whole real feeds are not tried (%v)", sharedFeeds, err)
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for name, dir := range dirs {
			t.Run(backend+"/"+name, func(t *testing.T) { tFindings(t, backend, dir) })
		}
	}
}

// The test fleet: a signed bullseye-security suite with these candidates,
// and hosts with these labels and installed versions (DSA-5308-1 and
// DSA-5351-1 fixed webkit2gtk, DSA-5376-1 apache2, DSA-5380-1
// xorg-server, DSA-5298-1 cacti).
var (
	candidates = []struct{ pkg, arch, source, version string }{
		{"libwebkit2gtk-4.0-37", "amd64", "webkit2gtk", "2.38.5-1~deb11u1"},
		{"apache2", "amd64", "apache2", "2.4.56-1~deb11u1"},
		{"xserver-xorg-core", "amd64", "xorg-server", "2:1.20.11-1+deb11u6"},
		{"cacti", "all", "cacti", "1.2.16+ds1-2+deb11u1"},
	}
	fleet = []struct {
		name      string
		labels    map[string]string
		installed map[string]string // package → version; nil: no inventory
	}{
		{"web1", map[string]string{"env": "prod", "role": "web", "criticality": "critical", "exposure": "internet-facing"},
			map[string]string{"libwebkit2gtk-4.0-37": "2.38.2-1~deb11u1", "apache2": "2.4.54-1~deb11u1", "xserver-xorg-core": "2:1.20.11-1+deb11u5"}},
		{"web2", map[string]string{"env": "prod", "role": "web"},
			map[string]string{"libwebkit2gtk-4.0-37": "2.38.3-1~deb11u1", "apache2": "2.4.56-1~deb11u1"}},
		{"dev1", map[string]string{"env": "dev", "criticality": "sky-high"},
			map[string]string{"apache2": "2.4.54-1~deb11u1", "cacti": "1.2.16+ds1-2"}},
		{"new1", map[string]string{"env": "dev"}, nil},
	}
	labPolicy = `name: lab
hosts:
  match_labels: {env: dev}
exclude:
  - {source: cacti, reason: cacti is being retired}
rules:
  - {name: security, classification: [security]}
`
	// findingsNow: CVE-2022-42856's KEV due date (2023-01-04) has passed,
	// CVE-2023-23529's (2023-03-07) and CVE-2022-46169's (2023-03-09) not.
	findingsNow = time.Date(2023, 3, 1, 10, 0, 0, 0, time.UTC)
)

func tFindings(t *testing.T, backend, feedsDir string) {
	ctx := context.Background()
	cfg, err := intel.ConfigFromDir(feedsDir)
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewIntel(ctx, cfg, &feeds.Loader{CacheDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mirror := publishFleetSuite(t)
	e := newEnvWith(t, backend, func(c *Config) {
		c.Intel = in
		c.Engine = central.New(central.Config{CacheDir: t.TempDir(), Trust: []repo.Source{mirror}})
	})
	e.clock.mu.Lock()
	e.clock.t = findingsNow // after the TLS certificate was made at the real time
	e.clock.mu.Unlock()

	for _, p := range []struct{ name, prio, yaml string }{
		{"production", "10", readPolicy(t, "10-production.yaml")},
		{"lab", "50", labPolicy},
		{"default", "90", readPolicy(t, "90-default.yaml")},
	} {
		if code, body := e.putPolicy(p.name, "priority="+p.prio, p.yaml); code != http.StatusCreated {
			t.Fatalf("put policy %s: %d %s", p.name, code, body)
		}
	}
	ids := map[string]string{} // hostname → ID
	for i, h := range fleet {
		ids[h.name] = e.enrollFleetHost(i, h.name, h.labels, h.installed, mirror)
	}

	var all api.Findings
	e.adminJSON("GET", "/api/v1/findings", nil, &all)
	if !all.AssessedAt.Equal(findingsNow) {
		t.Errorf("assessed_at %v", all.AssessedAt)
	}
	if len(all.Unassessed) != 1 || all.Unassessed[0].Hostname != "new1" || all.Unassessed[0].Error != "no inventory received yet" {
		t.Errorf("unassessed: %+v", all.Unassessed)
	}
	or := newOracle(t, feedsDir)
	want := or.rows()
	got := rowsOf(all)
	if !slices.Equal(keys(got), keys(want)) {
		t.Fatalf("findings (host package: CVEs)\n got %v\nwant %v", keys(got), keys(want))
	}
	// Golden facts of the real records, whatever the feed set.
	for _, w := range []string{
		"web1 libwebkit2gtk-4.0-37: CVE-2022-42856 CVE-2023-23529", "web2 libwebkit2gtk-4.0-37: CVE-2023-23529",
		"web1 apache2: CVE-2023-25690", "web1 xserver-xorg-core: CVE-2023-1393", "dev1 cacti: CVE-2022-46169",
	} {
		host, rest, _ := strings.Cut(w, " ")
		pkg, cves, _ := strings.Cut(rest, ": ")
		r := got[host+" "+pkg]
		for _, c := range strings.Fields(cves) {
			if r == nil || !r.cves[c] {
				t.Errorf("%s %s does not fix %s: %+v", host, pkg, c, r)
			}
		}
	}
	or.checkFacts(t, all)

	hostByName := map[string]api.HostFindings{}
	for _, h := range all.Hosts {
		hostByName[h.Hostname] = h
		if !slices.IsSortedFunc(h.Findings, func(a, b api.Finding) int { return -cmpFloat(a.Risk.Score, b.Risk.Score) }) {
			t.Errorf("%s: findings not ranked by risk", h.Hostname)
		}
	}
	for name, base := range map[string]string{"web1": "production", "web2": "production", "dev1": "lab"} {
		if hostByName[name].Baseline != base {
			t.Errorf("%s: baseline %q, want %q", name, hostByName[name].Baseline, base)
		}
	}
	if w := hostByName["dev1"].Warning; !strings.Contains(w, "sky-high") {
		t.Errorf("dev1's unknown criticality not warned of: %q", w)
	}

	// Each filter against the same filter applied to the oracle's rows.
	for _, tc := range []struct {
		query string
		keep  func(r *row) bool
	}{
		{"cve=CVE-2022-42856", func(r *row) bool { return r.cves["CVE-2022-42856"] }},
		{"cve=cve-2023-23529", func(r *row) bool { return r.cves["CVE-2023-23529"] }},
		{"cve=CVE-2021-44228", func(r *row) bool { return r.cves["CVE-2021-44228"] }},
		{"kev=true", func(r *row) bool { return r.kev }},
		{"kev=false", func(r *row) bool { return !r.kev }},
		{"overdue=true", func(r *row) bool { return r.overdue }},
		{"kev=true&overdue=false", func(r *row) bool { return r.kev && !r.overdue }},
		{"decision=approved", func(r *row) bool { return r.decision == policy.Approved }},
		{"decision=declined", func(r *row) bool { return r.decision == policy.Declined }},
		{"decision=pending", func(r *row) bool { return r.decision == policy.Pending }},
		{"host=web1", func(r *row) bool { return r.host == "web1" }},
		{"host=" + ids["dev1"], func(r *row) bool { return r.host == "dev1" }},
		{"host=web2&kev=true", func(r *row) bool { return r.host == "web2" && r.kev }},
		{"severity>=high", func(r *row) bool { return r.maxSeverity >= 3 }},
	} {
		var res api.Findings
		e.adminJSON("GET", "/api/v1/findings?"+tc.query, nil, &res)
		var wantKeys []string
		for _, k := range keys(want) {
			if tc.keep(want[strings.SplitN(k, ":", 2)[0]]) {
				wantKeys = append(wantKeys, k)
			}
		}
		if g := keys(rowsOf(res)); !slices.Equal(g, wantKeys) {
			t.Errorf("?%s\n got %v\nwant %v", tc.query, g, wantKeys)
		}
	}
	// The questions of the CLI's help, answered by name.
	var exposed api.Findings
	e.adminJSON("GET", "/api/v1/findings?cve=CVE-2022-42856", nil, &exposed)
	if len(exposed.Hosts) != 1 || exposed.Hosts[0].Hostname != "web1" {
		t.Errorf("hosts exposed to CVE-2022-42856: %+v", exposed.Hosts)
	}
	var overdue api.Findings
	e.adminJSON("GET", "/api/v1/findings?kev=true&overdue=true", nil, &overdue)
	if len(overdue.Hosts) != 1 || overdue.Hosts[0].Hostname != "web1" || overdue.Hosts[0].Findings[0].Package != "libwebkit2gtk-4.0-37" ||
		overdue.Hosts[0].Findings[0].Decision.Name != "known-exploited" {
		t.Errorf("overdue KEV findings: %+v", overdue.Hosts)
	}

	// One host: the same as its entry in the list.
	var one api.HostFindings
	e.adminJSON("GET", "/api/v1/hosts/"+ids["web1"]+"/findings", nil, &one)
	if a, b := mustJSON(t, one), mustJSON(t, hostByName["web1"]); a != b {
		t.Errorf("per-host findings differ from the list's:\n%s\n%s", a, b)
	}
	e.adminJSON("GET", "/api/v1/hosts/"+ids["new1"]+"/findings", nil, &one)
	if one.Error == "" || len(one.Findings) != 0 {
		t.Errorf("host without inventory: %+v", one)
	}

	// Malformed queries name the parameter.
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/findings?cve=log4shell", 400, `cve "log4shell"`},
		{"/api/v1/findings?kev=maybe", 400, `kev "maybe"`},
		{"/api/v1/findings?overdue=", 400, `overdue ""`},
		{"/api/v1/findings?min_severity=none", 400, `min_severity "none"`},
		{"/api/v1/findings?decision=maybe", 400, `decision "maybe"`},
		{"/api/v1/findings?serverity=high", 400, `unknown query parameter "serverity"`},
		{"/api/v1/findings?cve=CVE-2022-42856&cve=CVE-2023-23529", 400, `"cve" given 2 times`},
		{"/api/v1/findings?host=nosuch", 404, `host "nosuch"`},
		{"/api/v1/hosts/" + ids["web1"] + "/findings?host=web2", 400, `"host"`},
		{"/api/v1/hosts/nosuch/findings", 404, "nosuch"},
	} {
		code, body := e.call("GET", tc.path, e.admin, "", nil)
		var msg api.Error
		if code != tc.code || json.Unmarshal([]byte(body), &msg) != nil || !strings.Contains(msg.Error, tc.want) {
			t.Errorf("%s: %d %s, want %d naming %s", tc.path, code, strings.TrimSpace(body), tc.code, tc.want)
		}
	}

	// Provenance of the feeds in service.
	var fs []api.Feed
	e.adminJSON("GET", "/api/v1/feeds", nil, &fs)
	kinds := map[string]int{}
	for _, f := range fs {
		if f.FetchedAt == nil || f.Records == 0 || !filepath.IsAbs(f.Source) || f.Error != "" {
			t.Errorf("feed %+v", f)
		}
		kinds[f.Kind] += f.Records
	}
	if kinds["kev"] != or.kevCount || kinds["epss"] == 0 || kinds["dsa"] == 0 {
		t.Errorf("feeds by kind %v; want kev %d", kinds, or.kevCount)
	}
}

// publishFleetSuite serves a signed bullseye-security suite with the
// candidates, and returns it as a source the server trusts.
func publishFleetSuite(t *testing.T) repo.Source {
	key, err := repotest.NewKey("findings test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyring := filepath.Join(dir, "key.gpg")
	if err := repotest.WriteKeyring(keyring, key); err != nil {
		t.Fatal(err)
	}
	var idx strings.Builder
	for _, c := range candidates {
		fmt.Fprintf(&idx, "Package: %s\nSource: %s\nVersion: %s\nArchitecture: %s\n\n", c.pkg, c.source, c.version, c.arch)
	}
	s := repotest.Suite{Name: "stable-security", Codename: "bullseye-security", Origin: "Debian", Label: "Debian-Security",
		Packages: map[string]string{"main/binary-amd64": idx.String()}}
	if err := repotest.WriteSuite(filepath.Join(dir, "repo"), s, key); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "repo"))))
	t.Cleanup(srv.Close)
	return repo.Source{URI: srv.URL, Suite: "bullseye-security", SignedBy: []string{keyring}}
}

// enrollFleetHost enrolls a bullseye host with a token carrying labels
// and, unless installed is nil, reports its inventory. It returns its ID.
func (e *env) enrollFleetHost(n int, name string, labels map[string]string, installed map[string]string, mirror repo.Source) string {
	e.t.Helper()
	ctx := context.Background()
	tok := e.token(api.CreateTokenRequest{Labels: labels})
	c, err := agent.NewClient(e.ts.URL, e.fpr, "", 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	f := api.Facts{Hostname: name, MachineID: machineID(100 + n), Distro: "debian", Release: "11", Codename: "bullseye", Arch: "amd64"}
	resp, err := c.Enroll(ctx, tok, f)
	if err != nil {
		e.t.Fatal(err)
	}
	if installed == nil {
		return resp.HostID
	}
	hc, err := agent.NewClient(e.ts.URL, e.fpr, resp.Credential, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	inv := &api.Inventory{NativeArch: "amd64", Sources: []api.Source{{URI: mirror.URI, Suite: mirror.Suite, Components: []string{"main"}, Archs: []string{"amd64"}}}}
	for _, c := range candidates {
		if v, ok := installed[c.pkg]; ok {
			inv.Packages = append(inv.Packages, api.Package{Name: c.pkg, Arch: c.arch, Version: v, Source: c.source, Status: "install ok installed"})
		}
	}
	if err := hc.PutInventory(ctx, inv); err != nil {
		e.t.Fatal(err)
	}
	return resp.HostID
}

// row is one finding as the oracle computes it or the server answered.
type row struct {
	host, pkg   string
	cves        map[string]bool
	kev         bool
	overdue     bool
	maxSeverity int
	decision    policy.Verdict
}

func (r *row) key() string {
	var ids []string
	for c := range r.cves {
		ids = append(ids, c)
	}
	sort.Strings(ids)
	return fmt.Sprintf("%s %s: %s kev=%v overdue=%v %s", r.host, r.pkg, strings.Join(ids, " "), r.kev, r.overdue, r.decision)
}

func keys(rows map[string]*row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.key())
	}
	sort.Strings(out)
	return out
}

func rowsOf(f api.Findings) map[string]*row {
	out := map[string]*row{}
	for _, h := range f.Hosts {
		for _, x := range h.Findings {
			r := &row{host: h.Hostname, pkg: x.Package, cves: map[string]bool{}, kev: x.KEV, overdue: x.Overdue,
				maxSeverity: int(x.Severity), decision: x.Decision.Verdict}
			for _, c := range x.CVEs {
				r.cves[c.ID] = true
			}
			out[h.Hostname+" "+x.Package] = r
		}
	}
	return out
}

// oracle computes the expected findings from the feed files without the
// server's code: the DSA/DLA lists and the KEV catalog are read here with
// a regular expression and encoding/json, versions compared by dpkg
// itself where it is installed, and decisions written out by hand from
// the three baselines.
type oracle struct {
	fixes    map[string][]fix // source → bullseye fixes
	kev      map[string]time.Time
	epss     map[string]float64
	kevCount int
}

type fix struct {
	version string
	cves    []string
}

func newOracle(t *testing.T, dir string) *oracle {
	o := &oracle{fixes: map[string][]fix{}, kev: map[string]time.Time{}, epss: map[string]float64{}}
	header := regexp.MustCompile(`^\[[^\]]+\] (DSA|DLA)-\S+`)
	cveRe := regexp.MustCompile(`CVE-[0-9]{4}-[0-9]+`)
	fixRe := regexp.MustCompile(`^\s+\[bullseye\] - (\S+) ([^<\s]\S*)`)
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case d.Name() == "list" && (strings.HasSuffix(filepath.Dir(p), "DSA") || strings.HasSuffix(filepath.Dir(p), "DLA")):
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var cves []string
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				l := sc.Text()
				if header.MatchString(l) {
					cves = nil
				} else if strings.HasPrefix(strings.TrimSpace(l), "{") {
					cves = cveRe.FindAllString(l, -1)
				} else if m := fixRe.FindStringSubmatch(l); m != nil {
					o.fixes[m[1]] = append(o.fixes[m[1]], fix{m[2], cves})
				}
			}
		case strings.HasSuffix(filepath.Dir(p), "/kev") && strings.HasSuffix(p, ".json") && !strings.Contains(p, "schema"):
			var cat struct {
				Vulnerabilities []struct{ CveID, DueDate string }
			}
			data, _ := os.ReadFile(p)
			if err := json.Unmarshal(data, &cat); err != nil {
				t.Fatal(err)
			}
			for _, v := range cat.Vulnerabilities {
				due, _ := time.Parse("2006-01-02", v.DueDate)
				o.kev[v.CveID] = due
			}
			o.kevCount = len(cat.Vulnerabilities)
		}
		return nil
	})
	if len(o.fixes) == 0 || len(o.kev) == 0 {
		t.Fatalf("oracle: no DSA/DLA fixes or KEV entries under %s", dir)
	}
	o.loadEPSS(t, dir)
	return o
}

// loadEPSS reads the EPSS probabilities of the CVEs the fixes name from
// the "CVE;epss;percentile" files under dir.
func (o *oracle) loadEPSS(t *testing.T, dir string) {
	want := map[string]bool{}
	for _, fs := range o.fixes {
		for _, f := range fs {
			for _, c := range f.cves {
				want[c] = true
			}
		}
	}
	filepath.WalkDir(filepath.Join(dir, "epss"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".csv") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			id, rest, _ := strings.Cut(sc.Text(), ";")
			if want[id] {
				prob, _, _ := strings.Cut(rest, ";")
				v, err := strconv.ParseFloat(prob, 64)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				o.epss[id] = v
			}
		}
		return sc.Err()
	})
}

func (o *oracle) rows() map[string]*row {
	out := map[string]*row{}
	for _, h := range fleet {
		for _, c := range candidates {
			inst, ok := h.installed[c.pkg]
			if !ok || !dpkgLess(inst, c.version) {
				continue
			}
			r := &row{host: h.name, pkg: c.pkg, cves: map[string]bool{}}
			for _, f := range o.fixes[c.source] {
				if dpkgLess(inst, f.version) && !dpkgLess(c.version, f.version) {
					for _, cve := range f.cves {
						r.cves[cve] = true
						if due, ok := o.kev[cve]; ok {
							r.kev = true
							r.overdue = r.overdue || findingsNow.After(due.AddDate(0, 0, 1))
						}
					}
				}
			}
			// The baselines: production (web hosts) approves KEV at once
			// and holds other security updates 7 days from an unknown
			// release; lab (dev) excludes cacti and approves security.
			switch {
			case h.labels["env"] == "prod" && r.kev:
				r.decision = policy.Approved
			case h.labels["env"] == "prod":
				r.decision = policy.Pending
			case c.source == "cacti":
				r.decision = policy.Declined
			default:
				r.decision = policy.Approved
			}
			out[h.name+" "+c.pkg] = r
		}
	}
	return out
}

// checkFacts compares what the server says of each CVE with the files.
func (o *oracle) checkFacts(t *testing.T, all api.Findings) {
	for _, h := range all.Hosts {
		for _, x := range h.Findings {
			if x.Classification != "security" || x.Suite != "bullseye-security" {
				t.Errorf("%s %s: %s from %s", h.Hostname, x.Package, x.Classification, x.Suite)
			}
			if x.KEV != (x.Risk.Score >= 100) {
				t.Errorf("%s %s: kev=%v with risk %.2f", h.Hostname, x.Package, x.KEV, x.Risk.Score)
			}
			for _, c := range x.CVEs {
				due, inKEV := o.kev[c.ID]
				switch {
				case inKEV != (c.KEV != nil):
					t.Errorf("%s: KEV %+v, catalog has it: %v", c.ID, c.KEV, inKEV)
				case inKEV && !c.KEV.DueDate.Equal(due):
					t.Errorf("%s: KEV due %v, catalog %v", c.ID, c.KEV.DueDate, due)
				}
				p, inEPSS := o.epss[c.ID]
				switch {
				case inEPSS != (c.EPSS != nil):
					t.Errorf("%s: EPSS %+v, files have it: %v", c.ID, c.EPSS, inEPSS)
				case inEPSS && math.Abs(p-c.EPSS.Probability) > 1e-9:
					t.Errorf("%s: EPSS %v, file %v", c.ID, c.EPSS.Probability, p)
				}
			}
		}
	}
}

// dpkgLess reports a < b as dpkg orders versions: by dpkg itself where
// installed, else by package deb (tested against dpkg).
// dpkgLess is the oracle's version order: dpkg's own, never the code
// under test (these tests run on Debian, where dpkg always is).
func dpkgLess(a, b string) bool {
	err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		panic("the findings oracle needs dpkg: " + err.Error())
	}
	return err == nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A feed refresh that brings a broken copy keeps the last good one in
// service and says so at /api/v1/feeds; a good copy replaces it.
func TestFeedsRefresh(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kev := filepath.Join(dir, "kev.json")
	good, err := os.ReadFile("testdata/feeds/kev/known_exploited_vulnerabilities.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kev, good, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := NewIntel(ctx, intel.Config{KEV: kev}, &feeds.Loader{CacheDir: filepath.Join(dir, "cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, "sqlite", func(c *Config) { c.Intel = in })
	status := func() api.Feed {
		t.Helper()
		var fs []api.Feed
		e.adminJSON("GET", "/api/v1/feeds", nil, &fs)
		if len(fs) != 1 {
			t.Fatalf("feeds: %+v", fs)
		}
		return fs[0]
	}
	if f := status(); f.Kind != "kev" || f.Records != 4 || f.Stale || f.Source != kev || f.Version != "2025.08.25" {
		t.Fatalf("loaded: %+v", f)
	}
	if err := os.WriteFile(kev, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.Refresh(ctx); err != nil {
		t.Fatalf("a stale copy is not an error: %v", err)
	}
	if f := status(); !f.Stale || f.Error == "" || f.Records != 4 {
		t.Errorf("after a broken copy: %+v", f)
	}
	// The last good copy is still what findings use.
	var first struct {
		Vulnerabilities []struct {
			CveID string `json:"cveID"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(good, &first); err != nil || len(first.Vulnerabilities) == 0 {
		t.Fatalf("kev testdata: %v", err)
	}
	if _, ok := in.Feeds().KEV.Lookup(first.Vulnerabilities[0].CveID); !ok {
		t.Errorf("after a broken copy, %s is no longer known exploited", first.Vulnerabilities[0].CveID)
	}
	// One entry fewer, and a count to match: a good new copy.
	var cat map[string]any
	if err := json.Unmarshal(good, &cat); err != nil {
		t.Fatal(err)
	}
	cat["vulnerabilities"] = cat["vulnerabilities"].([]any)[1:]
	cat["count"] = 3
	next, _ := json.Marshal(cat)
	if err := os.WriteFile(kev, next, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if f := status(); f.Stale || f.Error != "" || f.Records != 3 {
		t.Errorf("after a good copy: %+v", f)
	}
}

// A refresh that loses a source in service (an EPSS directory found empty
// mid-update) keeps every feed as it was, and says so.
func TestFeedsRefreshLostSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	epssDir := filepath.Join(dir, "epss")
	if err := os.MkdirAll(epssDir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(epssDir, "CVE_2021_EPSS.csv")
	if err := os.WriteFile(file, []byte("CVE-2021-4034;0.94921;0.99854\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := NewIntel(ctx, intel.Config{EPSS: []string{epssDir}}, &feeds.Loader{CacheDir: filepath.Join(dir, "cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := in.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "previous copies kept") {
		t.Errorf("refresh with the source gone: %v", err)
	}
	f := in.Feeds()
	if len(f.EPSS) != 1 {
		t.Fatalf("EPSS sets in service: %d", len(f.EPSS))
	}
	if _, ok := f.EPSS[0].Lookup("CVE-2021-4034"); !ok {
		t.Error("the previous EPSS copy is no longer in service")
	}
}
