package scan

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/detect"
)

// aptEntry is one line of `apt list --upgradable`, the oracle for scan.
type aptEntry struct {
	Name, Arch, Installed, Candidate string
	Security                         bool
}

func (e aptEntry) String() string {
	sec := ""
	if e.Security {
		sec = " security"
	}
	return fmt.Sprintf("%s:%s %s -> %s%s", e.Name, e.Arch, e.Installed, e.Candidate, sec)
}

// parseAptList parses `apt list --upgradable` output, e.g.
// "apt/oldstable-security 2.6.2 amd64 [upgradable from: 2.6.1]".
// Native-arch packages are printed without ":arch" in the name.
func parseAptList(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "Listing..." || strings.HasPrefix(line, "WARNING:") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 6 || f[3] != "[upgradable" || f[4] != "from:" {
			t.Fatalf("unexpected apt list line %q", line)
		}
		nameSuites := strings.SplitN(f[0], "/", 2)
		name, _, _ := strings.Cut(nameSuites[0], ":")
		e := aptEntry{Name: name, Arch: f[2], Candidate: f[1], Installed: strings.TrimSuffix(f[5], "]")}
		for _, s := range strings.Split(nameSuites[1], ",") {
			e.Security = e.Security || strings.HasSuffix(s, "-security")
		}
		got = append(got, e.String())
	}
	sort.Strings(got)
	return got
}

func scanEntries(updates []detect.Update) []string {
	var got []string
	for _, u := range updates {
		got = append(got, aptEntry{u.Package, u.Arch, u.Installed, u.Candidate, u.Security}.String())
	}
	sort.Strings(got)
	return got
}

// diffLists reports entries only in want or only in got.
func diffLists(want, got []string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, s := range want {
		w[s] = true
	}
	for _, s := range got {
		g[s] = true
	}
	var b strings.Builder
	for _, s := range want {
		if !g[s] {
			fmt.Fprintf(&b, "  only apt:       %s\n", s)
		}
	}
	for _, s := range got {
		if !w[s] {
			fmt.Fprintf(&b, "  only patchloop: %s\n", s)
		}
	}
	return b.String()
}
