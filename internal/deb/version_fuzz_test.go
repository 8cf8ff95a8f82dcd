package deb

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// streamingOracle is one long-lived libdpkg oracle process answering one
// pair at a time, for the fuzzer.
type streamingOracle struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

// fuzzOracle starts the oracle once per process (each fuzz worker is a
// process). The child exits on EOF when the test process ends.
var fuzzOracle = sync.OnceValues(func() (*streamingOracle, error) {
	bin, err := dpkgOracle()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-i")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return &streamingOracle{in: in, out: bufio.NewReader(out)}, nil
})

func (o *streamingOracle) compare(a, b string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := io.WriteString(o.in, a+"\x00"+b+"\x00"); err != nil {
		return "", fmt.Errorf("dpkg oracle: %w", err)
	}
	line, err := o.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("dpkg oracle: %w", err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

func FuzzCompareVersions(f *testing.F) {
	c := loadCorpus(f)
	for i := 0; i+1 < len(c.versions); i += 3 {
		f.Add(c.versions[i], c.versions[i+1])
	}
	for _, s := range append(odd, suffixes...) {
		f.Add("1.0"+s, "1.0")
		f.Add(s+"1.0", "1:1.0")
	}
	oracle, oracleErr := fuzzOracle()
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, errAB := CompareVersions(a, b)
		ba, errBA := CompareVersions(b, a)
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("(%q, %q) error %v but (%q, %q) error %v", a, b, errAB, b, a, errBA)
		}
		if errAB == nil {
			if ab != -ba {
				t.Fatalf("not antisymmetric: (%q, %q) = %d, reversed %d", a, b, ab, ba)
			}
			if v := CompareValid(a, b); v != ab {
				t.Fatalf("CompareValid(%q, %q) = %d, CompareVersions %d", a, b, v, ab)
			}
		}
		for _, v := range []string{a, b} {
			if c, err := CompareVersions(v, v); err == nil && c != 0 {
				t.Fatalf("CompareVersions(%q, itself) = %d", v, c)
			}
		}
		// dpkg reads C strings: a NUL cannot reach it.
		if oracleErr != nil || strings.ContainsRune(a+b, 0) {
			return
		}
		want, err := oracle.compare(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := verdict(a, b); got != want {
			t.Fatalf("CompareVersions(%q, %q) = %s, libdpkg says %s", a, b, got, want)
		}
	})
}
