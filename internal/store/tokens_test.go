package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testEnrollTokens(t *testing.T, s Store) {
	a := mustCreateToken(t, s, EnrollToken{
		ID: "a", Labels: map[string]string{"env": "prod", "ring": "1"},
		CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(48 * time.Hour).Add(123 * time.Millisecond),
		MaxUses: 5, Note: "for the web servers",
	})
	b := mustCreateToken(t, s, EnrollToken{ID: "b", CreatedAt: t0})
	err := s.CreateEnrollToken(ctx, EnrollToken{ID: "a", SecretHash: hash("x"), CreatedAt: t0})
	wantErr(t, err, ErrConflict, "enroll token a")

	got, err := s.ListEnrollTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []EnrollToken{b, a}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ListEnrollTokens:\n got %+v\nwant %+v", got, want)
	}
	if !got[0].ExpiresAt.IsZero() || !got[0].RevokedAt.IsZero() || got[0].Labels != nil {
		t.Errorf("zero values did not round-trip: %+v", got[0])
	}

	if err := s.RevokeEnrollToken(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeEnrollToken(ctx, "a", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RevokeEnrollToken(ctx, "nope", t0), ErrNotFound, "nope")
	got, _ = s.ListEnrollTokens(ctx)
	if !got[1].RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokedAt = %v, want the first revocation %v", got[1].RevokedAt, t0.Add(time.Hour))
	}
}

func testEnroll(t *testing.T, s Store) {
	tok := mustCreateToken(t, s, EnrollToken{ID: "t1", Labels: map[string]string{"env": "prod"}, MaxUses: 2})
	in := Host{
		ID: "h1", MachineID: "m1", Hostname: "web1", SecretHash: hash("cred"),
		Labels: map[string]string{"env": "dev", "team": "web"}, Facts: []byte(`{"os":"debian"}`),
	}
	h, err := s.Enroll(ctx, "t1", tok.SecretHash, in, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Labels = map[string]string{"env": "prod", "team": "web"} // the token's win
	want.EnrolledAt = t0
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("Enroll:\n got %+v\nwant %+v", h, want)
	}
	stored, err := s.Host(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, want) {
		t.Fatalf("Host:\n got %+v\nwant %+v", stored, want)
	}
	toks, _ := s.ListEnrollTokens(ctx)
	if toks[0].Uses != 1 {
		t.Errorf("Uses = %d, want 1", toks[0].Uses)
	}
	_, err = s.Enroll(ctx, "t1", tok.SecretHash, Host{ID: "h1", MachineID: "m2", SecretHash: hash("c")}, t0)
	wantErr(t, err, ErrConflict, "store: enroll token t1: host m2: host ID h1 is another machine's: conflict")
	if toks, _ := s.ListEnrollTokens(ctx); toks[0].Uses != 1 {
		t.Errorf("a failed enrollment used the token: Uses = %d", toks[0].Uses)
	}
	_, err = s.Enroll(ctx, "t1", tok.SecretHash, Host{MachineID: "m2"}, t0)
	if err == nil || errors.Is(err, ErrTokenInvalid) {
		t.Errorf("enroll without a host ID: %v", err)
	}
}

