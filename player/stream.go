package player

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/player/mpg123"
	"github.com/loa-project/loa/protocol"
)

// streamChunk is what the network goroutine hands to the decoder: audio bytes (ICY metadata
// removed), or the news that the connection dropped.
type streamChunk struct {
	data  []byte
	frame *protocol.RelayFrame // a stamped relay's frame (stampedSource) instead of data
	drop  bool
}

// streamSource relays an HTTP MP3 stream (Icecast/SHOUTcast). A goroutine keeps it connected,
// reconnecting with capped exponential backoff until the item's context ends.
type streamSource struct {
	connStats
	url    string
	dec    *mpg123.Decoder
	conv   rateConverter
	pend   pending
	chunks chan streamChunk
	wake   <-chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// read makes one connection and hands what comes to chunks until it ends; it returns how
	// much came (connectAndRead; stampedSource has its own).
	read func(ctx context.Context, cfg streamConfig, onAudio func()) (int64, error)
}

// connStats counts a network source's connections; the network goroutine counts, the proof
// reads.
type connStats struct {
	dropouts   atomic.Int64 // connections lost after audio had come
	reconnects atomic.Int64 // connections that brought audio back after a drop-out
	failures   atomic.Int64 // connection tries that brought no audio
	errs       chan error   // last connection error, for the proof when nothing played
}

// conns lets the engine read the counts of any network source.
func (s *connStats) conns() *connStats { return s }

type streamConfig struct {
	client     *http.Client
	log        *slog.Logger
	clock      Clock
	backoffMin time.Duration
	backoffMax time.Duration
	stall      time.Duration // a connection quiet this long is dropped
}

// streamStats is what the proof reports about a stream's connections.
type streamStats struct {
	dropouts, reconnects, failures int64
}

func (s *connStats) stats() streamStats {
	return streamStats{s.dropouts.Load(), s.reconnects.Load(), s.failures.Load()}
}

func openStream(ctx context.Context, url string, outRate int, wake <-chan struct{}, cfg streamConfig) (*streamSource, error) {
	s, ctx, err := newStreamSource(ctx, url, outRate, wake)
	if err != nil {
		return nil, err
	}
	s.read = s.connectAndRead
	go s.run(ctx, cfg)
	return s, nil
}

