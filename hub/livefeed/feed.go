// Package livefeed takes a live relay's upstream stream once, at the hub, and serves it to the
// agents stamped with the hub's wall time, so that every cluster of an area plays the same
// instant at the same time (issue 19 item 4, docs/sync.md "Live relays").
//
// The hub cuts the upstream MPEG stream into frames and stamps each one; it does not decode
// them (no audio library in the hub, and a 3G link carries the compressed stream, not PCM).
// A frame's stamp follows the one before it by its length, so the stamps keep the stream's
// own time; a frame that comes more than MaxLag after its stamp (the upstream stalled or
// dropped) starts the stamps again from the time it came, and is flagged as a gap.
package livefeed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/loa-project/loa/protocol"
)

// Options configure the feeds.
type Options struct {
	Log *slog.Logger
	// Now is the hub's clock: the stamps are its times.
	Now func() time.Time
	// HTTP fetches the upstreams (default: a client with no overall timeout).
	HTTP *http.Client
	// Backlog is how much of the past a feed keeps for an agent that joins (default 10 s): it
	// gets the frames it can still play on time rather than waiting a delay's worth.
	Backlog time.Duration
	// Linger keeps a feed connected this long after its last agent left (default 30 s): an
	// agent reconnecting, or the next item of the same relay, finds it running.
	Linger time.Duration
	// Stall drops an upstream connection quiet this long (default 10 s).
	Stall time.Duration
	// FirstFrame is how long an agent waits for a new feed's first frame before it is told
	// the hub cannot reach the upstream (default 10 s).
	FirstFrame time.Duration
}

const (
	// MaxLag: a frame that comes later than this after its stamp starts a new time line.
	MaxLag = time.Second
	// maxLead bounds how far the stamps may run ahead of the hub's clock (an upstream that
	// sends faster than real time, bursts on every reconnect) before they start again.
	maxLead = 30 * time.Second
	// backoff between upstream connection tries
	backoffMin, backoffMax = 500 * time.Millisecond, 10 * time.Second
)

// Feeds are the upstreams being relayed, one feed per upstream URL whoever asks.
type Feeds struct {
	o      Options
	mu     sync.Mutex
	feeds  map[string]*feed
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the feeds' goroutines
}

// New makes the hub's feeds; Close stops them.
func New(o Options) *Feeds {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 15 * time.Second}}
	}
	if o.Backlog <= 0 {
		o.Backlog = 10 * time.Second
	}
	if o.Linger <= 0 {
		o.Linger = 30 * time.Second
	}
	if o.Stall <= 0 {
		o.Stall = 10 * time.Second
	}
	if o.FirstFrame <= 0 {
		o.FirstFrame = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Feeds{o: o, feeds: map[string]*feed{}, ctx: ctx, cancel: cancel}
}

// Close disconnects every upstream and waits for the feeds' goroutines.
func (fs *Feeds) Close() {
	fs.cancel()
	fs.mu.Lock()
	for _, f := range fs.feeds {
		f.mu.Lock()
		if f.idle != nil && f.idle.Stop() {
			fs.wg.Done() // a lingering feed ends with the others, not Linger later
		}
		f.idle = nil
		f.mu.Unlock()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// Running is how many upstreams are connected (or being connected) now.
func (fs *Feeds) Running() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.feeds)
}

// stamped is one frame as it goes on the wire.
type stamped struct {
	stamp time.Time
	wire  []byte
}

// feed is one upstream read by the hub.
type feed struct {
	url    string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	frames  []stamped // the backlog and what is newer, oldest first
	first   int64     // sequence number of frames[0]
	changed chan struct{}
	users   int
	idle    *time.Timer // stops the feed once its last agent has been gone for Linger
	lastErr error
	ended   bool
}

// join returns the running feed of url, starting it if needed; leave must be called after.
func (fs *Feeds) join(url string) (*feed, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ctx.Err() != nil {
		return nil, errors.New("the hub is shutting down")
	}
	f := fs.feeds[url]
	if f == nil {
		ctx, cancel := context.WithCancel(fs.ctx)
		f = &feed{url: url, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
		fs.feeds[url] = f
		fs.wg.Add(1)
		go func() {
			defer fs.wg.Done()
			defer close(f.done)
			fs.run(ctx, f)
		}()
		fs.o.Log.Info("live relay: reading the upstream for the agents", "url", url)
	}
	f.mu.Lock()
	f.users++
	if f.idle != nil {
		if f.idle.Stop() {
			fs.wg.Done() // the linger's callback will not run
		}
		f.idle = nil
	}
	f.mu.Unlock()
	return f, nil
}

func (fs *Feeds) leave(f *feed) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users--
	if f.users > 0 {
		return
	}
	// The linger's callback is one of the feeds' goroutines: Close waits for it (or for its
	// timer to be stopped), so nothing logs after the hub has closed.
	fs.wg.Add(1)
	f.idle = time.AfterFunc(fs.o.Linger, func() {
		defer fs.wg.Done()
		fs.mu.Lock()
		f.mu.Lock()
		gone := f.users == 0
		if gone && fs.feeds[f.url] == f {
			delete(fs.feeds, f.url)
		}
		f.mu.Unlock()
		fs.mu.Unlock()
		if gone {
			fs.o.Log.Info("live relay: no agent left; upstream closed", "url", f.url)
			f.cancel()
		}
	})
}

