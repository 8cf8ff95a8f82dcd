package rpm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"testing"
	"unicode/utf8"
)

// streamingOracle is one long-lived python3-rpm process answering one
// pair at a time, for the fuzzer.
type streamingOracle struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

// fuzzOracle starts the oracle once per process (each fuzz worker is a
// process). The child exits on EOF when the test process ends.
var fuzzOracle = sync.OnceValues(func() (*streamingOracle, error) {
	py, err := rpmPython()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(py, "-c", oracleScript, "-i")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", py, err)
	}
	return &streamingOracle{in: in, out: bufio.NewReader(out)}, nil
})

// compare returns labelCompare(a, b) in the oracle's notation.
func (o *streamingOracle) compare(a, b string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	line, err := json.Marshal([]any{"s", a, b})
	if err != nil {
		return "", err
	}
	if _, err := o.in.Write(append(line, '\n')); err != nil {
		return "", fmt.Errorf("rpm oracle: %w", err)
	}
	reply, err := o.out.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("rpm oracle: %w", err)
	}
	var answer []json.RawMessage
	var verdict string
	if err := json.Unmarshal(reply, &answer); err != nil || len(answer) == 0 {
		return "", fmt.Errorf("rpm oracle: bad reply %q: %v", reply, err)
	}
	if err := json.Unmarshal(answer[0], &verdict); err != nil {
		return "", err
	}
	return verdict, nil
}

// FuzzCompareEVR checks that CompareEVR never panics, is reflexive and
// antisymmetric, agrees with ParseEVR + EVR.Compare, that String
// round-trips, and, where python3-rpm is installed and the input is
// UTF-8 (python3-rpm takes str), that rpm.labelCompare agrees.
func FuzzCompareEVR(f *testing.F) {
	c := loadCorpus(f)
	for i := 0; i+1 < len(c.evrs); i += 7 {
		f.Add(c.evrs[i], c.evrs[i+1])
	}
	for _, s := range append(append(suffixes, odd...), fragments...) {
		f.Add("1.0"+s, "1.0")
		f.Add(s+"1.0-1", "1:1.0-1")
	}
	oracle, oracleErr := fuzzOracle()
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareEVR(a, b), CompareEVR(b, a)
		if ab != -ba {
			t.Fatalf("not antisymmetric: CompareEVR(%q, %q) = %d, reversed %d", a, b, ab, ba)
		}
		for _, v := range []string{a, b} {
			if c := CompareEVR(v, v); c != 0 {
				t.Fatalf("CompareEVR(%q, itself) = %d", v, c)
			}
			if c := Vercmp(v, v); c != 0 {
				t.Fatalf("Vercmp(%q, itself) = %d", v, c)
			}
			if e, err := ParseEVR(v); err == nil {
				if back, err := ParseEVR(e.String()); err != nil || back != e {
					t.Fatalf("ParseEVR(%q).String() = %q parses as %#v, %v", v, e.String(), back, err)
				}
			}
		}
		if vab, vba := Vercmp(a, b), Vercmp(b, a); vab != -vba {
			t.Fatalf("not antisymmetric: Vercmp(%q, %q) = %d, reversed %d", a, b, vab, vba)
		}
		ea, errA := ParseEVR(a)
		eb, errB := ParseEVR(b)
		if errA == nil && errB == nil && ea.Compare(eb) != ab {
			t.Fatalf("CompareEVR(%q, %q) = %d, ParseEVR + Compare %d", a, b, ab, ea.Compare(eb))
		}
		if oracleErr != nil || !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		want, err := oracle.compare(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := stringVerdict(a, b); got != want {
			t.Fatalf("CompareEVR(%q, %q) = %s, rpm.labelCompare says %s", a, b, got, want)
		}
	})
}