// newStreamSource makes a source whose network goroutine (run, with s.read) is still to start.
func newStreamSource(ctx context.Context, url string, outRate int, wake <-chan struct{}) (*streamSource, context.Context, error) {
	dec, err := mpg123.NewFeed()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &streamSource{
		url:    url,
		dec:    dec,
		conv:   rateConverter{out: outRate},
		chunks: make(chan streamChunk, 32),
		wake:   wake,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	s.errs = make(chan error, 1)
	return s, ctx, nil
}

func (s *connStats) lastErr() error {
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}

func (s *connStats) setErr(err error) {
	select {
	case <-s.errs:
	default:
	}
	s.errs <- err
}

func (s *streamSource) run(ctx context.Context, cfg streamConfig) {
	defer close(s.done)
	backoff := cfg.backoffMin
	connectedOnce := false
	var lostAt time.Time // when the last drop-out happened, for the log
	for ctx.Err() == nil {
		got, err := s.read(ctx, cfg, func() {
			if connectedOnce {
				s.reconnects.Add(1)
				cfg.log.Info("stream back", "url", s.url, "down_for", cfg.clock.Now().Sub(lostAt).Round(time.Millisecond))
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.setErr(err)
		}
		if got > 0 {
			backoff = cfg.backoffMin
			connectedOnce = true
			lostAt = cfg.clock.Now()
			s.dropouts.Add(1)
			cfg.log.Warn("stream dropped; reconnecting", "url", s.url, "err", err, "retry_in", backoff)
			select {
			case s.chunks <- streamChunk{drop: true}:
			case <-ctx.Done():
				return
			}
		} else {
			s.failures.Add(1)
			if connectedOnce {
				cfg.log.Warn("stream still down; retrying", "url", s.url, "err", err, "retry_in", backoff)
			} else {
				cfg.log.Warn("stream cannot be reached; retrying", "url", s.url, "err", err, "retry_in", backoff)
			}
		}
		select {
		case <-cfg.clock.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff *= 2
		if backoff > cfg.backoffMax {
			backoff = cfg.backoffMax
		}
	}
}

// connectAndRead streams until the connection ends; it returns how many audio bytes came.
// onAudio is called when the first audio bytes of the connection arrive. A connection (or
// its connecting) quiet for cfg.stall is abandoned: a stalled link counts as a drop-out.
func (s *streamSource) connectAndRead(ctx context.Context, cfg streamConfig, onAudio func()) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	// A network read timeout, so real time rather than the Clock (as a socket deadline would be).
	watchdog := time.AfterFunc(cfg.stall, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()
	quiet := func(err error) error {
		if stalled.Load() {
			return fmt.Errorf("stream %s: nothing received for %s", s.url, cfg.stall)
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Icy-MetaData", "1")
	req.Header.Set("User-Agent", "loa-agent")
	resp, err := cfg.client.Do(req)
	if err != nil {
		return 0, quiet(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("stream %s answered %s", s.url, resp.Status)
	}
	metaint := 0
	if v := resp.Header.Get("Icy-Metaint"); v != "" {
		metaint, err = strconv.Atoi(v)
		if err != nil || metaint < 0 || metaint > 1<<20 {
			return 0, fmt.Errorf("stream %s: bad icy-metaint header %q", s.url, v)
		}
	}
	r := newICYReader(bufio.NewReaderSize(resp.Body, 16<<10), metaint)
	var total int64
	for {
		buf := make([]byte, 4096)
		n, err := r.Read(buf)
		if n > 0 {
			// Waiting for the decoder (a paused program) is not the network being quiet.
			watchdog.Stop()
			if total == 0 {
				onAudio()
			}
			total += int64(n)
			select {
			case s.chunks <- streamChunk{data: buf[:n]}:
			case <-ctx.Done():
				return total, quiet(ctx.Err())
			}
			watchdog.Reset(cfg.stall)
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("server closed the connection")
			}
			return total, quiet(err)
		}
	}
}

// icyReader removes SHOUTcast/Icecast in-band metadata: after every metaint audio bytes
// comes one length byte L and L*16 bytes of metadata.
type icyReader struct {
	r       *bufio.Reader
	metaint int
	left    int // audio bytes before the next metadata block
}

func newICYReader(r *bufio.Reader, metaint int) *icyReader {
	return &icyReader{r: r, metaint: metaint, left: metaint}
}

func (r *icyReader) Read(p []byte) (int, error) {
	if r.metaint == 0 {
		return r.r.Read(p)
	}
	if r.left == 0 {
		l, err := r.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if _, err := r.r.Discard(int(l) * 16); err != nil {
			return 0, err
		}
		r.left = r.metaint
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= n
	return n, err
}

// decode turns what the decoder holds into pending output; false when it needs more input.
// A broken frame drops what is buffered, to resync on the next data.
func (s *streamSource) decode() (bool, error) {
	for s.pend.empty() {
		samples, err := s.dec.Frame()
		switch {
		case err == nil:
			if len(samples) > 0 {
				s.pend.buf, err = s.conv.convert(s.pend.buf[:0], samples, s.dec.Rate())
				s.pend.off = 0
				if err != nil {
					return false, fmt.Errorf("stream %s: %w", s.url, err)
				}
			}
			continue
		case err == mpg123.ErrNeedMore || err == mpg123.ErrDone:
		default:
			if rerr := s.dec.Reset(); rerr != nil {
				return false, rerr
			}
		}
		return false, nil
	}
	return true, nil
}

// next waits for the network's next chunk: nil with errDropout when the connection dropped,
// nil and nil when the engine is woken by a command.
func (s *streamSource) next(ctx context.Context) (*streamChunk, error) {
	select {
	case c := <-s.chunks:
		if c.drop {
			if err := s.dec.Reset(); err != nil {
				return nil, err
			}
			return nil, errDropout
		}
		return &c, nil
	case <-s.wake:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Read decodes what has arrived. It blocks until audio is there, the stream drops
// (errDropout), the engine is woken by a command (0, nil), or ctx ends.
func (s *streamSource) Read(ctx context.Context, dst []float32) (int, error) {
	for {
		if ok, err := s.decode(); ok || err != nil {
			return s.pend.take(dst), err
		}
		c, err := s.next(ctx)
		if c == nil {
			return 0, err
		}
		if err := s.dec.Feed(c.data); err != nil {
			return 0, err
		}
	}
}

func (s *streamSource) Skipped() (int64, int64) { return s.dec.Skipped() }

func (s *streamSource) Close() {
	s.cancel()
	<-s.done
	s.conv.close()
	s.dec.Close()
}

// icyConn lets Go's HTTP client read SHOUTcast v1 servers, whose status line is
// "ICY 200 OK" instead of "HTTP/1.0 200 OK".
type icyConn struct {
	net.Conn
	checked bool
	prefix  []byte
}

func (c *icyConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	if c.checked {
		return c.Conn.Read(p)
	}
	c.checked = true
	head := make([]byte, 4)
	n, err := io.ReadFull(c.Conn, head)
	if err != nil {
		c.prefix = head[:n]
		if n == 0 {
			return 0, err
		}
		return c.Read(p)
	}
	if string(head) == "ICY " {
		c.prefix = []byte("HTTP/1.0 ")
	} else {
		c.prefix = head
	}
	return c.Read(p)
}

// NewStreamClient is an HTTP client fit for radio streams: it accepts SHOUTcast's ICY
// status line and has no overall timeout (a relay lasts as long as its item; the player
// abandons a connection that goes quiet, Config.StallTimeout).
func NewStreamClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &icyConn{Conn: c}, nil
		},
		ResponseHeaderTimeout: 15 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	return &http.Client{Transport: tr}
}
