package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/patchloop/patchloop/internal/store/pgtest"
)

// ListPolicies orders names by bytes also on a PostgreSQL database whose
// collation orders them otherwise, as en_US.UTF-8 or ICU do (punctuation
// ignored, or before digits): the first matching baseline decides, so the
// order must not depend on how the database was created.
func TestPolicyOrderUnderCollationPostgres(t *testing.T) {
	// Valid policy names (server: ^[a-z0-9][a-z0-9._-]{0,62}$) whose
	// byte order is "a-c" "a.b" "a1" "a_b" "ab", while en_US.UTF-8 ignores
	// the punctuation and ICU puts it before the digits.
	names := []string{"ab", "a_b", "a1", "a.b", "a-c"}
	bytesOrder := slices.Sorted(slices.Values(names))
	dsn := collatedDatabase(t, pgtest.Start(t), names)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, n := range names {
		if _, _, err := s.PutPolicy(ctx, Policy{Name: n, Source: []byte("name: " + n + "\n"), Priority: 50, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.PutPolicy(ctx, Policy{Name: "zz", Source: []byte("name: zz\n"), Priority: 10, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	want := append([]string{"zz"}, bytesOrder...)

	// The database itself orders the table otherwise: what the test is for.
	sqlOrder := queryStrings(t, s.(*sqlStore).rdb, "SELECT name FROM policies ORDER BY priority, name")
	if slices.Equal(sqlOrder, want) {
		t.Fatalf("the database orders the policies by bytes (%v): the test cannot tell", sqlOrder)
	}
	list, err := s.ListPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list {
		got = append(got, p.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListPolicies: %v, want by priority, then bytes: %v (the database's ORDER BY gives %v)", got, want, sqlOrder)
	}
}

// collatedDatabase creates, from the database admin (whose user may
// create databases, as pgtest's may), a database whose collation orders
// names differently from their bytes, and returns its DSN. It tries
// glibc's en_US.UTF-8, ICU's en-US and C.UTF-8, and skips the test when
// none exists here or orders the names differently from C.
func collatedDatabase(t *testing.T, admin string, names []string) string {
	t.Helper()
	adb, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adb.Close() })
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "('" + strings.ReplaceAll(n, "'", "''") + "')"
	}
	values := "(VALUES " + strings.Join(quoted, ", ") + ") AS v(n)"
	candidates := []struct{ name, clause string }{
		{"glibc en_US.UTF-8", "LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'"},
		{"ICU en-US", "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"},
		{"glibc C.UTF-8", "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"},
	}
	var tried []string
	for i, c := range candidates {
		name := fmt.Sprintf("pgcoll_%d_%d", os.Getpid(), i)
		if _, err := adb.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8' "+c.clause); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		t.Cleanup(func() {
			if _, err := adb.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Logf("drop %s: %v", name, err)
			}
		})
		cu := *u
		cu.Path = "/" + name
		db, err := sql.Open("pgx", cu.String())
		if err != nil {
			t.Fatal(err)
		}
		collated := queryStrings(t, db, "SELECT n FROM "+values+" ORDER BY n")
		byBytes := queryStrings(t, db, "SELECT n FROM "+values+` ORDER BY n COLLATE "C"`)
		db.Close()
		if want := slices.Sorted(slices.Values(names)); !slices.Equal(byBytes, want) {
			t.Fatalf(`%s: COLLATE "C" orders %v, Go's bytes %v`, c.name, byBytes, want)
		}
		if slices.Equal(collated, byBytes) {
			tried = append(tried, fmt.Sprintf("%s orders %v as C does", c.name, collated))
			continue
		}
		t.Logf("%s orders %v, C orders %v", c.name, collated, byBytes)
		return cu.String()
	}
	t.Skipf("no collation here orders the names differently from C: %s", strings.Join(tried, "; "))
	return ""
}

func queryStrings(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
