package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/central"
	"github.com/patchloop/patchloop/internal/changelog"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/store"
)

// ChangelogConfig makes the server read the candidate changelogs of its
// hosts' updates, as `patchloop scan` does on a host: once per distinct
// (source, source version), from a .deb checked against the server's
// verified indexes, kept parsed under CacheDir.
type ChangelogConfig struct {
	CacheDir string       // parsed changelogs, one file per (source, version)
	Client   *http.Client // nil: a client on http.DefaultTransport
	// Workers bounds the downloads at once; 0 means 2.
	Workers int
	// Timeout bounds each download; 0 means 5 minutes.
	Timeout time.Duration
	// RetryAfter is how long a changelog that could not be had waits
	// before it is tried again; 0 means 15 minutes.
	RetryAfter time.Duration
}

// changelogReader reads the fleet's candidate changelogs in the
// background (RunChangelogs) and answers intel's lookups from what it has
// read. Its generation changes whenever what it would answer changes, so
// that the Assessor findings use is rebuilt.
type changelogReader struct {
	s       *Server
	cfg     ChangelogConfig // zero when disabled
	on      bool
	fetcher *changelog.Fetcher
	results *prometheus.CounterVec
	wake    chan struct{}
	round   sync.Mutex // one round at a time

	mu     sync.RWMutex
	read   map[changelog.Key]changelog.Result // a changelog, or a gap (final)
	failed map[changelog.Key]failedRead
	gen    uint64

	asMu    sync.Mutex
	as      *intel.Assessor
	asFeeds *intel.Feeds
	asGen   uint64
}

type failedRead struct {
	err error
	at  time.Time
}

// Results of reads, the values of the counter's label "result".
const (
	readDownloaded = "downloaded" // read from a downloaded, verified .deb
	readCached     = "cached"     // read from the cache (a restart)
	readGap        = "gap"        // the packages carry no changelog to read
	readFailed     = "failed"     // not listed, download or verification failed: retried later
)

func newChangelogReader(s *Server, cfg *ChangelogConfig) *changelogReader {
	c := &changelogReader{s: s, wake: make(chan struct{}, 1),
		read: map[changelog.Key]changelog.Result{}, failed: map[changelog.Key]failedRead{}}
	c.results = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "patchloop_changelogs_total",
		Help: "Candidate changelogs read, by result: downloaded, cached, gap (none in the package), failed (retried later)."},
		[]string{"result"})
	for _, r := range []string{readDownloaded, readCached, readGap, readFailed} {
		c.results.WithLabelValues(r)
	}
	s.metrics.reg.MustRegister(c.results)
	if cfg == nil {
		return c
	}
	c.on, c.cfg = true, *cfg
	if c.cfg.Workers <= 0 {
		c.cfg.Workers = 2
	}
	if c.cfg.RetryAfter <= 0 {
		c.cfg.RetryAfter = 15 * time.Minute
	}
	c.fetcher = &changelog.Fetcher{Client: cfg.Client, CacheDir: cfg.CacheDir, Timeout: cfg.Timeout,
		Workers: c.cfg.Workers, Now: s.cfg.Now, Log: s.log}
	return c
}

