package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/protocol"
)

// sessionEnd says how a connection ended.
type sessionEnd struct {
	welcomed   bool          // it got as far as a welcome
	lasted     time.Duration // from welcome to the end
	retryAfter time.Duration // the hub asked to wait this long (busy, 429/503)
	baseHint   time.Duration // welcome's reconnect_base_s
	err        error         // why it ended
	// authRefused: the hub refused the device's credentials (unknown, wrong secret, revoked).
	authRefused bool
}

// Run keeps the link up until ctx ends, then returns nil. Failures are logged, never
// returned: the daemon plays on whatever happens to the hub. Call it once per Link.
func (l *Link) Run(ctx context.Context) error {
	fetchDone := make(chan struct{})
	go func() {
		defer close(fetchDone)
		l.fetcher(ctx)
	}()
	defer func() { <-fetchDone }()
	defer l.commands.Wait() // they end with ctx: a command answered later goes through the outbox

	backoff := l.cfg.Backoff
	attempt := 0
	failures := 0 // attempts in a row that failed, for the moves' log
	refused := 0  // hubs in a row that refused this device's credentials
	for {
		from := l.hub()
		end := l.session(ctx)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if end.welcomed {
			failures = 0
			if end.baseHint > 0 {
				backoff.Base = end.baseHint
			}
			if end.lasted > backoff.Ceiling(1<<20) { // lasted longer than Max
				attempt = 0
			}
		}
		failures++
		if end.authRefused {
			refused++
		} else {
			refused = 0
		}
		wait := l.delay(backoff, attempt)
		if end.retryAfter > 0 {
			wait = max(wait, l.retryAfter(end.retryAfter))
		}
		if !l.down {
			// One message per outage: the technician sees when it started and why.
			l.down, l.downSince = true, l.d.Clock.Now()
			msg := "hub link lost; playing on and retrying with backoff"
			if !l.everUp {
				msg = "cannot reach the hub; playing on and retrying with backoff"
			}
			l.log.Warn(msg, "hub", from.ws, "err", end.err, "retry_in", wait.Round(time.Millisecond))
		} else {
			l.log.Debug("hub still unreachable", "hub", from.ws, "err", end.err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		}
		l.move(from, end, failures, refused, wait)
		attempt++
		if sleep(ctx, wait) {
			return nil
		}
	}
}

// move goes on to the next hub after a failure, when there are several. A refusal of the
// device's credentials moves on too, until every hub has refused in a row: then the link
// stays with the one it is at. The replicas share one store, so a refusal by all of them is
// the province's answer (the device is unknown or revoked), and hopping would only write the
// refusal into every replica's log; one replica alone refusing (restored from an old backup,
// or on the wrong database) must not keep the device from the others. The backoff keeps
// growing meanwhile, so a refused device asks once a backoff.Max until it is enrolled again.
func (l *Link) move(from hubAddr, end sessionEnd, failures, refused int, wait time.Duration) {
	n := len(l.hubs)
	if n == 1 {
		return
	}
	if refused >= n {
		if refused == n {
			l.log.Error("every hub refused this device's credentials: staying with this one and retrying with backoff; check device_id and the secret, or enrol the device again",
				"hub", from.ws, "hubs", n, "err", end.err)
		}
		return
	}
	to := l.moveOn()
	// Each hub's first failure of an outage is worth a line; going round a list of hubs
	// that are all down is not.
	level := slog.LevelInfo
	if failures > n {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, "moving to the next hub", "from", from.ws, "to", to.ws, "why", end.err, "retry_in", wait.Round(time.Millisecond))
}

// logUp logs a welcome, and the end of an outage if there was one.
func (l *Link) logUp(w *protocol.Welcome, offset, rtt time.Duration) {
	args := []any{"hub", l.hub().ws, "clock_offset", offset.Round(time.Millisecond), "rtt", rtt.Round(time.Millisecond), "resend_from", w.ResendFrom}
	if l.down {
		args = append(args, "outage", l.d.Clock.Now().Sub(l.downSince).Round(time.Second))
	}
	l.down, l.everUp = false, true
	l.log.Info("hub link up", args...)
}

// dial opens the websocket with the device's credentials.
func (l *Link) dial(ctx context.Context) (*websocket.Conn, sessionEnd) {
	d := l.d.Dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: l.cfg.HandshakeTimeout, Proxy: http.ProxyFromEnvironment}
	}
	h := http.Header{}
	h.Set("Authorization", protocol.FormatDeviceAuth(l.cfg.DeviceID, l.cfg.Secret))
	dctx, cancel := context.WithTimeout(ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	ws := l.hub().ws
	conn, resp, err := d.DialContext(dctx, ws, h)
	if err == nil {
		return conn, sessionEnd{}
	}
	if resp == nil {
		return nil, sessionEnd{err: fmt.Errorf("dialling %s: %w", ws, err)}
	}
	end := sessionEnd{}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, perr := strconv.Atoi(s); perr == nil && n > 0 {
			end.retryAfter = time.Duration(n) * time.Second
		}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		end.err = fmt.Errorf("the hub refused this device's credentials (HTTP %d): check device_id and secret in the agent config, or enrol the device again", resp.StatusCode)
		end.authRefused = true
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		end.err = fmt.Errorf("the hub is busy (HTTP %d)", resp.StatusCode)
	default:
		end.err = fmt.Errorf("the hub answered the websocket upgrade with HTTP %d (is %s a Loa hub?)", resp.StatusCode, ws)
	}
	return nil, end
}

// errRefusedByHub is the hub's error message closing a connection.
type errRefusedByHub struct{ m *protocol.ErrorMessage }

func (e errRefusedByHub) Error() string {
	return fmt.Sprintf("the hub closed the link: %s: %s", e.m.Code, e.m.Message)
}

var errNoWelcome = errors.New("the hub did not answer the hello with a welcome")
