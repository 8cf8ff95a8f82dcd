package intel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/feeds"
)

// Config says where each feed comes from: an http(s) URL or a local path.
// Empty fields are feeds not configured.
type Config struct {
	KEV string // the CISA KEV catalog JSON
	// EPSS are FIRST's daily CSV (plain or gzip) or per-year
	// "CVE;epss;percentile" files; a directory stands for every *.csv
	// and *.csv.gz under it. A CVE is looked up in them in order.
	EPSS []string
	// OSV are OSV all.zip exports (URL or file) or directories of OSV JSON
	// records.
	OSV      []string
	DSA, DLA string // Debian Security Tracker data/DSA/list and data/DLA/list
}

// Kinds of feeds, as FeedStatus.Kind names them.
const (
	KindKEV  = "kev"
	KindEPSS = "epss"
	KindOSV  = "osv"
	KindDSA  = "dsa"
	KindDLA  = "dla"
)

// Empty reports whether no feed is configured.
func (c Config) Empty() bool {
	return c.KEV == "" && len(c.EPSS) == 0 && len(c.OSV) == 0 && c.DSA == "" && c.DLA == ""
}

// Absent names the kinds of feed that are not configured.
func (c Config) Absent() []string {
	var out []string
	for _, k := range []struct {
		kind string
		set  bool
	}{{KindKEV, c.KEV != ""}, {KindEPSS, len(c.EPSS) > 0}, {KindOSV, len(c.OSV) > 0}, {KindDSA, c.DSA != ""}, {KindDLA, c.DLA != ""}} {
		if !k.set {
			out = append(out, k.kind)
		}
	}
	return out
}

