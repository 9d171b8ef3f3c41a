// Package screen drives the "screen" output: one full-screen mpv, controlled over its JSON
// IPC socket, shows programs of videos (H.264/MP4 and whatever else mpv plays), still images
// for a duration, and text bulletins (with an optional scrolling ticker line) drawn by libass.
// The items of a program are one mpv playlist, so the next item is opened while the current
// one plays and the screen never goes black between them. Proof of display comes from mpv's
// own events (first frame shown, end of file and why, playback position, dropped frames).
//
// The package knows nothing about schedules: the agent calls Show with what is due. See
// docs/screen.md.
package screen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// Config sets up the screen. The zero value is a working full-screen setup: DRM/KMS without
// a desktop, the GPU output when DISPLAY or WAYLAND_DISPLAY is set, no sound.
type Config struct {
	// MPV is the mpv binary (default "mpv" from PATH).
	MPV string `yaml:"mpv,omitempty"`
	// VO is mpv's video output: drm (a Pi without desktop), gpu, x11, null… Empty picks drm,
	// or gpu when a desktop is present.
	VO string `yaml:"vo,omitempty"`
	// Audio is where video sound goes. Empty or "none": muted (the loudspeakers belong to the
	// audio player). "auto": mpv's default device. Anything else is an mpv --audio-device,
	// e.g. "alsa/hdmi:CARD=vc4hdmi0,DEV=0" for the screen's own HDMI speakers.
	Audio string `yaml:"audio,omitempty"`
	// Width and Height of the canvas text bulletins are drawn on (default 1920×1080; mpv
	// scales it to the screen).
	Width  int `yaml:"width,omitempty"`
	Height int `yaml:"height,omitempty"`
	// Font is the fontconfig family of bulletins (default "DejaVu Sans", which has every
	// Vietnamese letter).
	Font string `yaml:"font,omitempty"`
	// Colours as #RRGGBB: bulletin background and letters, ticker band and letters.
	Background       string `yaml:"background,omitempty"`
	Foreground       string `yaml:"foreground,omitempty"`
	TickerBackground string `yaml:"ticker_background,omitempty"`
	TickerForeground string `yaml:"ticker_foreground,omitempty"`
	// TickerSpeed is how fast the ticker runs, in canvas pixels per second (default width/12:
	// 160 px/s at 1920).
	TickerSpeed float64 `yaml:"ticker_speed,omitempty"`
	// ImageDuration is how long a still image shows when its item gives no duration (10 s).
	ImageDuration time.Duration `yaml:"image_duration,omitempty"`
	// Args are extra mpv options, after Loa's own (so they override them): --hwdec=…,
	// --drm-connector=…, --vo-image-outdir=… in tests.
	Args []string `yaml:"mpv_args,omitempty"`
	// Dir holds the IPC socket and the rendered bulletins. Empty: a new temporary directory,
	// removed by Close.
	Dir string `yaml:"dir,omitempty"`
	// StartTimeout is how long mpv may take to open its socket (default 10 s).
	StartTimeout time.Duration `yaml:"start_timeout,omitempty"`
}

// Item is one entry of a program: a file (video or still image, told apart by its content),
// or a text bulletin. A ticker line can run along the bottom of a bulletin or a video.
type Item struct {
	// Path of a local video or image file.
	Path string `json:"path,omitempty"`
	// Text is a bulletin shown full screen (when Path is empty). Line breaks are kept.
	Text string `json:"text,omitempty"`
	// Ticker scrolls right to left along the bottom, over a bulletin or a video.
	Ticker string `json:"ticker,omitempty"`
	// Duration: how long a bulletin or image shows (required for a bulletin; images default
	// to Config.ImageDuration); for a video, 0 plays it whole and more than 0 cuts it.
	Duration time.Duration `json:"duration,omitempty"`
	// Background overrides Config.Background for this bulletin (#RRGGBB), e.g. red for an
	// emergency.
	Background string `json:"background,omitempty"`
}

func (it Item) String() string {
	if it.Path != "" {
		return it.Path
	}
	if it.Text == "" {
		return "ticker:" + it.Ticker
	}
	return "text:" + it.Text
}

