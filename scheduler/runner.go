package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"
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
	EventStart      EventKind = "start"      // play the run now, from Offset into its first item
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
	At     time.Time     `json:"at"`               // wall time when decided
	Offset time.Duration `json:"offset,omitempty"` // start: where in the first item to begin
	Late   time.Duration `json:"late,omitempty"`   // start: how long after the run's start
	Reason StopReason    `json:"reason,omitempty"`
	// ClockSynced is false when the decision was made on a clock not yet trusted.
	ClockSynced bool `json:"clock_synced"`
}

// RunnerOptions configure a Runner. Zero values take the defaults noted.
type RunnerOptions struct {
	Clock Clock
	Log   *slog.Logger
	// Grace is how late a programme may still start after a missed start (default 5 min).
	Grace time.Duration
	// Lead is how long before a run's start an EventUpcoming is sent (0: never).
	Lead time.Duration
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

	mu      sync.Mutex
	doc     *Document
	changed chan struct{}

	// Loop state, touched only by Step.
	tl           *Timeline
	runs         []*Run
	compiledFor  *Document
	compiledFrom time.Time
	compiledTo   time.Time
	current      map[string]*playing // by output
	done         map[string]time.Time
	occStarted   map[string]time.Time
	occMissed    map[string]time.Time // one missed record per occurrence, not per run
	announced    map[string]time.Time // runs an EventUpcoming was sent for
	lastWall     time.Time
	lastMono     time.Duration
	lastPlausibe time.Time
	started      bool
	resumeHints  []resumeHint
}

// resumeHint is a play a crash cut: its occurrence counts as begun.
type resumeHint struct {
	output, program string
	startedAt       time.Time
}

type playing struct {
	run     *Run
	monoEnd time.Duration // the run ends by monotonic time too, so a backward step cannot stretch it
	late    bool          // a late emergency moved to start when it could
}

