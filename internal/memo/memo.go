// Package memo remembers values that never change for their key (a
// job's kind and params, the rollout a job belongs to), safe for
// concurrent use and bounded: when full, it forgets everything and starts
// afresh, which costs a few reads again and needs no bookkeeping per use.
package memo

import "sync"

// Map remembers up to Max values by key (4096 when Max is 0). The zero
// value is ready to use.
type Map[K comparable, V any] struct {
	Max int
	mu  sync.Mutex
	m   map[K]V
}

// Get returns the value remembered for k.
func (c *Map[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// Put remembers v for k.
func (c *Map[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	max := c.Max
	if max <= 0 {
		max = 4096
	}
	if c.m == nil || len(c.m) >= max {
		c.m = make(map[K]V)
	}
	c.m[k] = v
}