// Program is what Show shows.
type Program struct {
	Items []Item
	// Until is a hard end (the scheduler's cut); zero means none.
	Until time.Time
	// StartItem and StartAt resume a program: the first item shown and, for a video, the
	// position inside it.
	StartItem int
	StartAt   time.Duration
	// OnItemStart is called when an item's first frame is up; OnItemEnd with its proof when
	// it has left the screen (or failed, or was never reached). They run on the event
	// goroutine and must return quickly.
	OnItemStart func(index int, at time.Time)
	OnItemEnd   func(index int, proof Proof)
}

// How an item or a program ended (the same words as the audio player's).
const (
	EndCompleted = "completed" // shown to its end (a still or bulletin: for its duration)
	EndStopped   = "stopped"   // Stop was called, or another Show took the screen (preemption)
	EndUntil     = "until"     // the program's hard end time came
	EndCancelled = "cancelled" // the context given to Show ended
	EndFailed    = "failed"    // could not be shown (see Error)
	EndSkipped   = "skipped"   // not reached: the program ended before it
)

// Proof is what the screen showed for one item, from mpv's events.
type Proof struct {
	Item   int    `json:"item"`
	Source string `json:"source"`
	Kind   string `json:"kind"` // video | image | text
	// Start is when mpv had the first frame up (its playback-restart event); zero if never.
	Start time.Time `json:"start"`
	// End is when the item left the screen (mpv's end-file event).
	End time.Time `json:"end"`
	// ShownS is End minus Start: how long the item was on screen.
	ShownS float64 `json:"shown_s"`
	// PositionS is the media time reached (mpv's playback-time): for a video, how much of it
	// was played; 0 for a still image.
	PositionS float64 `json:"position_s"`
	// FramesDropped by the video output and the decoder while the item played (mpv's
	// frame-drop-count and decoder-frame-drop-count).
	FramesDropped int64  `json:"frames_dropped"`
	Ended         string `json:"ended"`
	Error         string `json:"error,omitempty"`
}

// Result is a finished program.
type Result struct {
	Items []Proof `json:"items"`
	Ended string  `json:"ended"`
	// Item and At are where the program stopped, to resume it later (on_interrupt: resume).
	Item int           `json:"item"`
	At   time.Duration `json:"at"`
}

// State is what status reports for the screen.
type State struct {
	Running     bool      // mpv is up and answering
	PID         int       // mpv's process id
	Restarts    int       // times mpv was started again after it died
	Showing     string    // the item on screen, "" when idle
	LastError   string    // the most recent failure, "" if none since start
	LastErrorAt time.Time // when it happened (injected clock)
}