// NewRunner returns a runner with no schedule; SetSchedule gives it one.
func NewRunner(opts RunnerOptions) *Runner {
	if opts.Clock == nil {
		opts.Clock = NewSystemClock()
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

// MarkDone tells the runner a run already played (from the journal after a restart), so it is
// never played twice.
func (r *Runner) MarkDone(key string, end time.Time) { r.done[key] = end }

// ResumeAfterRestart tells the runner that a play of program on output started at startedAt
// and was cut by a crash or power loss. If that occurrence is still in its window, it
// continues where the timeline is now rather than starting over or counting as missed.
func (r *Runner) ResumeAfterRestart(output, program string, startedAt time.Time) {
	r.resumeHints = append(r.resumeHints, resumeHint{output, program, startedAt})
}

// Run loops until ctx ends, sending events in order. At the end it stops what is playing.
func (r *Runner) Run(ctx context.Context, events chan<- Event) error {
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
	if !r.started {
		r.lastPlausibe = r.opts.LastRun
		if !plausible {
			r.log.Warn("clock not trusted yet; only emergency programmes will play until it is",
				"now", now.Format(time.RFC3339), "not_before", r.opts.NotBefore.Format(time.RFC3339))
		}
	}
	r.started = true
	defer func() { r.lastWall, r.lastMono = now, mono }()

	replaced := doc != r.compiledFor
	if doc == nil {
		return r.stopAll(now, StopReplaced, plausible), r.opts.Tick
	}
	if replaced || stepped || now.Before(r.compiledFrom.Add(2*time.Hour)) || now.After(r.compiledTo.Add(-r.opts.Horizon/2)) {
		from, to := now.Add(-2*time.Hour-r.opts.MissedLookback), now.Add(r.opts.Horizon)
		tl, err := Compile(doc, from, to, r.opts.Compile)
		if err != nil {
			r.log.Error("schedule cannot be compiled; nothing new will start", "schedule", doc.ID, "revision", doc.Revision, "err", err)
			r.compiledFor, r.runs = doc, nil
		} else {
			r.compiledFor, r.tl, r.compiledFrom, r.compiledTo = doc, tl, from, to
			r.runs = tl.Runs()
		}
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

	// 2. Runs whose whole time passed unseen (device off, clock step): missed; and quiet-hours
	// or skip notes whose time has come. With no earlier run known (first boot), nothing
	// before the first trusted look counts as missed.
	if plausible && r.lastPlausibe.IsZero() {
		r.lastPlausibe = now
	}
	since := r.lastPlausibe
	if plausible && since.Before(now.Add(-r.opts.MissedLookback)) {
		since = now.Add(-r.opts.MissedLookback)
	}
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
		if _, late := r.lateEmergency(run, now); late {
			continue // step 3 plays it now
		}
		if !run.End.After(now) && plausible && !run.Start.Before(since) {
			evs = r.missed(evs, run, now, plausible)
		}
	}

	// 3. What should be playing now on each output.
	for _, run := range r.runs {
		lateBy := now.Sub(run.Start)
		moved, movedLate := r.lateEmergency(run, now)
		if movedLate {
			run = moved
		}
		if run.Start.After(now) || !run.End.After(now) || !run.Segments[0].Audible() || !r.wantsOutput(run.Output) {
			continue
		}
		cur := r.current[run.Output]
		if cur != nil && cur.run.Key == run.Key {
			continue // already playing; a forward step inside it does not restart it
		}
		if cur != nil && cur.late && !movedLate && !outranks(run, cur.run) {
			continue // a late emergency holds the output against what the timeline put after it
		}
		if _, ok := r.done[run.Key]; ok {
			continue // played (or missed) already: a backward step must not replay it
		}
		if !plausible && run.Class != Emergency {
			continue
		}
		late := now.Sub(run.Start)
		offset := run.Segments[0].Offset
		_, began := r.occStarted[run.occurrenceKey()]
		for _, h := range r.resumeHints {
			if h.output == run.Output && h.program == run.Program && !h.startedAt.Before(run.Scheduled) && h.startedAt.Before(run.End) {
				began = true
			}
		}
		switch {
		case late <= r.opts.OnTime:
		case began:
			// The occurrence was playing before (a clock step, a resume): join it where the
			// timeline is now.
			offset += late
		case now.Sub(run.Scheduled) <= r.opts.Grace:
			// A late start inside the grace window plays from the beginning; its end stays
			// where the timeline puts it.
		default:
			evs = r.missed(evs, run, now, plausible)
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
		r.current[run.Output] = &playing{run: run, monoEnd: mono + run.End.Sub(now), late: movedLate}
		r.occStarted[run.occurrenceKey()] = run.End
		if !movedLate {
			lateBy = late
		}
		evs = append(evs, Event{Kind: EventStart, Run: run, At: now, Offset: offset, Late: lateBy, ClockSynced: plausible})
	}

	// 4. A playing run that the timeline no longer has (schedule replaced) stops.
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

	// 5. Runs starting soon, for what must get ready before their first sample.
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

	if plausible {
		r.lastPlausibe = now
	}
	r.prune(now)
	return evs, r.nextWake(now, mono)
}

// missed records that a run could not play: one event per occurrence (a programme split by a
// preemption is still one play), none for an occurrence that did play in part.
func (r *Runner) missed(evs []Event, run *Run, now time.Time, plausible bool) []Event {
	r.done[run.Key] = run.End
	occ := run.occurrenceKey()
	_, began := r.occStarted[occ]
	_, noted := r.occMissed[occ]
	if began || noted {
		return evs
	}
	r.occMissed[occ] = run.End
	return append(evs, Event{Kind: EventMissed, Run: run, At: now, Late: now.Sub(run.Start), ClockSynced: plausible})
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
	}
	for _, p := range r.current {
		consider(p.run.End.Sub(now))
		consider(p.monoEnd - mono)
	}
	return wake
}

// prune forgets runs that ended long ago, so memory stays flat over months of running.
func (r *Runner) prune(now time.Time) {
	horizon := now.Add(-2 * r.opts.MissedLookback)
	for k, end := range r.done {
		if end.Before(horizon) {
			delete(r.done, k)
		}
	}
	for _, m := range []map[string]time.Time{r.occStarted, r.occMissed, r.announced} {
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

// lateEmergency moves an emergency that could not start on time (the device was off, or cut
// off from the hub when it was sent) to start now, while its window — max_duration from the
// scheduled start — is still open: the warning must still be given, whatever the grace window.
// Only an occurrence that has not begun, from its first item.
func (r *Runner) lateEmergency(run *Run, now time.Time) (*Run, bool) {
	if run.Class != Emergency || !now.After(run.Start.Add(r.opts.Grace)) || run.Segments[0].Offset != 0 || !run.Segments[0].Audible() {
		return nil, false
	}
	if _, done := r.done[run.Key]; done {
		return nil, false
	}
	if _, began := r.occStarted[run.occurrenceKey()]; began {
		return nil, false
	}
	var window time.Duration
	if r.compiledFor != nil {
		for _, p := range r.compiledFor.Programs {
			if p.ID == run.Program {
				window = p.MaxDuration.D()
			}
		}
	}
	closes := run.Scheduled.Add(window)
	if window <= 0 || !now.Before(closes) {
		return nil, false
	}
	d := now.Sub(run.Start)
	moved := *run
	moved.Start, moved.End = now, minTime(run.End.Add(d), closes)
	moved.Segments = nil
	for _, s := range run.Segments {
		s.Start, s.End = s.Start.Add(d), minTime(s.End.Add(d), closes)
		if s.Start.Before(closes) {
			moved.Segments = append(moved.Segments, s)
		}
	}
	return &moved, true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
