package repo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Fetcher downloads and verifies the metadata of apt sources. The zero
// value of each field is usable except CacheDir, which online fetching
// needs.
type Fetcher struct {
	Client   *http.Client // nil: a client on http.DefaultTransport
	CacheDir string       // where downloads are kept (layout in the package doc)
	Root     string       // filesystem root for keyrings and ListsDir; "" is "/"
	Offline  bool         // no network: use CacheDir, else ListsDir
	ListsDir string       // apt's lists; "" is ROOT/var/lib/apt/lists
	// CheckValidUntil and CheckDate are apt's Acquire::Check-Valid-Until
	// and Acquire::Check-Date (both default to true in apt).
	CheckValidUntil, CheckDate bool
	Now                        func() time.Time // nil: time.Now
	Log                        *slog.Logger     // nil: discard
	Progress                   func(msg string) // nil: none; one short line per download
	Timeout                    time.Duration    // per request, body included; 0: 10 minutes
	// HaveContent, when set, reports whether the caller already holds the
	// Packages content with this SHA256 from an earlier verified read (a
	// cache keyed by that hash). The file is then neither downloaded nor
	// re-hashed: the signed Release still names the hash, so the content
	// is the same. The returned Index's Path may then not exist.
	HaveContent func(sha256 string) bool

	mu       sync.Mutex
	keyrings map[string]*Keyring // loaded keyrings by Signed-By value
}

// keyring loads the keyring a source names once per Fetcher: parsing a
// keyring checks every key's self-signatures, which costs more than
// verifying an InRelease, and most sources share one keyring.
func (f *Fetcher) keyring(signedBy []string) (*Keyring, error) {
	key := strings.Join(signedBy, "\x00")
	f.mu.Lock()
	defer f.mu.Unlock()
	if kr, ok := f.keyrings[key]; ok {
		return kr, nil
	}
	kr, err := LoadKeyring(f.Root, signedBy, f.log())
	if err != nil {
		return nil, err
	}
	if f.keyrings == nil {
		f.keyrings = map[string]*Keyring{}
	}
	f.keyrings[key] = kr
	return kr, nil
}

// suite is a validated Source with its derived URLs.
type suite struct {
	src  Source
	base string // URI/dists/SUITE, without trailing slash
	site string // host of the URI
}

// target is one (component, arch) Packages index to provide.
type target struct {
	component, arch string
	base            string   // component/binary-ARCH/Packages
	content         FileHash // Release entry of base; zero if not listed
}

// compressions lists the Packages forms in order of preference.
func compressions() []struct{ ext, name string } {
	return []struct{ ext, name string }{{".xz", "xz"}, {".gz", "gz"}, {".lz4", "lz4"}, {"", ""}}
}

// Fetch provides one verified Index per (component, arch) of src that the
// Release declares, fetching online or reading local copies when Offline.
// Components and architectures the Release does not declare are skipped,
// as apt skips them; a declared index that cannot be fetched or verified
// fails the whole source.
func (f *Fetcher) Fetch(ctx context.Context, src Source) ([]Index, error) {
	s, err := newSuite(src)
	if err != nil {
		return nil, err
	}
	kr, err := f.keyring(src.SignedBy)
	if err != nil {
		if !src.Trusted {
			return nil, fmt.Errorf("%s: %w", s.describe(), err)
		}
		f.log().Warn("no keyring for trusted=yes source", "source", s.describe(), "err", err)
	}
	if f.Offline {
		return f.fetchOffline(ctx, s, kr)
	}
	return f.fetchOnline(ctx, s, kr)
}

// newSuite validates src.
func newSuite(src Source) (suite, error) {
	where := src.Where
	if where == "" {
		where = src.URI + " " + src.Suite
	}
	u, err := url.Parse(src.URI)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return suite{}, fmt.Errorf("%s: URI %q: want http:// or https:// with a host", where, src.URI)
	}
	if src.Suite == "" || strings.HasSuffix(src.Suite, "/") {
		return suite{}, fmt.Errorf("%s: suite %q: flat repositories are not supported", where, src.Suite)
	}
	if len(src.Components) == 0 || len(src.Archs) == 0 {
		return suite{}, fmt.Errorf("%s: no components or no architectures", where)
	}
	for _, p := range append(append([]string{src.Suite}, src.Components...), src.Archs...) {
		if !isSafeRelPath(p) {
			return suite{}, fmt.Errorf("%s: bad path element %q", where, p)
		}
	}
	base := strings.TrimRight(src.URI, "/") + "/dists/" + src.Suite
	return suite{src: src, base: base, site: u.Hostname()}, nil
}