// Screen is one display driven by one mpv process.
type Screen struct {
	cfg Config
	clk Clock
	log *slog.Logger
	dir string
	own bool // dir was made by Open and is removed by Close
	bg  rgb
	fg  rgb
	tb  rgb
	tf  rgb

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
	for _, c := range []struct {
		dst  *rgb
		v    string
		name string
	}{{&s.bg, cfg.Background, "background"}, {&s.fg, cfg.Foreground, "foreground"},
		{&s.tb, cfg.TickerBackground, "ticker_background"}, {&s.tf, cfg.TickerForeground, "ticker_foreground"}} {
		if *c.dst, err = parseColour(c.v); err != nil {
			return nil, fmt.Errorf("screen config: %s: %w", c.name, err)
		}
	}
	if strings.ContainsAny(cfg.Font, ",\n") {
		return nil, fmt.Errorf("screen config: font %q: a family name cannot hold a comma or a line break", cfg.Font)
	}
	if cfg.Width < 64 || cfg.Height < 64 {
		return nil, fmt.Errorf("screen config: canvas %dx%d is too small (at least 64x64)", cfg.Width, cfg.Height)
	}
	// mpv reads per-file option values as lists split on ':' and ','.
	if strings.ContainsAny(cfg.Dir, ":,") {
		return nil, fmt.Errorf("screen config: dir %q: mpv cannot take a path with ':' or ','", cfg.Dir)
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

func withDefaults(c Config) Config {
	if c.MPV == "" {
		c.MPV = "mpv"
	}
	if c.VO == "" {
		c.VO = "drm"
		if os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
			c.VO = "gpu"
		}
	}
	if c.Width == 0 {
		c.Width = 1920
	}
	if c.Height == 0 {
		c.Height = 1080
	}
	if c.Font == "" {
		c.Font = "DejaVu Sans"
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Background, "#0B2E59")
	def(&c.Foreground, "#FFFFFF")
	def(&c.TickerBackground, "#FFD200")
	def(&c.TickerForeground, "#000000")
	if c.TickerSpeed <= 0 {
		c.TickerSpeed = float64(c.Width) / 12
	}
	if c.ImageDuration <= 0 {
		c.ImageDuration = 10 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	return c
}

// Showing is a program on the screen.
type Showing struct {
	s    *Screen
	prog Program

	// guarded by s.mu
	proofs     []Proof
	started    []bool   // playback-restart seen
	lastErr    []string // the last error mpv logged while the item played
	current    int      // item on screen, -1 when none
	pos        float64
	dropBase   int64
	stopReason string
	result     Result
	done       chan struct{}
	finished   bool
}

// Done is closed when the program has left the screen.
func (sh *Showing) Done() <-chan struct{} { return sh.done }

// Wait waits for the end and returns the result.
func (sh *Showing) Wait() Result {
	<-sh.done
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	return sh.result
}

// Stop takes the program off the screen at once (the screen goes black) and returns the
// result. Stopping a program that another Show already replaced only returns its result.
func (sh *Showing) Stop() Result {
	sh.s.stopShowing(sh, EndStopped)
	return sh.Wait()
}

// Progress is the item on screen and the media position in it.
func (sh *Showing) Progress() (item int, at time.Duration) {
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	return sh.current, time.Duration(sh.pos * float64(time.Second))
}

// prepared is one item turned into an mpv loadfile.
type prepared struct {
	url  string
	opts []string
	kind string
	err  error
}

// Show puts prog on the screen at once, replacing what is there (which ends "stopped"): the
// switch is one mpv playlist replace, so there is no black in between. It returns as soon as
// mpv has the playlist; items that cannot be shown (missing file, bulletin without duration)
// get a failed proof and the others play.
func (s *Screen) Show(ctx context.Context, prog Program) (*Showing, error) {
	if len(prog.Items) == 0 {
		return nil, errors.New("screen: a program needs at least one item")
	}
	if prog.StartItem < 0 || prog.StartItem >= len(prog.Items) {
		return nil, fmt.Errorf("screen: start item %d is outside the program's %d items", prog.StartItem, len(prog.Items))
	}
	s.showMu.Lock()
	defer s.showMu.Unlock()
	s.mu.Lock()
	p := s.proc
	closed := s.closed
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("screen: %w: closed", ErrUnavailable)
	}
	if p == nil {
		return nil, fmt.Errorf("screen: %w: mpv is being restarted (%s)", ErrUnavailable, s.State().LastError)
	}
	s.removeOldBulletins(seq)

	sh := &Showing{s: s, prog: prog, proofs: make([]Proof, len(prog.Items)), started: make([]bool, len(prog.Items)),
		lastErr: make([]string, len(prog.Items)), current: -1, done: make(chan struct{})}
	prep := make([]prepared, len(prog.Items))
	for i, it := range prog.Items {
		sh.proofs[i] = Proof{Item: i, Source: it.String()}
		if i < prog.StartItem {
			continue
		}
		at := time.Duration(0)
		if i == prog.StartItem {
			at = prog.StartAt
		}
		prep[i] = s.prepare(it, seq, i, at)
		sh.proofs[i].Kind = prep[i].kind
	}

	s.mu.Lock()
	if old := s.cur; old != nil && !old.finished && old.stopReason == "" {
		old.stopReason = EndStopped
		if old.current < 0 {
			s.finishLocked(old, "")
		}
	}
	s.cur = sh
	s.live = append(s.live, sh)
	// Events of unknown entries only matter while a Show registers its entries (Shows are
	// serialised): anything left from before is stale.
	clear(s.early)
	for id, e := range s.entries {
		if e.sh.finished {
			delete(s.entries, id)
		}
	}
	var calls []func()
	for i := range prog.Items {
		if i < prog.StartItem {
			sh.proofs[i].Ended = EndSkipped
		} else if prep[i].err != nil {
			sh.proofs[i].Ended, sh.proofs[i].Error = EndFailed, prep[i].err.Error()
			s.noteError(prep[i].err.Error())
			calls = append(calls, sh.endCall(i))
		}
	}
	s.mu.Unlock()
	runCalls(calls)

	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mode := "replace"
	for i := prog.StartItem; i < len(prog.Items); i++ {
		if prep[i].err != nil {
			continue
		}
		data, err := p.ipc.command(cctx, "loadfile", prep[i].url, mode, strings.Join(prep[i].opts, ","))
		var id int64
		if err == nil {
			var r struct {
				ID int64 `json:"playlist_entry_id"`
			}
			if err = json.Unmarshal(data, &r); err == nil && r.ID == 0 {
				err = errors.New("mpv did not return a playlist entry id (mpv older than 0.33?)")
			}
			id = r.ID
		}
		s.mu.Lock()
		if err != nil {
			sh.proofs[i].Ended, sh.proofs[i].Error = EndFailed, fmt.Sprintf("%s: %v", prog.Items[i], err)
			s.noteError(sh.proofs[i].Error)
			calls = []func(){sh.endCall(i)}
		} else {
			mode = "append"
			s.entries[id] = entry{sh, i}
			ev := s.early[id]
			delete(s.early, id)
			calls = nil
			for _, m := range ev {
				calls = append(calls, s.handleLocked(p, m)...)
			}
		}
		s.mu.Unlock()
		runCalls(calls)
	}
	if mode == "replace" {
		// Nothing could be loaded: the screen still belongs to this program, so blank it.
		if _, err := p.ipc.command(cctx, "stop"); err != nil {
			s.log.Warn("screen: could not blank the screen", "err", err)
		}
		s.mu.Lock()
		calls = s.finishLocked(sh, EndFailed)
		s.mu.Unlock()
		runCalls(calls)
		return sh, nil
	}
	s.log.Info("screen: program on screen", "items", len(prog.Items), "first", prog.Items[prog.StartItem].String())
	go s.watch(ctx, sh)
	return sh, nil
}

// watch applies the program's hard end and its context.
func (s *Screen) watch(ctx context.Context, sh *Showing) {
	var until <-chan time.Time
	if !sh.prog.Until.IsZero() {
		until = s.clk.After(sh.prog.Until.Sub(s.clk.Now()))
	}
	select {
	case <-sh.done:
	case <-ctx.Done():
		s.stopShowing(sh, EndCancelled)
	case <-until:
		s.stopShowing(sh, EndUntil)
	}
}

// Stop blanks the screen: the program on it ends "stopped".
func (s *Screen) Stop() {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		s.stopShowing(cur, EndStopped)
		<-cur.done
	}
}

