package rpmassess

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/rpm"
)

// The fleet benchmark assesses simulated AlmaLinux 9 hosts against every
// AlmaLinux 9 erratum of the feed.
//
// A host's inventory has fleetSlots packages: the 14 of package rpm's
// alma9 rpmdb fixture (read from the database) and, to reach the size of
// a small real installation, further AlmaLinux 9 packages of the feed
// (every k-th name, sorted, with at least two fixed versions), each at the
// lowest version the feed names as fixed. A slot's variants are the next
// fleetVariants versions the feed names as fixed for that package (real
// builds). On each host a deterministic one in fleetMoveEvery slots is
// moved to one of its variants, so with enough hosts every variant occurs
// and the number of distinct package versions stops growing: it is
// computed and reported, and the cold Assessor must evaluate exactly that
// many.
const (
	fleetSlots     = 400
	fleetVariants  = 4
	fleetMoveEvery = 8
)

type fleet struct {
	slots    [][]rpm.Package // per slot: the base version, then its variants
	hosts    [][]uint8       // per host, per slot: the variant installed
	distinct int             // distinct (name, arch, EVR, source rpm) in the fleet
}

// fleetSlotsFor returns the slots of the simulated inventory.
func fleetSlotsFor(tb testing.TB, s *advisory.OSVSet) [][]rpm.Package {
	tb.Helper()
	base, err := rpm.ReadInstalled("../rpm/testdata/alma9")
	if err != nil {
		tb.Fatal(err)
	}
	fixed := map[string][]rpm.Package{} // name -> fixed versions, ascending
	for _, p := range feedVersions(tb, s, 1) {
		fixed[p.Name] = append(fixed[p.Name], p)
	}
	above := func(p rpm.Package) []rpm.Package {
		var out []rpm.Package
		for _, q := range fixed[p.Name] {
			if len(out) == fleetVariants {
				break
			}
			if q.EVR().Compare(p.EVR()) > 0 {
				q.Arch, q.SourceRPM = p.Arch, srpmAt(p.SourceRPM, q)
				out = append(out, q)
			}
		}
		return out
	}
	var slots [][]rpm.Package
	inBase := map[string]bool{}
	for _, p := range base {
		inBase[p.Name] = true
		slots = append(slots, append([]rpm.Package{p}, above(p)...))
	}
	var names []string
	for name, vs := range fixed {
		if !inBase[name] && len(vs) > 1 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	need := fleetSlots - len(slots)
	if len(names) < need {
		tb.Fatalf("feed has %d packages with two fixed versions, need %d", len(names), need)
	}
	for i := range need {
		p := fixed[names[i*len(names)/need]][0]
		slots = append(slots, append([]rpm.Package{p}, above(p)...))
	}
	return slots
}

// srpmAt renames a source rpm file to the version of p, or "" if unknown.
func srpmAt(srpm string, p rpm.Package) string {
	s, ok := strings.CutSuffix(srpm, ".src.rpm")
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(s, '-')
	j := strings.LastIndexByte(s[:max(i, 0)], '-')
	if j <= 0 {
		return ""
	}
	return s[:j] + "-" + p.Version + "-" + p.Release + ".src.rpm"
}

// mix is splitmix64: a deterministic per-(host, slot) choice.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func makeFleet(tb testing.TB, s *advisory.OSVSet, n int) *fleet {
	tb.Helper()
	f := &fleet{slots: fleetSlotsFor(tb, s), hosts: make([][]uint8, n)}
	used := make([][]bool, len(f.slots))
	for i, vs := range f.slots {
		used[i] = make([]bool, len(vs))
	}
	for h := range f.hosts {
		row := make([]uint8, len(f.slots))
		for i, vs := range f.slots {
			r := mix(uint64(h)<<20 | uint64(i))
			if len(vs) > 1 && r%fleetMoveEvery == 0 {
				row[i] = uint8(1 + (r>>8)%uint64(len(vs)-1))
			}
			used[i][row[i]] = true
		}
		f.hosts[h] = row
	}
	keys := map[key]bool{}
	for i, vs := range f.slots {
		for v, p := range vs {
			if used[i][v] {
				keys[key{alma9, p.Name, p.Arch, p.Version, p.Release, p.SourceRPM, p.Epoch}] = true
			}
		}
	}
	f.distinct = len(keys)
	return f
}

