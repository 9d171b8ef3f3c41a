package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// Position is a point in a run: which of its segments, and how far into that segment's item
// (the item's own time, so a segment that begins mid-item starts at its Offset). A start that
// joins a run where the timeline is (after a crash, a clock step) names the segment the
// timeline has then, whatever the lengths of the items before it.
type Position struct {
	Segment int           `json:"segment"`
	Offset  time.Duration `json:"offset"`
}

// Beginning is the run's own start: its first segment, at that segment's offset.
func (r *Run) Beginning() Position { return Position{Segment: 0, Offset: r.Segments[0].Offset} }

// PositionAt is where the run's timeline is at t. Before the run it is the beginning; at or
// after its end it is the end of its last segment.
func (r *Run) PositionAt(t time.Time) Position {
	for i, s := range r.Segments {
		if t.Before(s.End) {
			if !t.After(s.Start) {
				return Position{Segment: i, Offset: s.Offset}
			}
			return Position{Segment: i, Offset: s.Offset + t.Sub(s.Start)}
		}
	}
	last := r.Segments[len(r.Segments)-1]
	return Position{Segment: len(r.Segments) - 1, Offset: last.Offset + last.End.Sub(last.Start)}
}

// Past is what the journal shows of one segment of a play before the agent restarted. The
// runner is told (Remember) so that after a crash nothing heard is played again or called
// missed, and nothing missed is recorded twice.
type Past struct {
	Output  string
	Program string
	Item    int
	// Planned is the segment's planned start (Segment.Planned, a confirmation's scheduled).
	Planned time.Time
	// Start is when its first sample went out (zero: it never played); From how far into the
	// item that was.
	Start time.Time
	From  time.Duration
	Was   PastResult
}

// PastResult is what became of a segment before a restart.
type PastResult int

const (
	PastDone  PastResult = iota // played to its end, preempted, or failed: not to play again
	PastCut                     // cut by the crash (interrupted): the programme goes on
	PastNoted                   // recorded missed or suppressed: not to be recorded again
)

