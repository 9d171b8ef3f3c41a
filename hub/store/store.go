// Package store is the hub's storage: the area tree, devices, the content library, schedules,
// effective schedules with their delivery state, play confirmations, staff and the audit log,
// in one SQLite file (modernc.org/sqlite, pure Go, WAL) or in a PostgreSQL database (pgx).
//
// The methods of *DB are the store's contract, the same on either engine; the hub server
// declares the interface it consumes. Every method is safe for concurrent use.
//
// Times are stored as INTEGER Unix nanoseconds (UTC) so that range queries use indexes and
// values round-trip exactly; a zero time.Time is stored as NULL.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Clock is the time source for every created-at, sent-at and last-seen the store records.
type Clock interface{ Now() time.Time }

// Errors callers branch on; they are wrapped with a message naming what and where.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrInvalid       = errors.New("invalid")
	ErrStaleRevision = errors.New("revision not newer than the stored one")
	ErrUnauthorized  = errors.New("unauthorized")
	ErrClosed        = errors.New("the hub store is closed")
	// ErrFull is a write refused because the disk (or the filesystem's quota) is full:
	// nothing of it was stored, and it can be tried again once there is space.
	ErrFull = errors.New("the hub's disk is full")
)

// full marks err as ErrFull when it says the disk is full: SQLite's SQLITE_FULL ("database
// or disk is full"), or ENOSPC/EDQUOT from a file write.
func full(err error) error {
	if err == nil || errors.Is(err, ErrFull) {
		return err
	}
	var coded interface{ Code() int }
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.As(err, &coded) && coded.Code()&0xff == sqliteFull || strings.Contains(err.Error(), "database or disk is full") ||
		strings.Contains(err.Error(), "No space left on device") { // ffmpeg's words, from its stderr

		return fmt.Errorf("%w: %v", ErrFull, err)
	}
	return err
}

// IsFull reports whether err says the disk is full (see ErrFull).
func IsFull(err error) bool { return errors.Is(full(err), ErrFull) }

// sqliteFull is SQLITE_FULL, the primary result code of an insert that found no space.
const sqliteFull = 13

// DB is the hub store on one SQLite file or one PostgreSQL database (postgres.go).
//
// SQLite has one writer at a time. Writes go through a pool of exactly one connection so our
// own goroutines queue in Go instead of failing with SQLITE_BUSY; reads use a separate
// read-only pool, which WAL lets run beside the writer. busy_timeout covers other processes
// (a backup, the sqlite3 shell) holding the file.
type DB struct {
	w     *sql.DB
	r     *sql.DB
	clock Clock
	log   *slog.Logger
	path  string
	// pg: the store is on PostgreSQL. The queries are the same (postgres.go rewrites their
	// placeholders); the schema, savepoints and errors differ.
	pg bool
	// noSummaries stops keeping the report summaries at ingest: only the benchmark that
	// measures what keeping them costs sets it.
	noSummaries bool
	// rawReports makes reports read only the confirmations: tests compare the two ways.
	rawReports bool

	// Hot statements, prepared once: parsing SQL costs more than running these.
	getDevice    *sql.Stmt                   // on r
	checkSecret  *sql.Stmt                   // on r
	insertConf   *sql.Stmt                   // on w
	upsertMonth  *sql.Stmt                   // on w
	upsertDay    *sql.Stmt                   // on w
	upsertProg   *sql.Stmt                   // on w
	upsertReason *sql.Stmt                   // on w
	deviceAck    *sql.Stmt                   // on w
	walkAck      *sql.Stmt                   // on w
	setAck       *sql.Stmt                   // on w
	savepoint    *sql.Stmt                   // on w
	release      *sql.Stmt                   // on w
	rollbackTo   *sql.Stmt                   // on w
	setStatus    *sql.Stmt                   // on w
	setSeen      *sql.Stmt                   // on w
	effHead      *sql.Stmt                   // on w: device exists, latest effective revision
	insertEff    *sql.Stmt                   // on w
	insertEffDoc *sql.Stmt                   // on w
	markDeliv    map[DeliveryState]*sql.Stmt // on w

	// Several hubs on one PostgreSQL (notify.go): the listening connection's config, the
	// pool notifications are sent through, whether the listening connection is up.
	pgCfg     *pgx.ConnConfig
	notes     *sql.DB
	listening atomic.Bool

	// Group commit of every write (see write).
	writeQ    chan *writeReq
	quit      chan struct{}
	writeDone chan struct{}
	closeOnce sync.Once
	// Delivery reports folded into one statement each moment, on PostgreSQL (deliveries.go).
	markQ    chan *markReq
	markDone chan struct{}
}

