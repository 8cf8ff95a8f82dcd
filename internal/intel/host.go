package intel

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/policy"
)

// Item is one update on one host: its finding, its risk there and the
// host's baseline's decision.
type Item struct {
	Update   Update           `json:"update"`
	Finding  *Finding         `json:"finding"`
	Risk     assess.Risk      `json:"risk"`
	Decision *policy.Decision `json:"decision,omitempty"` // nil without a policy set
}

// Assess assesses the updates of one host: the findings (memoised across
// hosts), their risk for a host with these labels (assess.HostFromLabels:
// criticality, exposure), and, when set is not nil, each decision at now.
// Items are ranked by risk, highest first (assess.Sort's order). The error
// is for labels that do not parse; it names the host.
func (a *Assessor) Assess(rel Release, host string, labels map[string]string, updates []Update, set *policy.Set, now time.Time) ([]Item, error) {
	findings := make([]*Finding, len(updates))
	for i, u := range updates {
		findings[i] = a.Finding(rel, u)
	}
	return Rank(host, labels, updates, findings, set, now)
}

// Rank ranks a host's findings, computed by an Assessor or elsewhere
// (findings[i] belongs to updates[i]), as Assess does.
func Rank(host string, labels map[string]string, updates []Update, findings []*Finding, set *policy.Set, now time.Time) ([]Item, error) {
	if len(updates) != len(findings) {
		return nil, fmt.Errorf("intel: rank %s: %d updates but %d findings", host, len(updates), len(findings))
	}
	h, err := assess.HostFromLabels(host, labels)
	if err != nil {
		return nil, err
	}
	plain := make([]assess.Finding, len(updates))
	for i := range findings {
		plain[i] = findings[i].Finding
	}
	ranked := assess.Rank(plain, &h, now)
	at := make(map[*assess.Finding]int, len(plain))
	for i := range plain {
		at[&plain[i]] = i
	}
	items := make([]Item, len(ranked))
	for j, r := range ranked {
		i := at[r.Finding]
		items[j] = Item{Update: updates[i], Finding: findings[i], Risk: r.Risk}
		if set != nil {
			d := set.Decide(&findings[i].Finding, labels, now)
			items[j].Decision = &d
		}
	}
	return items, nil
}

// ReadPolicies reads a patch baseline set from a YAML file or a directory
// of them (*.yaml and *.yml, tried in file-name order).
func ReadPolicies(path string) (*policy.Set, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	paths := []string{path}
	if fi.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		paths = nil
		for _, e := range ents {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
				paths = append(paths, filepath.Join(path, e.Name()))
			}
		}
		slices.Sort(paths)
		if len(paths) == 0 {
			return nil, fmt.Errorf("policy: no *.yaml files in %s", path)
		}
	}
	files := make([]policy.File, len(paths))
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		files[i] = policy.File{Name: p, Data: data}
	}
	return policy.ParseSet(files)
}