// stopShowing takes sh off the screen with the given reason. mpv's end-file for the item on
// screen then finishes it; if mpv does not confirm within 5 s the program is finished anyway.
func (s *Screen) stopShowing(sh *Showing, reason string) {
	s.showMu.Lock()
	defer s.showMu.Unlock()
	s.mu.Lock()
	if sh.finished || sh.stopReason != "" {
		s.mu.Unlock()
		return
	}
	sh.stopReason = reason
	p := s.proc
	var calls []func()
	onScreen := s.cur == sh && p != nil
	if !onScreen || sh.current < 0 {
		calls = s.finishLocked(sh, "")
	}
	s.mu.Unlock()
	runCalls(calls)
	if !onScreen {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.ipc.command(ctx, "stop"); err != nil {
		s.log.Warn("screen: mpv did not take the stop command", "err", err)
	}
	select {
	case <-sh.done:
	case <-s.clk.After(5 * time.Second):
		s.mu.Lock()
		if sh.current >= 0 {
			sh.proofs[sh.current].Error = "mpv did not confirm the stop within 5s"
		}
		calls = s.finishLocked(sh, "")
		s.mu.Unlock()
		runCalls(calls)
	}
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
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		s.stopShowing(cur, EndStopped)
	}
	close(s.quit)
	<-s.superv
	if s.own {
		os.RemoveAll(s.dir)
	}
	return nil
}