// BusyTimeout is how long a connection waits for a lock held by another process.
const BusyTimeout = 10 * time.Second

// Open opens the store named by source, applies pending migrations in one transaction and
// returns it. A postgres:// or postgresql:// URL is a PostgreSQL database (which must exist);
// anything else is a SQLite file, created if need be, given as a path or as sqlite:PATH. The
// file is put in WAL mode with synchronous=FULL: every commit reaches the disk before it is
// answered, because an answer is a promise (an agent drops an acknowledged confirmation from
// its outbox; staff take a push's 200 as done). NORMAL lost acknowledged writes in the hub's
// power-cut test; the group writer keeps FULL's cost to one fsync per group (BENCHMARKS.md).
func Open(ctx context.Context, source string, clock Clock, log *slog.Logger) (*DB, error) {
	if IsPostgres(source) {
		if clock == nil {
			return nil, fmt.Errorf("open hub store %s: %w: nil clock", redact(source), ErrInvalid)
		}
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		return openPostgres(ctx, source, clock, log)
	}
	path := strings.TrimPrefix(source, "sqlite:")
	if path == "" {
		return nil, fmt.Errorf("open hub store: %w: empty path", ErrInvalid)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open hub store %q: %w: the path must not contain '?' or '#'", path, ErrInvalid)
	}
	if clock == nil {
		return nil, fmt.Errorf("open hub store %q: %w: nil clock", path, ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	busy := fmt.Sprint(BusyTimeout.Milliseconds())
	// temp_store=memory keeps the savepoint journal of a group commit (a copy of every page a
	// write changes) in memory rather than in a temporary file written with a syscall per page.
	w, err := sql.Open("sqlite", path+"?_busy_timeout="+busy+
		"&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_pragma=temp_store(memory)")
	if err != nil {
		return nil, fmt.Errorf("open hub store %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db := &DB{w: w, clock: clock, log: log, path: path}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open hub store %q: %w (is the directory writable?)", path, err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("open hub store %q: read journal mode: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("open hub store %q: journal mode is %q, want wal (is it on a filesystem without shared memory?)", path, mode)
	}
	if err := db.migrate(ctx); err != nil { // before the group writer starts: uses w directly
		w.Close()
		return nil, fmt.Errorf("open hub store %q: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?_busy_timeout="+busy+"&_foreign_keys=1&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open hub store %q for reading: %w", path, err)
	}
	if err := db.start(ctx, r); err != nil {
		return nil, fmt.Errorf("open hub store %q: %w", path, err)
	}
	return db, nil
}

// start completes Open once the schema is migrated: it sizes the read pool r, starts the
// group writer and prepares the hot statements. On error the store is closed.
func (db *DB) start(ctx context.Context, r *sql.DB) error {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.r = r
	db.writeQ, db.quit, db.writeDone = make(chan *writeReq), make(chan struct{}), make(chan struct{})
	go db.writer()
	if db.pg {
		db.markQ, db.markDone = make(chan *markReq), make(chan struct{})
		go db.marker()
	}
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return err
	}
	return nil
}

func (db *DB) prepare(ctx context.Context) error {
	var err error
	if db.getDevice, err = db.r.PrepareContext(ctx, "SELECT "+deviceCols+" FROM devices WHERE id = ?"); err != nil {
		return fmt.Errorf("prepare device lookup: %w", err)
	}
	if db.checkSecret, err = db.r.PrepareContext(ctx, "SELECT secret_hash, "+deviceCols+" FROM devices WHERE id = ?"); err != nil {
		return fmt.Errorf("prepare secret check: %w", err)
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&db.insertConf, insertConfirmation},
		{&db.upsertMonth, upsertMonth},
		{&db.upsertDay, upsertDay},
		{&db.upsertProg, upsertProg},
		{&db.upsertReason, upsertReason},
		{&db.deviceAck, "SELECT area_id, acked_seq, seq_offset, revoked_at IS NOT NULL FROM devices WHERE id = ?"},
		{&db.walkAck, "SELECT seq FROM confirmations WHERE device_id = ? AND seq > ? ORDER BY seq"},
		{&db.setAck, "UPDATE devices SET acked_seq = ? WHERE id = ?"},
		{&db.savepoint, "SAVEPOINT batch"},
		{&db.release, "RELEASE batch"},
		{&db.rollbackTo, "ROLLBACK TO batch"},
		{&db.setStatus, updateStatus},
		{&db.setSeen, "UPDATE devices SET last_seen = ? WHERE id = ?"},
		{&db.effHead, "SELECT (SELECT 1 FROM devices WHERE id = ?1), (SELECT COALESCE(MAX(revision), 0) FROM effective WHERE device_id = ?1)"},
		{&db.insertEff, insertEffective},
		{&db.insertEffDoc, insertEffectiveDoc},
	} {
		if *p.st, err = db.w.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
	}
	db.markDeliv = map[DeliveryState]*sql.Stmt{}
	for state, q := range markDeliveryQueries() {
		st, err := db.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		db.markDeliv[state] = st
	}
	return nil
}

// Close stops the group writer and closes both pools. Every write whose call has returned is
// committed; calls made after Close fail with ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { close(db.quit) })
	if db.writeDone != nil {
		<-db.writeDone
	}
	if db.markDone != nil {
		<-db.markDone
	}
	var errs []error
	sts := []*sql.Stmt{db.getDevice, db.checkSecret, db.insertConf, db.upsertMonth, db.upsertDay, db.upsertProg, db.upsertReason, db.deviceAck, db.walkAck, db.setAck,
		db.savepoint, db.release, db.rollbackTo, db.setStatus, db.setSeen, db.effHead, db.insertEff, db.insertEffDoc}
	for _, st := range db.markDeliv {
		sts = append(sts, st)
	}
	for _, st := range sts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if db.notes != nil {
		errs = append(errs, db.notes.Close())
	}
	return errors.Join(append(errs, db.r.Close(), db.w.Close())...)
}

// Path is the file the store lives in, or the PostgreSQL URL without its password.
func (db *DB) Path() string { return db.path }

// writeReq is one write waiting for the group writer.
type writeReq struct {
	ctx    context.Context
	weight int // rows it writes, roughly: bounds the size of one group
	// single: fn runs one statement, which SQLite undoes by itself when it fails, so it needs
	// no savepoint of its own (on SQLite: a failed statement aborts PostgreSQL's transaction).
	single bool
	fn     func(tx *sql.Tx) error
	err    error
	done   chan struct{} // closed when err is set
}

// Bounds on one group commit, so one transaction stays short.
const (
	maxGroupRequests = 256
	maxGroupRecords  = 20000
)

// write runs fn atomically in a write transaction and returns once it is committed (or failed).
// fn must use tx only: touching db.w inside would wait for itself.
//
// Writes are group-committed: a commit costs far more than a few small writes (on a 2-core VM
// about 0.3–0.5 ms, mostly WAL writes and the periodic checkpoint), and the hub writes from one
// goroutine per connected agent (deliveries, heartbeats, confirmations). So every write goes to
// one writer goroutine that folds all the writes waiting at that moment into one transaction,
// each under its own SAVEPOINT: a failing fn changes nothing and fails alone. If ctx ends
// before the write starts it is not run; once it runs, the caller waits for its commit.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writeWeighted(ctx, 1, fn)
}