// isSafeRelPath reports whether p is a clean relative slash path.
func isSafeRelPath(p string) bool {
	return p != "" && path.Clean(p) == p && !strings.HasPrefix(p, "/") && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.ContainsAny(p, " \t\r\n\\?#")
}

func (s suite) describe() string {
	if s.src.Where != "" {
		return s.src.Where
	}
	return s.src.URI + " " + s.src.Suite
}

// fetchOnline fetches the Release then each index, and stores the Release
// in the cache only when every index succeeded.
func (f *Fetcher) fetchOnline(ctx context.Context, s suite, kr *Keyring) ([]Index, error) {
	if f.CacheDir == "" {
		return nil, errors.New("repo: Fetcher.CacheDir is not set")
	}
	rel, verified, pending, err := f.fetchRelease(ctx, s, kr)
	if err != nil {
		return nil, err
	}
	targets, err := indexTargets(s, rel, f.log())
	if err != nil {
		return nil, err
	}
	var out []Index
	for _, t := range targets {
		ix, err := f.fetchIndex(ctx, s, rel, t)
		if err != nil {
			return nil, err
		}
		ix.Verified = verified
		out = append(out, ix)
	}
	for _, p := range pending {
		if err := p.commit(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fetchRelease gets and verifies InRelease, or Release and Release.gpg
// when the mirror has no InRelease. It returns the files to cache.
func (f *Fetcher) fetchRelease(ctx context.Context, s suite, kr *Keyring) (*Release, bool, []pendingFile, error) {
	inURL := s.base + "/InRelease"
	inPath := f.cachePath(inURL)
	data, meta, cached, err := f.getMeta(ctx, inURL, inPath)
	if err == nil {
		name := inURL
		if cached {
			name = inPath
		}
		rel, verified, err := f.checkRelease(name, data, nil, false, kr, s.src)
		if err != nil || cached {
			return rel, verified, nil, err
		}
		pending := []pendingFile{{path: inPath, data: data, meta: meta},
			{path: f.cachePath(s.base + "/Release"), remove: true},
			{path: f.cachePath(s.base + "/Release.gpg"), remove: true}}
		return rel, verified, pending, nil
	}
	if !isNotFound(err) {
		return nil, false, nil, err
	}
	f.log().Debug("no InRelease, trying Release and Release.gpg", "url", inURL)
	return f.fetchDetached(ctx, s, kr)
}

// fetchDetached gets Release and Release.gpg.
func (f *Fetcher) fetchDetached(ctx context.Context, s suite, kr *Keyring) (*Release, bool, []pendingFile, error) {
	relURL, sigURL := s.base+"/Release", s.base+"/Release.gpg"
	relPath, sigPath := f.cachePath(relURL), f.cachePath(sigURL)
	data, meta, _, err := f.getMeta(ctx, relURL, relPath)
	if err != nil {
		return nil, false, nil, err
	}
	pending := []pendingFile{{path: relPath, data: data, meta: meta},
		{path: f.cachePath(s.base + "/InRelease"), remove: true}}
	sig, sigMeta, _, err := f.getMeta(ctx, sigURL, sigPath)
	switch {
	case err == nil:
		pending = append(pending, pendingFile{path: sigPath, data: sig, meta: sigMeta})
	case isNotFound(err):
		sig = nil
	default:
		return nil, false, nil, err
	}
	rel, verified, err := f.checkRelease(relURL, data, sig, true, kr, s.src)
	if err != nil {
		return nil, false, nil, err
	}
	return rel, verified, pending, nil
}

// checkRelease verifies an InRelease, or when detached a Release with its
// signature (nil when there is none). For trusted=yes sources a signature
// failure is logged and the Release used unverified.
func (f *Fetcher) checkRelease(name string, data, sig []byte, detached bool, kr *Keyring, src Source) (*Release, bool, error) {
	opts := CheckOptions{Now: f.now(), CheckValidUntil: f.CheckValidUntil, CheckDate: f.CheckDate}
	if f.CacheDir != "" {
		opts.Memo = &SignatureMemo{Dir: filepath.Join(f.CacheDir, "signatures")}
	}
	var rel *Release
	var err error
	switch {
	case !detached:
		rel, err = VerifyInRelease(name, data, kr, opts)
	case sig == nil:
		err = fmt.Errorf("%s: no Release.gpg: %w", name, ErrUnsigned)
	default:
		rel, err = VerifyRelease(name, data, sig, kr, opts)
	}
	if err == nil {
		return rel, true, nil
	}
	if !src.Trusted || !isSignatureError(err) {
		return nil, false, err
	}
	f.log().Warn("using unverified Release of a trusted=yes source", "file", name, "err", err)
	rel, err = parseUnverified(name, data, opts)
	return rel, false, err
}

func isSignatureError(err error) bool {
	return errors.Is(err, ErrUnsigned) || errors.Is(err, ErrBadSignature) || errors.Is(err, ErrUntrusted)
}

// indexTargets lists the (component, arch) indexes of s that rel declares.
// A declared index with no Packages entry in the Release is an error, as
// in apt ("Unable to find expected entry").
func indexTargets(s suite, rel *Release, log *slog.Logger) ([]target, error) {
	var out []target
	for _, c := range s.src.Components {
		if !rel.HasComponent(c) {
			log.Debug("skipping component not in Release", "source", s.describe(), "component", c)
			continue
		}
		for _, a := range s.src.Archs {
			if !rel.HasArch(a) {
				log.Debug("skipping architecture not in Release", "source", s.describe(), "component", c, "arch", a)
				continue
			}
			t := target{component: c, arch: a, base: c + "/binary-" + a + "/Packages"}
			t.content = rel.Files[t.base]
			if _, _, ok := t.pick(rel); !ok {
				return nil, fmt.Errorf("%s: the signed Release lists no %s", s.describe(), t.base)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// pick chooses the listed form of t to download: xz, gz, lz4, plain.
func (t target) pick(rel *Release) (ext, compress string, ok bool) {
	for _, c := range compressions() {
		if _, listed := rel.Files[t.base+c.ext]; listed {
			return c.ext, c.name, true
		}
	}
	return "", "", false
}

// fetchIndex makes sure the cache holds the listed form of t with the
// signed hash, downloading it if not, and returns its Index.
func (f *Fetcher) fetchIndex(ctx context.Context, s suite, rel *Release, t target) (Index, error) {
	ext, compress, _ := t.pick(rel)
	name := t.base + ext
	want := rel.Files[name]
	local := f.cachePath(s.base + "/" + name)
	if f.haveContent(t.content.SHA256) {
		return s.index(rel, t, local, compress, want), nil
	}
	ok, err := fileMatches(local, want)
	if err != nil {
		return Index{}, err
	}
	if ok {
		f.progress("Hit " + s.base + "/" + name + " (cached)")
	} else if err := f.downloadListed(ctx, s, rel, name, want, local); err != nil {
		return Index{}, err
	}
	return s.index(rel, t, local, compress, want), nil
}

// downloadListed downloads a Release entry, by hash when the Release says
// Acquire-By-Hash (falling back to the plain name, as apt does).
func (f *Fetcher) downloadListed(ctx context.Context, s suite, rel *Release, name string, want FileHash, local string) error {
	if rel.AcquireByHash {
		byHash := s.base + "/" + path.Dir(name) + "/by-hash/SHA256/" + want.SHA256
		err := f.download(ctx, byHash, local, name, want)
		if err == nil || !isNotFound(err) {
			return err
		}
		f.log().Debug("by-hash file missing, trying the plain name", "url", byHash)
	}
	err := f.download(ctx, s.base+"/"+name, local, name, want)
	if isNotFound(err) {
		return fmt.Errorf("%s is listed in the signed Release but missing on the mirror: %w", name, err)
	}
	return err
}

// index builds the Index of t stored at local.
func (s suite) index(rel *Release, t target, local, compress string, file FileHash) Index {
	return Index{
		Source: s.src, Release: rel, Component: t.component, Arch: t.arch, Site: s.site,
		SHA256: t.content.SHA256, Size: t.content.Size,
		Path: local, Compress: compress, FileSHA256: file.SHA256, FileSize: file.Size,
	}
}

// cachePath is where the cache keeps the file downloaded from rawURL.
func (f *Fetcher) cachePath(rawURL string) string {
	return filepath.Join(f.CacheDir, "lists", URIToFileName(rawURL))
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.New(slog.DiscardHandler)
}

// haveContent reports whether the caller holds verified content of this
// SHA256 already (see Fetcher.HaveContent).
func (f *Fetcher) haveContent(sha256 string) bool {
	return f.HaveContent != nil && sha256 != "" && f.HaveContent(sha256)
}

func (f *Fetcher) progress(msg string) {
	if f.Progress != nil {
		f.Progress(msg)
	}
}