// run assesses every host of the fleet on GOMAXPROCS workers; a nil
// Assessor means a new one per host (no memo across hosts). It returns
// the number of findings.
func (f *fleet) run(a *Assessor, s *advisory.OSVSet) (int64, error) {
	var next, findings atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	const batch = 64
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]rpm.Package, len(f.slots))
			var found []*assess.Finding
			var n int64
			for {
				start := int(next.Add(batch)) - batch
				if start >= len(f.hosts) {
					break
				}
				for _, row := range f.hosts[start:min(start+batch, len(f.hosts))] {
					for i, v := range row {
						buf[i] = f.slots[i][v]
					}
					ha := a
					if ha == nil {
						ha = New(s)
					}
					var err error
					if found, err = ha.AppendShared(found[:0], alma9, buf); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					n += int64(len(found))
				}
			}
			findings.Add(n)
		})
	}
	wg.Wait()
	return findings.Load(), firstErr
}

// TestFleetMemo checks on a small fleet that a shared Assessor evaluates
// each distinct version once and finds what per-host Assessors find.
func TestFleetMemo(t *testing.T) {
	s := feedOrSkip(t)
	f := makeFleet(t, s, 30)
	a := New(s)
	shared, err := f.run(a, s)
	if err != nil {
		t.Fatal(err)
	}
	perHost, err := f.run(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	if shared != perHost || shared == 0 {
		t.Errorf("findings: %d with one Assessor, %d with one per host", shared, perHost)
	}
	if a.Evaluated() != f.distinct {
		t.Errorf("evaluated %d versions, the fleet has %d distinct", a.Evaluated(), f.distinct)
	}
	t.Logf("30 hosts × %d packages: %d distinct versions, %d findings", len(f.slots), f.distinct, shared)
}

// BenchmarkFleet assesses fleets of 10,000, 20,000 and 100,000 hosts with
// a cold Assessor (every distinct version evaluated once, inside the
// timer) and a warm one (the memo already full: the per-host cost alone);
// hosts=200/no-memo gives each host its own Assessor, for comparison.
// The feed is loaded and each fleet generated outside the timer.
func BenchmarkFleet(b *testing.B) {
	s := feedOrSkip(b)
	for _, n := range []int{10000, 20000, 100000} {
		b.Run(fmt.Sprintf("hosts=%d/cold", n), func(b *testing.B) { benchFleet(b, s, n, "cold") })
		b.Run(fmt.Sprintf("hosts=%d/warm", n), func(b *testing.B) { benchFleet(b, s, n, "warm") })
	}
	b.Run("hosts=200/no-memo", func(b *testing.B) { benchFleet(b, s, 200, "no-memo") })
}

func benchFleet(b *testing.B, s *advisory.OSVSet, n int, mode string) {
	f := makeFleet(b, s, n)
	var a *Assessor
	if mode == "warm" {
		a = New(s)
		if _, err := f.run(a, s); err != nil {
			b.Fatal(err)
		}
	}
	var findings int64
	var evaluated int
	for b.Loop() {
		if mode == "cold" {
			a = New(s)
		}
		var err error
		if findings, err = f.run(a, s); err != nil {
			b.Fatal(err)
		}
		if a != nil {
			evaluated = a.Evaluated()
		}
	}
	if mode != "no-memo" && evaluated != f.distinct {
		b.Fatalf("evaluated %d versions, the fleet has %d distinct", evaluated, f.distinct)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/host")
	b.ReportMetric(float64(len(f.slots)), "pkgs/host")
	b.ReportMetric(float64(f.distinct), "distinct")
	b.ReportMetric(float64(findings), "findings")
}