// writeOne is write for an fn that runs exactly one statement.
func (db *DB) writeOne(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.submit(&writeReq{ctx: ctx, weight: 1, single: true, fn: fn, done: make(chan struct{})})
}

func (db *DB) writeWeighted(ctx context.Context, weight int, fn func(tx *sql.Tx) error) error {
	return db.submit(&writeReq{ctx: ctx, weight: weight, fn: fn, done: make(chan struct{})})
}

func (db *DB) submit(req *writeReq) error {
	ctx := req.ctx
	select {
	case db.writeQ <- req:
	case <-db.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-req.done
	if db.pg {
		return pgError(req.err)
	}
	return full(req.err)
}

// writer is the goroutine that commits writes, started by Open and stopped by Close. writeQ is
// unbuffered: a request is either taken by the writer or its caller sees quit, so none is left
// waiting at Close.
func (db *DB) writer() {
	defer close(db.writeDone)
	for {
		var group []*writeReq
		select {
		case r := <-db.writeQ:
			group = append(group, r)
		case <-db.quit:
			return
		}
		n := group[0].weight
	more:
		for len(group) < maxGroupRequests && n < maxGroupRecords {
			select {
			case r := <-db.writeQ:
				group = append(group, r)
				n += r.weight
			default:
				break more
			}
		}
		db.commitGroup(group)
	}
}

// commitGroup runs the writes of a group in one transaction, each under its own savepoint
// (none when it is alone: a failure then rolls the transaction back).
func (db *DB) commitGroup(group []*writeReq) {
	var live []*writeReq
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// The group is not cancelled by any one caller's context.
	ctx := context.Background()
	err := db.writeDirect(ctx, func(tx *sql.Tx) error {
		if len(live) == 1 {
			live[0].err = live[0].fn(tx)
			return live[0].err
		}
		for _, r := range live {
			if r.single && !db.pg {
				r.err = r.fn(tx)
				continue
			}
			if _, err := tx.StmtContext(ctx, db.savepoint).ExecContext(ctx); err != nil {
				return err
			}
			if r.err = r.fn(tx); r.err != nil {
				if _, err := tx.StmtContext(ctx, db.rollbackTo).ExecContext(ctx); err != nil {
					return err
				}
			}
			if _, err := tx.StmtContext(ctx, db.release).ExecContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, r := range live {
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("write not committed: %w", err) // a write that succeeded inside is lost with the group
		}
		close(r.done)
	}
}

// writeDirect runs fn in one write transaction (BEGIN IMMEDIATE on the single writer
// connection; on PostgreSQL, under the writers' advisory lock), bypassing the group writer:
// for Open's migrations and for the writer itself.
func (db *DB) writeDirect(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	if db.pg {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", writerLock); err != nil {
			tx.Rollback()
			return fmt.Errorf("take the writers' lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in one read transaction, so several queries see one snapshot (on PostgreSQL
// that takes REPEATABLE READ: its default gives each statement its own).
func (db *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.pg {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// now is the clock's time, in UTC.
func (db *DB) now() time.Time { return db.clock.Now().UTC() }

// ts turns a time into its stored form: Unix nanoseconds, NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromTS is the inverse of ts.
func fromTS(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// subtree returns a condition true when col names area or an area below it. It is a range on
// the id, which the index serves: every id below "a/b" sorts in ["a/b/", "a/b0") because '0'
// follows '/' in byte order. An empty area means the whole tree.
func subtree(col, area string) (string, []any) {
	if area == "" {
		return "TRUE", nil
	}
	return "(" + col + " = ? OR (" + col + " >= ? AND " + col + " < ?))", []any{area, area + "/", area + "0"}
}

// queryer is what *sql.DB and *sql.Tx share, so lookups work inside and outside transactions.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// limitClause renders a LIMIT; 0 or less means no limit.
func limitClause(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", n)
}
