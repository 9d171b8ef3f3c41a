package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// screenOut drives the HDMI screen (device/screen, one mpv) from the timeline, as the speakers
// do the sound card: a run is one mpv playlist (gapless), a higher run takes the screen with one
// replace (no black between), and each item is confirmed from mpv's own events: start at its
// first frame, time shown, frames dropped.
type screenOut struct {
	screen   *screen.Screen
	journal  *journal.Journal
	store    *content.Store
	log      *slog.Logger
	clock    clock.Clock // the agent's: record times when the screen gave none
	schedule func() (string, int64)
	recorded func()

	cur *screenRun
}

type screenRun struct {
	run      *scheduler.Run
	sh       *screen.Showing
	segs     []scheduler.Segment // the segments handed to the screen, in order
	froms    []time.Duration     // where in each of those items the showing begins
	clock    protocol.ClockState
	schedID  string
	schedRev int64

	mu     sync.Mutex
	reason scheduler.StopReason
	seqs   map[int]uint64
}

func (s *screenOut) playing() string {
	if s.cur == nil {
		return ""
	}
	return s.cur.run.Key
}

func (s *screenOut) start(ctx context.Context, ev scheduler.Event) {
	prev := s.cur
	if prev != nil {
		// The new run replaces it on the screen in one step; it ends "stopped", preempted.
		prev.mu.Lock()
		prev.reason = scheduler.StopPreempted
		prev.mu.Unlock()
		s.cur = nil
	}
	id, rev := s.schedule()
	sr := &screenRun{run: ev.Run, clock: clockState(ev.ClockSynced), schedID: id, schedRev: rev, seqs: map[int]uint64{}}
	var items []screen.Item
	var startAt time.Duration
	for i, seg := range ev.Run.Segments {
		if i < ev.From.Segment {
			continue // the timeline is past it (a restart joins where the timeline is)
		}
		it, err := s.item(seg)
		if err != nil {
			s.log.Error("item cannot be shown; recorded as failed", "program", seg.Program, "item", seg.Item, "ref", seg.Ref, "err", err)
			s.record(sr, seg, protocol.ResultFailed, ev.At, err.Error())
			continue
		}
		from := seg.Offset
		if i == ev.From.Segment {
			from = ev.From.Offset
		}
		if len(items) == 0 {
			startAt = from
		}
		items = append(items, it)
		sr.segs = append(sr.segs, seg)
		sr.froms = append(sr.froms, from)
	}
	if len(items) == 0 {
		if prev != nil {
			prev.sh.Stop()
		}
		return
	}
	sh, err := s.screen.Show(ctx, screen.Program{
		Items: items, Until: ev.Run.End, StartAt: startAt,
		OnItemStart: func(i int, at time.Time) {
			rec := s.recordFor(sr, sr.segs[i], at)
			rec.FromS = (sr.froms[i]).Seconds()
			seq, err := s.journal.Begin(rec)
			if err != nil {
				s.log.Error("journal: cannot record what the screen shows; showing anyway", "program", ev.Run.Program, "err", err)
				return
			}
			sr.mu.Lock()
			sr.seqs[i] = seq
			sr.mu.Unlock()
		},
		OnItemEnd: func(i int, p screen.Proof) { s.finish(sr, i, p) },
	})
	if err != nil {
		s.log.Error("the screen refused the programme; recorded as failed", "program", ev.Run.Program, "err", err)
		for _, seg := range sr.segs {
			s.record(sr, seg, protocol.ResultFailed, ev.At, err.Error())
		}
		return
	}
	sr.sh = sh
	s.cur = sr
}