func testEnrollRefused(t *testing.T, s Store) {
	now := t0.Add(24 * time.Hour)
	mustCreateToken(t, s, EnrollToken{ID: "revoked", RevokedAt: t0})
	mustCreateToken(t, s, EnrollToken{ID: "expired", ExpiresAt: now.Add(-time.Millisecond)})
	mustCreateToken(t, s, EnrollToken{ID: "edge", ExpiresAt: now, MaxUses: 1})
	mustCreateToken(t, s, EnrollToken{ID: "usedup", MaxUses: 2, Uses: 2})
	tests := []struct {
		id, secret string
		wantErr    string // "" succeeds
	}{
		{"unknown", "unknown-secret", "store: enroll token unknown: unknown: enrollment token not valid"},
		{"revoked", "wrong", "store: enroll token revoked: wrong secret: enrollment token not valid"},
		{"revoked", "revoked-secret", "store: enroll token revoked: revoked at 2026-03-01T12:00:00Z: enrollment token not valid"},
		{"expired", "expired-secret", "store: enroll token expired: expired at 2026-03-02T11:59:59Z: enrollment token not valid"},
		{"usedup", "usedup-secret", "store: enroll token usedup: used up (2 of 2 uses): enrollment token not valid"},
		{"edge", "edge-secret", ""}, // expires at now: still valid
		{"edge", "edge-secret", "used up (1 of 1 uses)"},
	}
	for i, tc := range tests {
		h := Host{ID: fmt.Sprint("h", i), MachineID: fmt.Sprint("m", i), SecretHash: hash("c")}
		_, err := s.Enroll(ctx, tc.id, hash(tc.secret), h, now)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(fmt.Sprint(err), tc.wantErr) {
			t.Errorf("%s: error %v, want %q wrapping ErrTokenInvalid", tc.id, err, tc.wantErr)
		}
	}
	hosts, _ := s.ListHosts(ctx, HostFilter{IncludeRevoked: true})
	if len(hosts) != 1 {
		t.Errorf("%d hosts, want 1", len(hosts))
	}
	toks, _ := s.ListEnrollTokens(ctx)
	for _, tok := range toks {
		if want := map[string]int{"edge": 1, "usedup": 2}[tok.ID]; tok.Uses != want {
			t.Errorf("token %s: Uses = %d, want %d", tok.ID, tok.Uses, want)
		}
	}
}

func testReEnroll(t *testing.T, s Store) {
	first := enrollHost(t, s, "h1", "old-name", map[string]string{"env": "dev", "team": "db"})
	if err := s.PutInventory(ctx, "h1", "inv1", []byte("pkgs"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeHost(ctx, "h1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tok := mustCreateToken(t, s, EnrollToken{ID: "t2", Labels: map[string]string{"env": "prod", "ring": "2"}})
	later := t0.Add(2 * time.Hour)
	h, err := s.Enroll(ctx, "t2", tok.SecretHash, Host{
		ID: "ignored-new-id", MachineID: first.MachineID, Hostname: "new-name", SecretHash: hash("new-cred"),
	}, later)
	if err != nil {
		t.Fatal(err)
	}
	want := first
	want.Hostname, want.SecretHash = "new-name", hash("new-cred")
	want.Labels = map[string]string{"env": "prod", "team": "db", "ring": "2"}
	want.InventoryHash, want.InventoryAt = "inv1", t0
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("re-enrolled:\n got %+v\nwant %+v", h, want)
	}
	if stored, _ := s.Host(ctx, "h1"); !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored:\n got %+v\nwant %+v", stored, want)
	}
	wantErr(t, func() error { _, err := s.Host(ctx, "ignored-new-id"); return err }(), ErrNotFound)
}

func testAdminTokens(t *testing.T, s Store) {
	a := AdminToken{ID: "a", SecretHash: hash("a"), Name: "alice", CreatedAt: t0}
	b := AdminToken{ID: "b", SecretHash: hash("b"), Name: "bob", CreatedAt: t0.Add(-time.Hour)}
	for _, tok := range []AdminToken{a, b} {
		if err := s.CreateAdminToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, s.CreateAdminToken(ctx, a), ErrConflict, "admin token a")
	if got, err := s.AdminToken(ctx, "a"); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("AdminToken = %+v, %v", got, err)
	}
	_, err := s.AdminToken(ctx, "zz")
	wantErr(t, err, ErrNotFound, "admin token zz")
	if got, _ := s.ListAdminTokens(ctx); !reflect.DeepEqual(got, []AdminToken{b, a}) {
		t.Errorf("ListAdminTokens = %+v", got)
	}
	if err := s.RevokeAdminToken(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RevokeAdminToken(ctx, "zz", t0), ErrNotFound)
	if got, _ := s.AdminToken(ctx, "a"); !got.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokedAt = %v", got.RevokedAt)
	}
}
