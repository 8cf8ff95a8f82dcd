package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/feeds"
	"github.com/patchloop/patchloop/internal/intel"
)

// Intel keeps the advisory feeds in service (package intel loads them,
// package feeds keeps their last good copies) and the Assessor that
// matches updates against them. A refresh makes a new Assessor, so what
// the old one remembered goes with the old feeds.
type Intel struct {
	cfg    intel.Config
	loader *feeds.Loader
	log    *slog.Logger

	mu     sync.RWMutex
	feeds  *intel.Feeds
	assess *intel.Assessor
}

// NewIntel loads the feeds cfg names from the copies the loader's cache
// holds (and local files), without waiting for the network; Refresh
// fetches. The error joins the feeds that could not be loaded, which
// Status shows too: the Intel returned is usable either way.
func NewIntel(ctx context.Context, cfg intel.Config, loader *feeds.Loader, log *slog.Logger) (*Intel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	i := &Intel{cfg: cfg, loader: loader, log: log}
	err := i.load(ctx, true)
	return i, err
}

// Refresh refetches every feed. A feed that fails keeps its last good
// copy (Status marks it stale).
func (i *Intel) Refresh(ctx context.Context) error { return i.load(ctx, false) }

func (i *Intel) load(ctx context.Context, offline bool) error {
	f, err := intel.Load(ctx, i.loader, i.cfg, offline)
	if old := i.Feeds(); old != nil && lostSources(old, f) {
		// A refresh that lost a source in service (a directory of OSV
		// records half-written, an EPSS directory momentarily empty) must
		// not empty it: keep every feed as it was.
		i.log.Warn("advisory feeds refresh lost sources in service; keeping the previous copies", "err", err)
		return errors.Join(errors.New("feeds refresh lost sources in service: previous copies kept"), err)
	}
	a := intel.NewAssessor(f, nil)
	i.mu.Lock()
	i.feeds, i.assess = f, a
	i.mu.Unlock()
	for _, st := range f.Status {
		if st.Error != "" {
			i.log.Warn("advisory feed", "feed", st.Name, "location", st.Location, "stale", st.Stale, "err", st.Error)
		}
	}
	return err
}

// lostSources reports whether a source that had a copy in service in old
// has none in f.
func lostSources(old, f *intel.Feeds) bool {
	have := map[string]bool{}
	for _, st := range f.Status {
		if st.Provenance != nil {
			have[st.Location] = true
		}
	}
	for _, st := range old.Status {
		if st.Provenance != nil && !have[st.Location] {
			return true
		}
	}
	return false
}

// Assessor returns the Assessor over the feeds in service.
func (i *Intel) Assessor() *intel.Assessor {
	if i == nil {
		return intel.NewAssessor(nil, nil)
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.assess
}

// Feeds returns the feeds in service; nil when i is nil.
func (i *Intel) Feeds() *intel.Feeds {
	if i == nil {
		return nil
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.feeds
}

// Status is the provenance of each configured feed.
func (i *Intel) Status() []api.Feed {
	out := []api.Feed{}
	if i == nil {
		return out
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	for _, st := range i.feeds.Status {
		v := api.Feed{Kind: st.Kind, Name: st.Name, Source: st.Location, Stale: st.Stale, Error: st.Error, Problems: st.Problems}
		if p := st.Provenance; p != nil {
			fetched, checked := p.FetchedAt.UTC(), p.CheckedAt.UTC()
			v.Source, v.FetchedAt, v.CheckedAt = p.Source, &fetched, &checked
			v.Records, v.Bad, v.Version, v.SHA256 = p.Records, p.Bad, p.Version, p.SHA256
		}
		out = append(out, v)
	}
	return out
}
