package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints fetch messages to w only once the work has taken more
// than delay: a quick scan stays quiet, a slow one says what it is doing.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	shown   bool
	pending string
	timer   *time.Timer
}

func newProgress(w io.Writer, delay time.Duration) *progress {
	p := &progress{w: w}
	p.timer = time.AfterFunc(delay, p.flush)
	return p
}

// Print shows msg, or keeps it as the latest news until the delay passes.
func (p *progress) Print(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w, msg)
		return
	}
	p.pending = msg
}

func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shown = true
	if p.pending != "" {
		fmt.Fprintln(p.w, p.pending)
	}
}

// Stop ends the delay timer; call it when the work is done.
func (p *progress) Stop() {
	p.timer.Stop()
	p.mu.Lock()
	p.shown = false
	p.mu.Unlock()
}
