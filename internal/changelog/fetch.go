package changelog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Artifact is one .deb as a verified Packages index lists it.
type Artifact struct {
	Package, Arch, Version string
	Source, SourceVersion  string
	URL                    string // repository URI + "/" + Filename
	Size                   int64
	SHA256                 string // lower-case hex
	Index                  string // the index that listed it, for messages
}

// Fetcher downloads candidate packages, reads their changelogs and keeps
// the parsed results in CacheDir. The zero value of each field but
// CacheDir is usable.
type Fetcher struct {
	Client   *http.Client // nil: a client on http.DefaultTransport
	CacheDir string       // where parsed changelogs are kept, one JSON file per (source, version)
	TempDir  string       // where a .deb is downloaded while read; "": os.TempDir()
	Timeout  time.Duration
	Now      func() time.Time // nil: time.Now
	Log      *slog.Logger     // nil: discard
	// MaxAttempts bounds how many binaries of one source are downloaded
	// looking for a changelog (smallest first); 0 means 3.
	MaxAttempts int
	// Workers bounds how many source versions Changelogs reads at once;
	// 0 means 1.
	Workers int
	// Done, when set, is called by Changelogs with each result as soon as
	// it is known (cache hits first), from several goroutines when
	// Workers > 1: a long run can report progress with it.
	Done func(Result)
}

// defaultTimeout bounds each download, body included, when Timeout is 0.
const defaultTimeout = 5 * time.Minute

// Read downloads a, checks its size and SHA256 against the index entry
// before reading any of it, and returns its parsed changelog. The .deb is
// kept only in an unlinked temporary file while it is read.
func (f *Fetcher) Read(ctx context.Context, a Artifact) (*Log, error) {
	file, err := f.download(ctx, a)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return ReadDeb(file, a.URL, a.Package, isNative(a.SourceVersion))
}

// isNative reports whether a source version has no Debian revision.
func isNative(version string) bool {
	if i := strings.IndexByte(version, ':'); i >= 0 {
		version = version[i+1:]
	}
	return !strings.Contains(version, "-")
}

// download fetches a.URL into an unlinked temporary file, hashing while it
// streams, and returns the file rewound only if size and SHA256 match.
func (f *Fetcher) download(ctx context.Context, a Artifact) (*os.File, error) {
	if a.Size <= 0 || len(a.SHA256) != sha256.Size*2 {
		return nil, fmt.Errorf("%s: index entry has no usable Size and SHA256", a.URL)
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", a.URL, err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "patchloop")
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", a.URL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", a.URL, resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != a.Size {
		return nil, fmt.Errorf("GET %s: server announces %d bytes, the index lists %d", a.URL, resp.ContentLength, a.Size)
	}
	file, err := os.CreateTemp(f.TempDir, "patchloop-deb-*")
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", a.URL, err)
	}
	os.Remove(file.Name()) // the open file stays readable; nothing is left behind
	if err := copyVerified(file, resp.Body, a); err != nil {
		file.Close()
		return nil, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		file.Close()
		return nil, fmt.Errorf("download %s: %w", a.URL, err)
	}
	f.log().Debug("downloaded", "url", a.URL, "size", a.Size)
	return file, nil
}

// copyVerified copies body to w, refusing anything but exactly a.Size
// bytes with SHA256 a.SHA256.
func copyVerified(w io.Writer, body io.Reader, a Artifact) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, a.Size+1))
	if err != nil {
		return fmt.Errorf("GET %s: after %d of %d bytes: %w", a.URL, n, a.Size, err)
	}
	if n != a.Size {
		return fmt.Errorf("GET %s: got %d bytes, the index lists %d (truncated or wrong file)", a.URL, n, a.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(a.SHA256) {
		return fmt.Errorf("GET %s: SHA256 %s, the verified index (%s) lists %s: refused", a.URL, got, a.Index, a.SHA256)
	}
	return nil
}

// unwrapURLError drops url.Error's "Get URL:" prefix; callers name the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{}
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