// Run is a stretch of one programme occurrence on one output with nothing else in between:
// consecutive segments the player plays gaplessly as one queue, from the first segment's
// offset, until End.
type Run struct {
	Key       string    `json:"key"` // stable across recompiles; the journal keeps it
	Output    string    `json:"output"`
	Program   string    `json:"program"`
	Title     string    `json:"title,omitempty"`
	Class     Class     `json:"class"`
	Priority  int       `json:"priority"`
	Scheduled time.Time `json:"scheduled"`
	Play      int       `json:"play"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Gain      float64   `json:"gain"`
	Segments  []Segment `json:"segments"`
}

// EndStatus is how the timeline says the run ends: play/resumed (naturally), preempted or cut.
func (r *Run) EndStatus() Status { return r.Segments[len(r.Segments)-1].Status }

func (r *Run) occurrenceKey() string { return r.Segments[0].OccurrenceKey() }

// Runs groups a timeline's audible segments into runs, per output in time order; suppressed
// and skipped segments become runs of their own so they can be reported.
func (tl *Timeline) Runs() []*Run {
	var runs []*Run
	var cur *Run
	for _, s := range tl.Segments {
		if cur != nil && s.Audible() && cur.Segments[0].Audible() && s.OccurrenceKey() == cur.occurrenceKey() && s.Start.Equal(cur.End) {
			cur.Segments = append(cur.Segments, s)
			cur.End = s.End
			continue
		}
		cur = &Run{
			Key: s.Key(), Output: s.Output, Program: s.Program, Title: s.Title, Class: s.Class,
			Priority: s.Priority, Scheduled: s.Scheduled, Play: s.Play, Start: s.Start, End: s.End,
			Gain: s.Gain, Segments: []Segment{s},
		}
		runs = append(runs, cur)
	}
	return runs
}

// EventKind says what the agent must do.
type EventKind string

const (
	EventStart      EventKind = "start"      // play the run now, from the event's From
	EventStop       EventKind = "stop"       // stop the run now; Reason says why
	EventMissed     EventKind = "missed"     // the run's time passed and it could not play
	EventSuppressed EventKind = "suppressed" // scheduled in quiet hours: not played, on purpose
	EventSkipped    EventKind = "skipped"    // interrupted with on_interrupt: skip
	// EventUpcoming says a run will start within RunnerOptions.Lead: time to switch the
	// amplifier on so that its warm-up does not delay the first sample. Once per run.
	EventUpcoming EventKind = "upcoming"
)

// StopReason says why a run stopped.
type StopReason string

const (
	StopEnd       StopReason = "end"        // its time in the timeline is over
	StopPreempted StopReason = "preempted"  // a higher programme takes the output
	StopCut       StopReason = "cut"        // max_duration, window end or quiet hours
	StopClockStep StopReason = "clock-step" // the wall clock jumped and the timeline moved under it
	StopReplaced  StopReason = "replaced"   // a new schedule no longer has it
	StopShutdown  StopReason = "shutdown"   // the agent is stopping
	StopCommand   StopReason = "command"    // a stop command from the hub (not the runner's own)
)

// Event is one instruction from the runner.
type Event struct {
	Kind   EventKind     `json:"kind"`
	Run    *Run          `json:"run"`
	At     time.Time     `json:"at"`             // wall time when decided
	From   Position      `json:"from"`           // start: where in the run to begin
	Late   time.Duration `json:"late,omitempty"` // start and missed: how long after the run's start
	Reason StopReason    `json:"reason,omitempty"`
	// Why says, for a missed run, what kept it from playing, in words for the journal.
	Why string `json:"why,omitempty"`
	// ClockSynced is false when the decision was made on a clock not yet trusted.
	ClockSynced bool `json:"clock_synced"`
	// Count, on a missed event that stands for more than its own run, is how many occurrences
	// it stands for (MissedPerProgram); zero otherwise.
	Count int `json:"count,omitempty"`
}

// MissedPerProgram is how many missed occurrences of one programme on one output a single
// look records one by one; the earlier ones of that look become one record that counts them.
// A long outage (or a clock jump) over a dense schedule, a play every 2 s for a day, would
// otherwise write 43,200 records into a journal capped at 5,000 (journal.md "Size cap").
const MissedPerProgram = 30

// RunnerOptions configure a Runner. Zero values take the defaults noted.
type RunnerOptions struct {
	Clock clock.Clock // nil: the system clock
	Log   *slog.Logger
	// Grace is how late a programme may still start after a missed start (default 5 min).
	Grace time.Duration
	// Lead is how long before a run's start an EventUpcoming is sent (0: never).
	Lead time.Duration
	// StartAhead, by output, starts a run that long before its time if its output is free
	// then (nothing playing on it), so that an output that needs time to measure and fill
	// itself can have the first sample heard at the run's time (the agent's in-step play).
	// The start event's At is before the run's Start. A run whose output is busy until its
	// time (programmes back to back), or that joins its occurrence mid-way, starts at its time.
	StartAhead map[string]time.Duration
	// OnTime is lateness treated as on time (loop wake-up jitter; default 2 s).
	OnTime time.Duration
	// StepThreshold is how far wall and monotonic time may drift apart between two looks
	// before it counts as a clock step (default 2 s).
	StepThreshold time.Duration
	// Tick is the longest the loop sleeps, so steps are noticed promptly (default 1 s).
	Tick time.Duration
	// Horizon is how far ahead the timeline is compiled (default 6 h).
	Horizon time.Duration
	// NotBefore is the latest wall time known to be right (saved at the last run, or the
	// build time). A clock earlier than it is not trusted: only emergencies play.
	NotBefore time.Time
	// Synced, when set, must also say yes before the clock is trusted (systemd-timesyncd).
	Synced func() bool
	// LastRun is the last wall time the previous run of the agent saw (zero: first boot).
	// Runs between it and now are reported missed; at first boot nothing is.
	LastRun time.Time
	// MissedLookback bounds how far back missed runs are reported after a long outage (24 h).
	MissedLookback time.Duration
	// Outputs this device has; nil plays every output.
	Outputs []string
	Compile CompileOptions
	// Heartbeat, when set, is called after every step: the agent's watchdog uses it to tell a
	// live loop from a stuck one.
	Heartbeat func()
}

// Runner drives a schedule's timeline against a clock: it says start X now, stop Y now,
// and reports what was missed. It runs its own loop rather than robfig/cron's runner, which
// sleeps on monotonic timers and fires at the wrong wall time after an NTP step.
type Runner struct {
	opts RunnerOptions
	log  *slog.Logger

	mu       sync.Mutex
	doc      *Document
	changed  chan struct{}
	compiled *compiled // a timeline compiled beside the loop, for the next step to take

	// Compiling beside the loop (Run sets async): a dense schedule takes a second or two to
	// compile on a Pi under load, and plays due meanwhile must not wait for it.
	async     bool
	compiles  sync.WaitGroup // the compiles started beside the loop; Run waits for them
	compiling *Document      // the document a compile beside the loop is making (one at a time)
	short     bool           // the timeline installed is a first, short one (firstWindow)
	gen       int            // counts timelines installed: a compile started before one is stale

	// Loop state, touched only by Step.
	tl            *Timeline
	runs          []*Run
	compiledFor   *Document
	compiledFrom  time.Time
	compiledTo    time.Time
	current       map[string]*playing // by output
	done          map[string]time.Time
	occStarted    map[string]time.Time
	occMissed     map[string]time.Time // one missed record per occurrence, not per run
	announced     map[string]time.Time // runs an EventUpcoming was sent for
	lastWall      time.Time
	lastMono      time.Duration
	lastPlausibe  time.Time
	started       bool
	firstLook     time.Time            // wall time of the first step: before it the agent was not running
	firstTrusted  time.Time            // wall time of the first step on a trusted clock
	began         map[string]time.Time // occurrence key -> when an occurrence that began late began
	segDone       map[string]time.Time // segment keys played to their end before a restart
	past          []Past               // from the journal, matched at the first compile
	keptFor       *Document            // a document whose recompile failed and kept its timeline (logged once)
	lastUntrusted time.Time            // the last step that saw a clock not yet trusted
}

// compiled is a timeline compiled for doc over [from, to), started when gen timelines had
// been installed.
type compiled struct {
	doc      *Document
	tl       *Timeline
	err      error
	from, to time.Time
	gen      int
	short    bool // over firstWindow, not window
}

type playing struct {
	run     *Run
	monoEnd time.Duration // the run ends by monotonic time too, so a backward step cannot stretch it
}

// NewRunner returns a runner with no schedule; SetSchedule gives it one.
func NewRunner(opts RunnerOptions) *Runner {
	if opts.Clock == nil {
		opts.Clock = clock.NewSystem()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Grace, 5*time.Minute)
	def(&opts.OnTime, 2*time.Second)
	def(&opts.StepThreshold, 2*time.Second)
	def(&opts.Tick, time.Second)
	def(&opts.Horizon, 6*time.Hour)
	def(&opts.MissedLookback, 24*time.Hour)
	return &Runner{
		opts: opts, log: opts.Log, changed: make(chan struct{}, 1),
		current: map[string]*playing{}, done: map[string]time.Time{}, occStarted: map[string]time.Time{},
		occMissed: map[string]time.Time{}, announced: map[string]time.Time{},
		began: map[string]time.Time{}, segDone: map[string]time.Time{},
	}
}

// SetSchedule makes doc the schedule from the next step on. Runs of the old schedule that the
// new one does not have are stopped with reason "replaced".
func (r *Runner) SetSchedule(doc *Document) {
	r.mu.Lock()
	r.doc = doc
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Remember tells the runner, before it runs, what the journal shows was played, cut or noted
// before a restart. An occurrence with a record counts as begun: if its time is not over it
// continues where the timeline is now (a segment played to its end is not played again), and
// it is never recorded missed; one recorded missed is not recorded again.
func (r *Runner) Remember(past ...Past) { r.past = append(r.past, past...) }

// Run loops until ctx ends, sending events in order. At the end it stops what is playing.
// A new document, and the timeline's next stretch, are compiled beside the loop: the loop goes
// on with the timeline it has and takes the new one at a step once it is ready.
func (r *Runner) Run(ctx context.Context, events chan<- Event) error {
	r.async = true
	defer r.compiles.Wait()
	for {
		evs, wake := r.Step()
		if r.opts.Heartbeat != nil {
			r.opts.Heartbeat()
		}
		for _, e := range evs {
			select {
			case events <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-ctx.Done():
			for _, e := range r.Shutdown() {
				select {
				case events <- e:
				default:
				}
			}
			return ctx.Err()
		case <-r.changed:
		case <-r.opts.Clock.After(wake):
		}
	}
}

// Shutdown stops every run playing and returns the stop events.
func (r *Runner) Shutdown() []Event {
	now := r.opts.Clock.Now()
	var evs []Event
	for out, p := range r.current {
		evs = append(evs, Event{Kind: EventStop, Run: p.run, At: now, Reason: StopShutdown, ClockSynced: r.plausible(now)})
		delete(r.current, out)
	}
	return evs
}

func (r *Runner) plausible(now time.Time) bool {
	if now.Before(r.opts.NotBefore) {
		return false
	}
	return r.opts.Synced == nil || r.opts.Synced()
}

func (r *Runner) wantsOutput(out string) bool {
	if r.opts.Outputs == nil {
		return true
	}
	for _, o := range r.opts.Outputs {
		if o == out {
			return true
		}
	}
	return false
}

// Step looks at the clock once, decides what changes, and says how long to sleep before
// looking again. Run calls it in a loop; tests call it directly with a fake clock.
func (r *Runner) Step() ([]Event, time.Duration) {
	now, mono := r.opts.Clock.Now(), r.opts.Clock.Monotonic()
	r.mu.Lock()
	doc := r.doc
	r.mu.Unlock()

	stepped := false
	if r.started {
		drift := now.Sub(r.lastWall) - (mono - r.lastMono)
		if drift > r.opts.StepThreshold || drift < -r.opts.StepThreshold {
			stepped = true
			r.log.Warn("wall clock stepped; re-planning", "by", drift.Round(time.Millisecond), "now", now.Format(time.RFC3339))
		}
	}
	plausible := r.plausible(now)
	if !plausible {
		r.lastUntrusted = now
	}
	if !r.started {
		r.lastPlausibe = r.opts.LastRun
		r.firstLook = now
		if !plausible {
			r.log.Warn("clock not trusted yet; only emergency programmes will play until it is",
				"now", now.Format(time.RFC3339), "not_before", r.opts.NotBefore.Format(time.RFC3339))
		}
	}
	// jumped: the wall clock moved over programme times while the agent watched. A step that
	// first makes the clock trusted (NTP after a boot without RTC) is the clock being set:
	// what it passed over was due while the agent was off or booting (whyMissed).
	jumped := stepped
	if plausible && r.firstTrusted.IsZero() {
		r.firstTrusted = now
		jumped = false
	}
	r.started = true
	defer func() { r.lastWall, r.lastMono = now, mono }()

	replaced := doc != r.compiledFor
	if doc == nil {
		return r.stopAll(now, StopReplaced, plausible), r.opts.Tick
	}
	// A compile takes a while on a Pi (a day's timeline of a busy schedule): decide on the
	// time after it, or a restart joins its programme where the timeline was before it.
	refresh := func() { now, mono = r.opts.Clock.Now(), r.opts.Clock.Monotonic() }
	runsOut := r.compiledTo.Add(-r.opts.Horizon / 2)
	if r.async {
		// Take a timeline compiled beside the loop if it is the one wanted; until then go on
		// with the one there is (none at a start: nothing plays, and nothing is decided).
		replaced = false
		if c := r.takeCompiled(doc); c != nil {
			replaced = c.doc != r.compiledFor
			r.install(c)
		}
		if r.compiledFor != doc || (now.After(runsOut) || r.short) && !stepped {
			// With nothing to play yet (a start), the first timeline covers only the next
			// minutes, so that a dense schedule under load plays within seconds of a restart,
			// not after a day and more of it is compiled; the whole window follows beside.
			r.compileBeside(doc, now, r.compiledFor == nil)
		}
		if r.compiledFor == nil {
			r.firstLook = now // still starting: what falls due now was due while it was not running
			return nil, r.opts.Tick
		}
		doc = r.compiledFor
		// Compiled inline only if the next stretch has not come in time.
		runsOut = r.compiledTo.Add(-r.opts.Horizon / 4)
		if r.short {
			runsOut = r.compiledTo.Add(-firstAhead / 2)
		}
	}
	if replaced && !r.async || stepped || now.Before(r.compiledFrom.Add(2*time.Hour)) || now.After(runsOut) {
		r.compile(doc, now)
		refresh()
	}
	if len(r.past) > 0 && r.compiledFor == doc && r.runs != nil {
		r.learnPast(doc, now)
		refresh()
	}

	var evs []Event
	reason := StopPreempted
	switch {
	case replaced:
		reason = StopReplaced
	case stepped:
		reason = StopClockStep
	}

	// 1. Runs whose time is over.
	for out, p := range r.current {
		if !now.Before(p.run.End) || mono >= p.monoEnd {
			why := StopEnd
			switch p.run.EndStatus() {
			case StatusCut:
				why = StopCut
			case StatusPreempted:
				why = StopPreempted
			}
			evs = append(evs, Event{Kind: EventStop, Run: p.run, At: now, Reason: why, ClockSynced: plausible})
			r.done[p.run.Key] = p.run.End
			delete(r.current, out)
		}
	}

	// With no earlier run known (first boot), nothing before the first trusted look counts as
	// missed.
	if plausible && r.lastPlausibe.IsZero() {
		r.lastPlausibe = now
	}
	since := r.lastPlausibe
	if plausible && since.Before(now.Add(-r.opts.MissedLookback)) {
		since = now.Add(-r.opts.MissedLookback)
	}

	// 2. Occurrences that should have begun but have not (the device was booting, the
	// schedule came after their start, an emergency sent while the link was down) begin now,
	// from their first item, while the grace window (for an emergency: its own window) is
	// open. The timeline is compiled again around them, so what outranks them still does,
	// and they resume after it as any programme would.
	if r.beginLate(now, since, plausible) {
		r.compile(doc, now)
		refresh()
	}

	// 3. Runs whose whole time passed unseen (device off, clock step): missed; and quiet-hours
	// or skip notes whose time has come.
	for _, run := range r.runs {
		if _, ok := r.done[run.Key]; ok || !r.wantsOutput(run.Output) || run.Start.After(now) {
			continue
		}
		seg := run.Segments[0]
		if !seg.Audible() {
			if plausible && !run.Start.Before(since) {
				kind := EventSuppressed
				if seg.Status == StatusSkipped {
					kind = EventSkipped
				}
				evs = append(evs, Event{Kind: kind, Run: run, At: now, ClockSynced: plausible})
				r.done[run.Key] = run.End
			}
			continue
		}
		if !run.End.After(now) && plausible && !run.Start.Before(since) {
			evs = r.missed(evs, run, now, plausible, jumped)
		}
	}

	// 4. What should be playing now on each output (and, ahead, what starts soon on a free one).
	for _, run := range r.runs {
		ahead := run.Start.After(now)
		if ahead && !r.startsAhead(run, now) || !run.End.After(now) || !run.Segments[0].Audible() || !r.wantsOutput(run.Output) {
			continue
		}
		cur := r.current[run.Output]
		if cur != nil && cur.run.Key == run.Key {
			continue // already playing; a forward step inside it does not restart it
		}
		if ahead && cur != nil {
			continue // the output is busy until then: it starts at its time
		}
		if _, ok := r.done[run.Key]; ok {
			continue // played (or missed) already: a backward step must not replay it
		}
		if !plausible && run.Class != Emergency {
			continue
		}
		late := now.Sub(run.Start)
		from := run.Beginning()
		_, began := r.occStarted[run.occurrenceKey()]
		if ahead && began {
			continue // a part of an occurrence playing already: it goes on at its time
		}
		switch {
		case began:
			// The occurrence was playing before (a crash, a clock step, a preemption it
			// resumes from): join it where the timeline is now, past what was heard whole.
			var ok bool
			if from, ok = r.joinAt(run, now); !ok {
				r.done[run.Key] = run.End
				continue
			}
		case late <= r.opts.OnTime:
		default:
			// Not begun, and too late to begin (step 2 would have begun it otherwise).
			evs = r.missed(evs, run, now, plausible, jumped)
			continue
		}
		if cur != nil {
			why := reason
			if replaced && !stepped && outranks(run, cur.run) {
				// A new revision that brings a higher programme (an emergency pushed now)
				// preempts the running one; it is not replaced.
				why = StopPreempted
			}
			evs = append(evs, Event{Kind: EventStop, Run: cur.run, At: now, Reason: why, ClockSynced: plausible})
			r.done[cur.run.Key] = cur.run.End
		}
		r.current[run.Output] = &playing{run: run, monoEnd: mono + run.End.Sub(now)}
		r.occStarted[run.occurrenceKey()] = run.End
		// Late counts from when the run was planned, had its occurrence begun on time.
		evs = append(evs, Event{Kind: EventStart, Run: run, At: now, From: from, Late: now.Sub(run.Segments[0].Planned()), ClockSynced: plausible})
	}

	// 5. A playing run that the timeline no longer has (schedule replaced) stops.
	if replaced {
		keys := map[string]bool{}
		for _, run := range r.runs {
			keys[run.Key] = true
		}
		for out, p := range r.current {
			if !keys[p.run.Key] {
				evs = append(evs, Event{Kind: EventStop, Run: p.run, At: now, Reason: StopReplaced, ClockSynced: plausible})
				r.done[p.run.Key] = p.run.End
				delete(r.current, out)
			}
		}
	}

	// 6. Runs starting soon, for what must get ready before their first sample.
	if r.opts.Lead > 0 {
		for _, run := range r.runs {
			if !run.Start.After(now) || run.Start.Sub(now) > r.opts.Lead || !run.Segments[0].Audible() || !r.wantsOutput(run.Output) {
				continue
			}
			if _, ok := r.announced[run.Key]; ok || (!plausible && run.Class != Emergency) {
				continue
			}
			r.announced[run.Key] = run.End
			evs = append(evs, Event{Kind: EventUpcoming, Run: run, At: now, ClockSynced: plausible})
		}
	}

	evs = r.capMissed(evs)
	if plausible {
		r.lastPlausibe = now
	}
	r.prune(now)
	return evs, r.nextWake(now, mono)
}

// window is the span of wall time the runner compiles around now: behind it, as far as missed
// runs are reported (and the two hours a run may still be going); ahead, the horizon.
func (r *Runner) window(now time.Time) (from, to time.Time) {
	return now.Add(-2*time.Hour - r.opts.MissedLookback), now.Add(r.opts.Horizon)
}

// firstAhead is how far ahead the first timeline after a start reaches (firstWindow).
const firstAhead = 10 * time.Minute

// firstWindow is the span of the first timeline after a start: behind it, only as far as
// missed runs are reported since the agent last ran (and the two hours a run may still be
// going), ahead the next minutes. A play every 2 s over window's 32 hours is 57,600 runs: on a
// loaded Pi, a minute of silence after every restart.
func (r *Runner) firstWindow(now time.Time) (from, to time.Time) {
	from, to = r.window(now)
	since := now
	if last := r.lastPlausibe; !last.IsZero() && last.Before(since) {
		since = last
	}
	// A minute more than the two hours, so that the timeline's start is never within two
	// hours of now (which Step takes for a clock stepped back before it).
	if f := since.Add(-2*time.Hour - time.Minute); f.After(from) {
		from = f
	}
	return from, now.Add(min(firstAhead, r.opts.Horizon))
}

// Check answers whether the runner can play doc: it compiles it over the window the runner
// will compile, with the runner's options, so a schedule it could not run (an item of unknown
// length, a cron firing every second) is refused when it is offered, not found out when its
// turn comes. It may be called from any goroutine.
func (r *Runner) Check(doc *Document) error {
	from, to := r.window(r.opts.Clock.Now())
	_, err := Compile(doc, from, to, r.opts.Compile)
	return err
}

// compile makes the timeline around now, with the occurrences known to have begun late, in
// the loop: over as short a window as the one installed, as the whole one is on its way.
func (r *Runner) compile(doc *Document, now time.Time) {
	c := r.newCompiled(doc, now, r.short)
	r.install(c.make(r.opts.Compile, r.began))
}

// newCompiled is a compile of doc to be made over the window around now (firstWindow if
// short); the loop makes it, as it reads loop state.
func (r *Runner) newCompiled(doc *Document, now time.Time, short bool) *compiled {
	c := &compiled{doc: doc, gen: r.gen, short: short}
	c.from, c.to = r.window(now)
	if short {
		c.from, c.to = r.firstWindow(now)
	}
	return c
}

// make compiles c's timeline; it touches nothing of the loop's but began, which a compile
// beside the loop is given a copy of.
func (c *compiled) make(opts CompileOptions, began map[string]time.Time) *compiled {
	opts.Began = began
	c.tl, c.err = Compile(c.doc, c.from, c.to, opts)
	return c
}

// compileBeside starts compiling doc in a goroutine of the runner's (Run waits for it), unless
// one is under way: its result is taken at a later step (takeCompiled).
func (r *Runner) compileBeside(doc *Document, now time.Time, short bool) {
	if r.compiling != nil {
		return
	}
	r.compiling = doc
	c, began, opts := r.newCompiled(doc, now, short), maps.Clone(r.began), r.opts.Compile
	r.compiles.Add(1)
	go func() {
		defer r.compiles.Done()
		c.make(opts, began)
		r.mu.Lock()
		r.compiled = c
		r.mu.Unlock()
		select { // wake the loop
		case r.changed <- struct{}{}:
		default:
		}
	}()
}

// takeCompiled returns the timeline compiled beside the loop, if one came and it is for doc
// and nothing was installed since it began (a clock step, a late begin: then it is stale and
// compiled again).
func (r *Runner) takeCompiled(doc *Document) *compiled {
	r.mu.Lock()
	c := r.compiled
	r.compiled = nil
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	r.compiling = nil
	if c.doc != doc || c.gen != r.gen {
		return nil
	}
	return c
}

// install makes a compiled timeline the one the loop follows.
func (r *Runner) install(c *compiled) {
	doc, tl, err := c.doc, c.tl, c.err
	r.gen++
	if err != nil && r.compiledFor == doc && r.runs != nil {
		// The same document compiled before (an item's file vanished since, so its length is
		// unknown now): keep the timeline it had rather than silence the device; the item
		// itself fails when its turn comes, and says why.
		if r.keptFor != doc {
			r.keptFor = doc
			r.log.Warn("schedule cannot be compiled again; keeping its timeline as it was", "schedule", doc.ID, "revision", doc.Revision, "err", err)
		}
		return
	}
	if err != nil {
		r.log.Error("schedule cannot be compiled; nothing new will start", "schedule", doc.ID, "revision", doc.Revision, "err", err)
		r.compiledFor, r.runs = doc, nil
		return
	}
	r.compiledFor, r.tl, r.compiledFrom, r.compiledTo, r.short = doc, tl, c.from, c.to, c.short
	r.runs = tl.Runs()
}

// beginLate records, for each occurrence that should be playing (or should have played
// since the last look) but has not begun, that it begins now, when it may still; it reports
// whether any did, so that the caller compiles again.
func (r *Runner) beginLate(now, since time.Time, plausible bool) bool {
	// Only a programme's latest occurrence due by now may begin late: the ones before it on
	// the same output passed while the agent was down (a play every few seconds) and are
	// missed, each on its own, rather than all begun at once on top of each other.
	latest := map[[2]string]time.Time{}
	for _, run := range r.runs {
		if k := [2]string{run.Output, run.Program}; !run.Scheduled.After(now) && run.Scheduled.After(latest[k]) {
			latest[k] = run.Scheduled
		}
	}
	any := false
	for _, run := range r.runs {
		seg := run.Segments[0]
		occ := run.occurrenceKey()
		if seg.Item != 0 || seg.Offset != 0 || seg.Status == StatusResumed || !seg.Audible() || seg.Late != 0 || !r.wantsOutput(run.Output) {
			continue // not the occurrence's beginning, or already moved
		}
		if now.Sub(run.Start) <= r.lateBegin() || run.Start.After(now) {
			continue // on time: step 4 starts it
		}
		if _, ok := r.done[run.Key]; ok {
			continue
		}
		if _, ok := r.occStarted[occ]; ok {
			continue
		}
		if _, ok := r.occMissed[occ]; ok {
			continue
		}
		if !run.End.After(now) && run.Start.Before(since) {
			continue // its time passed while the agent was running: it was seen then
		}
		if !plausible && run.Class != Emergency {
			continue
		}
		if run.Scheduled.Before(latest[[2]string{run.Output, run.Program}]) {
			continue // a later occurrence of the programme is due: this one is missed
		}
		closes, bounded := r.windowClose(run)
		if bounded && !now.Before(closes) {
			continue
		}
		inGrace := now.Sub(run.Scheduled) <= r.opts.Grace
		if !inGrace && !(run.Class == Emergency && bounded) {
			continue // an emergency plays while its window is open; anything else is missed
		}
		r.began[occ] = now
		any = true
	}
	return any
}

// lateBegin is how late an occurrence may begin and keep its timeline; one that begins later
// has its timeline moved to when it began (beginLate), so that what is heard and the timeline
// a restart joins agree. A busy Pi wakes a few milliseconds late; a boot or a late push is
// seconds late.
func (r *Runner) lateBegin() time.Duration { return min(200*time.Millisecond, r.opts.OnTime) }

// windowClose is when the occurrence's window closes (scheduled + max_duration) and whether
// its programme has one.
func (r *Runner) windowClose(run *Run) (time.Time, bool) {
	if r.compiledFor != nil {
		for _, p := range r.compiledFor.Programs {
			if p.ID == run.Program && p.MaxDuration > 0 {
				return run.Scheduled.Add(p.MaxDuration.D()), true
			}
		}
	}
	return time.Time{}, false
}

// joinAt is where a begun run goes on at now: the timeline's position, moved past segments
// the journal shows were played to their end. False when nothing of it is left to play.
func (r *Runner) joinAt(run *Run, now time.Time) (Position, bool) {
	pos := run.PositionAt(now)
	for pos.Segment < len(run.Segments) {
		seg := run.Segments[pos.Segment]
		if _, heard := r.segDone[seg.Key()]; !heard {
			return pos, true
		}
		pos.Segment++
		if pos.Segment < len(run.Segments) {
			pos.Offset = run.Segments[pos.Segment].Offset
		}
	}
	return pos, false
}

// learnPast matches what the journal showed (Remember) against the timeline, once: an
// occurrence that began late begins then again, played segments are not played again, and
// recorded occurrences are neither missed nor recorded twice.
func (r *Runner) learnPast(doc *Document, now time.Time) {
	past := r.past
	r.past = nil
	type segRef struct {
		output, program string
		item            int
		planned         int64
	}
	index := func() map[segRef]*Run {
		m := map[segRef]*Run{}
		for _, run := range r.runs {
			for _, s := range run.Segments {
				m[segRef{s.Output, s.Program, s.Item, s.Planned().UnixNano()}] = run
			}
		}
		return m
	}
	// An occurrence whose first item began late (and not by joining it mid-way) was moved to
	// begin then: compile it so again, so that its segments are where they were.
	runs := index()
	moved := false
	for _, p := range past {
		run := runs[segRef{p.Output, p.Program, p.Item, p.Planned.UnixNano()}]
		if run == nil || p.Item != 0 || p.From != 0 || p.Start.IsZero() || !p.Planned.Equal(run.Scheduled) {
			continue
		}
		if seg := run.Segments[0]; seg.Late == 0 && p.Start.Sub(p.Planned) > r.lateBegin() {
			r.began[run.occurrenceKey()] = p.Start
			moved = true
		}
	}
	if moved {
		r.compile(doc, now)
		runs = index()
	}
	for _, p := range past {
		key := segRef{p.Output, p.Program, p.Item, p.Planned.UnixNano()}
		run := runs[key]
		if run == nil {
			continue // a schedule since replaced, or older than the timeline
		}
		occ := run.occurrenceKey()
		switch p.Was {
		case PastNoted:
			r.occMissed[occ] = run.End
			r.done[run.Key] = run.End
		case PastDone, PastCut:
			r.occStarted[occ] = run.End
			if p.Was == PastDone {
				for _, s := range run.Segments {
					if s.Item == p.Item && s.Planned().Equal(p.Planned) {
						r.segDone[s.Key()] = run.End
					}
				}
			}
		}
	}
}

// missed records that a run could not play: one event per occurrence (a programme split by a
// preemption is still one play), none for an occurrence that did play in part.
func (r *Runner) missed(evs []Event, run *Run, now time.Time, plausible, jumped bool) []Event {
	r.done[run.Key] = run.End
	occ := run.occurrenceKey()
	_, began := r.occStarted[occ]
	_, noted := r.occMissed[occ]
	if began || noted {
		return evs
	}
	r.occMissed[occ] = run.End
	return append(evs, Event{Kind: EventMissed, Run: run, At: now, Late: now.Sub(run.Start), Why: r.whyMissed(run, now, jumped), ClockSynced: plausible})
}

// capMissed keeps, per programme and output, the last MissedPerProgram missed events of one
// look and folds the earlier ones into one event, on the earliest run, that counts them.
func (r *Runner) capMissed(evs []Event) []Event {
	n := map[[2]string]int{}
	for _, e := range evs {
		if e.Kind == EventMissed {
			n[[2]string{e.Run.Output, e.Run.Program}]++
		}
	}
	folded := map[[2]string]int{} // index in out of the event the earlier ones fold into
	seen := map[[2]string]int{}
	out := evs[:0]
	for _, e := range evs {
		k := [2]string{e.Run.Output, e.Run.Program}
		if e.Kind != EventMissed || n[k] <= MissedPerProgram {
			out = append(out, e)
			continue
		}
		seen[k]++
		fold := n[k] - MissedPerProgram + 1 // the first fold events become one
		switch {
		case seen[k] == 1:
			folded[k] = len(out)
			e.Count = fold
			out = append(out, e)
		case seen[k] <= fold:
			first := &out[folded[k]]
			at := func(t time.Time) string { return t.In(first.Run.Start.Location()).Format("2006-01-02 15:04:05") }
			if seen[k] == fold {
				first.Why = fmt.Sprintf("%d occurrences from %s to %s were missed, recorded as this one (the journal keeps the last %d of a programme one by one); the first: %s",
					fold, at(first.Run.Start), at(e.Run.End), MissedPerProgram-1, first.Why)
			}
		default:
			out = append(out, e)
		}
	}
	return out
}

// whyMissed says in words what kept a run from playing.
func (r *Runner) whyMissed(run *Run, now time.Time, jumped bool) string {
	at := func(t time.Time) string { return t.In(run.Start.Location()).Format("2006-01-02 15:04:05") }
	late := now.Sub(run.Scheduled).Round(time.Second)
	switch {
	case jumped:
		return fmt.Sprintf("the wall clock jumped forward past its time (%s to %s)", at(run.Start), at(run.End))
	case run.End.After(now):
		return fmt.Sprintf("could only start %s after it was due, beyond the grace window of %s", late, r.opts.Grace)
	case run.Start.Before(r.firstLook):
		down := "before " + at(r.firstLook)
		if !r.opts.LastRun.IsZero() {
			down = "from " + at(r.opts.LastRun) + " to " + at(r.firstLook)
		}
		return fmt.Sprintf("the agent was not running when it was due (%s to %s): it was off or restarting %s", at(run.Start), at(run.End), down)
	case !r.lastUntrusted.Before(run.Start):
		return fmt.Sprintf("the clock was not trusted when it was due (%s to %s)", at(run.Start), at(run.End))
	case r.firstTrusted.After(r.firstLook) && run.Start.Before(r.firstTrusted):
		// Booted on a clock not yet set: when in the gap the agent came up is unknown.
		return fmt.Sprintf("the agent was not running when it was due (%s to %s), or ran on a clock not yet set: it was off or restarting from %s, and its clock was set at %s",
			at(run.Start), at(run.End), at(r.opts.LastRun), at(r.firstTrusted))
	default:
		return fmt.Sprintf("its time (%s to %s) passed before the agent could start it: the agent was busy (a slow step, %s late); no grace applies past its window", at(run.Start), at(run.End), late)
	}
}

func (r *Runner) stopAll(now time.Time, why StopReason, plausible bool) []Event {
	var evs []Event
	for out, p := range r.current {
		evs = append(evs, Event{Kind: EventStop, Run: p.run, At: now, Reason: why, ClockSynced: plausible})
		r.done[p.run.Key] = p.run.End
		delete(r.current, out)
	}
	return evs
}

// nextWake is the time until the next run starts or ends, at most a tick.
func (r *Runner) nextWake(now time.Time, mono time.Duration) time.Duration {
	wake := r.opts.Tick
	consider := func(d time.Duration) {
		if d > 0 && d < wake {
			wake = d
		}
	}
	for _, run := range r.runs {
		consider(run.Start.Sub(now))
		if r.opts.Lead > 0 {
			consider(run.Start.Sub(now) - r.opts.Lead)
		}
		if ahead := r.opts.StartAhead[run.Output]; ahead > 0 {
			consider(run.Start.Sub(now) - ahead)
		}
	}
	for _, p := range r.current {
		consider(p.run.End.Sub(now))
		consider(p.monoEnd - mono)
	}
	return wake
}

// startsAhead reports whether run, due after now, may start now (StartAhead): it is due within
// StartAhead and begins at its occurrence's beginning, not joined mid-way or begun late.
func (r *Runner) startsAhead(run *Run, now time.Time) bool {
	seg, ahead := run.Segments[0], r.opts.StartAhead[run.Output]
	return ahead > 0 && run.Start.Sub(now) <= ahead &&
		seg.Item == 0 && seg.Offset == 0 && seg.Late == 0 && seg.Status != StatusResumed
}

// prune forgets runs that ended long ago, so memory stays flat over months of running.
func (r *Runner) prune(now time.Time) {
	horizon := now.Add(-2 * r.opts.MissedLookback)
	for k, end := range r.done {
		if end.Before(horizon) {
			delete(r.done, k)
		}
	}
	for _, m := range []map[string]time.Time{r.occStarted, r.occMissed, r.announced, r.segDone, r.began} {
		for k, end := range m {
			if end.Before(horizon) {
				delete(m, k)
			}
		}
	}
}

// outranks reports whether run a takes the output from run b: a higher class, or a higher
// priority inside the same class.
func outranks(a, b *Run) bool {
	if a.Class != b.Class {
		return a.Class > b.Class
	}
	return a.Priority > b.Priority
}