// prepare turns an item into a loadfile URL and per-file options.
func (s *Screen) prepare(it Item, seq, i int, at time.Duration) prepared {
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
	quote := func(v string) string { return fmt.Sprintf("%%%d%%%s", len(v), v) }
	var pr prepared
	if it.Path == "" && it.Text == "" {
		pr.kind = "text"
		pr.err = errors.New("item has neither a file nor a text")
		return pr
	}
	if it.Path == "" {
		pr.kind = "text"
		if it.Duration <= 0 {
			pr.err = fmt.Errorf("text bulletin %.40q has no duration", it.Text)
			return pr
		}
		bg := s.bg
		if it.Background != "" {
			c, err := parseColour(it.Background)
			if err != nil {
				pr.err = fmt.Errorf("text bulletin background: %w", err)
				return pr
			}
			bg = c
		}
		ass, err := s.writeBulletin(it, seq, i, it.Duration)
		if err != nil {
			pr.err = err
			return pr
		}
		// A ticker needs frames to move; a still bulletin needs few.
		rate := 5
		if it.Ticker != "" {
			rate = 25
		}
		pr.url = fmt.Sprintf("av://lavfi:color=c=%s:s=%dx%d:r=%d:d=%s", bg.lavfi(), s.cfg.Width, s.cfg.Height, rate, secs(it.Duration))
		// A bulletin shorter than two frames is one frame, which mpv treats as a still image.
		pr.opts = append(pr.opts, "sub-files="+quote(ass), "image-display-duration="+secs(it.Duration))
		if at > 0 {
			pr.opts = append(pr.opts, "start="+secs(at))
		}
		return pr
	}
	abs, err := filepath.Abs(it.Path)
	if err != nil {
		pr.err = fmt.Errorf("%s: %w", it.Path, err)
		return pr
	}
	kind, err := sniff(abs)
	pr.kind = kind
	if err != nil {
		pr.err = err
		return pr
	}
	pr.url = abs
	if kind == "image" {
		d := it.Duration
		if d <= 0 {
			d = s.cfg.ImageDuration
		}
		if at > 0 && at < d {
			d -= at // a still joined mid-way shows for what is left of its time
		}
		if it.Ticker != "" {
			// A still is one frame and subtitles move only when frames come: repeat it at
			// 25 fps on the bulletin canvas so the ticker runs, and cut it at its duration.
			w, h := s.cfg.Width, s.cfg.Height
			vf := fmt.Sprintf("lavfi=[loop=loop=-1:size=1,fps=25,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2]", w, h, w, h)
			pr.opts = append(pr.opts, "vf="+quote(vf), "end="+secs(d))
		} else {
			pr.opts = append(pr.opts, "image-display-duration="+secs(d))
		}
	} else {
		if it.Duration > 0 {
			pr.opts = append(pr.opts, "end="+secs(it.Duration))
		}
		if at > 0 {
			pr.opts = append(pr.opts, "start="+secs(at))
		}
	}
	if it.Ticker != "" {
		d := it.Duration
		if d <= 0 {
			d = 24 * time.Hour // the ticker runs as long as the video does
		}
		ass, err := s.writeBulletin(Item{Ticker: it.Ticker}, seq, i, d)
		if err != nil {
			pr.err = err
			return pr
		}
		pr.opts = append(pr.opts, "sub-files="+quote(ass))
	}
	return pr
}

// writeBulletin renders the ASS script of a bulletin or ticker into the runtime directory.
func (s *Screen) writeBulletin(it Item, seq, i int, d time.Duration) (string, error) {
	l := layout{W: s.cfg.Width, H: s.cfg.Height, Font: s.cfg.Font, Text: it.Text, Ticker: it.Ticker,
		Foreground: s.fg, TickerBand: s.tb, TickerText: s.tf, TickerSpeed: s.cfg.TickerSpeed, Duration: d}
	path := filepath.Join(s.dir, fmt.Sprintf("bulletin-%d-%d.ass", seq, i))
	if err := os.WriteFile(path, []byte(buildASS(l)), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the bulletin for %s: %w", it, err)
	}
	return path, nil
}

// removeOldBulletins deletes the scripts of programs before the previous one (the previous
// one may still be on screen while the new one loads).
func (s *Screen) removeOldBulletins(seq int) {
	files, _ := filepath.Glob(filepath.Join(s.dir, "bulletin-*.ass"))
	for _, f := range files {
		var n, i int
		if _, err := fmt.Sscanf(filepath.Base(f), "bulletin-%d-%d.ass", &n, &i); err == nil && n < seq-1 {
			os.Remove(f)
		}
	}
}

