package neighbours

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/content"
)

// Listen opens the listener (so a port already taken fails the agent's start, not later).
func (n *Neighbours) Listen() error {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("neighbours.listen %q: %w", n.cfg.Listen, err)
	}
	n.ln = ln
	return nil
}

// Run serves neighbours on the listener Listen opened until ctx ends.
func (n *Neighbours) Run(ctx context.Context) error {
	if n.ln == nil {
		return errors.New("neighbours: Run before Listen")
	}
	srv := &http.Server{Handler: n, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		MaxHeaderBytes: 8 << 10, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		srv.Close()
	}()
	n.log.Info("serving content to neighbours", "listen", n.ln.Addr().String(), "advertised", n.ContentAddr())
	err := srv.Serve(n.ln)
	<-stopped // Serve returns only after Close (or a listener failure, when ctx goes on)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeHTTP answers GET and HEAD /content/<ref>?from=&t=&sig= for a neighbour: the complete,
// verified item with Range, 404 (with FetchingHeader while it is being fetched here) when the
// store does not hold it.
func (n *Neighbours) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD /content/<ref>", http.StatusMethodNotAllowed)
		return
	}
	s, ok := strings.CutPrefix(r.URL.Path, "/content/")
	if !ok {
		http.Error(w, "only /content/<ref> is served here", http.StatusNotFound)
		return
	}
	ref, err := content.ParseRef(s)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case n.requests <- struct{}{}:
		defer func() { <-n.requests }()
	default:
		busy(w, "too many requests at once")
		return
	}
	if err := n.authorize(r, ref); err != nil {
		n.refusals.note(n.log, r.RemoteAddr, err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if !n.store.Has(ref) {
		if have, size, ok := n.store.Fetching(ref); ok {
			w.Header().Set(FetchingHeader, fmt.Sprintf("%d/%d", have, size))
		} else if n.wanting(ref) {
			w.Header().Set(WantingHeader, "1")
		}
		http.Error(w, "not here", http.StatusNotFound)
		return
	}
	f, err := n.store.Open(ref) // verified: a corrupt item is removed, never sent
	if err != nil {
		http.Error(w, "not here", http.StatusNotFound)
		return
	}
	defer f.Close()
	if r.Method == http.MethodGet {
		select {
		case n.transfers <- struct{}{}:
			defer func() { <-n.transfers }()
		default:
			busy(w, "sending to other neighbours")
			return
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+ref.String()+`"`)
	cw := &countingWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: n.cfg.Stall}
	start := time.Now()
	http.ServeContent(cw, r, "", time.Time{}, &pacedFile{File: f, pace: n.pace, ctx: r.Context()})
	if cw.n > 0 {
		n.served.Add(cw.n)
		n.log.Info("content sent to a neighbour", "ref", ref.String(), "neighbour", r.URL.Query().Get("from"),
			"remote", r.RemoteAddr, "bytes", cw.n, "took", time.Since(start).Round(time.Millisecond))
	}
}

func busy(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", "2")
	http.Error(w, why, http.StatusServiceUnavailable)
}

// authorize checks the request's signature with the commune's key and its age.
func (n *Neighbours) authorize(r *http.Request, ref content.Ref) error {
	n.mu.Lock()
	key := n.key
	n.mu.Unlock()
	if key == nil {
		return errors.New("this agent has no neighbour key from the hub yet")
	}
	q := r.URL.Query()
	from, ts, sig := q.Get("from"), q.Get("t"), q.Get("sig")
	if from == "" || ts == "" || sig == "" {
		return errors.New("unsigned request: from, t and sig are required")
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("t %q is not a unix time", ts)
	}
	if !hmac.Equal([]byte(sig), []byte(sign(key, ref, from, t))) {
		return fmt.Errorf("bad signature from %q: not of this commune's key", from)
	}
	if d := n.now().Sub(time.Unix(t, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("request signed by %q at %s, %s from this agent's hub time", from, time.Unix(t, 0).UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	return nil
}

// countingWriter counts the body bytes and keeps the connection's write deadline a stall
// ahead, so a neighbour that stops reading frees its transfer slot.
type countingWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	n     int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.stall))
	k, err := w.ResponseWriter.Write(b)
	w.n += int64(k)
	return k, err
}

// pacedFile reads an item at the pace the shared pacer allows.
type pacedFile struct {
	*os.File
	pace *pacer
	ctx  context.Context
}

func (f *pacedFile) Read(b []byte) (int, error) {
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	k, err := f.File.Read(b)
	if werr := f.pace.wait(f.ctx, k); werr != nil {
		return k, werr
	}
	return k, err
}

var _ io.ReadSeeker = (*pacedFile)(nil)

// pacer spreads the bytes of all transfers to rate bytes a second.
type pacer struct {
	rate float64
	mu   sync.Mutex
	next time.Time
}

func (p *pacer) wait(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refusalLog logs refused requests: the first at once, then one line a minute with how many
// came meanwhile, so a scan of the LAN does not fill the SD card with logs.
type refusalLog struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

func (l *refusalLog) note(log *slog.Logger, remote string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	if now := time.Now(); now.Sub(l.last) >= time.Minute {
		log.Warn("refused a content request on the neighbours port: not from an agent of this commune, or its clock is far off (check the hub link on both boxes)",
			"remote", remote, "err", err, "refused_since_last", l.count)
		l.last, l.count = now, 0
	}
}
