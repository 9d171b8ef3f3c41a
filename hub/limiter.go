package hub

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/staffapi"
)

// authLimiter counts failed credentials (staff tokens, device secrets) per source address.
// A source over the limit in its window is answered 429 without a store lookup until the
// window ends, and its failures are logged once per window with their count, so a guessing
// script neither loads the store nor floods the log. Behind a proxy every request has the
// proxy's address: auth_failure_limit must then be raised or set to -1 (off).
type authLimiter struct {
	max    int // failures per window; <= 0: no limit
	window time.Duration
	log    *slog.Logger

	mu sync.Mutex
	by map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

// maxSources bounds the table; beyond it, finished windows are dropped, then everything.
const maxSources = 100_000

func newAuthLimiter(max int, window time.Duration, log *slog.Logger) *authLimiter {
	return &authLimiter{max: max, window: window, log: log, by: map[string]*failWindow{}}
}

func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// refuse answers 429 and returns true when src is over the limit.
func (l *authLimiter) refuse(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	wait := l.wait(r, now)
	if wait <= 0 {
		return false
	}
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	staffapi.Error(w, http.StatusTooManyRequests, "too many failed credentials from your address: wait "+strconv.Itoa(secs)+" s, and check the token or device secret")
	return true
}

// failed counts a failure of src and logs it when it is the first of its window (with the
// count of the window before).
func (l *authLimiter) failed(r *http.Request, now time.Time, what string, attrs ...any) {
	src := source(r)
	l.mu.Lock()
	fw := l.by[src]
	prev := 0
	if fw == nil || now.Sub(fw.start) >= l.window {
		if fw != nil {
			prev = fw.n
		}
		if len(l.by) >= maxSources {
			for k, v := range l.by {
				if now.Sub(v.start) >= l.window {
					delete(l.by, k)
				}
			}
			if len(l.by) >= maxSources {
				clear(l.by)
			}
		}
		fw = &failWindow{start: now}
		l.by[src] = fw
	}
	fw.n++
	first := fw.n == 1
	l.mu.Unlock()
	if first {
		l.log.Warn(what+" refused; further failures from this address are counted, not logged, for a while",
			append(attrs, "remote", src, "failures_in_previous_window", prev)...)
	}
}

// wait is how long r's address must wait before its credentials are checked again (0: not
// at all).
func (l *authLimiter) wait(r *http.Request, now time.Time) time.Duration {
	if l.max <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if fw := l.by[source(r)]; fw != nil && fw.n >= l.max {
		return fw.start.Add(l.window).Sub(now)
	}
	return 0
}

// consoleLimiter lets the console's sign-in count against the same per-address limit as
// tokens and device secrets.
type consoleLimiter struct{ s *Server }

func (c consoleLimiter) Wait(r *http.Request) time.Duration {
	return c.s.authLimit.wait(r, c.s.clock.Now())
}
func (c consoleLimiter) Failed(r *http.Request) {
	c.s.authLimit.failed(r, c.s.clock.Now(), "console sign-in")
}
