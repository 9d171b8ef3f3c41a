package player

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/protocol"
)

// A live relay read once by the hub and served stamped (protocol.RelayFrame, docs/sync.md):
// each frame says when, on the hub's clock and less the relay delay, its first sample is to be
// heard. The player plays the item's first frame at its stamp + Delay (converted to this
// machine's clock) and the rest on the clock after it, as it holds a scheduled play (sync.go):
// a gap in the stamps is bridged with silence, frames whose time has passed (the stamps went
// back) are dropped, and an output further than relayBound (or two device periods) off the
// clock for two measures running is put back at once:
// behind (the link to the hub stalled and the card ran dry), it drops what it can no longer
// play on time; ahead, it waits in silence.

// Stamping makes a URL item the hub's stamped feed of a live relay.
type Stamping struct {
	// Delay is how long after its stamp a frame is heard: the same on every cluster of an area.
	Delay time.Duration
	// Offset is the hub's clock minus this machine's (nil, or false: taken as 0).
	Offset func() (time.Duration, bool)
	// Auth is the Authorization header the hub wants (the device's credentials).
	Auth string
	// Direct is the upstream itself, played as it comes when the hub does not serve the feed
	// (it cannot reach the upstream, or is not told to relay it).
	Direct string
}

const (
	// stampSlack: stamps this close to where the last frame ended continue it.
	stampSlack = 10 * time.Millisecond
	// realign: a decoder this far off the stamps' time line is brought back to it (more than
	// the decoder's and the resampler's own latency, two MPEG frames at most).
	realign = 60 * time.Millisecond
	// relayBound: an output further than this off a stamped relay's clock is put back at once
	// (more than the servo's measure errs by, a device period; the servo closes less).
	relayBound = 80 * time.Millisecond
)

// stampedSource decodes a stamped feed into frames on its time line: frame k of the item is
// the sound stamped stamp0 + k/rate.
type stampedSource struct {
	*streamSource
	auth  string
	first *http.Response // the connection made when the item was opened
	kept  bool           // the engine has put the item on the clock

	stamp0   time.Time // the first frame's stamp: the item's frame 0
	end      time.Time // where the last frame taken ends on the stamps' time line
	silence  int64     // frames of silence still to give before held (a gap)
	discard  int64     // decoded frames to throw away (the decoder gave more than the stamps)
	given    int64     // frames Read has returned
	held     *protocol.RelayFrame
	overlaps atomic.Int64 // frames dropped because their time had been played
}

// openStamped connects to the hub's feed; an error means the hub does not serve it (the
// caller plays the upstream directly).
func openStamped(ctx context.Context, it Item, outRate int, wake <-chan struct{}, cfg streamConfig) (*stampedSource, error) {
	ss, sctx, err := newStreamSource(ctx, it.URL, outRate, wake)
	if err != nil {
		return nil, err
	}
	s := &stampedSource{streamSource: ss, auth: it.Stamped.Auth}
	s.first, err = s.connect(sctx, cfg)
	if err != nil {
		close(ss.done) // no network goroutine was started
		ss.Close()
		return nil, err
	}
	s.read = s.readFrames
	go s.run(sctx, cfg)
	return s, nil
}

// connect asks the hub for the feed; a refusal comes back as an error with the hub's words.
func (s *stampedSource) connect(ctx context.Context, cfg streamConfig) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("User-Agent", "loa-agent")
	resp, err := cfg.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, fmt.Errorf("hub answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// readFrames reads one connection's frames into chunks (the network goroutine's read).
func (s *stampedSource) readFrames(ctx context.Context, cfg streamConfig, onAudio func()) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	watchdog := time.AfterFunc(cfg.stall, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()
	resp := s.first
	s.first = nil
	if resp == nil {
		var err error
		if resp, err = s.connect(ctx, cfg); err != nil {
			if stalled.Load() {
				err = fmt.Errorf("relay %s: nothing received for %s", s.url, cfg.stall)
			}
			return 0, err
		}
	}
	defer resp.Body.Close()
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	defer stop()
	var n int64
	for {
		f, err := protocol.ReadRelayFrame(resp.Body, nil)
		if err != nil {
			switch {
			case stalled.Load():
				err = fmt.Errorf("relay %s: nothing received for %s", s.url, cfg.stall)
			case errors.Is(err, io.EOF):
				err = errors.New("the hub closed the relay")
			}
			return n, err
		}
		watchdog.Stop()
		if n == 0 {
			onAudio()
		}
		n++
		select {
		case s.chunks <- streamChunk{frame: &f}:
		case <-ctx.Done():
			return n, ctx.Err()
		}
		watchdog.Reset(cfg.stall)
	}
}

// Read gives the item's frames in order on the stamps' time line.
func (s *stampedSource) Read(ctx context.Context, dst []float32) (int, error) {
	for {
		if s.pend.empty() && s.silence > 0 {
			n := min(s.silence, int64(len(dst)/2))
			clear(dst[:2*n])
			s.silence -= n
			s.given += n
			return int(n), nil
		}
		if f := s.held; f != nil && s.pend.empty() {
			s.held = nil
			if err := s.dec.Feed(f.Payload); err != nil {
				return 0, err
			}
		}
		ok, err := s.decode()
		if ok && s.discard > 0 {
			n := min(s.discard, s.pending())
			s.pend.off += int(2 * n)
			s.discard -= n
			continue
		}
		if ok || err != nil {
			n := s.pend.take(dst)
			s.given += int64(n)
			return n, err
		}
		c, err := s.next(ctx)
		if c == nil {
			return 0, err
		}
		if err := s.take(c.frame); err != nil {
			return 0, err
		}
	}
}

// take places a frame on the time line: after silence for a gap in the stamps, or not at all
// if its time has been played. Everything fed before has been decoded by now.
func (s *stampedSource) take(f *protocol.RelayFrame) error {
	if s.stamp0.IsZero() {
		s.stamp0, s.end = f.Stamp, f.Stamp
	}
	d := f.Stamp.Sub(s.end)
	if d < -stampSlack {
		s.overlaps.Add(1)
		return nil
	}
	if d > stampSlack || f.Flags&protocol.RelayGap != 0 {
		// Another stretch of the upstream: its frames do not continue the decoder's.
		if err := s.dec.Reset(); err != nil {
			return err
		}
	}
	// Where the frame belongs on the time line, against what has been given and decoded: a gap
	// is bridged with silence, and a decoder that gave more or fewer samples than the stamps
	// say (a frame it could not decode) is brought back in line.
	exp := int64(f.Stamp.Sub(s.stamp0).Seconds() * float64(s.conv.out))
	off := exp - (s.given + s.pending() + s.silence - s.discard)
	bound := int64(realign.Seconds() * float64(s.conv.out))
	switch {
	case off > bound || (d > stampSlack && off > 0):
		s.silence += off
	case -off > bound:
		s.discard += -off
	}
	s.end = f.Stamp.Add(f.Duration())
	s.held = f
	return nil
}

// pending is how many decoded frames wait in pend.
func (s *stampedSource) pending() int64 { return int64(len(s.pend.buf)-s.pend.off) / 2 }

// heardAt is when, on this machine's clock, the item's frame 0 is to be heard.
func (s *stampedSource) heardAt(st *Stamping) time.Time {
	at := s.stamp0.Add(st.Delay)
	if st.Offset != nil {
		if off, ok := st.Offset(); ok {
			at = at.Add(-off) // the offset is the hub's clock minus ours
		}
	}
	return at
}