// ConfigFromDir finds the feeds in a directory laid out as the public
// sources publish them:
//
//	DIR/kev/*.json                   the KEV catalog (not *schema*.json); exactly one
//	DIR/epss/**/*.csv, *.csv.gz      EPSS files
//	DIR/osv/**/*.zip                 OSV all.zip exports
//	DIR/osv/X/                       a directory of OSV *.json records, one per X
//	DIR/**/DSA/list, DIR/**/DLA/list the Debian Security Tracker lists
//
// Kinds it does not find stay unset (Config.Absent names them).
func ConfigFromDir(dir string) (Config, error) {
	var c Config
	if st, err := os.Stat(dir); err != nil {
		return c, fmt.Errorf("feeds directory: %w", err)
	} else if !st.IsDir() {
		return c, fmt.Errorf("feeds directory %s: not a directory", dir)
	}
	kevs, _ := filepath.Glob(filepath.Join(dir, "kev", "*.json"))
	kevs = slices.DeleteFunc(kevs, func(p string) bool { return strings.Contains(filepath.Base(p), "schema") })
	switch len(kevs) {
	case 0:
	case 1:
		c.KEV = kevs[0]
	default:
		return c, fmt.Errorf("feeds directory %s: several KEV catalogs in kev/: %s", dir, strings.Join(kevs, ", "))
	}
	if _, err := os.Stat(filepath.Join(dir, "epss")); err == nil {
		c.EPSS = []string{filepath.Join(dir, "epss")}
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "osv")); err == nil {
		for _, e := range ents {
			p := filepath.Join(dir, "osv", e.Name())
			if e.IsDir() || strings.HasSuffix(e.Name(), ".zip") {
				c.OSV = append(c.OSV, p)
			}
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "list" {
			return nil
		}
		switch filepath.Base(filepath.Dir(p)) {
		case "DSA":
			if c.DSA == "" {
				c.DSA = p
			}
		case "DLA":
			if c.DLA == "" {
				c.DLA = p
			}
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("feeds directory: %w", err)
	}
	return c, nil
}

// FeedStatus is what was loaded from one configured source, or why not.
type FeedStatus struct {
	Kind     string `json:"kind"` // kev, epss, osv, dsa, dla
	Name     string `json:"name"` // the cache name
	Location string `json:"location"`
	// Provenance describes the copy in service; absent when none loaded.
	Provenance *feeds.Provenance `json:"provenance,omitempty"`
	// Stale: the refresh failed and the last good copy is in service.
	Stale bool `json:"stale,omitempty"`
	// Error is the refresh failure when Stale, or why nothing could be
	// loaded.
	Error string `json:"error,omitempty"`
	// Problems are the first bad records skipped (file and line); the
	// count is Provenance.Bad.
	Problems []string `json:"problems,omitempty"`
}

// Feeds is the advisory data an Assessor matches against.
type Feeds struct {
	KEV      *advisory.KEV
	EPSS     []*advisory.EPSS
	OSV      []*advisory.OSVSet
	DSA, DLA *advisory.DebianList
	// Status has one entry per configured source, in Config order.
	Status []FeedStatus

	once        sync.Once
	debianFixes map[debianKey][]debianFix
}

type debianKey struct{ release, source string }

type debianFix struct {
	adv     *advisory.DebianAdvisory
	version string
}

// index builds the (release, source package) index of the DSA/DLA lists.
func (f *Feeds) index() {
	f.once.Do(func() {
		f.debianFixes = map[debianKey][]debianFix{}
		for _, l := range []*advisory.DebianList{f.DSA, f.DLA} {
			if l == nil {
				continue
			}
			for i := range l.Advisories {
				a := &l.Advisories[i]
				for _, fx := range a.Fixes {
					if fx.Version == "" {
						continue
					}
					k := debianKey{fx.Release, fx.Package}
					f.debianFixes[k] = append(f.debianFixes[k], debianFix{a, fx.Version})
				}
			}
		}
	})
}

// maxProblems is how many bad records a FeedStatus lists.
const maxProblems = 5

// Load loads every configured feed through l (each source into its own
// cache entry, the last good copy kept by package feeds). offline reads URL
// sources from the cache only; local files are read either way.
//
// The Feeds returned is always usable: a source that cannot be loaded at all
// has its Status entry with Error, and the error returned joins those
// failures, each naming the feed and its location. A refresh that failed
// with a last good copy in service is not an error: its Status is Stale.
func Load(ctx context.Context, l *feeds.Loader, c Config, offline bool) (*Feeds, error) {
	f := &Feeds{}
	jobs, err := feedJobs(ctx, l, c, offline)
	if err != nil {
		return f, err
	}
	f.Status = make([]FeedStatus, len(jobs))
	values := make([]any, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, j := range jobs {
		f.Status[i] = FeedStatus{Kind: j.kind, Name: j.name, Location: j.loc}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			st := &f.Status[i]
			v, probs, err := j.load(st)
			if err != nil {
				st.Error = err.Error()
				errs[i] = fmt.Errorf("%s feed %s: %w", j.kind, j.loc, err)
				return
			}
			values[i], st.Problems = v, problems(probs)
		}()
	}
	wg.Wait()
	for i, v := range values {
		switch v := v.(type) {
		case *advisory.KEV:
			f.KEV = v
		case *advisory.EPSS:
			f.EPSS = append(f.EPSS, v)
		case *advisory.OSVSet:
			f.OSV = append(f.OSV, v)
		case *advisory.DebianList:
			if jobs[i].kind == KindDSA {
				f.DSA = v
			} else {
				f.DLA = v
			}
		}
	}
	f.index()
	return f, errors.Join(errs...)
}

// feedJob loads one configured source: its value (nil on error) and the
// bad records it skipped.
type feedJob struct {
	kind, name, loc string
	load            func(*FeedStatus) (any, advisory.Problems, error)
}

// feedJobs lists the sources of c, EPSS directories expanded, in order.
func feedJobs(ctx context.Context, l *feeds.Loader, c Config, offline bool) ([]feedJob, error) {
	var jobs []feedJob
	if c.KEV != "" {
		jobs = append(jobs, feedJob{KindKEV, "kev", c.KEV, func(st *FeedStatus) (any, advisory.Problems, error) {
			v, err := loadOne(ctx, l, st, offline, feeds.KEV)
			if err != nil {
				return nil, advisory.Problems{}, err
			}
			return v, v.Problems, nil
		}})
	}
	epssFiles, err := expandEPSS(c.EPSS)
	if err != nil {
		return nil, err
	}
	for _, loc := range epssFiles {
		jobs = append(jobs, feedJob{KindEPSS, "epss-" + cacheName(loc), loc, func(st *FeedStatus) (any, advisory.Problems, error) {
			v, err := loadOne(ctx, l, st, offline, feeds.EPSS)
			if err != nil {
				return nil, advisory.Problems{}, err
			}
			return v, v.Problems, nil
		}})
	}
	for _, loc := range c.OSV {
		jobs = append(jobs, feedJob{KindOSV, "osv-" + cacheName(loc), loc, func(st *FeedStatus) (any, advisory.Problems, error) {
			var v *advisory.OSVSet
			var err error
			if fi, statErr := os.Stat(loc); statErr == nil && fi.IsDir() {
				v, err = loadOSVDir(st, loc, l.Now)
			} else {
				v, err = loadOne(ctx, l, st, offline, feeds.OSVZip)
			}
			if err != nil {
				return nil, advisory.Problems{}, err
			}
			return v, v.Problems, nil
		}})
	}
	for _, d := range [][2]string{{KindDSA, c.DSA}, {KindDLA, c.DLA}} {
		if d[1] == "" {
			continue
		}
		jobs = append(jobs, feedJob{d[0], d[0], d[1], func(st *FeedStatus) (any, advisory.Problems, error) {
			v, err := loadOne(ctx, l, st, offline, feeds.DebianList)
			if err != nil {
				return nil, advisory.Problems{}, err
			}
			return v, v.Problems, nil
		}})
	}
	return jobs, nil
}

// loadOne loads one file or URL source through package feeds.
func loadOne[T any](ctx context.Context, l *feeds.Loader, st *FeedStatus, offline bool, parse feeds.Parser[T]) (T, error) {
	src := feeds.Source{Name: st.Name, Location: st.Location}
	var got *feeds.Loaded[T]
	var err error
	if offline && isURL(st.Location) {
		got, err = feeds.Cached(l, src, parse)
	} else {
		got, err = feeds.Load(ctx, l, src, parse)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	p := got.Provenance
	st.Provenance = &p
	if got.Stale {
		st.Stale, st.Error = true, got.RefreshErr.Error()
	}
	return got.Value, nil
}

// loadOSVDir loads a directory of OSV records; its provenance is the
// directory and the time it was read.
func loadOSVDir(st *FeedStatus, dir string, now func() time.Time) (*advisory.OSVSet, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s, err := advisory.LoadOSVDir(os.DirFS(abs), ".")
	if err != nil {
		return nil, err
	}
	if len(s.Records) == 0 {
		return nil, fmt.Errorf("no good OSV records in %s (%d bad)", abs, s.Bad)
	}
	t := time.Now()
	if now != nil {
		t = now()
	}
	st.Provenance = &feeds.Provenance{Source: abs, FetchedAt: t.UTC(), CheckedAt: t.UTC(), Records: len(s.Records), Bad: s.Bad}
	return s, nil
}

// expandEPSS replaces directories by the EPSS files under them, sorted.
func expandEPSS(locs []string) ([]string, error) {
	var out []string
	for _, loc := range locs {
		fi, err := os.Stat(loc)
		if isURL(loc) || err != nil || !fi.IsDir() {
			out = append(out, loc) // a URL, a file, or an error Load will name
			continue
		}
		var found []string
		err = filepath.WalkDir(loc, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".csv") || strings.HasSuffix(p, ".csv.gz")) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("epss feed %s: %w", loc, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("epss feed %s: no *.csv or *.csv.gz files", loc)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// cacheName makes a feeds cache name from a location's last element.
func cacheName(loc string) string {
	base := strings.TrimSuffix(loc, "/")
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	name := strings.Trim(unsafeName.ReplaceAllString(base, "_"), "_")
	if name == "" {
		name = "feed"
	}
	// Sources often share their last element (OSV's .../Debian/all.zip and
	// .../Ubuntu/all.zip): the location's hash keeps their copies apart.
	sum := sha256.Sum256([]byte(loc))
	return name + "-" + hex.EncodeToString(sum[:4])
}

func problems(p advisory.Problems) []string {
	var out []string
	for i := 0; i < len(p.First) && i < maxProblems; i++ {
		out = append(out, p.First[i].Error())
	}
	return out
}

// Notices are the lines an operator should read about the feeds of c as
// loaded into f: failures, stale copies, bad records, and the kinds of
// feed c does not configure.
// f may be nil (no feed loaded).
func (f *Feeds) Notices(c Config) []string {
	var out []string
	var status []FeedStatus
	if f != nil {
		status = f.Status
	}
	for _, st := range status {
		switch {
		case st.Provenance == nil:
			out = append(out, fmt.Sprintf("feed %s (%s) not loaded: %s", st.Name, st.Location, st.Error))
		case st.Stale:
			out = append(out, fmt.Sprintf("feed %s: refresh failed, using the copy of %s: %s",
				st.Name, st.Provenance.FetchedAt.Format(time.RFC3339), st.Error))
		}
		if st.Provenance != nil && st.Provenance.Bad > 0 {
			n := fmt.Sprintf("feed %s: %d bad records skipped", st.Name, st.Provenance.Bad)
			if len(st.Problems) > 0 {
				n += ", first: " + st.Problems[0]
			}
			out = append(out, n)
		}
	}
	if abs := c.Absent(); len(abs) > 0 {
		out = append(out, "feeds not configured: "+strings.Join(abs, ", "))
	}
	return out
}
