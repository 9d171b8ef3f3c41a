// Package screen drives the "screen" output: one full-screen mpv, controlled over its JSON
// IPC socket, shows programs of videos (H.264/MP4 and whatever else mpv plays), still images
// for a duration, and text bulletins (with an optional scrolling ticker line) drawn by libass.
// The items of a program are one mpv playlist, so the next item is opened while the current
// one plays and the screen never goes black between them. Proof of display comes from mpv's
// own events (first frame shown, end of file and why, playback position, dropped frames).
//
// The package knows nothing about schedules: the agent calls Show with what is due. See
// docs/screen.md.
//
// The files follow its seams: config.go (what a site sets and its checks), program.go (what a
// caller hands Show and gets back), show.go (a program's life on screen: Show, stop, finish),
// prepare.go (an item turned into an mpv loadfile), events.go (mpv's events turned into
// proofs), mpv.go (the process and its restarts), ipc.go (the JSON IPC protocol) and
// bulletin.go (text drawn as ASS subtitles).
package screen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Clock gives wall times for proofs and waits for the until cut and restart backoff.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ErrUnavailable wraps the error of a Show or Screenshot made while mpv is not running (it
// is being restarted after a crash, or the screen is closed).
var ErrUnavailable = errors.New("screen unavailable")

// Screen is one display driven by one mpv process.
type Screen struct {
	cfg Config
	clk Clock
	log *slog.Logger
	dir string
	own bool // dir was made by Open and is removed by Close
	palette

	showMu sync.Mutex // one Show/Stop command sequence at a time

	mu       sync.Mutex
	proc     *process
	entries  map[int64]entry     // mpv playlist entry id -> its program and item
	early    map[int64][]message // events of an entry whose loadfile reply is not back yet
	playing  int64               // entry id of the file mpv plays now (0: none)
	cur      *Showing            // the program that has (or is taking) the screen
	live     []*Showing          // programs not finished
	dropVO   int64
	dropDec  int64
	state    State
	closed   bool
	seq      int
	quit     chan struct{}
	superv   chan struct{}
	restarts int
	watchers sync.WaitGroup // each Show's watch; Close waits for them
}

type entry struct {
	sh  *Showing
	idx int
}

// Open checks the configuration, starts mpv (idle, full screen, black) and connects to it.
// A process that dies later is restarted in the background with backoff.
func Open(cfg Config, clk Clock, log *slog.Logger) (*Screen, error) {
	if clk == nil {
		clk = SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = withDefaults(cfg)
	s := &Screen{cfg: cfg, clk: clk, log: log, entries: map[int64]entry{}, early: map[int64][]message{},
		quit: make(chan struct{}), superv: make(chan struct{})}
	var err error
	if s.palette, err = checkConfig(cfg); err != nil {
		return nil, err
	}
	s.dir = cfg.Dir
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "loa-screen-"); err != nil {
			return nil, fmt.Errorf("screen: cannot make a runtime directory: %w", err)
		}
		s.own = true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("screen: runtime directory %s: %w", s.dir, err)
	}
	p, err := s.start()
	if err != nil {
		if s.own {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	s.mu.Lock()
	s.proc = p
	s.state.Running, s.state.PID = true, p.cmd.Process.Pid
	s.mu.Unlock()
	go s.supervise(p)
	return s, nil
}

// Screenshot writes what is on the screen now (video, image or bulletin with its ticker, at
// the source's resolution) to path as PNG/JPEG by its extension. It fails when the screen is
// idle.
func (s *Screen) Screenshot(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", path, err)
	}
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("screenshot: %w: mpv is not running", ErrUnavailable)
	}
	if _, err := p.ipc.command(ctx, "screenshot-to-file", abs, "subtitles"); err != nil {
		return fmt.Errorf("screenshot to %s (is anything on screen?): %w", abs, err)
	}
	return nil
}

// State reports the process and what is on screen.
func (s *Screen) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Restarts = s.restarts
	if e, ok := s.entries[s.playing]; ok && !e.sh.finished {
		st.Showing = e.sh.proofs[e.idx].Source
	}
	return st
}

// Close ends the program on screen, quits mpv and removes the runtime directory Open made.
func (s *Screen) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// A Show already past its closed check finishes first, so its watch is counted below.
	s.showMu.Lock()
	s.showMu.Unlock() //nolint:staticcheck // a barrier, not a critical section
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		s.stopShowing(cur, EndStopped)
	}
	close(s.quit)
	<-s.superv // stopping mpv finished every live program, which ends their watches
	s.watchers.Wait()
	if s.own {
		os.RemoveAll(s.dir)
	}
	return nil
}

func (s *Screen) noteError(msg string) {
	s.state.LastError, s.state.LastErrorAt = msg, s.clk.Now()
}