// sniff tells a still image from a video by the file's first bytes (content-addressed files
// have no extension).
func sniff(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "video", fmt.Errorf("file not found: %s", path)
		}
		return "video", fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "video", fmt.Errorf("%s: %w", path, err)
	}
	if fi.IsDir() {
		return "video", fmt.Errorf("%s is a directory, not a video or image", path)
	}
	head := make([]byte, 16)
	n, _ := f.Read(head)
	return sniffBytes(head[:n]), nil
}

// sniffBytes is "image" for PNG, JPEG, GIF, BMP and WebP signatures, else "video".
func sniffBytes(b []byte) string {
	switch {
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n",
		len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF,
		len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"),
		len(b) >= 2 && string(b[:2]) == "BM",
		len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image"
	}
	return "video"
}

// --- events ---

// onEvent handles one mpv event (on the IPC reader goroutine).
func (s *Screen) onEvent(p *process, m message) {
	s.mu.Lock()
	calls := s.handleLocked(p, m)
	s.mu.Unlock()
	runCalls(calls)
}

// handleLocked applies an event to the programs' proofs and returns the callbacks to run
// once s.mu is released.
func (s *Screen) handleLocked(p *process, m message) []func() {
	if p != s.proc {
		return nil // a late event of a process already replaced
	}
	now := s.clk.Now()
	switch m.Event {
	case "start-file":
		s.playing = m.EntryID
		e, ok := s.entries[m.EntryID]
		if !ok {
			s.early[m.EntryID] = append(s.early[m.EntryID], m)
			return nil
		}
		var calls []func()
		// Any other program still waiting for its end lost the screen now.
		for _, o := range slices.Clone(s.live) {
			if o != e.sh && o.stopReason != "" {
				calls = append(calls, s.finishLocked(o, "")...)
			}
		}
		if e.sh.finished {
			return calls
		}
		e.sh.current, e.sh.pos, e.sh.dropBase = e.idx, 0, s.dropVO+s.dropDec
		return calls
	case "playback-restart":
		e, ok := s.entries[s.playing]
		if !ok {
			if s.playing != 0 {
				s.early[s.playing] = append(s.early[s.playing], m)
			}
			return nil
		}
		if e.sh.finished || e.sh.started[e.idx] {
			return nil
		}
		e.sh.started[e.idx] = true
		e.sh.proofs[e.idx].Start = now
		s.state.Showing = e.sh.proofs[e.idx].Source
		if f := e.sh.prog.OnItemStart; f != nil {
			i := e.idx
			return []func(){func() { f(i, now) }}
		}
	case "end-file":
		if m.EntryID == s.playing {
			s.playing = 0
		}
		e, ok := s.entries[m.EntryID]
		if !ok {
			s.early[m.EntryID] = append(s.early[m.EntryID], m)
			return nil
		}
		delete(s.entries, m.EntryID)
		sh := e.sh
		if sh.finished {
			return nil
		}
		pr := &sh.proofs[e.idx]
		pr.End = now
		pr.PositionS = sh.pos
		if drop := s.dropVO + s.dropDec - sh.dropBase; drop > 0 {
			pr.FramesDropped = drop
		}
		if sh.started[e.idx] {
			pr.ShownS = pr.End.Sub(pr.Start).Seconds()
		}
		switch {
		case m.Reason == "error":
			pr.Ended = EndFailed
			pr.Error = "mpv could not play it: " + m.FileError
		case m.Reason == "eof" && !sh.started[e.idx]:
			pr.Ended = EndFailed
			pr.Error = "mpv showed no frame of it (no video or image in the file?)"
		case m.Reason == "eof":
			pr.Ended = EndCompleted
		case sh.stopReason != "":
			pr.Ended = sh.stopReason
		default:
			pr.Ended = EndStopped
		}
		if pr.Ended == EndFailed {
			if l := sh.lastErr[e.idx]; l != "" {
				pr.Error += " (mpv: " + l + ")"
			}
			s.noteError(pr.Source + ": " + pr.Error)
			s.log.Warn("screen: item failed", "item", pr.Source, "err", pr.Error)
		}
		s.state.Showing = ""
		if sh.stopReason == "" || pr.Ended == EndCompleted || pr.Ended == EndFailed {
			sh.current = -1
		} // else it stays, so the result says where to resume
		calls := []func(){sh.endCall(e.idx)}
		if sh.stopReason != "" || sh.allEnded() {
			calls = append(calls, s.finishLocked(sh, "")...)
		}
		return calls
	case "property-change":
		var v *float64
		if len(m.Data) > 0 && string(m.Data) != "null" {
			var f float64
			if json.Unmarshal(m.Data, &f) == nil {
				v = &f
			}
		}
		switch m.Name {
		case "playback-time":
			if e, ok := s.entries[s.playing]; ok && v != nil && *v >= 0 {
				e.sh.pos = *v
			}
		case "frame-drop-count":
			if v != nil {
				s.dropVO = int64(*v)
			}
		case "decoder-frame-drop-count":
			if v != nil {
				s.dropDec = int64(*v)
			}
		}
	case "log-message":
		text := strings.TrimSpace(m.Text)
		switch m.Level {
		case "fatal", "error":
			// Not every error is the item's (hardware decoders that are absent are probed
			// and reported too): it goes into the proof only if the item fails.
			s.log.Warn("mpv: "+text, "module", m.Prefix)
			if e, ok := s.entries[s.playing]; ok && !e.sh.finished {
				e.sh.lastErr[e.idx] = m.Prefix + ": " + text
			}
		default:
			s.log.Warn("mpv: "+text, "module", m.Prefix)
		}
	}
	return nil
}

