// Package central is Detect for a fleet: the server fetches and verifies
// the indexes its hosts install from (package repo, with the server's own
// keyrings) and computes each host's missing updates from the inventory
// the host reported, exactly as package scan does on the endpoint.
//
// Work is shared: hosts with the same apt configuration (sources, pins,
// default release, architectures) share one world, whose indexes are
// loaded once; within a world the outcome for one installed package
// version is computed once and remembered, so the cost of a fleet grows
// with its distinct package versions, not with its hosts. A world is
// refetched by Refresh; when any of its indexes changed, its memory is
// dropped and its generation changes, which tells the server which hosts
// to recompute.
package central

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/repo"
	"github.com/patchloop/patchloop/internal/scan"
)

// Engine computes hosts' updates. Create it with New.
type Engine struct {
	cacheDir string
	fetcher  *repo.Fetcher
	trust    []repo.Source
	log      *slog.Logger

	mu     sync.Mutex
	worlds map[string]*world
}

// Config configures an Engine.
type Config struct {
	// CacheDir holds fetched indexes and their compact caches.
	CacheDir string
	// Trust lists the (URI, suite) pairs the server mirrors, each with the
	// keyrings (Signed-By) its Release must be signed with. A host source
	// not listed here is reported as not mirrored, never fetched with
	// unknown trust.
	Trust  []repo.Source
	Client *http.Client
	// Offline uses only what CacheDir already holds.
	Offline bool
	Log     *slog.Logger
	Now     func() time.Time
}

// New returns an engine.
func New(c Config) *Engine {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	f := &repo.Fetcher{
		Client:          c.Client,
		CacheDir:        filepath.Join(c.CacheDir, "repo"),
		Offline:         c.Offline,
		CheckValidUntil: true,
		CheckDate:       true,
		Now:             c.Now,
		Log:             c.Log,
		HaveContent:     func(sha string) bool { return scan.HaveIndexCache(c.CacheDir, sha) },
	}
	if c.Offline {
		f.ListsDir = filepath.Join(c.CacheDir, "no-apt-lists") // never fall back to the server's own apt lists
	}
	return &Engine{cacheDir: c.CacheDir, fetcher: f, trust: c.Trust, log: c.Log, worlds: map[string]*world{}}
}

// Result is one host's detection.
type Result struct {
	Updates []detect.Update
	// Basis identifies the inputs: the world and the generation of its
	// indexes. Equal bases mean equal results for the same inventory.
	Basis string
}

// world is the shared state of hosts with one apt configuration.
type world struct {
	key     string
	sources []repo.Source
	native  string
	pins    []deb.Pin
	defRel  string

	load    sync.Mutex // held while (re)loading
	mu      sync.RWMutex
	gen     string // hash of the loaded indexes; "" not loaded
	indexes []repo.Index
	data    *dataset
	memo    map[string][]detect.Update // installed-package key → its update (nil: none)
}

// dataset is the loaded content of a world's indexes.
type dataset struct {
	files  []detect.PackageFile
	byName map[string][]detect.Available
}

// Detect computes the updates of a host with this inventory.
func (e *Engine) Detect(ctx context.Context, inv *api.Inventory) (Result, error) {
	w, err := e.world(inv)
	if err != nil {
		return Result{}, err
	}
	if err := w.ensure(ctx, e); err != nil {
		return Result{}, err
	}
	w.mu.RLock()
	gen, data := w.gen, w.data
	w.mu.RUnlock()

	var out []detect.Update
	installed := inv.InstalledPackages()
	for i := range installed {
		p := &installed[i]
		if !p.Current() {
			continue
		}
		k := strings.Join([]string{p.Name, p.Arch, p.Version, p.Want, p.State}, "\x00")
		w.mu.RLock()
		ups, ok := w.memo[k]
		w.mu.RUnlock()
		if !ok {
			ups = detect.Updates(detect.Input{
				NativeArch: w.native, Installed: []deb.InstalledPackage{*p}, Files: data.files,
				Available: data.byName[p.Name], Pins: w.pins, DefaultRelease: w.defRel,
			})
			w.mu.Lock()
			if w.gen == gen {
				w.memo[k] = ups
			}
			w.mu.Unlock()
		}
		out = append(out, ups...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		return out[i].Arch < out[j].Arch
	})
	return Result{Updates: out, Basis: w.key + ":" + gen}, nil
}

// world finds or creates the world of inv's apt configuration.
func (e *Engine) world(inv *api.Inventory) (*world, error) {
	sources, err := e.resolve(inv)
	if err != nil {
		return nil, err
	}
	pins := inv.DebPins()
	keyData, _ := json.Marshal(struct {
		S []repo.Source
		P []deb.Pin
		D string
		N string
	}{sources, pins, inv.DefaultRelease, inv.NativeArch})
	sum := sha256.Sum256(keyData)
	key := hex.EncodeToString(sum[:8])
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.worlds[key]
	if w == nil {
		w = &world{key: key, sources: sources, native: inv.NativeArch, pins: pins, defRel: inv.DefaultRelease}
		e.worlds[key] = w
	}
	return w, nil
}

