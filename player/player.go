// Package player plays programs (ordered queues of files and HTTP streams) through one
// long-lived Output, gaplessly, with ramped gain, stop, pause/resume and a hard end time, and
// measures for each item what actually reached the output (its proof of output).
//
// Decoding is libmpg123 (MP1/2/3) and Go (WAV); everything is resampled to the output rate
// with libsyn123, the resampler of the mpg123 command. See docs/player.md.
package player

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// Clock gives wall times for proofs and waits for reconnect backoff: the part of the agent's
// clock.Clock the player reads.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Item is one entry of a program: a local file or an HTTP stream.
type Item struct {
	// Path of a local audio file (MP3, MP2, WAV). The format is read from the content.
	Path string `json:"path,omitempty"`
	// URL of an HTTP MP3 stream (Icecast/SHOUTcast) to relay.
	URL string `json:"url,omitempty"`
	// Duration is how long a stream is relayed (required for URL); for a file, 0 plays it
	// whole and more than 0 cuts it there.
	Duration time.Duration `json:"duration,omitempty"`
	// Fallback is a file played in the item's place when its source turns out to be dead air
	// (Config.DeadAir): a station identification, a spoken notice. A file item then ends
	// after it; a stream goes back to its station for the rest of its time, and plays the
	// fallback again if the station is still silent. Nil: dead air ends the item.
	Fallback *Item `json:"fallback,omitempty"`
	// Stamped makes URL the hub's stamped feed of a live relay, played in step with the
	// other clusters (stamped.go).
	Stamped *Stamping `json:"-"`
}

func (it Item) String() string {
	if it.URL != "" {
		return it.URL
	}
	return it.Path
}

// Position is a point in a program: an item and a frame (at the output rate) inside it.
type Position struct {
	Item  int   `json:"item"`
	Frame int64 `json:"frame"`
}

// Program is what Play plays.
type Program struct {
	Items []Item
	// Gain is the program's volume, 0 (silence) to 1 (as recorded). There is no default.
	Gain float64
	// Until is a hard end (the scheduler's cut); zero means none.
	Until time.Time
	// Start resumes the program at a position (zero: from the top).
	Start Position
	// At, if set, is the wall time the program's first frame (at Start) is to be heard: the
	// player writes silence before it, or skips what is already late, so that it is, and
	// keeps the rest on the clock (Config.CorrectRate). At most 10 s of silence is written.
	// Only a real-time output (ALSA) does this; a program beginning with a stream ignores it.
	// See docs/sync.md.
	At time.Time
	// OnItemStart is called once the output has taken the first sample of an item (not when
	// it is handed over: what is queued in front plays first), with the time it reaches the
	// output (Proof.Start; for a program with an At, the time it is heard, the output's delay
	// included) and how much of the item's beginning, after where it was asked to start, was
	// skipped to be heard in step (a program with an At that could only start late; zero
	// otherwise): the first sample is that far into the item.
	OnItemStart func(index int, at time.Time, skipped time.Duration)
	// OnItemEnd is called with an item's proof once its last frame has been consumed by the
	// output (or it failed, or the program stopped inside it). Callbacks run on the
	// playback goroutine: they must return quickly.
	OnItemEnd func(index int, proof Proof)
	// OnDeadAir is called (on the playback goroutine, quickly) when an item ends as dead air
	// (on, with the item's index) and when sound comes back in the program after it (off).
	OnDeadAir func(index int, on bool)
}

// How an item or a program ended.
const (
	EndCompleted = "completed" // played to its end (a stream: for its duration)
	EndStopped   = "stopped"   // Stop was called (preemption)
	EndUntil     = "until"     // the program's hard end time came
	EndCancelled = "cancelled" // the context given to Play ended
	EndFailed    = "failed"    // could not be played (see Error)
	EndSkipped   = "skipped"   // not reached: the program ended before it
	// EndDeadAir: its source gave silence for Config.DeadAir.After; the program goes on with
	// its next item (see Error).
	EndDeadAir = "dead_air"
)

