package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// fetchOffline provides the indexes of s from local files: the cache when
// it holds a Release for s, otherwise apt's lists directory. The Release
// signature and every index hash are checked as online.
func (f *Fetcher) fetchOffline(ctx context.Context, s suite, kr *Keyring) ([]Index, error) {
	var tried []string
	for _, dir := range f.localDirs() {
		rel, verified, err := f.localRelease(dir, s, kr)
		if errors.Is(err, fs.ErrNotExist) {
			tried = append(tried, dir)
			continue
		}
		if err != nil {
			return nil, err
		}
		f.log().Debug("using local metadata", "source", s.describe(), "dir", dir)
		return f.localIndexes(ctx, dir, s, rel, verified)
	}
	return nil, fmt.Errorf("%s: offline: no InRelease or Release for %s in %s",
		s.describe(), s.base, strings.Join(tried, " or "))
}

// localDirs lists where offline metadata is looked for, in order.
func (f *Fetcher) localDirs() []string {
	var dirs []string
	if f.CacheDir != "" {
		dirs = append(dirs, filepath.Join(f.CacheDir, "lists"))
	}
	lists := f.ListsDir
	if lists == "" {
		root := f.Root
		if root == "" {
			root = "/"
		}
		lists = filepath.Join(root, "var/lib/apt/lists")
	}
	return append(dirs, lists)
}

// localRelease reads and verifies the InRelease, or Release and
// Release.gpg, of s in dir. It returns an error wrapping fs.ErrNotExist
// when dir has neither.
func (f *Fetcher) localRelease(dir string, s suite, kr *Keyring) (*Release, bool, error) {
	in := filepath.Join(dir, URIToFileName(s.base+"/InRelease"))
	data, err := os.ReadFile(in)
	if err == nil {
		return f.checkRelease(in, data, nil, false, kr, s.src)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	relPath := filepath.Join(dir, URIToFileName(s.base+"/Release"))
	data, err = os.ReadFile(relPath)
	if err != nil {
		return nil, false, err
	}
	sig, err := os.ReadFile(relPath + ".gpg")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	return f.checkRelease(relPath, data, sig, true, kr, s.src)
}

// localIndexes finds and verifies each target's file in dir.
func (f *Fetcher) localIndexes(ctx context.Context, dir string, s suite, rel *Release, verified bool) ([]Index, error) {
	targets, err := indexTargets(s, rel, f.log())
	if err != nil {
		return nil, err
	}
	var out []Index
	for _, t := range targets {
		ix, err := f.localIndex(ctx, dir, s, rel, t)
		if err != nil {
			return nil, err
		}
		ix.Verified, ix.From = verified, dir
		out = append(out, ix)
	}
	return out, nil
}

// localIndex returns the first local copy of t that verifies. apt keeps
// lists files uncompressed or recompressed (.lz4, .gz, ...) under names
// the Release does not list; those are checked by decompressing them
// against the Release entry of the uncompressed Packages.
//
// When the caller already holds the content the signed Release names
// (Fetcher.HaveContent), no local copy is needed, as online: the cache
// keeps only that content's compact index when it had parsed the content
// before fetching the Release that names it. Path is then a local copy
// if there is one, else where the cache would keep the listed file.
func (f *Fetcher) localIndex(ctx context.Context, dir string, s suite, rel *Release, t target) (Index, error) {
	stem := filepath.Join(dir, URIToFileName(s.base+"/"+t.base))
	have := f.haveContent(t.content.SHA256)
	var problems []error
	for _, c := range compressions() {
		if err := ctx.Err(); err != nil {
			return Index{}, err
		}
		p := stem + c.ext
		if _, err := os.Stat(p); err != nil {
			continue
		}
		ix := s.index(rel, t, p, c.name, rel.Files[t.base+c.ext])
		if have {
			return ix, nil
		}
		if err := verifyLocal(&ix); err != nil {
			f.log().Debug("local index does not verify", "file", p, "err", err)
			problems = append(problems, err)
			continue
		}
		return ix, nil
	}
	if have {
		ext, compress, _ := t.pick(rel)
		f.log().Debug("no local copy, content held already", "source", s.describe(), "index", t.base, "sha256", t.content.SHA256)
		return s.index(rel, t, stem+ext, compress, rel.Files[t.base+ext]), nil
	}
	if len(problems) == 0 {
		return Index{}, fmt.Errorf("%s: offline: no local copy of %s (looked for %s{,.xz,.gz,.lz4}) and no index of its content (SHA256 %s) held already",
			s.describe(), t.base, stem, orNone(t.content.SHA256))
	}
	return Index{}, errors.Join(problems...)
}

func orNone(s string) string {
	if s == "" {
		return "not listed"
	}
	return s
}

// verifyLocal checks a local index: by the file hash when the Release
// lists the file as stored, otherwise by reading all of its content.
func verifyLocal(ix *Index) error {
	if ix.FileSHA256 != "" {
		ok, err := fileMatches(ix.Path, FileHash{SHA256: ix.FileSHA256, Size: ix.FileSize})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: does not match the SHA256 and size the signed Release lists", ix.Path)
		}
		return nil
	}
	if ix.SHA256 == "" {
		return fmt.Errorf("%s: the signed Release lists no hash for its content", ix.Path)
	}
	return ix.Verify()
}
