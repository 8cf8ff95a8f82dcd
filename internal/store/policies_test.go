package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func testPolicies(t *testing.T, s Store) {
	if _, err := s.Policy(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown policy: %v", err)
	}
	if err := s.DeletePolicy(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete unknown policy: %v", err)
	}
	put := func(p Policy, wantChanged bool, wantVersion, wantPrio int) Policy {
		t.Helper()
		got, changed, err := s.PutPolicy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if changed != wantChanged || got.Version != wantVersion || got.Priority != wantPrio || got.Name != p.Name {
			t.Fatalf("put %s: %+v changed=%v; want version %d, priority %d, changed %v", p.Name, got, changed, wantVersion, wantPrio, wantChanged)
		}
		return got
	}
	v1 := put(Policy{Name: "prod", Source: []byte("name: prod\n"), Priority: -1, UpdatedAt: t0, UpdatedBy: "alice"}, true, 1, DefaultPolicyPriority)
	if string(v1.Source) != "name: prod\n" || !v1.CreatedAt.Equal(t0) || !v1.UpdatedAt.Equal(t0) || v1.UpdatedBy != "alice" {
		t.Fatalf("created: %+v", v1)
	}
	// The same source again changes nothing, not even who or when.
	same := put(Policy{Name: "prod", Source: []byte("name: prod\n"), Priority: -1, UpdatedAt: t0.Add(time.Hour), UpdatedBy: "bob"}, false, 1, DefaultPolicyPriority)
	if same.UpdatedBy != "alice" || !same.UpdatedAt.Equal(t0) {
		t.Errorf("an unchanged put recorded itself: %+v", same)
	}
	// A new source counts up; a negative priority keeps the stored one.
	v2 := put(Policy{Name: "prod", Source: []byte("name: prod\n# v2\n"), Priority: -1, UpdatedAt: t0.Add(2 * time.Hour), UpdatedBy: "bob"}, true, 2, DefaultPolicyPriority)
	if v2.UpdatedBy != "bob" || !v2.UpdatedAt.Equal(t0.Add(2*time.Hour)) || !v2.CreatedAt.Equal(t0) {
		t.Errorf("changed: %+v", v2)
	}
	// A priority alone is a change too.
	put(Policy{Name: "prod", Source: v2.Source, Priority: 10, UpdatedAt: t0.Add(3 * time.Hour), UpdatedBy: "carol"}, true, 3, 10)
	put(Policy{Name: "default", Source: []byte("name: default\n"), Priority: 90, UpdatedAt: t0}, true, 1, 90)
	put(Policy{Name: "aaa", Source: []byte("name: aaa\n"), Priority: 90, UpdatedAt: t0}, true, 1, 90)

	list, err := s.ListPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list {
		names = append(names, fmt.Sprint(p.Name, "@", p.Priority, "v", p.Version))
	}
	if fmt.Sprint(names) != "[prod@10v3 aaa@90v1 default@90v1]" {
		t.Errorf("list by priority, then name: %v", names)
	}
	if err := s.DeletePolicy(ctx, "aaa"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Policy(ctx, "aaa"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted policy: %v", err)
	}

	// Writers racing on one name: every change is counted once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.PutPolicy(ctx, Policy{Name: "race", Source: []byte(fmt.Sprintf("name: race\n# %d\n", i)), Priority: -1, UpdatedAt: t0})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p, err := s.Policy(ctx, "race"); err != nil || p.Version != 8 {
		t.Errorf("after 8 racing changes: %+v, %v; want version 8", p, err)
	}
}
