package loadgen

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/deb"
)

// Image is the package set of one real dpkg status file: what the hosts
// built from one image have installed.
type Image struct {
	Path     string
	Packages []api.Package
	// removable are the indexes of packages no other package needs
	// (named in no Depends or Pre-Depends, not Essential, priority
	// optional or extra): removing one leaves a consistent system.
	removable []int
}

// ReadImage reads a dpkg status file.
func ReadImage(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pkgs, err := deb.ParseStatus(bytes.NewReader(data), path)
	if err != nil {
		return nil, err
	}
	img := &Image{Path: path}
	for _, p := range pkgs {
		img.Packages = append(img.Packages, api.Package{Name: p.Name, Arch: p.Arch, Version: p.Version,
			Source: omitSame(p.Source, p.Name), SourceVersion: omitSame(p.SourceVersion, p.Version),
			MultiArch: p.MultiArch, Status: p.Want + " " + p.Flag + " " + p.State})
	}
	leaves, err := leafPackages(data, path)
	if err != nil {
		return nil, err
	}
	for i, p := range img.Packages {
		if leaves[p.Name] && p.Status == "install ok installed" {
			img.removable = append(img.removable, i)
		}
	}
	return img, nil
}

// leafPackages returns the names of the packages of a status file that
// nothing depends on, directly or through a virtual package they provide.
func leafPackages(data []byte, name string) (map[string]bool, error) {
	keep := map[string]bool{"Package": true, "Depends": true, "Pre-Depends": true, "Provides": true, "Priority": true, "Essential": true}
	cr := deb.NewControlReader(bytes.NewReader(data), name)
	cr.Keep = func(f []byte) bool { return keep[string(f)] }
	needed := map[string]bool{}
	candidates := map[string][]string{} // leaf candidate → names it provides
	for {
		p, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, f := range []string{"Depends", "Pre-Depends"} {
			for _, alt := range strings.FieldsFunc(p.Get(f), func(r rune) bool { return r == ',' || r == '|' }) {
				dep, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
				dep, _, _ = strings.Cut(dep, ":") // name:any
				needed[dep] = true
			}
		}
		prio := p.Get("Priority")
		if p.Get("Essential") != "yes" && (prio == "optional" || prio == "extra") {
			var provides []string
			for _, v := range strings.Split(p.Get("Provides"), ",") {
				if v, _, _ = strings.Cut(strings.TrimSpace(v), " "); v != "" {
					provides = append(provides, v)
				}
			}
			candidates[p.Get("Package")] = provides
		}
	}
	leaves := map[string]bool{}
	for pkg, provides := range candidates {
		ok := !needed[pkg]
		for _, v := range provides {
			ok = ok && !needed[v]
		}
		leaves[pkg] = ok
	}
	return leaves, nil
}

func omitSame(v, same string) string {
	if v == same {
		return ""
	}
	return v
}

// VersionPool holds, per binary package name, the real versions known
// for it (from status files and package indexes), sorted.
type VersionPool map[string][]string

// Add records version v of package name.
func (vp VersionPool) Add(name, v string) {
	list := vp[name]
	i := sort.SearchStrings(list, v)
	if i < len(list) && list[i] == v {
		return
	}
	vp[name] = append(list[:i], append([]string{v}, list[i:]...)...)
}

// ReadVersions adds the "name version" lines of path (the format of
// internal/deb/testdata/versions.txt) to the pool.
func (vp VersionPool) ReadVersions(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		w := strings.Fields(sc.Text())
		if len(w) == 0 || strings.HasPrefix(w[0], "#") {
			continue
		}
		if len(w) != 2 || deb.ValidVersion(w[1]) != nil {
			return fmt.Errorf("%s:%d: want \"package version\"", path, n)
		}
		vp.Add(w[0], w[1])
	}
	return sc.Err()
}

// Inventory is one distinct inventory and the hash agents report for it.
type Inventory struct {
	Inv  *api.Inventory
	Hash string
}

// Inventories builds variants inventories from each image: variant 0 is
// the image as it is, every other variant has, chosen deterministically
// from seed, one to six packages at another real version from pool
// (older or newer: hosts patched at other times) and up to three leaf
// packages removed. base gives the architecture, sources and pins of
// every inventory. Identical results are merged, so the count returned
// may be below len(images)·variants.
func Inventories(base *api.Inventory, images []*Image, pool VersionPool, variants int, seed uint64) []*Inventory {
	if variants < 1 {
		variants = 1
	}
	var out []*Inventory
	seen := map[string]bool{}
	for m, img := range images {
		// packages with another known version, not binNMUs (whose
		// source version would have to change with them)
		var changeable []int
		for i, p := range img.Packages {
			if p.SourceVersion == "" && len(pool[p.Name]) > 1 && p.Status == "install ok installed" {
				changeable = append(changeable, i)
			}
		}
		for v := 0; v < variants; v++ {
			pkgs := append([]api.Package(nil), img.Packages...)
			if v > 0 {
				rng := rand.New(rand.NewPCG(seed, uint64(m)<<32|uint64(v)))
				mutate(rng, pkgs, changeable, img.removable, pool)
			}
			inv := *base
			inv.Packages = nil
			for _, p := range pkgs {
				if p.Name != "" {
					inv.Packages = append(inv.Packages, p)
				}
			}
			h := inv.Hash()
			if !seen[h] {
				seen[h] = true
				out = append(out, &Inventory{Inv: &inv, Hash: h})
			}
		}
	}
	return out
}

// mutate changes a few versions and blanks (removes) a few leaves.
func mutate(rng *rand.Rand, pkgs []api.Package, changeable, removable []int, pool VersionPool) {
	if len(changeable) > 0 {
		for _, k := range rng.Perm(len(changeable))[:min(1+rng.IntN(6), len(changeable))] {
			p := &pkgs[changeable[k]]
			var others []string
			for _, v := range pool[p.Name] {
				if v != p.Version {
					others = append(others, v)
				}
			}
			if len(others) > 0 {
				p.Version = others[rng.IntN(len(others))]
			}
		}
	}
	if len(removable) > 0 {
		for _, k := range rng.Perm(len(removable))[:min(rng.IntN(4), len(removable))] {
			pkgs[removable[k]].Name = ""
		}
	}
}

// identity is the identity of simulated host i: a machine-id (32 hex
// digits) and a hostname derived from seed and i, so that every run with
// the same seed simulates the same machines.
func identity(seed uint64, i int) (machineID, hostname string) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:16]), fmt.Sprintf("lg-%x-%06d", seed&0xffff, i)
}

// pick maps host i onto one of n inventories, spread evenly but not in
// order of i.
func pick(seed uint64, i, n int) int {
	x := seed ^ uint64(i)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return int(x % uint64(n))
}
