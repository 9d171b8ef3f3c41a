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
	"time"

	"github.com/loa-project/loa/player/mpg123"
)

// streamChunk is what the network goroutine hands to the decoder: audio bytes (ICY metadata
// removed), or the news that the connection dropped.
type streamChunk struct {
	data []byte
	drop bool
}

// streamSource relays an HTTP MP3 stream (Icecast/SHOUTcast). A goroutine keeps it connected,
// reconnecting with capped exponential backoff until the item's context ends.
type streamSource struct {
	url    string
	dec    *mpg123.Decoder
	conv   rateConverter
	pend   pending
	chunks chan streamChunk
	wake   <-chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	errs   chan error // last connection error, for the proof when nothing played
}

type streamConfig struct {
	client     *http.Client
	log        *slog.Logger
	clock      Clock
	backoffMin time.Duration
	backoffMax time.Duration
}

func openStream(ctx context.Context, url string, outRate int, wake <-chan struct{}, cfg streamConfig) (*streamSource, error) {
	dec, err := mpg123.NewFeed()
	if err != nil {
		return nil, err
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
		errs:   make(chan error, 1),
	}
	go s.run(ctx, cfg)
	return s, nil
}

func (s *streamSource) lastErr() error {
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}

func (s *streamSource) setErr(err error) {
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
	for ctx.Err() == nil {
		got, err := s.connectAndRead(ctx, cfg.client)
		if ctx.Err() != nil {
			return
		}
		if got > 0 {
			backoff = cfg.backoffMin
		}
		if err != nil {
			s.setErr(err)
		}
		if got > 0 || connectedOnce {
			cfg.log.Warn("stream dropped; reconnecting", "url", s.url, "err", err, "retry_in", backoff)
		}
		if got > 0 {
			connectedOnce = true
			select {
			case s.chunks <- streamChunk{drop: true}:
			case <-ctx.Done():
				return
			}
		} else if !connectedOnce {
			cfg.log.Warn("stream cannot be reached; retrying", "url", s.url, "err", err, "retry_in", backoff)
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
func (s *streamSource) connectAndRead(ctx context.Context, client *http.Client) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Icy-MetaData", "1")
	req.Header.Set("User-Agent", "loa-agent")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
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
			total += int64(n)
			select {
			case s.chunks <- streamChunk{data: buf[:n]}:
			case <-ctx.Done():
				return total, ctx.Err()
			}
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("server closed the connection")
			}
			return total, err
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

// Read decodes what has arrived. It blocks until audio is there, the stream drops
// (errDropout), the engine is woken by a command (0, nil), or ctx ends.
func (s *streamSource) Read(ctx context.Context, dst []float32) (int, error) {
	for s.pend.empty() {
		samples, err := s.dec.Frame()
		switch {
		case err == nil:
			if len(samples) > 0 {
				s.pend.buf, err = s.conv.convert(s.pend.buf[:0], samples, s.dec.Rate())
				s.pend.off = 0
				if err != nil {
					return 0, fmt.Errorf("stream %s: %w", s.url, err)
				}
			}
			continue
		case err == mpg123.ErrNeedMore || err == mpg123.ErrDone:
		default:
			// A broken frame: drop what is buffered and resync on the next data.
			if rerr := s.dec.Reset(); rerr != nil {
				return 0, rerr
			}
		}
		select {
		case c := <-s.chunks:
			if c.drop {
				if err := s.dec.Reset(); err != nil {
					return 0, err
				}
				return 0, errDropout
			}
			if err := s.dec.Feed(c.data); err != nil {
				return 0, err
			}
		case <-s.wake:
			return 0, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.pend.take(dst), nil
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
// status line and times out a connection that goes quiet, but never a whole long stream.
func NewStreamClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: &icyConn{Conn: c}, idle: 15 * time.Second}, nil
		},
		ResponseHeaderTimeout: 15 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	return &http.Client{Transport: tr}
}

// idleConn fails a read that waits longer than idle: a stalled stream counts as a drop.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}