// poke asks for a round soon; pokes while one is pending coalesce.
func (c *changelogReader) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// lookup is the ChangelogFunc findings are assessed with.
func (c *changelogReader) lookup(k changelog.Key) (*changelog.Log, error) {
	if !c.on {
		return nil, errors.New("not read: the server runs with --changelogs=false, CVEs come from the feeds only")
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if r, ok := c.read[k]; ok {
		return r.Log, r.Err
	}
	if f, ok := c.failed[k]; ok {
		return nil, fmt.Errorf("%w (tried again after %s)", f.err, f.at.Add(c.cfg.RetryAfter).UTC().Format(time.RFC3339))
	}
	return nil, fmt.Errorf("%s: not read yet, the server reads it in the background", k)
}

// generation changes whenever lookup would answer differently.
func (c *changelogReader) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// assessor returns the Assessor findings are computed with: over the
// feeds in service and the changelogs read so far, remade when either
// changes (an Assessor remembers every finding it computed).
func (s *Server) assessor() *intel.Assessor {
	c := s.changelogs
	feeds, gen := s.cfg.Intel.Feeds(), c.generation()
	c.asMu.Lock()
	defer c.asMu.Unlock()
	if c.as == nil || c.asFeeds != feeds || c.asGen != gen {
		c.as, c.asFeeds, c.asGen = intel.NewAssessor(feeds, c.lookup), feeds, gen
	}
	return c.as
}

// RunChangelogs reads the changelogs the fleet's updates need until ctx
// ends: at once, after each detection (and index refresh), and every
// RetryAfter for those that failed. It returns at once when the server
// reads no changelogs.
func (s *Server) RunChangelogs(ctx context.Context) {
	c := s.changelogs
	if !c.on {
		return
	}
	t := time.NewTicker(c.cfg.RetryAfter)
	defer t.Stop()
	for {
		if err := c.readRound(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("changelogs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			// Let a burst of check-ins settle into one round.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		case <-t.C:
		}
	}
}

// wanted is the keys one world's hosts need, with an inventory of that
// world to find its indexes by.
type wanted struct {
	inventory string
	keys      []changelog.Key
}

// readRound reads every changelog the stored updates name that is
// neither read nor failed within RetryAfter.
func (c *changelogReader) readRound(ctx context.Context) error {
	c.round.Lock()
	defer c.round.Unlock()
	worlds, order, err := c.wantedKeys(ctx)
	if err != nil || len(order) == 0 {
		return err
	}
	var errs []error
	for _, w := range order {
		if err := c.readWorld(ctx, w, worlds[w]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// activeHosts are the IDs of the hosts not revoked. (ListHosts, which
// reads and decodes every host, sorted, was half of a round's time at
// 100,000 hosts, and a burst of new inventories runs rounds back to back.)
func (c *changelogReader) activeHosts(ctx context.Context) (map[string]bool, error) {
	ids, err := c.s.store.ActiveHostIDs(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m, nil
}

// wantedKeys gathers, per world, the keys of the stored updates still to
// be read.
func (c *changelogReader) wantedKeys(ctx context.Context) (map[string]*wanted, []string, error) {
	refs, err := c.s.store.UpdateRefs(ctx)
	if err != nil {
		return nil, nil, err
	}
	active, err := c.activeHosts(ctx)
	if err != nil {
		return nil, nil, err
	}
	now := c.s.cfg.Now()
	worlds, seen := map[string]*wanted{}, map[changelog.Key]bool{}
	var order []string
	// Hosts built from one image share a stored list: its keys are read
	// once (at 100,000 hosts, decoding each host's copy was most of a pass).
	keysOf := map[string][]changelog.Key{}
	for _, r := range refs {
		if !active[r.HostID] || r.Error != "" {
			continue
		}
		keys, ok := keysOf[r.Hash]
		if !ok || r.Hash == "" {
			data, err := updateList(ctx, c.s.store, r)
			if errors.Is(err, store.ErrNotFound) {
				continue // pruned or removed since the listing
			}
			if err != nil {
				return nil, nil, err
			}
			var ups []detect.Update
			if err := json.Unmarshal(data, &ups); err != nil {
				return nil, nil, fmt.Errorf("stored updates of host %s: %w", r.HostID, err)
			}
			keys = changelog.Keys(ups)
			if r.Hash != "" {
				keysOf[r.Hash] = keys
			}
		}
		world := central.WorldOf(r.Basis)
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			if !c.due(k, now) {
				continue
			}
			w := worlds[world]
			if w == nil {
				// The basis ends with the hash of the inventory it was computed from.
				w = &wanted{inventory: r.Basis[strings.LastIndexByte(r.Basis, ':')+1:]}
				worlds[world] = w
				order = append(order, world)
			}
			w.keys = append(w.keys, k)
		}
	}
	c.forget(seen)
	return worlds, order, nil
}

// forget drops what was read of keys no host needs any more.
func (c *changelogReader) forget(needed map[changelog.Key]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.read {
		if !needed[k] {
			delete(c.read, k)
			c.gen++
		}
	}
	for k := range c.failed {
		if !needed[k] {
			delete(c.failed, k)
			c.gen++
		}
	}
}

// due reports whether k is to be read now.
func (c *changelogReader) due(k changelog.Key, now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, ok := c.read[k]; ok {
		return false
	}
	f, ok := c.failed[k]
	return !ok || !now.Before(f.at.Add(c.cfg.RetryAfter))
}

// readWorld reads keys from the cache, and the rest from the .debs the
// world's verified indexes list.
func (c *changelogReader) readWorld(ctx context.Context, world string, w *wanted) error {
	log := c.s.log.With("world", world)
	var missing []changelog.Key
	cacheOnly := *c.fetcher
	for _, r := range cacheOnly.Changelogs(ctx, nil, w.keys) {
		if r.Cached {
			c.record(ctx, r, log)
		} else {
			missing = append(missing, r.Key)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	data, err := c.s.store.Inventory(ctx, w.inventory)
	if err != nil {
		return fmt.Errorf("world %s: inventory %s: %w", world, w.inventory, err)
	}
	inv := &api.Inventory{}
	if err := json.Unmarshal(data, inv); err != nil {
		return fmt.Errorf("stored inventory %s: %w", w.inventory, err)
	}
	_, indexes, err := c.s.engine.Indexes(ctx, inv)
	if err != nil {
		return fmt.Errorf("world %s: %w", world, err)
	}
	log.Info("reading changelogs", "sources", len(missing), "indexes", len(indexes))
	var mu sync.Mutex
	done, failed := 0, 0
	f := *c.fetcher
	f.Done = func(r changelog.Result) {
		c.record(ctx, r, log)
		mu.Lock()
		defer mu.Unlock()
		done++
		if r.Log == nil && !changelog.IsGap(r.Err) {
			failed++
		}
		if done%50 == 0 && done < len(missing) {
			log.Info("reading changelogs", "done", done, "of", len(missing), "failed", failed)
		}
	}
	f.Changelogs(ctx, indexes, missing)
	log.Info("changelogs read", "sources", len(missing), "failed", failed)
	return nil
}

// record keeps one result and counts it. A failure because ctx ended is
// not one: it is tried again in the next round.
func (c *changelogReader) record(ctx context.Context, r changelog.Result, log *slog.Logger) {
	var result string
	switch {
	case r.Log != nil && r.Cached:
		result = readCached
	case r.Log != nil:
		result = readDownloaded
	case changelog.IsGap(r.Err):
		result = readGap
	case ctx.Err() != nil:
		return
	default:
		result = readFailed
	}
	c.results.WithLabelValues(result).Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if result == readFailed {
		c.failed[r.Key] = failedRead{err: r.Err, at: c.s.cfg.Now()}
		log.Warn("changelog not read, tried again later", "source", r.Source, "version", r.Version, "err", r.Err)
		return
	}
	delete(c.failed, r.Key)
	c.read[r.Key] = r
	log.Debug("changelog read", "source", r.Source, "version", r.Version, "result", result, "from", r.From)
}
