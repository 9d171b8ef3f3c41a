package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the server's administration
)

// The store's tests run on SQLite by default and on PostgreSQL with LOA_STORE=postgres (`make
// test` runs both): TestMain then starts a PostgreSQL server of its own for the test process
// and every test gets a fresh database, copied from a template the store's schema is already in.

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

// testPG is the test process's PostgreSQL server, when testEngine is postgres.
var testPG struct {
	url     string // to the server's postgres database, as the superuser
	skip    string // why there is no server (binaries missing), for t.Skip
	admin   *sql.DB
	counter atomic.Int64
}

// pgBinDir finds initdb and pg_ctl: on PATH, else Debian's versioned directory.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- { // the newest version
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no pg_ctl on PATH or in /usr/lib/postgresql/*/bin (install Debian's postgresql package: make deps)")
}

// startTestPostgres initdbs a cluster in a temporary directory and starts it on a free port
// of 127.0.0.1, as the unprivileged postgres user when the tests run as root (PostgreSQL
// refuses to run as root). It returns the function that stops it and removes the directory.
func startTestPostgres() (stop func(), err error) {
	bin, err := pgBinDir()
	if err != nil {
		testPG.skip = "PostgreSQL tests skipped: " + err.Error()
		return func() {}, nil
	}
	run := func(name string, args ...string) *exec.Cmd { return exec.Command(filepath.Join(bin, name), args...) }
	chown := func(string) error { return nil }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as: %w", err)
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("the postgres user's uid and gid: %w", err)
		}
		run = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		chown = func(dir string) error { return os.Chown(dir, uid, gid) }
	}
	stopStale(run)
	dir, err := os.MkdirTemp("", pgDirPrefix)
	if err != nil {
		return nil, err
	}
	stop = func() { os.RemoveAll(dir) }
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return stop, err
	}
	if err := chown(dir); err != nil {
		return stop, err
	}
	data := filepath.Join(dir, "data")
	// No locale: the store declares byte order on its columns, but the server's own default
	// should not be what a test depends on.
	if out, err := run("initdb", "-D", data, "-U", "loa", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return stop, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return stop, err
	}
	// Durability is not what these tests check (durability_test.go does, on SQLite and here
	// through a killed process, which fsync=off survives: only a machine crash would not).
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", dir, port)
	if out, err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return stop, fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	stop = func() {
		if testPG.admin != nil {
			testPG.admin.Close()
		}
		if out, err := run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "pg_ctl stop: %v: %s\n", err, out)
		}
		os.RemoveAll(dir)
	}
	testPG.url = fmt.Sprintf("postgres://loa@127.0.0.1:%d/postgres?sslmode=disable", port)
	testPG.admin, err = sql.Open("pgx", testPG.url)
	if err != nil {
		return stop, err
	}
	ctx := context.Background()
	if _, err := testPG.admin.ExecContext(ctx, "CREATE DATABASE loa_template"); err != nil {
		return stop, fmt.Errorf("create the template database: %w", err)
	}
	db, err := Open(ctx, pgURL("loa_template"), newClock(), nil)
	if err != nil {
		return stop, fmt.Errorf("migrate the template database: %w", err)
	}
	return stop, db.Close()
}

// pgDirPrefix names the temporary directories of the tests' servers.
const pgDirPrefix = "loa-store-pg-"

// stopStale stops and removes the servers of test processes that died without stopping
// theirs (killed by a timeout, or by a closed pipe): each directory names its owner's pid.
func stopStale(run func(name string, args ...string) *exec.Cmd) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pgDirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // its owner is alive (or we cannot tell)
		}
		fmt.Fprintf(os.Stderr, "stopping the PostgreSQL of a test process that is gone (pid %d, %s)\n", pid, dir)
		run("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgURL is the URL of database name on the test server.
func pgURL(name string) string {
	return strings.Replace(testPG.url, "/postgres?", "/"+name+"?", 1)
}

// testSource is a fresh, empty store's data source for t: a file in t.TempDir(), or a new
// database on the test server, dropped when t ends.
func testSource(t testing.TB) string {
	t.Helper()
	if testEngine == "sqlite" {
		return filepath.Join(t.TempDir(), "hub.db")
	}
	if testPG.skip != "" {
		t.Skip(testPG.skip)
	}
	name := fmt.Sprintf("t%d", testPG.counter.Add(1))
	ctx := context.Background()
	if _, err := testPG.admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE loa_template"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { // registered first, so it runs after the store's Close
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := testPG.admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return pgURL(name)
}

// sqliteOnly skips a test that is about SQLite itself when the tests run on PostgreSQL.
func sqliteOnly(t testing.TB, why string) {
	t.Helper()
	if testEngine != "sqlite" {
		t.Skip("SQLite only: " + why)
	}
}

// runTests is TestMain's work: the tests, on the server it starts when they run on PostgreSQL.
func runTests(m *testing.M) int {
	if testEngine == "postgres" {
		stop, err := startTestPostgres()
		if stop != nil {
			defer stop()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "start PostgreSQL for the store's tests:", err)
			return 1
		}
		if testPG.skip != "" {
			fmt.Fprintln(os.Stderr, testPG.skip)
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
