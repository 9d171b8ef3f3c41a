package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Several hubs may serve from one PostgreSQL database (docs/scale.md). What one of them does
// for agents (a push, a command, a revocation) must reach the agents connected to the others:
// the hub that did it sends a notification through the database (PostgreSQL's NOTIFY) naming
// what changed, and every hub listening (LISTEN) reads it back from the store. A notification
// is delivered only to sessions listening at that moment: one sent while a hub's listening
// connection is down is lost, so after a reconnection the listener tells its consumer to
// read afresh (Event.Resync). On SQLite there is one hub: nothing is sent or received.

// Event is a notification from a hub on the same database (this one included), or a Resync.
type Event struct {
	Topic, Payload string
	// Resync: the listening connection was lost and is back; notifications sent meanwhile
	// were lost, so the consumer should bring what it holds up to date from the store.
	Resync bool
}

// notifyChannel is the PostgreSQL channel the hubs notify and listen on.
const notifyChannel = "loa_hub"

// MaxNotifyPayload bounds a notification's topic and payload together: PostgreSQL refuses
// payloads of 8000 bytes or more. Notifications carry ids, never documents.
const MaxNotifyPayload = 7900

// Shared reports whether other hubs may use this store at the same time (PostgreSQL): only
// then do Notify and Listen do anything.
func (db *DB) Shared() bool { return db.pg }

// Notify tells every hub listening on this database about topic (a word naming what changed)
// with payload (ids). On SQLite it does nothing.
func (db *DB) Notify(ctx context.Context, topic, payload string) error {
	if !db.pg {
		return nil
	}
	if topic == "" || strings.ContainsAny(topic, "\n") {
		return fmt.Errorf("notify: %w: topic %q must be one non-empty line", ErrInvalid, topic)
	}
	msg := topic + "\n" + payload
	if len(msg) > MaxNotifyPayload {
		return fmt.Errorf("notify %s: %w: %d bytes, at most %d (send ids, not documents)", topic, ErrInvalid, len(msg), MaxNotifyPayload)
	}
	if _, err := db.notes.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, msg); err != nil {
		return fmt.Errorf("notify %s: %w", topic, err)
	}
	return nil
}

// Listening reports whether the connection Listen holds is up (always false on SQLite).
func (db *DB) Listening() bool { return db.listening.Load() }

// Ping checks that the store answers reads and writes, within ctx.
func (db *DB) Ping(ctx context.Context) error {
	return errors.Join(db.r.PingContext(ctx), db.w.PingContext(ctx))
}

// dropIdle closes the pools' idle connections: after the listening connection was lost they
// may be to a server that went away (restarted, failed over), which a connection finds out
// only when a statement on it fails, failing a staff request or a write with it.
func (db *DB) dropIdle() {
	for _, p := range []*sql.DB{db.r, db.w, db.notes} {
		n := p.Stats().MaxOpenConnections
		p.SetMaxIdleConns(0)
		p.SetMaxIdleConns(cmp.Or(n, 2)) // 2: database/sql's default, for a pool without a bound
	}
}

// How the listening connection checks itself and reconnects.
const (
	listenPingEvery  = 10 * time.Second // a silent connection is pinged this often
	listenPingWait   = 5 * time.Second
	listenRetryFirst = 100 * time.Millisecond
	listenRetryMax   = 5 * time.Second
)

// Listen receives every notification sent on this database (Notify, by any hub) until ctx
// ends, then closes the channel. It holds a connection of its own, reconnecting with backoff
// when the database goes away, and sends an Event with Resync after each reconnection. The
// consumer must keep reading: a slow consumer holds up the notifications behind it. On
// SQLite the channel is closed at once.
func (db *DB) Listen(ctx context.Context) <-chan Event {
	out := make(chan Event, 256)
	if !db.pg {
		close(out)
		return out
	}
	go func() {
		defer close(out)
		retry, connected, failing := listenRetryFirst, false, false
		for ctx.Err() == nil {
			conn, err := db.listenConn(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !failing { // once per outage, not at every attempt
					db.log.Warn("cannot listen to the other hubs on the database; retrying with backoff: pushes and commands from other hubs reach this hub's agents only once it is back",
						"err", err)
					failing = true
				}
				wait := retry/2 + rand.N(retry/2+1) // jitter, so hubs do not come back in step
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				retry = min(2*retry, listenRetryMax)
				continue
			}
			retry, failing = listenRetryFirst, false
			if connected {
				db.dropIdle()
			}
			db.listening.Store(true)
			if connected {
				db.log.Info("listening to the other hubs again; reading afresh what was missed")
				select {
				case out <- Event{Resync: true}:
				case <-ctx.Done():
				}
			}
			connected = true
			err = db.receive(ctx, conn, out)
			db.listening.Store(false)
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			conn.Close(cctx)
			cancel()
			if ctx.Err() == nil {
				db.log.Warn("the connection listening to the other hubs was lost; reconnecting", "err", err)
			}
		}
	}()
	return out
}

// listenConn opens a connection of its own and listens on notifyChannel.
func (db *DB) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cfg := db.pgCfg.Copy()
	// A wait that times out only sets the socket's deadline, leaving the connection usable
	// (pgx's default also sends the server a cancel request, which is not wanted here).
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cctx, cancel := context.WithTimeout(ctx, listenPingEvery)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive passes conn's notifications to out until ctx ends or the connection fails; a
// connection silent for listenPingEvery is pinged.
func (db *DB) receive(ctx context.Context, conn *pgx.Conn, out chan<- Event) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			topic, payload, _ := strings.Cut(n.Payload, "\n")
			select {
			case out <- Event{Topic: topic, Payload: payload}:
			case <-ctx.Done():
				return ctx.Err()
			}
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			pctx, cancel := context.WithTimeout(ctx, listenPingWait)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}
