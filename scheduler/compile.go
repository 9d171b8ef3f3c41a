package scheduler

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Status says how a segment of the timeline plays.
type Status string

const (
	StatusPlay       Status = "play"       // plays as scheduled, to the end of its item
	StatusPreempted  Status = "preempted"  // ends early: a higher programme took the output
	StatusResumed    Status = "resumed"    // plays again after a higher programme let go
	StatusCut        Status = "cut"        // ends early at max_duration, the window's end or quiet hours
	StatusSuppressed Status = "suppressed" // does not play: scheduled inside quiet hours
	StatusSkipped    Status = "skipped"    // does not play: interrupted with on_interrupt: skip
)

// Segment is one stretch of one item on one output.
type Segment struct {
	Output    string        `json:"output"`
	Program   string        `json:"program"`
	Title     string        `json:"title,omitempty"`
	Class     Class         `json:"class"`
	Priority  int           `json:"priority"`
	Scheduled time.Time     `json:"scheduled"` // start of the programme occurrence this belongs to
	Play      int           `json:"play"`      // 0 for the first play, 1.. for repeats
	Item      int           `json:"item"`      // index into the programme's items
	Ref       string        `json:"ref"`       // the item's content reference, path, URL or text
	Offset    time.Duration `json:"offset"`    // position in the item where this segment starts
	Start     time.Time     `json:"start"`
	End       time.Time     `json:"end"`
	Status    Status        `json:"status"`
	// Late is how much later than scheduled the occurrence began (a device booting, a schedule
	// arriving after the start: CompileOptions.Began); its segments are that much later than
	// planned. Zero for an occurrence that began on time.
	Late time.Duration `json:"late,omitempty"`
	Gain float64       `json:"gain"`
	// Source is the schedule's item itself (its kind, content, fallback text, ticker…): what
	// the outputs play. Ref is only its name in confirmations.
	Source Item `json:"source"`
}

// Planned is when the segment would have started had its occurrence begun on time: what a
// confirmation calls the item's scheduled time.
func (s Segment) Planned() time.Time { return s.Start.Add(-s.Late) }

// Key identifies a segment across recompiles of the same document.
func (s Segment) Key() string {
	return fmt.Sprintf("%s|%s|%d|%d|%d|%d", s.Output, s.Program, s.Scheduled.UnixNano(), s.Play, s.Item, s.Start.UnixNano())
}

// OccurrenceKey identifies the programme occurrence a segment belongs to.
func (s Segment) OccurrenceKey() string {
	return occurrenceKey(s.Output, s.Program, s.Scheduled, s.Play)
}

func occurrenceKey(output, program string, scheduled time.Time, play int) string {
	return fmt.Sprintf("%s|%s|%d|%d", output, program, scheduled.UnixNano(), play)
}

// Audible reports whether the segment is meant to reach the output.
func (s Segment) Audible() bool { return s.Status != StatusSuppressed && s.Status != StatusSkipped }

// Timeline is a compiled schedule: segments ordered by output, then start.
type Timeline struct {
	From, Until time.Time
	Segments    []Segment
}

// CompileOptions tune Compile.
type CompileOptions struct {
	// ItemLength tells the length of an item whose document gives none (the agent asks its
	// content store). Nil means only lengths written in the document are known.
	ItemLength func(Item) (time.Duration, bool)
	// Began holds, by occurrence key (Segment.OccurrenceKey), the time an occurrence actually
	// began when that was later than scheduled: the timeline starts it then, from its first
	// item, and it keeps the window its max_duration gives from the scheduled time (without
	// one, its natural length from the late start).
	Began map[string]time.Time
}

// DefaultOutputs is where a programme plays when it names no outputs.
var defaultOutputs = []string{"speakers"}

// MaxPlaysPerCompile bounds the work one compile may do, so that a schedule firing every second
// cannot stall an agent. A busy real schedule has a few hundred plays a day.
const MaxPlaysPerCompile = 100_000

// maxLookback bounds how far before `from` the compiler looks for occurrences still running.
const maxLookback = 48 * time.Hour

