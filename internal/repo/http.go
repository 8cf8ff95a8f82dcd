package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// maxMetaSize bounds InRelease, Release and Release.gpg downloads.
const maxMetaSize = 64 << 20

// defaultTimeout bounds each request, body included, when Fetcher.Timeout is 0.
const defaultTimeout = 10 * time.Minute

// statusError is a non-2xx, non-304 HTTP answer.
type statusError struct {
	URL    string
	Status string
	Code   int
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %s", e.URL, e.Status) }

// isNotFound reports whether err is a 404 or 410 answer.
func isNotFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusGone)
}

// client returns the configured client, or one on http.DefaultTransport
// (30 s dial timeout; the request timeout comes from the context).
func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{}
}

// get sends a GET for rawURL with extra headers. The caller must call the
// returned cancel function once done with the body. Answers other than
// 200 and 304 are returned as *statusError.
func (f *Fetcher) get(ctx context.Context, rawURL string, hdr http.Header) (*http.Response, context.CancelFunc, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	// Without this, Go would transparently gunzip a .gz served with
	// Content-Encoding: gzip and the hash would no longer match.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "patchloop")
	resp, err := f.client().Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified {
		resp.Body.Close()
		cancel()
		return nil, nil, &statusError{URL: rawURL, Status: resp.Status, Code: resp.StatusCode}
	}
	return resp, cancel, nil
}

// getMeta fetches a small metadata file with a conditional request based
// on the cached copy at cachePath. It returns the content (the cached copy
// on 304), the validators to store, and whether the cache was reused.
func (f *Fetcher) getMeta(ctx context.Context, rawURL, cachePath string) ([]byte, cacheMeta, bool, error) {
	hdr := http.Header{}
	meta := readMeta(cachePath)
	_, statErr := os.Stat(cachePath)
	if statErr == nil && meta.URL == rawURL {
		if meta.ETag != "" {
			hdr.Set("If-None-Match", meta.ETag)
		}
		if meta.LastModified != "" {
			hdr.Set("If-Modified-Since", meta.LastModified)
		}
	}
	resp, cancel, err := f.get(ctx, rawURL, hdr)
	if err != nil {
		return nil, cacheMeta{}, false, err
	}
	defer cancel()
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		f.progress("Hit " + rawURL)
		data, err := os.ReadFile(cachePath)
		if err != nil {
			return nil, cacheMeta{}, false, fmt.Errorf("GET %s: 304 but no cached copy: %w", rawURL, err)
		}
		return data, meta, true, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetaSize+1))
	if err != nil {
		return nil, cacheMeta{}, false, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	if len(data) > maxMetaSize {
		return nil, cacheMeta{}, false, fmt.Errorf("GET %s: larger than %d bytes", rawURL, maxMetaSize)
	}
	f.progress(fmt.Sprintf("Get %s [%s]", rawURL, humanSize(int64(len(data)))))
	newMeta := cacheMeta{URL: rawURL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	return data, newMeta, false, nil
}

// download fetches rawURL into path, refusing it (and leaving path as it
// was) unless its size and SHA256 are want. name is the Release entry, for
// messages.
func (f *Fetcher) download(ctx context.Context, rawURL, path, name string, want FileHash) error {
	resp, cancel, err := f.get(ctx, rawURL, nil)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	f.progress(fmt.Sprintf("Get %s [%s]", rawURL, humanSize(want.Size)))
	return writeAtomic(path, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, want.Size+1))
		if err != nil {
			return fmt.Errorf("GET %s: %w", rawURL, err)
		}
		if n != want.Size {
			return fmt.Errorf("%s from %s: got %d bytes, signed Release lists %d", name, rawURL, n, want.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
			return fmt.Errorf("%s from %s: SHA256 %s, signed Release lists %s", name, rawURL, got, want.SHA256)
		}
		return nil
	})
}

// humanSize formats a byte count the way apt's progress lines do.
func humanSize(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MB", n/1000_000)
	case n >= 10<<10:
		return fmt.Sprintf("%d kB", n/1000)
	}
	return fmt.Sprintf("%d B", n)
}
