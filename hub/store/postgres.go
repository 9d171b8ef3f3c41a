package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The store's SQL is written once, in the SQL that SQLite and PostgreSQL share, with SQLite's
// `?` and `?N` placeholders. A PostgreSQL connection rewrites each distinct query text once
// (cached) into PostgreSQL's: placeholders become $N and instr( becomes strpos(. Everything
// else that differs between the engines is kept out of the queries (RETURNING instead of
// LastInsertId, COUNT(*) FILTER instead of SUM of a comparison, TRUE instead of 1) or lives in
// the schema, which is written per engine (pgSchema).

// IsPostgres reports whether a data source names a PostgreSQL database rather than a SQLite file.
func IsPostgres(source string) bool {
	return strings.HasPrefix(source, "postgres://") || strings.HasPrefix(source, "postgresql://")
}

// writerLock is the key of the advisory lock every write transaction on PostgreSQL takes first:
// the store's writes are serialised as SQLite serialises them, also between several hubs on
// one database, so no write needs retrying after a serialisation failure.
const writerLock = 0x4c6f61 // "Loa"

// openPostgres opens the store on the PostgreSQL database named by the URL source, applying
// pending migrations in one transaction.
func openPostgres(ctx context.Context, source string, clock Clock, log *slog.Logger) (*DB, error) {
	shown := redact(source)
	cfg, err := pgx.ParseConfig(source)
	if err != nil {
		return nil, fmt.Errorf("open hub store %s: %w: %v", shown, ErrInvalid, err)
	}
	tr := &translator{}
	w := sql.OpenDB(&pgConnector{inner: stdlib.GetConnector(*cfg), tr: tr})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	db := &DB{w: w, clock: clock, log: log, path: shown, pg: true, pgCfg: cfg.Copy()}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open hub store %s: %w (is PostgreSQL running, and do the user, password and database exist?)", shown, err)
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open hub store %s: %w", shown, err)
	}
	// The read pool's sessions refuse writes, as SQLite's query_only does.
	rcfg := cfg.Copy()
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	r := sql.OpenDB(&pgConnector{inner: stdlib.GetConnector(*rcfg), tr: tr})
	if err := db.start(ctx, r); err != nil {
		return nil, fmt.Errorf("open hub store %s: %w", shown, err)
	}
	// Notifications to the other hubs go through their own connections (notify.go): never
	// queued behind the group writer, and NOTIFY is refused in the read pool's sessions.
	db.notes = sql.OpenDB(stdlib.GetConnector(*cfg.Copy()))
	db.notes.SetMaxOpenConns(2)
	return db, nil
}

// redact is the data source without its password, for messages and logs.
func redact(source string) string {
	u, err := url.Parse(source)
	if err != nil {
		return "(a PostgreSQL URL that does not parse)"
	}
	return u.Redacted()
}

// PostgreSQL's error codes the store maps to its own errors.
const (
	pgUniqueViolation = "23505"
	pgDiskFull        = "53100"
)

// pgError maps a PostgreSQL error to the store's: ErrFull when the server's disk is full,
// ErrExists on a unique key. Other errors pass unchanged.
func pgError(err error) error {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case pgDiskFull:
		if !errors.Is(err, ErrFull) {
			return fmt.Errorf("%w: %v", ErrFull, err)
		}
	case pgUniqueViolation:
		if !errors.Is(err, ErrExists) {
			return fmt.Errorf("%w: %v", ErrExists, err)
		}
	}
	return err
}

// pgConnector makes connections that rewrite the store's SQL for PostgreSQL.
type pgConnector struct {
	inner driver.Connector
	tr    *translator
}

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := cn.(*stdlib.Conn)
	if !ok { // pgx's stdlib always returns its *Conn; a change there should fail loudly here
		cn.Close()
		return nil, fmt.Errorf("pgx stdlib returned a %T, not *stdlib.Conn", cn)
	}
	return &pgConn{Conn: sc, tr: c.tr}, nil
}

func (c *pgConnector) Driver() driver.Driver { return c.inner.Driver() }

// pgConn is a pgx connection whose statements are rewritten by tr; every other method (begin,
// ping, reset, value checks) is pgx's own.
type pgConn struct {
	*stdlib.Conn
	tr *translator
}

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.Conn.Prepare(c.tr.sql(q)) }

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, c.tr.sql(q))
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, c.tr.sql(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, c.tr.sql(q), args)
}

// translator rewrites SQLite-dialect query text into PostgreSQL's, remembering each result:
// the store's queries are a few hundred distinct texts, rewritten once each.
type translator struct {
	done sync.Map // string -> string
	n    atomic.Int64
}

// maxTranslated bounds the cache against query texts built with values in them (LIMIT n).
const maxTranslated = 4096

func (tr *translator) sql(q string) string {
	if v, ok := tr.done.Load(q); ok {
		return v.(string)
	}
	out := toPostgres(q)
	if tr.n.Load() < maxTranslated {
		if _, had := tr.done.LoadOrStore(q, out); !had {
			tr.n.Add(1)
		}
	}
	return out
}

// toPostgres rewrites placeholders (? numbered in order, ?N as $N) and instr( as strpos(
// outside string literals, quoted names and comments.
func toPostgres(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))]) // a doubled quote is two literals back to back
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '$' && i+1 < len(q) && q[i+1] == '$': // a function body: kept as written
			j := strings.Index(q[i+2:], "$$")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end - 1
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
			} else {
				n++
				fmt.Fprint(&b, n)
			}
			i = j - 1
		case (c == 'i' || c == 'I') && strings.HasPrefix(strings.ToLower(q[i:min(i+6, len(q))]), "instr(") &&
			(i == 0 || !isWordByte(q[i-1])):
			b.WriteString("strpos(")
			i += 5
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
