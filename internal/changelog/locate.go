package changelog

import (
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/patchloop/patchloop/internal/deb"
	"github.com/patchloop/patchloop/internal/repo"
)

// Key names one source package version, what a changelog belongs to.
type Key struct{ Source, Version string }

func (k Key) String() string { return k.Source + " " + k.Version }

var locateFields = map[string]bool{
	"Package": true, "Version": true, "Architecture": true, "Source": true,
	"Filename": true, "Size": true, "SHA256": true,
}

// Locate returns, for every key, the .debs built from that source version
// that the verified indexes list (all binaries, all architectures),
// smallest first: any of them carries the source's changelog, so the
// smallest is the cheapest to read.
//
// Each index is read to its end through repo.Index.Open, so its content
// hash has matched the signed Release before any entry of it is used.
// Indexes not verified by signature (trusted=yes sources) are skipped. An
// index that cannot be read is skipped and its error returned in errs.
func Locate(indexes []repo.Index, keys map[Key]bool) (found map[Key][]Artifact, errs []error) {
	found = map[Key][]Artifact{}
	seen := map[string]bool{}
	for i := range indexes {
		ix := &indexes[i]
		if !ix.Verified {
			continue
		}
		arts, err := locateIn(ix, keys)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range arts {
			if seen[a.URL+" "+a.SHA256] {
				continue
			}
			seen[a.URL+" "+a.SHA256] = true
			k := Key{a.Source, a.SourceVersion}
			found[k] = append(found[k], a)
		}
	}
	for _, arts := range found {
		sort.SliceStable(arts, func(i, j int) bool { return arts[i].Size < arts[j].Size })
	}
	return found, errs
}

// locateIn reads one index and returns its entries for keys, only once
// the whole content was read and its hash checked.
func locateIn(ix *repo.Index, keys map[Key]bool) ([]Artifact, error) {
	desc := describeIndex(ix)
	rc, err := ix.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	defer rc.Close()
	cr := deb.NewControlReader(rc, ix.Path)
	cr.Keep = func(f []byte) bool { return locateFields[string(f)] }
	var out []Artifact
	for {
		p, err := cr.Next()
		if err == io.EOF {
			return out, nil // Open's reader returns EOF only after the hash matched
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", desc, err)
		}
		name, version := p.Get("Package"), p.Get("Version")
		src, srcVer, err := deb.ParseSourceField(p.Get("Source"), name, version)
		if err != nil || !keys[Key{src, srcVer}] {
			continue
		}
		a, err := artifactOf(p, ix)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: package %s: %w", desc, p.Line, name, err)
		}
		a.Source, a.SourceVersion, a.Index = src, srcVer, desc
		out = append(out, a)
	}
}

// artifactOf builds the download from a stanza's Filename, Size, SHA256.
func artifactOf(p *deb.Paragraph, ix *repo.Index) (Artifact, error) {
	a := Artifact{Package: p.Get("Package"), Arch: p.Get("Architecture"), Version: p.Get("Version")}
	file := p.Get("Filename")
	if file == "" || strings.HasPrefix(file, "/") || path.Clean(file) != file || strings.HasPrefix(file, "../") ||
		strings.ContainsAny(file, "?#\\\x00") {
		return a, fmt.Errorf("unusable Filename %q", file)
	}
	size, err := strconv.ParseInt(p.Get("Size"), 10, 64)
	if err != nil || size <= 0 {
		return a, fmt.Errorf("bad Size %q", p.Get("Size"))
	}
	sum := strings.ToLower(p.Get("SHA256"))
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
		return a, fmt.Errorf("bad or missing SHA256 %q", p.Get("SHA256"))
	}
	a.URL = strings.TrimRight(ix.Source.URI, "/") + "/" + file
	a.Size, a.SHA256 = size, sum
	return a, nil
}

func describeIndex(ix *repo.Index) string {
	return fmt.Sprintf("%s %s %s/binary-%s", ix.Source.URI, ix.Source.Suite, ix.Component, ix.Arch)
}
