package memo

import (
	"fmt"
	"sync"
	"testing"
)

func TestMap(t *testing.T) {
	var m Map[string, int]
	if _, ok := m.Get("a"); ok {
		t.Fatal("an empty map remembers a")
	}
	m.Put("a", 1)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}

	// Full, it starts afresh: never more than Max values.
	small := Map[int, int]{Max: 3}
	for i := range 4 {
		small.Put(i, i*10)
	}
	if _, ok := small.Get(0); ok {
		t.Error("a full map kept its oldest value")
	}
	if v, ok := small.Get(3); !ok || v != 30 {
		t.Errorf("Get(3) = %d, %v after starting afresh", v, ok)
	}
	if n := len(small.m); n != 1 {
		t.Errorf("%d values after starting afresh, want 1", n)
	}

	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				k := fmt.Sprint(g, "-", i%50)
				m.Put(k, i)
				m.Get(k)
			}
		}()
	}
	wg.Wait()
}