// Compile turns a document into the timeline of [from, until): for each output, at each
// moment, the highest class, then the highest priority, then the earliest start plays. It is
// deterministic: the same document and range give the same timeline.
func Compile(doc *Document, from, until time.Time, opts CompileOptions) (*Timeline, error) {
	if doc == nil || doc.loc == nil || len(doc.plans) != len(doc.Programs) {
		return nil, errors.New("compile: document was not parsed with scheduler.Parse")
	}
	if !until.After(from) {
		return nil, fmt.Errorf("compile: until %s is not after from %s", until.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	// Occurrences that started before `from` may still hold an output, and occurrences that
	// start after `until` may cut a segment that crosses it: look both ways.
	var lookback time.Duration
	type shape struct {
		total time.Duration
		items []time.Duration
	}
	shapes := make([]shape, len(doc.Programs))
	var errs []error
	for i := range doc.Programs {
		p := &doc.Programs[i]
		total, items, err := lengthOf(p, opts.ItemLength)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", programName(p, i), err))
			continue
		}
		shapes[i] = shape{total, items}
		if w := windowLength(p, total); w > lookback {
			lookback = w
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if lookback > maxLookback {
		lookback = maxLookback
	}
	lookback *= 2

	byOutput := map[string][]*occurrence{}
	count := 0
	for i := range doc.Programs {
		p := &doc.Programs[i]
		sh := shapes[i]
		for _, base := range doc.plans[i].starts(p, doc.loc, from.Add(-lookback), until.Add(lookback)) {
			starts := repeatStarts(p, base, sh.total)
			if count += len(starts); count > MaxPlaysPerCompile {
				return nil, fmt.Errorf("%s: the schedule has more than %d plays between %s and %s; is the cron meant to fire this often (%q)?",
					programName(p, i), MaxPlaysPerCompile, from.Format(time.RFC3339), until.Format(time.RFC3339), p.Cron)
			}
			for k, start := range starts {
				outs := p.Outputs
				if len(outs) == 0 {
					outs = defaultOutputs
				}
				for _, out := range outs {
					o := &occurrence{
						prog: p, index: i, play: k, scheduled: start, start: start, output: out,
						items: sh.items, total: sh.total,
					}
					o.windowEnd = start.Add(windowLength(p, sh.total))
					if began, ok := opts.Began[occurrenceKey(out, p.ID, start, k)]; ok && began.After(start) {
						o.start = began
						if p.MaxDuration <= 0 && sh.total >= 0 {
							o.windowEnd = began.Add(sh.total)
						}
					}
					if out == "speakers" && p.Class != Emergency {
						if inQuiet(doc, start) || inQuiet(doc, o.start) {
							o.suppressed = true
						} else if q, ok := nextQuietStart(doc, o.start); ok && q.Before(o.windowEnd) {
							o.windowEnd = q
						}
					}
					byOutput[out] = append(byOutput[out], o)
				}
			}
		}
	}

	outputs := make([]string, 0, len(byOutput))
	for o := range byOutput {
		outputs = append(outputs, o)
	}
	sort.Strings(outputs)
	tl := &Timeline{From: from, Until: until}
	for _, out := range outputs {
		for _, s := range resolve(byOutput[out], doc.loc) {
			if s.End.After(from) && s.Start.Before(until) {
				tl.Segments = append(tl.Segments, s)
			}
		}
	}
	return tl, nil
}

// windowLength is how long an occurrence may hold its output: max_duration when given (the
// slack a preempted programme may resume into), else its natural length.
func windowLength(p *Program, total time.Duration) time.Duration {
	if p.MaxDuration > 0 {
		return p.MaxDuration.D()
	}
	return total
}

func repeatStarts(p *Program, base time.Time, total time.Duration) []time.Time {
	out := []time.Time{base}
	r := p.Repeat
	if r == nil || r.Count == 0 {
		return out
	}
	step := r.Every.D()
	if step <= 0 {
		play := total
		if p.MaxDuration > 0 && (play < 0 || play > p.MaxDuration.D()) {
			play = p.MaxDuration.D()
		}
		step = play + r.Gap.D()
	}
	if step <= 0 {
		return out
	}
	for k := 1; k <= r.Count; k++ {
		out = append(out, base.Add(time.Duration(k)*step))
	}
	return out
}

// occurrence is one play of a programme on one output, as the resolver tracks it.
type occurrence struct {
	prog       *Program
	index      int // programme index in the document, for deterministic ties
	play       int
	output     string
	scheduled  time.Time // when it was due
	start      time.Time // when it begins: scheduled, or later (CompileOptions.Began)
	windowEnd  time.Time
	items      []time.Duration // -1: unknown, runs until cut
	total      time.Duration
	suppressed bool

	pos         time.Duration // how much has played since the (re)start
	started     bool
	done        bool
	skipped     bool
	interrupted bool // lost the output at least once: later segments are "resumed"
	restart     bool // on regaining the output, start again from item 0
}

// outranks reports whether a should hold the output rather than b.
func (a *occurrence) outranks(b *occurrence) bool {
	if a.prog.Class != b.prog.Class {
		return a.prog.Class > b.prog.Class
	}
	if a.prog.Priority != b.prog.Priority {
		return a.prog.Priority > b.prog.Priority
	}
	if !a.scheduled.Equal(b.scheduled) {
		return a.scheduled.Before(b.scheduled)
	}
	if a.index != b.index {
		return a.index < b.index
	}
	return a.play < b.play
}

func (o *occurrence) policy() InterruptPolicy {
	if o.prog.OnInterrupt == "" {
		return Resume
	}
	return o.prog.OnInterrupt
}

// at returns the item playing at position pos and how far into it, and how much of it is left
// (-1: unbounded).
func (o *occurrence) at(pos time.Duration) (item int, offset, left time.Duration, ok bool) {
	for i, d := range o.items {
		if d < 0 {
			return i, pos, -1, true
		}
		if pos < d {
			return i, pos, d - pos, true
		}
		pos -= d
	}
	return 0, 0, 0, false
}

// resolve sweeps one output's occurrences through time and returns its segments.
func resolve(occs []*occurrence, loc *time.Location) []Segment {
	sort.SliceStable(occs, func(i, j int) bool {
		if !occs[i].start.Equal(occs[j].start) {
			return occs[i].start.Before(occs[j].start)
		}
		return occs[i].outranks(occs[j])
	})
	var segs []Segment
	seg := func(o *occurrence, item int, offset time.Duration, start, end time.Time, st Status) Segment {
		it := o.prog.Items[item]
		return Segment{
			Output: o.output, Program: o.prog.ID, Title: o.prog.Title, Class: o.prog.Class,
			Priority: o.prog.Priority, Scheduled: o.scheduled.In(loc), Play: o.play, Item: item,
			Ref: it.Ref(), Offset: offset, Start: start.In(loc), End: end.In(loc), Status: st, Late: o.start.Sub(o.scheduled),
			Gain: o.prog.Gain(), Source: it,
		}
	}
	var active []*occurrence
	next := 0 // index of the next occurrence to become active
	var holder *occurrence
	var t time.Time
	if len(occs) > 0 {
		t = occs[0].start
	}
	for {
		for next < len(occs) && !occs[next].start.After(t) {
			o := occs[next]
			next++
			if o.suppressed {
				segs = append(segs, seg(o, 0, 0, o.start, o.windowEnd, StatusSuppressed))
				continue
			}
			active = append(active, o)
		}
		// Drop what is finished or out of its window.
		kept := active[:0]
		for _, o := range active {
			if !o.done && !o.skipped && o.windowEnd.After(t) {
				kept = append(kept, o)
			}
		}
		active = kept

		var winner *occurrence
		for _, o := range active {
			if winner == nil || o.outranks(winner) {
				winner = o
			}
		}
		if holder != nil && holder != winner && !holder.done && holder.windowEnd.After(t) {
			// The holder loses the output to a higher programme.
			holder.interrupted = true
			if n := len(segs); n > 0 && segs[n-1].End.Equal(t) && segs[n-1].Program == holder.prog.ID &&
				segs[n-1].Scheduled.Equal(holder.scheduled) && segs[n-1].Play == holder.play {
				segs[n-1].Status = StatusPreempted
			}
			switch holder.policy() {
			case Skip:
				holder.skipped = true
			case Restart:
				holder.restart = true
			}
		}
		holder = winner
		if winner != nil && !winner.started && winner.start.Before(t) {
			// It could not start on time because an equal or higher programme held the output:
			// it starts late, inside its window, unless it is one to skip once interrupted.
			if winner.policy() == Skip {
				winner.skipped = true
				segs = append(segs, seg(winner, 0, 0, t, t, StatusSkipped))
				holder = nil
				continue
			}
		}
		if winner == nil {
			if next >= len(occs) {
				break
			}
			t = occs[next].start
			continue
		}
		if winner.restart {
			winner.pos, winner.restart = 0, false
		}
		item, offset, left, ok := winner.at(winner.pos)
		if !ok {
			winner.done = true
			continue
		}
		// Play until the item ends, the window closes, or someone new arrives.
		end := winner.windowEnd
		if left >= 0 && t.Add(left).Before(end) {
			end = t.Add(left)
		}
		if next < len(occs) && occs[next].start.Before(end) {
			end = occs[next].start
		}
		if !end.After(t) { // zero-length item
			winner.pos += left
			continue
		}
		st := StatusPlay
		if winner.interrupted {
			st = StatusResumed
		}
		// Continue the previous segment when nothing changed but an unrelated arrival.
		if n := len(segs); n > 0 && winner.started && segs[n-1].End.Equal(t) &&
			segs[n-1].OccurrenceKey() == seg(winner, item, offset, t, end, st).OccurrenceKey() &&
			segs[n-1].Item == item && segs[n-1].Offset+segs[n-1].End.Sub(segs[n-1].Start) == offset {
			segs[n-1].End = end.In(loc)
		} else {
			segs = append(segs, seg(winner, item, offset, t, end, st))
		}
		winner.started = true
		winner.pos += end.Sub(t)
		if _, _, _, more := winner.at(winner.pos); !more {
			winner.done = true
		} else if !end.Before(winner.windowEnd) {
			winner.done = true
			segs[len(segs)-1].Status = StatusCut
		}
		t = end
	}
	return segs
}

// inQuiet reports whether t falls inside the document's quiet hours.
func inQuiet(doc *Document, t time.Time) bool {
	if len(doc.QuietHours) == 0 {
		return false
	}
	l := t.In(doc.loc)
	sec := l.Hour()*3600 + l.Minute()*60 + l.Second()
	for _, q := range doc.QuietHours {
		f, to := q.From.Seconds, q.To.Seconds
		if f < to {
			if sec >= f && sec < to {
				return true
			}
		} else if sec >= f || sec < to { // spans midnight
			return true
		}
	}
	return false
}

// nextQuietStart returns the first start of quiet hours after t, within two days.
func nextQuietStart(doc *Document, t time.Time) (time.Time, bool) {
	var best time.Time
	l := t.In(doc.loc)
	for day := 0; day <= 2; day++ {
		d := l.AddDate(0, 0, day)
		for _, q := range doc.QuietHours {
			w := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC).Add(time.Duration(q.From.Seconds) * time.Second)
			s := wallToInstant(w, doc.loc)
			if s.After(t) && (best.IsZero() || s.Before(best)) {
				best = s
			}
		}
	}
	return best, !best.IsZero()
}

// sortByStart orders segments by start time, then output, stably.
func sortByStart(segs []Segment) {
	sort.SliceStable(segs, func(i, j int) bool {
		if !segs[i].Start.Equal(segs[j].Start) {
			return segs[i].Start.Before(segs[j].Start)
		}
		return segs[i].Output < segs[j].Output
	})
}
