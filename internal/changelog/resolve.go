package changelog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/repo"
)

// Result is the changelog of one source version, or why there is none.
type Result struct {
	Key
	Log    *Log   // the whole changelog; cut it per host with Log.Newer
	From   string // URL of the .deb read; "" when Cached
	Cached bool
	// Err is a *GapError when the packages themselves carry no changelog
	// to read (cached like a changelog), otherwise a failure to locate,
	// download, verify or read, which is not cached and is retried the
	// next time.
	Err error
}

// GapError reports a source version none of whose binaries tried carries
// its changelog, e.g. all had their doc directory linked to a package
// that is not in the indexes.
type GapError struct {
	Key
	Reasons []string
}

func (e *GapError) Error() string {
	return fmt.Sprintf("%s: no changelog to read: %s", e.Key, strings.Join(e.Reasons, "; "))
}

// Keys returns the distinct source versions of updates, in order.
func Keys(updates []detect.Update) []Key {
	var out []Key
	seen := map[Key]bool{}
	for _, u := range updates {
		k := Key{u.Source, u.SourceVersion}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Changelogs returns one Result per distinct key, in order: from the cache
// when present, else read from the smallest .deb of that source version
// the verified indexes list (following a doc-directory symlink to its
// target package when that is listed too) and then cached. Up to Workers
// source versions are downloaded at once.
func (f *Fetcher) Changelogs(ctx context.Context, indexes []repo.Index, keys []Key) []Result {
	var results []Result
	missing, seen := map[Key]bool{}, map[Key]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		r := Result{Key: k}
		if e := f.loadCache(k); e != nil {
			r.Log, r.Cached = e.Log, true
			if e.Gap != "" {
				r.Err = &GapError{Key: k, Reasons: []string{e.Gap}}
			}
		} else {
			missing[k] = true
		}
		results = append(results, r)
	}
	for i := range results {
		if !missing[results[i].Key] {
			f.done(results[i])
		}
	}
	if len(missing) == 0 {
		return results
	}
	found, idxErrs := Locate(indexes, missing)
	workers := max(f.Workers, 1)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := range results {
		r := &results[i]
		if !missing[r.Key] {
			continue
		}
		arts := found[r.Key]
		if len(arts) == 0 {
			r.Err = notListed(r.Key, idxErrs)
			f.done(*r)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.readAny(ctx, r, arts)
			f.done(*r)
		}()
	}
	wg.Wait()
	return results
}

func (f *Fetcher) done(r Result) {
	if f.Done != nil {
		f.Done(r)
	}
}

func notListed(k Key, idxErrs []error) error {
	err := fmt.Errorf("%s: no binary of it is listed in a verified index", k)
	if len(idxErrs) > 0 {
		err = fmt.Errorf("%w (unreadable indexes: %w)", err, errors.Join(idxErrs...))
	}
	return err
}

// readAny reads the first changelog it can from arts (smallest first),
// moving a doc-directory link's target package to the front, and caches
// the outcome unless it failed.
func (f *Fetcher) readAny(ctx context.Context, r *Result, arts []Artifact) {
	maxTries := f.MaxAttempts
	if maxTries <= 0 {
		maxTries = 3
	}
	queue := slices.Clone(arts)
	var reasons []string
	for tries := 0; len(queue) > 0 && tries < maxTries; tries++ {
		if err := ctx.Err(); err != nil {
			r.Err = fmt.Errorf("%s: %w", r.Key, err)
			return
		}
		a := queue[0]
		queue = queue[1:]
		log, err := f.Read(ctx, a)
		if err == nil {
			r.Log, r.From = log, a.URL
			f.store(r, &cacheEntry{Source: r.Source, Version: r.Version, Package: a.Package, DebSHA256: a.SHA256, Log: log})
			return
		}
		if !IsGap(err) {
			r.Err = err
			if len(reasons) > 0 {
				r.Err = fmt.Errorf("%w (tried after: %s)", err, strings.Join(reasons, "; "))
			}
			return
		}
		reasons = append(reasons, err.Error())
		var dl *DocLinkError
		if errors.As(err, &dl) {
			queue = targetFirst(queue, dl.TargetPackage)
		}
	}
	if len(queue) > 0 {
		reasons = append(reasons, fmt.Sprintf("%d more binaries not tried", len(queue)))
	}
	gap := &GapError{Key: r.Key, Reasons: reasons}
	r.Err = gap
	f.store(r, &cacheEntry{Source: r.Source, Version: r.Version, Gap: strings.Join(reasons, "; ")})
}

// targetFirst moves the artifacts of package pkg to the front of queue.
func targetFirst(queue []Artifact, pkg string) []Artifact {
	if pkg == "" {
		return queue
	}
	slices.SortStableFunc(queue, func(a, b Artifact) int {
		switch {
		case a.Package == pkg && b.Package != pkg:
			return -1
		case a.Package != pkg && b.Package == pkg:
			return 1
		}
		return 0
	})
	return queue
}

// store caches an outcome; a cache that cannot be written is logged, not
// fatal, since the result itself is good.
func (f *Fetcher) store(r *Result, e *cacheEntry) {
	e.Read = f.now().UTC()
	if err := f.storeCache(e); err != nil {
		f.log().Warn("cannot cache changelog", "source", r.Source, "version", r.Version, "err", err)
	}
}

// IsGap reports whether err means the package itself has no changelog
// to read (as opposed to a download or verification failure).
func IsGap(err error) bool {
	var dl *DocLinkError
	var nc *NoChangelogError
	var ge *GapError
	return errors.As(err, &dl) || errors.As(err, &nc) || errors.As(err, &ge)
}