// Proof is what reached the output for one item.
type Proof struct {
	Item   int    `json:"item"`
	Source string `json:"source"`
	// Start is the wall time the first sample reaches the output: when it was handed over plus
	// what was queued before it (the rest of the previous item in a gapless run); zero if none was.
	Start time.Time `json:"start"`
	// End is the wall time the output had consumed the item's last frame.
	End time.Time `json:"end"`
	// Frames is how many frames of this item the output consumed, at Rate.
	Frames  int64   `json:"frames"`
	Rate    int     `json:"rate"`
	PlayedS float64 `json:"played_s"`
	// Levels after gain, in dBFS (-120 stands for no signal).
	PeakDBFS float64 `json:"peak_dbfs"`
	RMSDBFS  float64 `json:"rms_dbfs"`
	// SilenceS is the time spent below -50 dBFS (in 10 ms blocks).
	SilenceS float64 `json:"silence_s"`
	// Gaps counts stream drop-outs heard (the output ran out until the stream came back);
	// GapS is their total length, from the output running dry to the stream's audio coming
	// back (or the item's end).
	Gaps      int     `json:"gaps"`
	GapS      float64 `json:"gap_s"`
	Underruns int64   `json:"underruns"`
	// For streams: Dropouts counts connections lost after audio had come (closed, failed, or
	// quiet for Config.StallTimeout); Reconnects the connections that brought audio back
	// after one; ConnectFailures the tries that brought no audio (refused, an HTTP error
	// such as Icecast's 404 while its source is away, timed out).
	Dropouts        int `json:"dropouts,omitempty"`
	Reconnects      int `json:"reconnects,omitempty"`
	ConnectFailures int `json:"connect_failures,omitempty"`
	// MissingS is the time of a stream item's window with none of its audio reaching the
	// output: waiting for the first audio, plus the gaps.
	MissingS float64 `json:"missing_s,omitempty"`
	// For a program with an At: StartErrorS is how late (negative: early) the item was heard
	// against its time, as measured 1.5 s into it (or at its end if shorter); RatePPM is the
	// card's consumption rate against the system clock over the item, in ppm off nominal.
	StartErrorS float64 `json:"start_error_s,omitempty"`
	RatePPM     float64 `json:"rate_ppm,omitempty"`
	// SkippedBytes of input were jumped over as corrupt, in SkippedPlaces places.
	SkippedBytes  int64  `json:"skipped_bytes"`
	SkippedPlaces int64  `json:"skipped_places"`
	Ended         string `json:"ended"`
	Error         string `json:"error,omitempty"`
}

// Result is a finished program.
type Result struct {
	Items []Proof `json:"items"`
	Ended string  `json:"ended"`
	// Position is where playback stopped, to resume it later (on_interrupt: resume).
	Position Position `json:"position"`
}

// Progress is a snapshot for checkpoints.
type Progress struct {
	Item int
	// ItemFrames and ProgramFrames: consumed by the output so far in the current item and
	// in the whole playback.
	ItemFrames    int64
	ProgramFrames int64
	Paused        bool
}

// Config builds a Player.
type Config struct {
	Output Output
	Clock  Clock
	Log    *slog.Logger
	// HTTP fetches streams (default NewStreamClient()).
	HTTP *http.Client
	// Ramp is the fade applied on start, stop, pause and gain changes (default 20 ms).
	Ramp time.Duration
	// Reconnect backoff for streams (defaults 500 ms doubling to 10 s).
	BackoffMin, BackoffMax time.Duration
	// StallTimeout: a stream connection (or its connecting) that brings nothing for this
	// long is dropped and reconnected (default 10 s).
	StallTimeout time.Duration
	// CorrectRate resamples programs with an At very slightly so that they stay on the
	// system clock whatever the card's crystal does, by at most MaxCorrectionPPM (default
	// 500). Off, they start on time and then follow the card.
	CorrectRate      bool
	MaxCorrectionPPM float64
	// OutputDelay is how long a frame the output has consumed takes to be heard (ALSA's
	// buffer, the card); 0 takes the output's own estimate (the ALSA output has one).
	OutputDelay time.Duration
	// DeadAir ends an item whose source stays silent this long (After 0: never).
	DeadAir DeadAir
}

// Player plays one program at a time through its output.
type Player struct {
	cfg     Config
	out     Output
	mu      sync.Mutex // serialises Play
	current atomic.Pointer[Playback]
}

// New makes a Player.
func New(cfg Config) (*Player, error) {
	if cfg.Output == nil {
		return nil, errors.New("player: no output")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewSystem()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = NewStreamClient()
	}
	if cfg.Ramp <= 0 {
		cfg.Ramp = 20 * time.Millisecond
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(10*time.Second, cfg.BackoffMin)
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 10 * time.Second
	}
	if cfg.MaxCorrectionPPM <= 0 {
		cfg.MaxCorrectionPPM = 500
	}
	return &Player{cfg: cfg, out: cfg.Output}, nil
}

