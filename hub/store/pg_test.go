package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loa-project/loa/internal/pgtest"
)

// The store's tests run on SQLite by default and on PostgreSQL with LOA_STORE=postgres (`make
// test` runs both): TestMain then starts a PostgreSQL server of its own for the test process
// (internal/pgtest) and every test gets a fresh database, copied from a template the store's
// schema is already in.

// testEngine is the engine the tests' stores use: "sqlite" or "postgres".
var testEngine = engineFromEnv()

func engineFromEnv() string {
	switch e := os.Getenv("LOA_STORE"); e {
	case "", "sqlite":
		return "sqlite"
	case "postgres":
		return "postgres"
	default:
		fmt.Fprintf(os.Stderr, "LOA_STORE=%q: want sqlite or postgres\n", e)
		os.Exit(2)
		return ""
	}
}

// testSource is a fresh, empty store's data source for t: a file in t.TempDir(), or a new
// database on the test server (internal/pgtest), dropped when t ends.
func testSource(t testing.TB) string {
	t.Helper()
	if testEngine == "sqlite" {
		return filepath.Join(t.TempDir(), "hub.db")
	}
	return pgtest.NewDatabase(t)
}

// sqliteOnly skips a test that is about SQLite itself when the tests run on PostgreSQL.
func sqliteOnly(t testing.TB, why string) {
	t.Helper()
	if testEngine != "sqlite" {
		t.Skip("SQLite only: " + why)
	}
}

// runTests is TestMain's work: the tests, on the server it starts when they run on PostgreSQL,
// whose template database the store's schema is migrated into once.
func runTests(m *testing.M) int {
	if testEngine == "postgres" {
		stop, err := pgtest.Start(func(url string) error {
			db, err := Open(context.Background(), url, newClock(), nil)
			if err != nil {
				return err
			}
			return db.Close()
		})
		if stop != nil {
			defer stop()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "start PostgreSQL for the store's tests:", err)
			return 1
		}
		if why := pgtest.Skipped(); why != "" {
			fmt.Fprintln(os.Stderr, why)
		}
	}
	return m.Run()
}

func TestToPostgres(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT a FROM t WHERE b = ? AND c IN (?, ?)", "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"},
		{"SELECT ?1, ?2 WHERE x = ?1 AND y > ?12", "SELECT $1, $2 WHERE x = $1 AND y > $12"},
		{"SELECT '?', 'it''s ?', \"col?\" FROM t WHERE a = ?", "SELECT '?', 'it''s ?', \"col?\" FROM t WHERE a = $1"},
		{"SELECT 1 -- is it ?\nFROM t WHERE a = ?", "SELECT 1 -- is it ?\nFROM t WHERE a = $1"},
		{"WHERE instr(title, ?) > 0 AND INSTR(x, ?) AND myinstr(y)", "WHERE strpos(title, $1) > 0 AND strpos(x, $2) AND myinstr(y)"},
		{"CREATE FUNCTION f() AS $$ BEGIN x ? y; END $$; SELECT ?", "CREATE FUNCTION f() AS $$ BEGIN x ? y; END $$; SELECT $1"},
		{"SELECT 'unterminated ?", "SELECT 'unterminated ?"},
		{"?", "$1"},
	} {
		if got := toPostgres(c.in); got != c.want {
			t.Errorf("toPostgres(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// A step added to one engine's schema is added to the other's under the same number.
func TestSchemaVersionsAgree(t *testing.T) {
	lite, pg := migrations(), pgMigrations()
	if got, want := pg[len(pg)-1].version, SchemaVersion(); got != want {
		t.Fatalf("PostgreSQL's schema ends at step %d, SQLite's at %d: add the step to both", got, want)
	}
	first := pg[0].version
	var later []int
	for _, m := range lite {
		if m.version > first {
			later = append(later, m.version)
		}
	}
	for i, m := range pg[1:] {
		if i >= len(later) || m.version != later[i] {
			t.Fatalf("PostgreSQL's steps after %d are %v; SQLite's %v", first, pg[1:], later)
		}
	}
}

func TestIsPostgres(t *testing.T) {
	for src, want := range map[string]bool{
		"postgres://u@h/db": true, "postgresql://h/db": true, "/var/lib/loa/hub.db": false,
		"sqlite:/var/lib/loa/hub.db": false, "hub.db": false, "postgres.db": false,
	} {
		if IsPostgres(src) != want {
			t.Errorf("IsPostgres(%q) = %v", src, !want)
		}
	}
}

// PostgreSQL's errors become the store's: a full disk ErrFull, a unique key ErrExists.
func TestPostgresErrors(t *testing.T) {
	for code, want := range map[string]error{pgDiskFull: ErrFull, pgUniqueViolation: ErrExists} {
		if err := pgError(&pgconn.PgError{Code: code, Message: "m"}); !errors.Is(err, want) || !IsFull(err) && want == ErrFull {
			t.Errorf("code %s: %v, want %v", code, err, want)
		}
	}
	for _, code := range []string{"42601", "53200"} { // a syntax error; out of memory, which is not the disk
		if err := pgError(&pgconn.PgError{Code: code}); errors.Is(err, ErrFull) || errors.Is(err, ErrExists) {
			t.Errorf("code %s mapped to %v", code, err)
		}
	}
	if testEngine != "postgres" {
		return
	}
	db, _, _ := openTest(t)
	ctx := context.Background()
	insert := func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO settings(key, value, updated_at) VALUES ('k', 'v', 0)")
		return err
	}
	noErr(t, db.write(ctx, insert))
	wantErr(t, db.write(ctx, insert), ErrExists, "a second row with the same key")
}