// item turns a timeline segment into a screen item, shown until the segment's planned end.
func (s *screenOut) item(seg scheduler.Segment) (screen.Item, error) {
	shown := seg.Offset + seg.End.Sub(seg.Start)
	it := seg.Source
	switch it.Kind() {
	case scheduler.KindContent:
		r, err := content.ParseRef(it.Content)
		if err != nil {
			return screen.Item{}, err
		}
		path, err := s.store.Path(r)
		if err != nil {
			return screen.Item{}, fmt.Errorf("content %s: %w", it.Content, err)
		}
		return screen.Item{Path: path, Duration: shown, Ticker: it.Ticker}, nil
	case scheduler.KindFile:
		return screen.Item{Path: it.File, Duration: shown, Ticker: it.Ticker}, nil
	case scheduler.KindText:
		return screen.Item{Text: it.Text, Duration: shown, Ticker: it.Ticker}, nil
	}
	return screen.Item{}, fmt.Errorf("%s is a sound stream; screens show files and texts", seg.Ref)
}

func (s *screenOut) stop(key string, reason scheduler.StopReason) {
	sr := s.cur
	if sr == nil || sr.run.Key != key {
		return
	}
	sr.mu.Lock()
	sr.reason = reason
	sr.mu.Unlock()
	sr.sh.Stop() // returns once every item's OnItemEnd has run
	s.cur = nil
}

// finish closes an item's record with what mpv reported.
func (s *screenOut) finish(sr *screenRun, i int, p screen.Proof) {
	sr.mu.Lock()
	seq, began := sr.seqs[i]
	reason := sr.reason
	sr.mu.Unlock()
	if !began {
		if p.Ended == screen.EndFailed {
			s.record(sr, sr.segs[i], protocol.ResultFailed, s.clock.Now(), p.Error)
		}
		return // never on screen: not a showing
	}
	var result protocol.Result
	switch p.Ended {
	case screen.EndFailed:
		result = protocol.ResultFailed
	case screen.EndCompleted, screen.EndUntil:
		result = protocol.ResultCompleted
		if sr.segs[i].Status == scheduler.StatusPreempted {
			result = protocol.ResultPreempted
		}
	default: // stopped or cancelled: why the agent ended it
		result = resultOf("", reason, sr.segs[i].Status)
	}
	end := p.End
	if end.IsZero() {
		end = s.clock.Now()
	}
	floor := protocol.MinDBFS // a screen measures no sound
	err := s.journal.Finish(seq, result, end, protocol.Proof{PlayedS: p.ShownS, PeakDBFS: &floor, RMSDBFS: &floor,
		FramesDropped: int(p.FramesDropped)}, p.Error)
	if err != nil {
		s.log.Error("journal: cannot record the end of a showing", "seq", seq, "err", err)
	} else if s.recorded != nil {
		s.recorded()
	}
}

func (s *screenOut) recordFor(sr *screenRun, seg scheduler.Segment, start time.Time) protocol.Confirmation {
	return protocol.Confirmation{
		Output: "screen", ScheduleID: sr.schedID, Revision: uint64(sr.schedRev),
		Program: seg.Program, ItemIndex: seg.Item, Item: seg.Ref,
		Scheduled: seg.Planned(), Start: start, Clock: sr.clock,
	}
}

func (s *screenOut) record(sr *screenRun, seg scheduler.Segment, result protocol.Result, at time.Time, msg string) {
	rec := s.recordFor(sr, seg, time.Time{})
	rec.Result, rec.Error, rec.End = result, msg, at
	writeRecord(s.journal, s.log, s.recorded, rec)
}

// openScreen starts mpv for the screen output; it stays up for the life of the agent.
func (a *Agent) openScreen() (*screenOut, func(), error) {
	log := a.log.With("component", "screen")
	sc, err := screen.Open(a.cfg.Screen, a.clock, log)
	if err != nil {
		return nil, nil, fmt.Errorf("screen: %w", err)
	}
	a.mu.Lock() // the hub link's heartbeat reads it
	a.screen = sc
	a.mu.Unlock()
	out := &screenOut{screen: sc, journal: a.journal, store: a.store, log: log, clock: a.clock, recorded: a.notifyLink,
		schedule: a.activeRef}
	return out, func() { sc.Close() }, nil
}