// run keeps the feed's upstream connected, reconnecting with backoff, until ctx ends.
func (fs *Feeds) run(ctx context.Context, f *feed) {
	defer func() {
		f.mu.Lock()
		f.ended = true
		close(f.changed)
		f.mu.Unlock()
	}()
	st := &stamper{now: fs.o.Now}
	backoff := backoffMin
	for ctx.Err() == nil {
		got, err := fs.read(ctx, f, st)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		f.lastErr = err
		f.mu.Unlock()
		if got {
			backoff = backoffMin
			fs.o.Log.Warn("live relay: upstream dropped; reconnecting (the agents bridge the gap)", "url", f.url, "err", err)
		} else {
			fs.o.Log.Warn("live relay: upstream cannot be reached; retrying", "url", f.url, "err", err, "retry_in", backoff)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		if !got {
			backoff = min(2*backoff, backoffMax)
		}
	}
}

// read reads one connection to the upstream; it says whether audio came.
func (fs *Feeds) read(ctx context.Context, f *feed, st *stamper) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A socket deadline in effect: a connection quiet for Stall is dropped.
	watchdog := time.AfterFunc(fs.o.Stall, cancel)
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "loa-hub")
	resp, err := fs.o.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("upstream answered %s", resp.Status)
	}
	st.newConnection()
	var sc frameScanner
	r := bufio.NewReaderSize(resp.Body, 16<<10)
	buf := make([]byte, 8<<10)
	got := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			watchdog.Reset(fs.o.Stall)
			sc.add(buf[:n])
			for {
				payload, h, ok := sc.next()
				if !ok {
					break
				}
				got = true
				if infoFrame(payload, h) {
					continue
				}
				fs.publish(f, st.stamp(protocol.RelayFrame{Rate: h.rate, Channels: h.channels, Samples: h.samples, Payload: payload}))
			}
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("upstream closed the connection")
			}
			if ctx.Err() != nil && fs.ctx.Err() == nil {
				err = fmt.Errorf("nothing received for %s", fs.o.Stall)
			}
			return got, err
		}
	}
}

// publish appends a stamped frame and drops what is older than the backlog.
func (fs *Feeds) publish(f *feed, fr protocol.RelayFrame) {
	wire, err := protocol.AppendRelayFrame(nil, fr)
	if err != nil {
		fs.o.Log.Debug("live relay: frame left out", "url", f.url, "err", err)
		return
	}
	oldest := fs.o.Now().Add(-fs.o.Backlog)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames = append(f.frames, stamped{stamp: fr.Stamp, wire: wire})
	k := 0
	for k < len(f.frames)-1 && f.frames[k].stamp.Before(oldest) {
		k++
	}
	if k > 0 {
		f.frames = append(f.frames[:0:0], f.frames[k:]...)
		f.first += int64(k)
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// stamper gives each frame its stamp: right after the one before it, or the time it came
// when the stream broke (a new connection, a stall beyond MaxLag, stamps too far ahead).
type stamper struct {
	now   func() time.Time
	next  time.Time
	fresh bool // the next frame begins a connection
}

func (s *stamper) newConnection() { s.fresh = true }

func (s *stamper) stamp(fr protocol.RelayFrame) protocol.RelayFrame {
	t := s.now()
	if s.next.IsZero() || t.Sub(s.next) > MaxLag || s.next.Sub(t) > maxLead {
		s.next = t
		fr.Flags |= protocol.RelayGap
	}
	if s.fresh {
		// A new connection's first frame does not continue the last one's bit reservoir: the
		// player starts its decoder again.
		fr.Flags |= protocol.RelayGap
		s.fresh = false
	}
	fr.Stamp = s.next.UTC()
	s.next = s.next.Add(fr.Duration())
	return fr
}

// Serve sends the stamped feed of upstream to w until the client goes or the feed ends.
// delay is the agent's relay delay: it first gets the frames of the backlog it can still
// play on time (stamp + delay not past).
func (fs *Feeds) Serve(w http.ResponseWriter, r *http.Request, upstream string, delay time.Duration) {
	f, err := fs.join(upstream)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer fs.leave(f)
	ctx := r.Context()
	// The first frame, or why there is none yet.
	wait := time.NewTimer(fs.o.FirstFrame)
	defer wait.Stop()
	for {
		f.mu.Lock()
		n, ended, ch, lastErr := len(f.frames), f.ended, f.changed, f.lastErr
		f.mu.Unlock()
		if n > 0 {
			break
		}
		if ended {
			http.Error(w, "the hub stopped reading this relay", http.StatusServiceUnavailable)
			return
		}
		select {
		case <-ch:
			continue
		case <-wait.C:
			msg := "the hub cannot reach the upstream " + upstream
			if lastErr != nil {
				msg += ": " + lastErr.Error()
			}
			http.Error(w, msg+" (play it directly)", http.StatusBadGateway)
			return
		case <-ctx.Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-loa-relay")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	// Start at the oldest frame still to be heard on time.
	from := fs.o.Now().Add(-delay)
	f.mu.Lock()
	seq := f.first
	for i := range f.frames {
		if !f.frames[i].stamp.Before(from) || i == len(f.frames)-1 {
			seq = f.first + int64(i)
			break
		}
	}
	f.mu.Unlock()
	var out []byte
	for {
		f.mu.Lock()
		if seq < f.first {
			seq = f.first // this agent fell behind the backlog: it sees a gap in the stamps
		}
		out = out[:0]
		for _, fr := range f.frames[seq-f.first:] {
			out = append(out, fr.wire...)
		}
		seq = f.first + int64(len(f.frames))
		ch, ended := f.changed, f.ended
		f.mu.Unlock()
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if ended {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// ParseDelay reads the delay an agent asks for (a Go duration, 0 to 60 s); empty is 0.
func ParseDelay(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Minute {
		return 0, fmt.Errorf("delay %s: give a duration from 0 to 60s, e.g. delay=3s", strconv.Quote(v))
	}
	return d, nil
}
