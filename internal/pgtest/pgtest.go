// Package pgtest starts a real PostgreSQL server for a test process and gives each test a
// fresh database on it: initdb and pg_ctl (Debian's postgresql package) in a temporary
// directory, on a free port of 127.0.0.1, as the unprivileged postgres user when the tests
// run as root. Call Start once in TestMain; NewDatabase in each test. Without the binaries,
// tests that ask for a database are skipped with a message saying what to install.
package pgtest

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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the server's administration
)

// server is the test process's PostgreSQL server.
var server struct {
	mu      sync.Mutex
	url     string // to the server's postgres database, as the superuser
	skip    string // why there is no server (binaries missing), for t.Skip
	admin   *sql.DB
	data    string                            // the cluster's data directory
	run     func(string, ...string) *exec.Cmd // runs a PostgreSQL program, as postgres when root
	opts    string                            // the server's options, for a restart
	logFile string                            // the server's log
	counter atomic.Int64                      // names of the databases made
	started bool
	// lazy: Main was called; the first NewDatabase starts the server with prepare.
	lazy    bool
	prepare func(url string) error
	stop    func()
}

// Main runs a package's tests (call it from TestMain: os.Exit(pgtest.Main(m, prepare))),
// starting the server only when a test first asks for a database, so a package whose
// PostgreSQL tests are a few among many pays for initdb only when they run; it stops the
// server when the tests end.
func Main(m *testing.M, prepare func(url string) error) int {
	server.mu.Lock()
	server.lazy, server.prepare = true, prepare
	server.mu.Unlock()
	defer func() {
		server.mu.Lock()
		defer server.mu.Unlock()
		if server.stop != nil {
			server.stop()
		}
	}()
	return m.Run()
}

// Template is the database every NewDatabase copies: Start's prepare function fills it
// (the store's schema, say), so each test starts from it without migrating.
const Template = "loa_template"

// Start initdbs a cluster in a temporary directory, starts it and creates the Template
// database, then calls prepare (if not nil) with the template's URL. It returns the function
// that stops the server and removes the directory; call it when m.Run returns. When the
// PostgreSQL binaries are missing it returns a no-op stop and a nil error: NewDatabase then
// skips, and Skipped says why.
func Start(prepare func(url string) error) (stop func(), err error) {
	server.mu.Lock()
	defer server.mu.Unlock()
	return start(prepare)
}

// start is Start with server.mu held.
func start(prepare func(url string) error) (stop func(), err error) {
	if server.started {
		return nil, errors.New("pgtest.Start called twice in one process")
	}
	server.started = true
	bin, err := binDir()
	if err != nil {
		server.skip = "PostgreSQL tests skipped: " + err.Error()
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
	dir, err := os.MkdirTemp("", dirPrefix)
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
	// Durability is not what these tests check (the store's durability test does, on SQLite
	// and here through a killed process, which fsync=off survives: only a machine crash would not).
	server.opts = fmt.Sprintf("-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", dir, port)
	server.data, server.run, server.logFile = data, run, filepath.Join(dir, "server.log")
	if out, err := run("pg_ctl", "-D", data, "-l", server.logFile, "-o", server.opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(server.logFile)
		return stop, fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	stop = func() {
		if server.admin != nil {
			server.admin.Close()
		}
		if out, err := run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "pg_ctl stop: %v: %s\n", err, out)
		}
		os.RemoveAll(dir)
	}
	server.url = fmt.Sprintf("postgres://loa@127.0.0.1:%d/postgres?sslmode=disable", port)
	server.admin, err = sql.Open("pgx", server.url)
	if err != nil {
		return stop, err
	}
	if _, err := server.admin.ExecContext(context.Background(), "CREATE DATABASE "+Template); err != nil {
		return stop, fmt.Errorf("create the template database: %w", err)
	}
	if prepare != nil {
		if err := prepare(dbURL(server.url, Template)); err != nil {
			return stop, fmt.Errorf("prepare the template database: %w", err)
		}
	}
	return stop, nil
}

// Skipped is why the server was not started ("" when it was, or Start was not called).
func Skipped() string {
	server.mu.Lock()
	defer server.mu.Unlock()
	return server.skip
}

// URL is the URL of database name on the test server.
func URL(name string) string {
	server.mu.Lock()
	defer server.mu.Unlock()
	return dbURL(server.url, name)
}

// dbURL is the URL of database name on the server whose postgres database is at url.
func dbURL(url, name string) string { return strings.Replace(url, "/postgres?", "/"+name+"?", 1) }

// NewDatabase creates a fresh database copied from Template and returns its URL; it is
// dropped (its connections closed) when t ends. It skips t when there is no server.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server.mu.Lock()
	if server.lazy && !server.started {
		var err error
		server.stop, err = start(server.prepare)
		if err != nil {
			server.mu.Unlock()
			t.Fatalf("start PostgreSQL for the tests: %v", err)
		}
	}
	skip, admin, started := server.skip, server.admin, server.started
	server.mu.Unlock()
	switch {
	case skip != "":
		t.Skip(skip)
	case !started || admin == nil:
		t.Fatal("pgtest.NewDatabase without a server: call pgtest.Start in TestMain")
	}
	name := fmt.Sprintf("t%d", server.counter.Add(1))
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+name+" TEMPLATE "+Template); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { // registered before the test's own cleanups, so it runs after them
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return URL(name)
}

// Stop stops the server as an administrator's restart would ("fast": every session is
// ended, what was committed is kept), for a test of what happens while the database is
// away. Start it again with Restart. (An "immediate" stop would lose the last commits: the
// server runs with synchronous_commit off.)
func Stop(t testing.TB) {
	t.Helper()
	if out, err := server.run("pg_ctl", "-D", server.data, "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v: %s", err, out)
	}
}

// Restart starts the server again after Stop, on the same port and data.
func Restart(t testing.TB) {
	t.Helper()
	if out, err := server.run("pg_ctl", "-D", server.data, "-l", server.logFile, "-o", server.opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(server.logFile)
		t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// binDir finds initdb and pg_ctl: on PATH, else Debian's versioned directory.
func binDir() (string, error) {
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

// dirPrefix names the temporary directories of the tests' servers.
const dirPrefix = "loa-pgtest-"

// stopStale stops and removes the servers of test processes that died without stopping
// theirs (killed by a timeout, or by a closed pipe): each directory names its owner's pid.
func stopStale(run func(name string, args ...string) *exec.Cmd) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
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
