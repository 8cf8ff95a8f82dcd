package feeds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

var errNotModified = errors.New("not modified")

// refresh fetches the source into a temporary file, parses it and, if it
// is good, makes it the cached copy.
func refresh[T any](ctx context.Context, l *Loader, src Source, prev, replaced *Provenance, parse Parser[T]) (*Loaded[T], error) {
	now := l.now()
	tmp, p, err := l.fetch(ctx, src, prev)
	if errors.Is(err, errNotModified) {
		got, err := cached(l, src, prev, parse)
		if err != nil {
			return nil, fmt.Errorf("not modified, but the cached copy is unusable: %w", err)
		}
		got.Provenance.CheckedAt = now
		if err := l.writeMeta(src.Name, &got.Provenance); err != nil {
			return nil, err
		}
		return got, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // fails harmlessly once renamed
	}()
	v, st, err := parse(fileName(src), io.NewSectionReader(tmp, 0, p.Size))
	if err != nil {
		return nil, err
	}
	if st.Records == 0 {
		return nil, fmt.Errorf("copy has no good records (%d bad): refusing to empty the feed", st.Bad)
	}
	p.FetchedAt, p.CheckedAt = now, now
	p.Records, p.Bad, p.Version = st.Records, st.Bad, st.Version
	if err := l.commit(src.Name, tmp, &p, replaced); err != nil {
		return nil, err
	}
	return &Loaded[T]{Value: v, Provenance: p}, nil
}

// commit makes the temporary file the cached copy described by p, and
// removes the copy it replaces.
func (l *Loader) commit(name string, tmp *os.File, p, replaced *Provenance) error {
	if err := tmp.Sync(); err != nil {
		return err
	}
	data := l.dataPath(name, p.SHA256)
	if err := os.Rename(tmp.Name(), data); err != nil {
		return err
	}
	if err := l.writeMeta(name, p); err != nil {
		return fmt.Errorf("record provenance: %w", err)
	}
	if replaced != nil {
		if old := l.dataPath(name, replaced.SHA256); old != data {
			os.Remove(old)
		}
	}
	return nil
}

// fetch copies the source into a temporary file in the cache directory
// and returns it with its provenance (source, hash, size, validators).
// With a previous copy it sends a conditional request, and returns
// errNotModified on 304.
func (l *Loader) fetch(ctx context.Context, src Source, prev *Provenance) (*os.File, Provenance, error) {
	p := Provenance{Source: sourceID(src)}
	var body io.Reader
	if src.isURL() {
		ctx, cancel := context.WithTimeout(ctx, l.timeout())
		defer cancel()
		resp, err := l.get(ctx, src.Location, prev)
		if err != nil {
			return nil, p, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotModified {
			return nil, p, errNotModified
		}
		p.ETag, p.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		body = resp.Body
	} else {
		f, err := os.Open(src.Location)
		if err != nil {
			return nil, p, err
		}
		defer f.Close()
		body = f
	}
	tmp, err := os.CreateTemp(l.CacheDir, src.Name+".tmp-*")
	if err != nil {
		return nil, p, err
	}
	h := sha256.New()
	max := l.maxSize()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("larger than %d bytes", max)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, p, fmt.Errorf("read %s: %w", src.Location, err)
	}
	p.SHA256, p.Size = hex.EncodeToString(h.Sum(nil)), n
	return tmp, p, nil
}

// get sends the GET, conditional on the previous copy's validators.
// Answers other than 200 and 304 are errors.
func (l *Loader) get(ctx context.Context, url string, prev *Provenance) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "patchloop")
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	client := l.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

func (l *Loader) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return defaultTimeout
}

func (l *Loader) maxSize() int64 {
	if l.MaxSize > 0 {
		return l.MaxSize
	}
	return defaultMaxSize
}
