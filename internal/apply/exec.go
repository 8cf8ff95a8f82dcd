package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// runner runs commands on the system at root: chrooted into it unless it
// is "/". Its environment is fixed: C locale (apt's output is parsed),
// no prompts from debconf, apt-listchanges or needrestart.
type runner struct {
	root string
}

var cmdEnv = []string{
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	"DEBIAN_FRONTEND=noninteractive",
	"APT_LISTCHANGES_FRONTEND=none",
	"NEEDRESTART_SUSPEND=1", // restarts are reported by RestartNeeded, not done behind our back
}

func newRunner(root string) (runner, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return runner{}, err
	}
	return runner{root: abs}, nil
}

func (r runner) chrooted() bool { return r.root != "/" }

// host returns path (absolute inside the system) as seen from here.
func (r runner) host(path string) string { return filepath.Join(r.root, path) }

// command returns args run in the system, in dir (inside it) when not "".
func (r runner) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	switch {
	case !r.chrooted():
		cmd = exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = dir
	case dir == "":
		cmd = exec.CommandContext(ctx, "chroot", append([]string{r.root}, args...)...)
	default:
		sh := []string{r.root, "/bin/sh", "-c", `cd "$0" && exec "$@"`, dir}
		cmd = exec.CommandContext(ctx, "chroot", append(sh, args...)...)
	}
	cmd.Env = cmdEnv
	return cmd
}

// output runs args and returns stdout; the error carries the exit status
// and stderr.
func (r runner) output(ctx context.Context, args ...string) (string, error) {
	cmd := r.command(ctx, "", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(tailString(stderr.String(), 2000)))
	}
	return string(out), nil
}

// combined runs args in dir, writing stdout and stderr to w, and returns
// the exit code: 128+N when a signal N killed it (as a shell says), -1 only
// when it did not run.
func (r runner) combined(ctx context.Context, w *tailBuffer, dir string, args ...string) (int, error) {
	cmd := r.command(ctx, dir, args...)
	fmt.Fprintf(w, "$ %s\n", strings.Join(args, " "))
	// The output goes to an unlinked temporary file, not a pipe, and is
	// copied to w once the command has finished: apt and dpkg must outlive
	// an agent killed while they run (its unit has KillMode=process); with
	// a pipe, the first line dpkg writes after the agent died kills it
	// with SIGPIPE, leaving packages unpacked but not configured.
	out, err := os.CreateTemp("", "patchloop-apply-*.log")
	if err != nil {
		return -1, fmt.Errorf("%s: output file: %w", args[0], err)
	}
	os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	if _, serr := out.Seek(0, io.SeekStart); serr == nil {
		io.Copy(w, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return code, fmt.Errorf("%s: %w", args[0], err)
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", args[0], err)
	}
	return 0, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
	cut int64 // bytes dropped from the front
}

func newTail(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		drop := len(t.buf) - t.max
		t.cut += int64(drop)
		t.buf = append([]byte(nil), t.buf[drop:]...)
	}
	return len(p), nil
}

// mark is how many bytes were ever written: since(mark) is what came after.
func (t *tailBuffer) mark() int64 { return t.cut + int64(len(t.buf)) }

// since returns what was written after mark and is still kept (the
// newest bytes are always kept: a command's closing error is there).
func (t *tailBuffer) since(mark int64) string {
	i := max(mark-t.cut, 0)
	if i > int64(len(t.buf)) {
		return ""
	}
	return string(t.buf[i:])
}

// String is the last max bytes, marked when earlier output was cut.
func (t *tailBuffer) String() string {
	b := t.buf
	cut := t.cut
	if len(b) > t.max {
		cut += int64(len(b) - t.max)
		b = b[len(b)-t.max:]
	}
	if cut > 0 {
		return fmt.Sprintf("[... %d bytes cut ...]\n%s", cut, b)
	}
	return string(b)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