func (sh *Showing) allEnded() bool {
	for _, p := range sh.proofs {
		if p.Ended == "" {
			return false
		}
	}
	return true
}

// endCall is the OnItemEnd callback for item i with its proof as it is now.
func (sh *Showing) endCall(i int) func() {
	f := sh.prog.OnItemEnd
	if f == nil {
		return func() {}
	}
	pr := sh.proofs[i]
	return func() { f(i, pr) }
}

// finishLocked ends sh: the item on screen ends with the stop reason (or failure), the rest
// are skipped. failMsg, when set, is the reason mpv went away.
func (s *Screen) finishLocked(sh *Showing, failMsg string) []func() {
	if sh.finished {
		return nil
	}
	now := s.clk.Now()
	reason := sh.stopReason
	if failMsg != "" {
		reason = EndFailed
	}
	var calls []func()
	for i := range sh.proofs {
		pr := &sh.proofs[i]
		if pr.Ended != "" {
			continue
		}
		switch {
		case i == sh.current:
			pr.End, pr.PositionS = now, sh.pos
			if sh.started[i] {
				pr.ShownS = now.Sub(pr.Start).Seconds()
			}
			pr.Ended = reason
			if reason == "" {
				pr.Ended = EndStopped
			}
			if failMsg != "" {
				pr.Error = failMsg
			}
		default:
			pr.Ended = EndSkipped
		}
		calls = append(calls, sh.endCall(i))
	}
	sh.result = Result{Items: slices.Clone(sh.proofs), Ended: reason, Item: -1}
	if reason == "" {
		sh.result.Ended = EndCompleted
	}
	if reason == EndFailed && failMsg == "" && sh.allFailed() {
		sh.result.Ended = EndFailed
	}
	if sh.current >= 0 {
		sh.result.Item, sh.result.At = sh.current, time.Duration(sh.pos*float64(time.Second))
	} else {
		for i, pr := range sh.proofs {
			if pr.Ended == EndSkipped && i >= sh.prog.StartItem {
				sh.result.Item = i
				break
			}
		}
	}
	sh.current = -1
	sh.finished = true
	s.live = slices.DeleteFunc(s.live, func(o *Showing) bool { return o == sh })
	if s.cur == sh {
		s.state.Showing = ""
	}
	close(sh.done)
	return calls
}

func (sh *Showing) allFailed() bool {
	for _, p := range sh.proofs {
		if p.Ended != EndFailed && p.Ended != EndSkipped {
			return false
		}
	}
	return true
}

func (s *Screen) noteError(msg string) {
	s.state.LastError, s.state.LastErrorAt = msg, s.clk.Now()
}

func runCalls(calls []func()) {
	for _, f := range calls {
		f()
	}
}