// resolve maps the host's sources onto the server's trusted ones.
func (e *Engine) resolve(inv *api.Inventory) ([]repo.Source, error) {
	var out []repo.Source
	for _, s := range inv.Sources {
		t, ok := e.trusted(s.URI, s.Suite)
		if !ok {
			return nil, fmt.Errorf("source %s %s is not mirrored by this server (add it to the server's sources)", s.URI, s.Suite)
		}
		archs := append([]string(nil), s.Archs...)
		sort.Strings(archs)
		out = append(out, repo.Source{URI: t.URI, Suite: s.Suite, Components: s.Components, Archs: archs,
			SignedBy: t.SignedBy, Where: "server trust " + t.Where})
	}
	return out, nil
}

func (e *Engine) trusted(uri, suite string) (repo.Source, bool) {
	for _, t := range e.trust {
		if strings.TrimRight(t.URI, "/") == strings.TrimRight(uri, "/") && t.Suite == suite {
			return t, true
		}
	}
	return repo.Source{}, false
}

// ensure loads the world's indexes if they are not loaded.
func (w *world) ensure(ctx context.Context, e *Engine) error {
	w.mu.RLock()
	loaded := w.gen != ""
	w.mu.RUnlock()
	if loaded {
		return nil
	}
	_, err := w.reload(ctx, e)
	return err
}

// reload fetches the world's indexes and swaps them in when they changed.
func (w *world) reload(ctx context.Context, e *Engine) (changed bool, err error) {
	w.load.Lock()
	defer w.load.Unlock()
	indexes, err := scan.FetchAll(ctx, e.fetcher, w.sources)
	if err != nil {
		return false, err
	}
	h := sha256.New()
	for _, ix := range indexes {
		fmt.Fprintf(h, "%s %s %s %s %s\n", ix.Source.URI, ix.Source.Suite, ix.Component, ix.Arch, ix.SHA256)
	}
	gen := hex.EncodeToString(h.Sum(nil)[:8])
	w.mu.RLock()
	same := gen == w.gen
	w.mu.RUnlock()
	if same {
		return false, nil
	}
	data := &dataset{byName: map[string][]detect.Available{}}
	for i := range indexes {
		ix := &indexes[i]
		recs, err := scan.LoadIndex(e.cacheDir, ix, nil)
		if err != nil {
			return false, err
		}
		data.files = append(data.files, scan.PackageFile(ix))
		file := len(data.files) - 1
		for _, r := range recs {
			data.byName[r.Name] = append(data.byName[r.Name], detect.Available{
				Name: r.Name, Arch: r.Arch, Version: r.Version, Source: r.Source, SourceVersion: r.SourceVersion, File: file,
			})
		}
	}
	w.mu.Lock()
	w.gen, w.indexes, w.data, w.memo = gen, indexes, data, map[string][]detect.Update{}
	w.mu.Unlock()
	e.log.Info("world loaded", "world", w.key, "generation", gen, "indexes", len(indexes), "packages", len(data.byName))
	return true, nil
}

// Indexes returns the verified indexes of the world of inv, loading them
// when the world has none yet (as Detect does), and the world's key. The
// changelogs of its updates are located in them (package changelog).
func (e *Engine) Indexes(ctx context.Context, inv *api.Inventory) (world string, indexes []repo.Index, err error) {
	w, err := e.world(inv)
	if err != nil {
		return "", nil, err
	}
	if err := w.ensure(ctx, e); err != nil {
		return w.key, nil, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.key, w.indexes, nil
}

// Refresh refetches every world's indexes and returns the keys of the
// worlds whose indexes changed. A world that fails to refresh keeps its
// last good indexes; the errors are returned joined.
func (e *Engine) Refresh(ctx context.Context) (changed []string, err error) {
	e.mu.Lock()
	worlds := make([]*world, 0, len(e.worlds))
	for _, w := range e.worlds {
		worlds = append(worlds, w)
	}
	e.mu.Unlock()
	var errs []string
	for _, w := range worlds {
		ok, err := w.reload(ctx, e)
		if err != nil {
			errs = append(errs, fmt.Sprintf("world %s: %v", w.key, err))
			continue
		}
		if ok {
			changed = append(changed, w.key)
		}
	}
	if len(errs) > 0 {
		return changed, fmt.Errorf("refresh: %s", strings.Join(errs, "; "))
	}
	return changed, nil
}

// WorldOf returns the key of the world inv belongs to, for matching the
// keys Refresh returns against stored results' bases.
func WorldOf(basis string) string {
	k, _, _ := strings.Cut(basis, ":")
	return k
}