// Play starts a program. A program already playing is stopped first (with its ramp).
func (p *Player) Play(ctx context.Context, prog Program) (*Playback, error) {
	if err := validate(prog); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.current.Load(); cur != nil {
		cur.Stop()
	}
	pb := &Playback{
		p:    p,
		prog: prog,
		cmds: make(chan command, 8),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	pb.gainBits.Store(math.Float64bits(prog.Gain))
	pb.base.Store(-1) // not started: Progress reports nothing yet
	p.current.Store(pb)
	go pb.run(ctx)
	return pb, nil
}

func validate(prog Program) error {
	if len(prog.Items) == 0 {
		return errors.New("player: program has no items")
	}
	if !(prog.Gain >= 0 && prog.Gain <= 1) {
		return fmt.Errorf("player: gain %v is outside 0..1", prog.Gain)
	}
	if prog.Start.Item < 0 || prog.Start.Item >= len(prog.Items) || prog.Start.Frame < 0 {
		return fmt.Errorf("player: start position %+v is outside the program", prog.Start)
	}
	for i, it := range prog.Items {
		switch {
		case (it.Path == "") == (it.URL == ""):
			return fmt.Errorf("player: item %d needs exactly one of a path or a URL", i)
		case it.URL != "" && it.Duration <= 0:
			return fmt.Errorf("player: item %d (stream %s) needs a duration", i, it.URL)
		case it.Duration < 0:
			return fmt.Errorf("player: item %d has a negative duration", i)
		}
	}
	return nil
}

type cmdKind int

const (
	cmdStop cmdKind = iota
	cmdPause
	cmdResume
	cmdGain
)

type command struct {
	kind  cmdKind
	gain  float64
	reply chan Position
}

// Playback is a program being played.
type Playback struct {
	p    *Player
	prog Program
	cmds chan command
	wake chan struct{}
	done chan struct{}

	result    Result
	gainBits  atomic.Uint64
	item      atomic.Int64
	itemStart atomic.Int64 // output frame where the current item began
	base      atomic.Int64 // output frame where the playback began
	paused    atomic.Bool
}

func (pb *Playback) send(c command) bool {
	select {
	case pb.cmds <- c:
		select {
		case pb.wake <- struct{}{}:
		default:
		}
		return true
	case <-pb.done:
		return false
	}
}

// Stop ends playback at once, with a short fade, and returns the result.
func (pb *Playback) Stop() Result {
	pb.send(command{kind: cmdStop})
	<-pb.done
	return pb.result
}

// Pause fades out and holds the position; it returns that position.
func (pb *Playback) Pause() (Position, error) {
	reply := make(chan Position, 1)
	if !pb.send(command{kind: cmdPause, reply: reply}) {
		return Position{}, errors.New("player: playback has ended")
	}
	select {
	case pos := <-reply:
		return pos, nil
	case <-pb.done:
		return pb.result.Position, errors.New("player: playback ended while pausing")
	}
}

// Resume continues a paused playback where it was, fading in.
func (pb *Playback) Resume() error {
	if !pb.send(command{kind: cmdResume}) {
		return errors.New("player: playback has ended")
	}
	return nil
}

// SetGain changes the gain (0..1) with a ramp.
func (pb *Playback) SetGain(g float64) error {
	if !(g >= 0 && g <= 1) {
		return fmt.Errorf("player: gain %v is outside 0..1", g)
	}
	pb.gainBits.Store(math.Float64bits(g))
	if !pb.send(command{kind: cmdGain, gain: g}) {
		return errors.New("player: playback has ended")
	}
	return nil
}

// Progress reports what the output has consumed so far.
func (pb *Playback) Progress() Progress {
	base := pb.base.Load()
	if base < 0 {
		return Progress{}
	}
	c := pb.p.out.Consumed()
	is := pb.itemStart.Load()
	return Progress{
		Item:          int(pb.item.Load()),
		ItemFrames:    max(0, c-is),
		ProgramFrames: max(0, c-base),
		Paused:        pb.paused.Load(),
	}
}

// Done is closed when the playback has ended.
func (pb *Playback) Done() <-chan struct{} { return pb.done }

// Wait waits for the end and returns the result.
func (pb *Playback) Wait() Result {
	<-pb.done
	return pb.result
}

const chunkFrames = 1024

// itemState is the bookkeeping of the item being played.
type itemState struct {
	index     int
	proof     Proof
	lvl       *meter
	startPos  int64         // output frame of the item's first frame
	asked     int64         // frame of the item it was asked to start from (before any skipped to be in step)
	skipped   time.Duration // of the item's start, dropped to be in step (OnItemStart)
	written   int64         // frames of this item written
	limit     int64         // frames after which the item is cut (0: none)
	deadline  time.Time
	underruns int64
	gapSince  time.Time
	started   bool
	openedAt  time.Time // a stream item began waiting for audio
	lastWrite time.Time // the item's last frames were handed to the output
	errTaken  bool      // Proof.StartErrorS is measured
	// Dead air with a fallback: inFallback while the fallback plays in the item's place,
	// deadErr why (the proof's error if the item ends there).
	inFallback bool
	deadErr    error
}

func (pb *Playback) run(ctx context.Context) {
	defer close(pb.done)
	p := pb.p
	e := &engine{pb: pb, out: p.out, clock: p.cfg.Clock, log: p.cfg.Log, rate: p.out.Rate()}
	e.rampStep = 1 / (p.cfg.Ramp.Seconds() * float64(e.rate))
	e.target = pb.prog.Gain
	e.buf = make([]float32, 2*chunkFrames)
	e.deadAir = newDeadAirWatch(p.cfg.DeadAir, e.rate)
	// Frame accounting starts from an output with nothing pending.
	if err := p.out.Drain(ctx); err != nil && ctx.Err() == nil {
		p.cfg.Log.Error("audio output failed", "err", err)
	}
	e.base = p.out.Consumed()
	pb.itemStart.Store(e.base)
	pb.base.Store(e.base)
	// Only a device that plays in real time can be held to the clock (a file or null output
	// takes everything at once).
	if delay, ok := e.outputDelay(); ok && !pb.prog.At.IsZero() && pb.prog.Items[pb.prog.Start.Item].URL == "" {
		e.keep = newKeeper(e.rate, pb.prog.At, delay, p.cfg.CorrectRate, p.cfg.MaxCorrectionPPM)
		e.keep.jump = jumpFrames(delay, e.rate)
	}
	defer func() {
		if e.keep != nil {
			e.keep.close()
		}
	}()
	res := e.play(ctx)
	pb.result = res
	pb.p.current.CompareAndSwap(pb, nil)
}

type engine struct {
	pb        *Playback
	out       Output
	clock     Clock
	log       *slog.Logger
	rate      int
	cur       float64 // gain applied now
	target    float64 // gain being ramped to
	rampStep  float64
	buf       []float32
	pendEnd   []pendingEnd
	pendStart []*itemState // items handed to the output whose first sample it has not taken yet
	proofs    []Proof
	base      int64     // output frame count when this playback began
	written   int64     // frames written by this playback
	leftover  []float32 // frames read but held back by a pause
	keep      *keeper   // holds a program with an At on the clock; nil without
	placed    bool      // the program's start is placed on the clock
	silence   []float32
	stamped   bool // keep holds a stamped relay on its clock
	deadAir   *deadAirWatch
	inDead    bool // dead air was reported and sound has not come back yet
}

type pendingEnd struct {
	st  *itemState
	end int64
}

// play runs the program and returns its result.
func (e *engine) play(ctx context.Context) Result {
	prog := e.pb.prog
	e.proofs = make([]Proof, len(prog.Items))
	for i, it := range prog.Items {
		e.proofs[i] = Proof{Item: i, Source: it.String(), Rate: e.rate, Ended: EndSkipped, PeakDBFS: floorDBFS, RMSDBFS: floorDBFS}
	}
	ended := EndCompleted
	pos := Position{Item: len(prog.Items)}
	for i := prog.Start.Item; i < len(prog.Items); i++ {
		skip := int64(0)
		if i == prog.Start.Item {
			skip = prog.Start.Frame
		}
		asked := skip
		if i == prog.Start.Item {
			if e.keep != nil {
				// Already late: skip what cannot be heard on time, so as to be in step.
				late := e.keep.lateFrames(e.clock.Now())
				if late > 0 {
					e.log.Info("programme starts late: skipping its beginning to play in step", "late", time.Duration(late)*time.Second/time.Duration(e.rate))
				}
				e.keep.next = late
				skip += late
			}
		}
		reason, at := e.playItem(ctx, i, skip, asked)
		if reason != EndCompleted && reason != EndFailed && reason != EndDeadAir {
			ended = reason
			pos = at
			break
		}
	}
	if ended != EndCancelled {
		if err := e.out.Drain(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("audio output failed while finishing the program", "err", err)
		}
	}
	e.settle(true)
	return Result{Items: e.proofs, Ended: ended, Position: pos}
}

// settle reports items whose last frame the output has consumed (all of them when final).
func (e *engine) settle(final bool) {
	if len(e.pendEnd) == 0 && len(e.pendStart) == 0 {
		return
	}
	consumed := e.out.Consumed()
	now := e.clock.Now()
	k := 0
	for _, st := range e.pendStart {
		if consumed <= st.startPos && !final {
			e.pendStart[k] = st
			k++
			continue
		}
		e.settleEnds(st.startPos, consumed, now, final) // the items before it end first
		if consumed > st.startPos {
			e.pb.item.Store(int64(st.index))
			e.pb.itemStart.Store(st.startPos)
			if f := e.pb.prog.OnItemStart; f != nil {
				f(st.index, st.proof.Start, st.skipped)
			}
		} // else the program ended before the output took any of it: it was not played
	}
	e.pendStart = e.pendStart[:k]
	e.settleEnds(math.MaxInt64, consumed, now, final)
}

// settleEnds reports the pending ends at or before output frame limit that the output has
// consumed (all of them up to limit when final).
func (e *engine) settleEnds(limit, consumed int64, now time.Time, final bool) {
	k := 0
	for _, pe := range e.pendEnd {
		if pe.end > limit || (consumed < pe.end && !final) {
			e.pendEnd[k] = pe
			k++
			continue
		}
		st := pe.st
		frames := min(consumed, pe.end) - st.startPos
		if frames < 0 {
			frames = 0
		}
		st.proof.Frames = frames
		st.proof.PlayedS = float64(frames) / float64(e.rate)
		if st.started {
			st.proof.End = now
		}
		st.proof.Underruns = e.out.Underruns() - st.underruns
		e.proofs[st.index] = st.proof
		if f := e.pb.prog.OnItemEnd; f != nil {
			f(st.index, st.proof)
		}
	}
	e.pendEnd = e.pendEnd[:k]
}

func (e *engine) openItem(ctx context.Context, it Item, skip int64) (source, error) {
	if it.URL != "" {
		cfg := e.pb.p.cfg
		scfg := streamConfig{client: cfg.HTTP, log: e.log, clock: e.clock, backoffMin: cfg.BackoffMin, backoffMax: cfg.BackoffMax,
			stall: cfg.StallTimeout}
		if it.Stamped == nil {
			return openStream(ctx, it.URL, e.rate, e.pb.wake, scfg)
		}
		s, err := openStamped(ctx, it, e.rate, e.pb.wake, scfg)
		if err == nil || it.Stamped.Direct == "" {
			return s, err
		}
		e.log.Warn("live relay: the hub does not serve it; playing the upstream directly, not in step with the other clusters",
			"upstream", it.Stamped.Direct, "err", err)
		return openStream(ctx, it.Stamped.Direct, e.rate, e.pb.wake, scfg)
	}
	return openFile(it.Path, e.rate, skip)
}

// outputDelay is how long a frame the output has consumed takes to be heard; false for an
// output that does not play in real time (a file, null), which cannot be held to the clock.
func (e *engine) outputDelay() (time.Duration, bool) {
	d, ok := e.out.(delayer)
	if !ok {
		return 0, false
	}
	if c := e.pb.p.cfg.OutputDelay; c != 0 {
		return c, true
	}
	return d.Delay(), true
}

// keepStamped puts a stamped relay on the clock from its first frame on: frame 0 heard at its
// stamp plus the relay delay.
func (e *engine) keepStamped(s *stampedSource, st *Stamping) {
	s.kept = true
	delay, ok := e.outputDelay()
	if !ok {
		return
	}
	if e.keep != nil {
		e.keep.close()
	}
	cfg := e.pb.p.cfg
	at := s.heardAt(st)
	e.log.Info("live relay: played in step with the hub's stamps", "first_stamp", s.stamp0, "heard_at", at, "delay", st.Delay)
	e.keep = newKeeper(e.rate, at, delay, cfg.CorrectRate, cfg.MaxCorrectionPPM)
	e.keep.jump = jumpFrames(delay, e.rate)
	e.placed, e.stamped = false, true
}

// jumpFrames is how far off the clock an output held to it is put back at once rather than
// by resampling: beyond a device period or two (the measure's own steps: a period is about
// 0.4× the output's delay), and beyond what the correction's bound closes in minutes.
func jumpFrames(delay time.Duration, rate int) int64 {
	return int64(max(relayBound, delay*4/5).Seconds() * float64(rate))
}

// playItem plays item i from frame skip (asked: where it was asked to start, before what was
// skipped to be in step). It returns why it ended and, if the program is to stop, the
// position to resume from.
func (e *engine) playItem(ctx context.Context, i int, skip, asked int64) (string, Position) {
	it := e.pb.prog.Items[i]
	st := &itemState{index: i, proof: e.proofs[i], lvl: newMeter(e.rate), asked: asked}
	st.startPos = e.base + e.written
	st.underruns = e.out.Underruns()
	e.deadAir.reset()
	if it.Duration > 0 {
		st.limit = int64(it.Duration.Seconds() * float64(e.rate))
		if it.URL == "" {
			st.limit -= skip
		}
	}
	if (it.URL != "" || e.stamped) && e.keep != nil {
		e.keep.stop() // a live stream plays as it comes (a stamped one is put on its clock once it comes)
	}
	itemCtx, cancel := context.WithCancel(ctx)
	if it.URL != "" {
		// A stream lasts its duration of wall time, drop-outs included, and never past Until;
		// the context bounds reads that wait on a silent network.
		now := e.clock.Now()
		st.deadline = now.Add(it.Duration)
		st.openedAt = now
		d := it.Duration
		if u := e.pb.prog.Until; !u.IsZero() && u.Sub(now) < d {
			d = u.Sub(now)
		}
		cancel()
		itemCtx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	src, err := e.openItem(itemCtx, it, skip)
	if err != nil {
		e.log.Error("cannot play item", "item", i, "source", it.String(), "err", err)
		st.proof.Error = err.Error()
		st.proof.Ended = EndFailed
		e.finishItem(st)
		return EndFailed, Position{}
	}
	defer func() { src.Close() }() // src changes while a fallback plays
	pos := func() Position { return Position{Item: i, Frame: skip + st.written} }
	// account adds what a source did to the proof, before it is closed or at the end.
	account := func(src source) {
		b, places := src.Skipped()
		st.proof.SkippedBytes += b
		st.proof.SkippedPlaces += places
		if cs, ok := src.(interface{ conns() *connStats }); ok {
			ss := cs.conns()
			if err := ss.lastErr(); err != nil && st.written == 0 && st.proof.Error == "" {
				st.proof.Error = "nothing played: " + err.Error()
			}
			c := ss.stats()
			st.proof.Dropouts += int(c.dropouts)
			st.proof.Reconnects += int(c.reconnects)
			st.proof.ConnectFailures += int(c.failures)
		}
	}
	end := func(reason string, err error) (string, Position) {
		if st.inFallback && reason == EndCompleted {
			// The item's time ended while its fallback stood in for it.
			reason, err = EndDeadAir, st.deadErr
		}
		st.proof.Ended = reason
		if err != nil {
			st.proof.Error = err.Error()
		}
		account(src)
		e.finishItem(st)
		return reason, pos()
	}
	// swap replaces the item's source (the fallback in, the station back).
	swap := func(next source) {
		account(src)
		src.Close()
		src = next
		e.cur = 0 // fade in, as after a drop-out
	}
	var pauseReply chan Position
	stopping, pausing := "", false
	for {
		// Commands, the hard end and the item's own length.
		select {
		case c := <-e.pb.cmds:
			switch c.kind {
			case cmdStop:
				stopping = EndStopped
				e.target = 0
			case cmdPause:
				if stopping == "" {
					pausing, pauseReply = true, c.reply
					e.target = 0
				}
			case cmdGain:
				if stopping == "" && !pausing {
					e.target = c.gain
				}
			}
			continue
		default:
		}
		if ctx.Err() != nil {
			return end(EndCancelled, nil)
		}
		now := e.clock.Now()
		if u := e.pb.prog.Until; !u.IsZero() && stopping == "" && !now.Before(u.Add(-e.rampDur())) {
			stopping = EndUntil
			e.target = 0
		}
		if !st.deadline.IsZero() && !now.Before(st.deadline) && stopping == "" {
			return end(EndCompleted, nil)
		}
		if stopping != "" && (e.cur == 0 || !st.started) {
			return end(stopping, nil)
		}
		if pausing && (e.cur == 0 || !st.started) {
			r, ok := e.pause(ctx, pos(), pauseReply)
			if !ok {
				return end(r, nil)
			}
			pausing, pauseReply = false, nil
			continue
		}
		want := chunkFrames
		if st.limit > 0 {
			left := st.limit - st.written
			if left <= 0 {
				return end(EndCompleted, nil)
			}
			want = int(min(int64(want), left))
		}
		var n int
		var err error
		if len(e.leftover) > 0 {
			n = copy(e.buf[:2*want], e.leftover) / 2
			e.leftover = e.leftover[2*n:]
		} else {
			n, err = src.Read(itemCtx, e.buf[:2*want])
		}
		if errors.Is(err, errDropout) {
			// The stream broke: let what is buffered play out, then count the silence
			// until it comes back as a gap; fade the return in. If the output had already
			// run dry (the link stalled before it dropped), the gap began about when the
			// last frames were handed over.
			dry := e.out.Consumed() >= e.base+e.written
			if derr := e.out.Drain(ctx); derr != nil && ctx.Err() == nil {
				return end(EndFailed, derr)
			}
			if st.gapSince.IsZero() {
				st.gapSince = e.clock.Now()
				if dry && !st.lastWrite.IsZero() {
					st.gapSince = st.lastWrite
				}
			}
			e.cur = 0
			continue
		}
		if err == io.EOF && st.inFallback {
			if it.URL == "" {
				return end(EndDeadAir, st.deadErr)
			}
			// The fallback is over and the relay has time left: back to the station.
			next, oerr := e.openItem(itemCtx, it, 0)
			if oerr != nil {
				if itemCtx.Err() != nil {
					return end(EndCompleted, nil)
				}
				return end(EndDeadAir, fmt.Errorf("%v; the station could not be reopened after it: %v", st.deadErr, oerr))
			}
			e.log.Info("dead air: fallback played; back to the station", "item", i, "source", it.String())
			swap(next)
			st.inFallback = false
			e.deadAir.reset()
			continue
		}
		if err == io.EOF {
			return end(EndCompleted, nil)
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return end(EndCancelled, nil)
			case itemCtx.Err() != nil && !e.pb.prog.Until.IsZero() && !e.clock.Now().Before(e.pb.prog.Until):
				return end(EndUntil, nil)
			case itemCtx.Err() != nil:
				return end(EndCompleted, nil)
			}
			return end(EndFailed, err)
		}
		if n == 0 {
			continue
		}
		if ss, ok := src.(*stampedSource); ok && !ss.kept {
			e.keepStamped(ss, it.Stamped)
		}
		if e.keep != nil && !e.placed {
			// Silence until the start is placed; the frames read wait for it.
			e.leftover = append(append([]float32(nil), e.buf[:2*n]...), e.leftover...)
			if err := e.preroll(ctx, st); err != nil {
				if ctx.Err() != nil {
					return end(EndCancelled, nil)
				}
				return end(EndFailed, err)
			}
			continue
		}
		if e.keep != nil && e.keep.drop > 0 {
			// Late: what cannot be heard on time is not played.
			d := int(min(int64(n), e.keep.drop))
			e.keep.dropped(int64(d))
			st.written += int64(d)
			if d == n {
				continue
			}
			copy(e.buf, e.buf[2*d:2*n])
			n -= d
		}
		if e.keep != nil && e.keep.hold > 0 {
			// Early: wait in silence until the frame's time.
			if err := e.writeSilence(ctx, e.keep.hold); err != nil {
				return end(EndFailed, err)
			}
			e.keep.held(e.base + e.written)
		}
		chunk := e.buf[:2*n]
		e.deadAir.add(chunk)
		if e.deadAir.sounded() && e.inDead && !st.inFallback { // the fallback's sound is not the station's
			e.inDead = false
			if f := e.pb.prog.OnDeadAir; f != nil {
				f(i, false)
			}
		}
		if e.deadAir.dead() && stopping == "" && !pausing && !st.inFallback {
			e.inDead = true
			if f := e.pb.prog.OnDeadAir; f != nil {
				f(i, true)
			}
			derr := e.deadAir.err(e.pb.p.cfg.DeadAir, e.rate)
			if it.Fallback == nil {
				e.log.Warn("dead air: the item's source is silent; going on with the next item", "item", i, "source", it.String())
				return end(EndDeadAir, derr)
			}
			fb, ferr := openFile(it.Fallback.Path, e.rate, 0)
			if ferr != nil {
				e.log.Error("dead air: the item's fallback cannot be played; going on with the next item", "item", i, "fallback", it.Fallback.Path, "err", ferr)
				return end(EndDeadAir, fmt.Errorf("%v; its fallback could not be played: %v", derr, ferr))
			}
			e.log.Warn("dead air: the item's source is silent; playing its fallback in its place", "item", i, "source", it.String(), "fallback", it.Fallback.Path)
			st.deadErr = fmt.Errorf("%s; its fallback %s was played in its place", strings.TrimSuffix(derr.Error(), "; the programme goes on with its next item"), it.Fallback.Path)
			swap(fb)
			st.inFallback = true
			e.deadAir.reset()
			continue
		}
		k := e.applyGain(chunk, st, stopping != "" || pausing)
		if k < n && pausing {
			// Keep the frames after the fade for Resume: a pause loses nothing.
			e.leftover = append(e.leftover[:0], chunk[2*k:]...)
		}
		n = k
		chunk = chunk[:2*n]
		if !st.gapSince.IsZero() {
			st.proof.Gaps++
			st.proof.GapS += max(0, e.clock.Now().Sub(st.gapSince).Seconds()) // a wall clock stepped back is no gap
			st.gapSince = time.Time{}
		}
		if !st.started {
			st.started = true
			// The item is heard when the output has played what is queued before it: in a
			// gapless run that is the rest of the previous item, up to the queue's length.
			st.proof.Start = e.clock.Now()
			if ahead := st.startPos - e.out.Consumed(); ahead > 0 {
				st.proof.Start = st.proof.Start.Add(time.Duration(ahead) * time.Second / time.Duration(e.rate))
			}
			if e.keep != nil {
				// In step the start was placed to be heard at its time: what the output adds
				// after it takes a sample counts, so the record says when it was heard.
				st.proof.Start = st.proof.Start.Add(time.Duration(e.keep.delay) * time.Second / time.Duration(e.rate))
			}
			// In step a late start drops what cannot be heard on time (before the item began,
			// and while it was placed): the first sample is that far in.
			if e.keep != nil && it.URL == "" {
				st.skipped = time.Duration(skip+st.written-st.asked) * time.Second / time.Duration(e.rate)
			}
			// Its start is reported once the output has taken its first sample (settle), not
			// now: a queue ahead of the output (in step, most of a second) would otherwise
			// journal a start that an agent killed in between never played.
			e.pendStart = append(e.pendStart, st)
		}
		st.lvl.add(chunk)
		st.written += int64(n)
		out := chunk
		if e.keep != nil {
			if out, err = e.keep.process(chunk); err != nil {
				return end(EndFailed, err)
			}
		}
		e.written += int64(len(out) / 2)
		if err := e.out.Write(ctx, out); err != nil {
			if ctx.Err() != nil {
				return end(EndCancelled, nil)
			}
			return end(EndFailed, err)
		}
		st.lastWrite = e.clock.Now()
		if e.keep != nil {
			e.keep.wrote(n, e.base+e.written)
			consumed := e.out.Consumed()
			jumped := e.keep.drop + e.keep.hold
			windows := e.keep.windows
			e.keep.measure(e.clock.Now(), consumed)
			if w := e.keep.windows; w != windows && w%10 == 0 {
				// What the servo sees and does, every 10 s, for a technician checking a card.
				errS, _ := e.keep.errorS()
				e.log.Debug("in step: the output against the clock", "late_ms", errS*1000, "trim_ppm", e.keep.ppm,
					"learnt_ppm", e.keep.integ, "card_ppm", e.keep.ratePPM(), "consumed", consumed, "written", e.base+e.written)
			}
			if d, h := e.keep.drop, e.keep.hold; d+h > jumped {
				per := time.Second / time.Duration(e.rate)
				e.log.Info("in step: the output was off the clock (it ran dry, the machine stalled, or a relay's stream came late); put back, a gap or a cut in the sound",
					"behind", time.Duration(d)*per, "ahead", time.Duration(h)*per)
			}
			if !st.errTaken && st.written >= int64(e.rate)*3/2 {
				e.takeStartError(st)
			}
		}
		e.settle(false)
	}
}

// pause waits, silent, for Resume. It returns false and why when the program must end.
func (e *engine) pause(ctx context.Context, at Position, reply chan Position) (string, bool) {
	if err := e.out.Drain(ctx); err != nil {
		return EndCancelled, false
	}
	e.settle(false)
	if e.keep != nil {
		e.keep.stop() // resumed, the programme is later than its time by the pause
	}
	e.pb.paused.Store(true)
	defer e.pb.paused.Store(false)
	if reply != nil {
		reply <- at
	}
	var untilC <-chan time.Time
	if u := e.pb.prog.Until; !u.IsZero() {
		untilC = e.clock.After(u.Sub(e.clock.Now()))
	}
	for {
		select {
		case c := <-e.pb.cmds:
			switch c.kind {
			case cmdStop:
				return EndStopped, false
			case cmdResume:
				e.target = math.Float64frombits(e.pb.gainBits.Load())
				e.cur = 0
				return "", true
			case cmdPause:
				if c.reply != nil {
					c.reply <- at
				}
			}
		case <-untilC:
			return EndUntil, false
		case <-ctx.Done():
			return EndCancelled, false
		}
	}
}

// finishItem queues the item's proof until the output has consumed its last frame.
func (e *engine) finishItem(st *itemState) {
	now := e.clock.Now()
	if !st.gapSince.IsZero() {
		st.proof.Gaps++
		st.proof.GapS += max(0, now.Sub(st.gapSince).Seconds()) // a wall clock stepped back is no gap
		st.gapSince = time.Time{}
	}
	if !st.openedAt.IsZero() {
		waited := now.Sub(st.openedAt)
		if st.started {
			waited = st.proof.Start.Sub(st.openedAt)
		}
		st.proof.MissingS = max(0, waited.Seconds()) + st.proof.GapS
	}
	if e.keep != nil && st.started {
		if !st.errTaken {
			e.takeStartError(st)
		}
		st.proof.RatePPM = e.keep.ratePPM() // over the whole item
	}
	m := st.lvl
	m.closeBlock()
	st.proof.PeakDBFS = m.peakDBFS()
	st.proof.RMSDBFS = m.rmsDBFS()
	st.proof.SilenceS = float64(m.silentFrms) / float64(e.rate)
	e.pendEnd = append(e.pendEnd, pendingEnd{st: st, end: e.base + e.written})
	e.settle(false)
}

func (e *engine) rampDur() time.Duration {
	return time.Duration(float64(time.Second) / (e.rampStep * float64(e.rate)))
}

// applyGain ramps the gain toward its target frame by frame. When fading out to end or pause
// it returns how many frames to play: up to where the gain reached zero.
func (e *engine) applyGain(s []float32, st *itemState, fadingOut bool) int {
	n := len(s) / 2
	var fadeFrames int64 = -1
	if st.limit > 0 && e.pb.prog.Items[st.index].Duration > 0 {
		// An item cut by its duration fades out over the last ramp.
		fadeFrames = int64(1 / e.rampStep)
	}
	for f := 0; f < n; f++ {
		if e.cur != e.target {
			if e.cur < e.target {
				e.cur = math.Min(e.target, e.cur+e.rampStep)
			} else {
				e.cur = math.Max(e.target, e.cur-e.rampStep)
			}
		}
		g := e.cur
		if fadeFrames > 0 {
			left := st.limit - st.written - int64(f)
			if left < fadeFrames {
				g *= float64(left) / float64(fadeFrames)
			}
		}
		gf := float32(g)
		// Clip: a false frame decoded from junk can exceed full scale; keep it off the amplifier.
		s[2*f] = max(-1, min(1, s[2*f]*gf))
		s[2*f+1] = max(-1, min(1, s[2*f+1]*gf))
		if fadingOut && e.cur == 0 {
			return f + 1
		}
	}
	return n
}

// preroll writes one block of silence ahead of the program's start while it measures where
// the output is, and once it knows, the last of the silence (or how much of the start to
// drop, if late), so that the first frame is heard at Program.At. The position comes from the
// most advanced of many looks (measureFor): one look can be late by up to a device period.
func (e *engine) preroll(ctx context.Context, st *itemState) error {
	k := e.keep
	out := e.base + e.written
	consumed := e.out.Consumed() // before the time: a late look then seems behind, never ahead
	lead, ok := k.lead(e.clock.Now(), consumed, out)
	if out-st.startPos > int64(maxPreroll.Seconds()*float64(e.rate)) {
		// At is too far ahead, or the clock does not move with the output (a test's fake
		// clock): start now.
		e.log.Warn("programme start could not be placed on the clock within 10 s; starting it now", "at", k.at)
		lead, ok = 0, true
	}
	if ok && lead <= chunkFrames {
		if lead < 0 {
			k.drop = -lead
		}
		k.start(out, max(0, lead))
		if err := e.writeSilence(ctx, max(0, lead)); err != nil {
			return err
		}
		e.placed = true
		st.startPos = e.base + e.written
		return nil
	}
	return e.writeSilence(ctx, chunkFrames)
}

func (e *engine) writeSilence(ctx context.Context, frames int64) error {
	if len(e.silence) == 0 {
		e.silence = make([]float32, 2*chunkFrames)
	}
	for frames > 0 {
		n := min(frames, chunkFrames)
		if err := e.out.Write(ctx, e.silence[:2*n]); err != nil {
			return err
		}
		frames -= n
		e.written += n
	}
	return nil
}

// takeStartError puts the servo's measure of how far the item is from its time in its proof.
func (e *engine) takeStartError(st *itemState) {
	st.errTaken = true
	if s, ok := e.keep.errorS(); ok {
		st.proof.StartErrorS = s
	}
}
