package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Process is a long-running command started by Host.Start.
type Process struct {
	argv []string
	pid  int
	log  string
	done chan struct{}
	err  error // of Wait, set before done is closed

	stop    sync.Once
	stopErr error
}

// Start starts argv chrooted into the host, in its network namespace if
// attached, with /proc mounted, in a process group of its own, stdin
// /dev/null and stdout and stderr appended to a log file under the host's
// directory (see Process.Log). env is added to a minimal PATH, LC_ALL and
// DEBIAN_FRONTEND. The process is stopped like Process.Stop when ctx is
// done, and by Host.Close; it is killed if the test process dies.
func (h *Host) Start(ctx context.Context, env []string, argv ...string) (*Process, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("lab: start in %s: no command", h.Name)
	}
	if err := h.mountProc(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, fmt.Errorf("lab: start %s in %s: host closed", argv[0], h.Name)
	}
	h.nprocs++
	logPath := filepath.Join(h.dir, "logs", fmt.Sprintf("%d-%s.log", h.nprocs, filepath.Base(argv[0])))
	h.mu.Unlock()
	// Not bound to ctx like exec.CommandContext: ctx must stop the whole
	// group, gently (below).
	cmd, err := h.command(context.Background(), false, argv)
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", argv[0], h.Name, err)
	}
	defer logFile.Close() // the child has its own copy
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", argv[0], h.Name, err)
	}
	p := &Process{argv: argv, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.Stop()
		case <-p.done:
		}
	}()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	closed := h.closed
	h.mu.Unlock()
	if closed { // Close ran meanwhile and did not see p
		p.Stop()
		return nil, fmt.Errorf("lab: start %s in %s: host closed", argv[0], h.Name)
	}
	return p, nil
}

// Pid returns the process's id (also its process group's).
func (p *Process) Pid() int { return p.pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the process exited (nil for status 0) once Done is
// closed, and nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Log returns what the process wrote to stdout and stderr so far, for
// test failure messages.
func (p *Process) Log() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(read log of %s: %v)", strings.Join(p.argv, " "), err)
	}
	return string(data)
}

// LogPath returns the file holding the process's output.
func (p *Process) LogPath() string { return p.log }

// Stop sends SIGTERM to the process group, SIGKILL after a grace period
// if the process is still running, waits for it to exit, and kills what
// is left of the group. It is safe to call more than once.
func (p *Process) Stop() error {
	p.stop.Do(func() { p.stopErr = p.terminate() })
	return p.stopErr
}

func (p *Process) terminate() error {
	pg := -p.pid
	select {
	case <-p.done:
	default:
		if err := kill(pg, syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			if err := kill(pg, syscall.SIGKILL); err != nil {
				return err
			}
			<-p.done
		}
	}
	// Children that ignored SIGTERM or outlived the leader: kill them and
	// give them a moment to be gone.
	if err := kill(pg, syscall.SIGKILL); err != nil {
		return err
	}
	for deadline := time.Now().Add(stopGrace); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !groupAlive(p.pid) {
			return nil
		}
	}
	return fmt.Errorf("lab: process group %d of %s still there %v after SIGKILL", p.pid, p.argv[0], stopGrace)
}

// groupAlive reports whether a process of group pgid is still running:
// zombies do not count, their reaping is up to init.
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		i := bytes.LastIndexByte(stat, ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// kill is syscall.Kill where a process (group) already gone is fine.
func kill(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("lab: kill %d with %v: %w", pid, sig, err)
	}
	return nil
}
