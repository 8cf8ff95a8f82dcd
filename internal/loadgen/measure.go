package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
)

// recorder collects the outcomes of one kind of request in one phase:
// every latency (a sorted sample gives exact quantiles; a phase holds at
// most a few hundred thousand) and the errors by kind.
type recorder struct {
	mu      sync.Mutex
	lat     []time.Duration
	errs    map[string]int
	example map[string]string // one message per error kind
}

func newRecorder() *recorder {
	return &recorder{errs: map[string]int{}, example: map[string]string{}}
}

func (r *recorder) add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.lat = append(r.lat, d)
		return
	}
	k := errKind(err)
	r.errs[k]++
	if _, ok := r.example[k]; !ok {
		r.example[k] = err.Error()
	}
}

// Quantiles are latencies in milliseconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func quantiles(d []time.Duration) Quantiles {
	if len(d) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / 1e6
	}
	return Quantiles{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: float64(s[len(s)-1]) / 1e6}
}

// OpReport is one kind of request in a phase.
type OpReport struct {
	Op        string            `json:"op"` // enroll, checkin, inventory
	OK        int               `json:"ok"`
	Errors    map[string]int    `json:"errors,omitempty"`
	ErrorText map[string]string `json:"error_examples,omitempty"`
	Rate      float64           `json:"rate_per_second"` // successful requests per second of the phase
	LatencyMS Quantiles         `json:"latency_ms"`
}

func (r *recorder) report(op string, secs float64) OpReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := OpReport{Op: op, OK: len(r.lat), LatencyMS: quantiles(r.lat)}
	if secs > 0 {
		o.Rate = float64(o.OK) / secs
	}
	if len(r.errs) > 0 {
		o.Errors, o.ErrorText = r.errs, r.example
	}
	return o
}

// errKind classifies a failed request for the report.
func errKind(err error) string {
	var se *agent.StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn_reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_local_port"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// ProcUsage is what a process used during a phase.
type ProcUsage struct {
	PID        int     `json:"pid,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"` // user + system
	Cores      float64 `json:"cores"`       // CPUSeconds per second of the phase
	RSSBytes   int64   `json:"rss_bytes,omitempty"`
	PeakRSS    int64   `json:"peak_rss_bytes,omitempty"` // VmHWM: the process's peak so far
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// procStat reads the CPU seconds of process pid from /proc/PID/stat:
// its own (user + system), and those of its children it has waited for.
func procStat(pid int) (self, children float64, ppid int, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// comm may hold spaces: the fields we want follow its closing ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var t [4]float64 // fields 14-17 of stat: utime, stime, cutime, cstime
	for i := range t {
		if t[i], err = strconv.ParseFloat(f[11+i], 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	ppid, _ = strconv.Atoi(f[1])
	return (t[0] + t[1]) / clockTick, (t[2] + t[3]) / clockTick, ppid, nil
}

// procCPU reads the CPU seconds of process pid or, with tree, of pid and
// its children, live and exited (a PostgreSQL server: the postmaster and
// its backends).
func procCPU(pid int, tree bool) (float64, error) {
	self, children, _, err := procStat(pid)
	if err != nil || !tree {
		return self, err
	}
	total := self + children
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil || child == pid {
			continue
		}
		if cpu, _, ppid, err := procStat(child); err == nil && ppid == pid {
			total += cpu
		}
	}
	return total, nil
}

// procMem reads VmRSS and VmHWM of process pid, in bytes.
func procMem(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		w := strings.Fields(v) // "12345 kB"
		if len(w) != 2 {
			continue
		}
		n, _ := strconv.ParseInt(w[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak, sc.Err()
}

// procWatch measures a process (with tree, and its children) over a
// phase; pid 0 measures nothing.
type procWatch struct {
	pid   int
	tree  bool
	cpu0  float64
	start time.Time
}

func watchProc(pid int, tree bool) *procWatch {
	w := &procWatch{pid: pid, tree: tree, start: time.Now()}
	if pid > 0 {
		w.cpu0, _ = procCPU(pid, tree)
	}
	return w
}

func (w *procWatch) done() *ProcUsage {
	if w.pid <= 0 {
		return nil
	}
	cpu, err := procCPU(w.pid, w.tree)
	if err != nil {
		return nil
	}
	u := &ProcUsage{PID: w.pid, CPUSeconds: cpu - w.cpu0}
	if secs := time.Since(w.start).Seconds(); secs > 0 {
		u.Cores = u.CPUSeconds / secs
	}
	if !w.tree { // the sum of a tree's RSS would count shared memory many times
		u.RSSBytes, u.PeakRSS, _ = procMem(w.pid)
	}
	return u
}

// ServerStats are gauges of the server's /metrics.
type ServerStats struct {
	Hosts         int64 `json:"hosts"`
	Inventories   int64 `json:"inventories"`
	DatabaseBytes int64 `json:"database_bytes"`
	CheckInsHeld  int64 `json:"checkins_held,omitempty"` // check-ins the server holds (long polls)
}

// scrapeMetrics reads the server's /metrics (unauthenticated) and picks
// the store gauges and the held check-ins.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (ServerStats, error) {
	var st ServerStats
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "patchloop_hosts":
			st.Hosts = int64(f)
		case "patchloop_inventories":
			st.Inventories = int64(f)
		case "patchloop_database_bytes":
			st.DatabaseBytes = int64(f)
		case "patchloop_checkins_held":
			st.CheckInsHeld = int64(f)
		}
	}
	return st, sc.Err()
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// raiseFileLimit lifts the soft limit on open files to the hard limit
// (one connection per simulated host needs one descriptor each) and
// returns the limit in force.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}
