package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/player"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// speakers plays the runs of the speakers output through the player and writes each item's
// confirmation: Begin when its first sample goes to the output, Finish with the proof the
// player measured.
type speakers struct {
	player     *player.Player
	tasks      *sync.WaitGroup // the agent's: checkpoints and warm-ups are waited for
	journal    *journal.Journal
	store      *content.Store
	log        *slog.Logger
	clock      clock.Clock // the agent's: record times and the warm-up's hold until a start
	rate       int
	checkpoint time.Duration
	schedule   func() (id string, revision int64)
	onChange   func(nowPlaying *NowPlaying)
	health     *health
	recorded   func() // a record closed: the hub link may send it
	speech     *speech
	amp        *amplifier.Amplifier // switches the amplifier relay around plays
	volume     *volume              // device volume and its schedule
	timing     SyncConfig           // holding plays to the clock
	deadAir    *deadAirState        // the alarm the heartbeat carries
	identFile  string               // played in place of an item found dead without fallback_text
	// alarmChanged tells the hub link that the heartbeat's alarms changed (dead air).
	alarmChanged func()
	// stamping is how a relay the hub stamps is played (its feed's URL and how); nil, or
	// a nil Stamping: the device plays the upstream itself.
	stamping func(it scheduler.Item) (string, *player.Stamping)

	cur *speakerPlay
}

// deadAirState is the speakers' dead-air alarm: raised when the player ends an item as dead
// air, cleared when sound comes back. Set on the playback goroutine, read by the heartbeat.
type deadAirState struct {
	mu    sync.Mutex
	on    bool
	since time.Time
	what  string // the programme and item, for the technician
}

// set raises or clears the alarm and reports whether that changed it.
func (d *deadAirState) set(on bool, at time.Time, what string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on && !d.on {
		d.since = at
	}
	changed := on != d.on
	d.on, d.what = on, what
	return changed
}

// part is the speakers' part in the heartbeat: "sound", or "dead_air" with what and since when.
func (d *deadAirState) part() *protocol.Part {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.on {
		return &protocol.Part{State: "sound"}
	}
	what := d.what
	if len(what) > 900 { // the wire allows 1024 bytes
		what = what[:900] + "…"
	}
	return &protocol.Part{State: "dead_air", Error: "dead air: " + what, Since: d.since}
}

// speakerPlay is one run being played.
type speakerPlay struct {
	run      *scheduler.Run
	pb       *player.Playback
	segs     []scheduler.Segment // the run's segments that were handed to the player, in order
	froms    []time.Duration     // where in each of those items the play begins
	clock    protocol.ClockState
	schedID  string
	schedRev int64

	held      bool    // holds the amplifier on until the playback is done
	volume    float64 // device volume applied to the run's own
	amplifier string  // the relay's state when the play began

	mu      sync.Mutex
	reason  scheduler.StopReason
	seqs    map[int]uint64 // player item index -> journal sequence
	current uint64
}

// start plays a run from the event's position: the segment the timeline has, from where in its
// item the timeline is (so a restart continues the programme rather than starting it over).
// Segments before that position are not played.
func (s *speakers) start(ctx context.Context, ev scheduler.Event) {
	// The amplifier is switched on before the running programme is stopped, so that a
	// preemption keeps it on with no second warm-up. Usually it is warm already (switched on
	// at the upcoming event); only an unannounced start (an emergency pushed now) waits.
	held := false
	if s.amp != nil {
		held = s.amp.Acquire(ctx) == nil
	}
	if s.cur != nil {
		s.stop(s.cur.run.Key, scheduler.StopPreempted)
	}
	id, rev := s.schedule()
	sp := &speakerPlay{run: ev.Run, seqs: map[int]uint64{}, schedID: id, schedRev: rev, clock: clockState(ev.ClockSynced)}
	var items []player.Item
	var first int64 // frames to skip into the first item handed to the player
	for i, seg := range ev.Run.Segments {
		if i < ev.From.Segment {
			continue
		}
		// Cut each item where the timeline ends it (a file longer than its stated duration
		// must not push the next item late). A segment the timeline ends early (preempted,
		// cut) is left to Until, so that its record says how it really ended.
		cut := seg.Offset + seg.End.Sub(seg.Start)
		if seg.Status == scheduler.StatusPreempted || seg.Status == scheduler.StatusCut {
			cut = 0
		}
		it, err := s.item(seg, cut)
		if err != nil {
			s.log.Error("item cannot play; recorded as failed", "program", seg.Program, "item", seg.Item, "ref", seg.Ref, "err", err)
			s.record(sp, seg, protocol.ResultFailed, ev.At, err.Error())
			continue
		}
		from := seg.Offset
		if i == ev.From.Segment {
			from = ev.From.Offset
		}
		if it.URL != "" {
			// A relay is live: joined mid-way it plays what is on air now, for what is left
			// of its time, rather than skipping ahead in a stream that has no ahead.
			it.Duration -= from - seg.Offset
		} else if len(items) == 0 {
			// The player counts frames at the output rate.
			first = int64(from.Seconds() * float64(s.rate))
		}
		items = append(items, it)
		sp.segs = append(sp.segs, seg)
		sp.froms = append(sp.froms, from)
	}
	if len(items) == 0 {
		if held {
			s.amp.Release()
		}
		return
	}
	sp.held = held
	if s.amp != nil {
		sp.amplifier = amplifierSummary(s.amp.State())
	}
	sp.volume = s.volume.at(ev.Run)
	prog := player.Program{
		Items: items,
		Gain:  ev.Run.Gain * sp.volume,
		Until: ev.Run.End,
		OnItemStart: func(i int, at time.Time, skipped time.Duration) {
			rec := s.recordFor(sp, sp.segs[i], at)
			// A play held to the clock that could only start late skips what it is late by:
			// the record says where in the item it was first heard.
			rec.FromS = (sp.froms[i] + skipped).Seconds()
			seq, err := s.journal.Begin(rec)
			if err != nil {
				s.log.Error("journal: cannot record the start of a play; playing anyway", "program", ev.Run.Program, "err", err)
				return
			}
			sp.mu.Lock()
			sp.seqs[i], sp.current = seq, seq
			sp.mu.Unlock()
			if s.onChange != nil {
				s.onChange(&NowPlaying{Output: "speakers", Program: ev.Run.Program, Title: ev.Run.Title,
					Class: ev.Run.Class.String(), Item: sp.segs[i].Item, Ref: sp.segs[i].Ref, Since: at, Until: ev.Run.End, Seq: seq})
			}
		},
		OnItemEnd: func(i int, proof player.Proof) { s.finish(sp, i, proof) },
		OnDeadAir: func(i int, on bool) {
			seg := sp.segs[i]
			if s.deadAir.set(on, s.clock.Now(), fmt.Sprintf("programme %s item %d (%s) was silent", seg.Program, seg.Item, seg.Ref)) && s.alarmChanged != nil {
				s.alarmChanged()
			}
			if on {
				s.log.Warn("dead air: an item was silent too long; its fallback plays in its place, or the programme goes on with its next item", "program", seg.Program, "item", seg.Item, "ref", seg.Ref)
			} else {
				s.log.Info("sound is back after dead air", "program", seg.Program)
			}
		},
	}
	if first > 0 {
		prog.Start = player.Position{Item: 0, Frame: first}
	}
	if *s.timing.InStep {
		prog.At = s.heardAt(ev, sp)
	}
	pb, err := s.player.Play(ctx, prog)
	if err != nil {
		s.log.Error("player refused the programme; recorded as failed", "program", ev.Run.Program, "err", err)
		if held {
			s.amp.Release()
		}
		for _, seg := range sp.segs {
			s.record(sp, seg, protocol.ResultFailed, ev.At, err.Error())
		}
		return
	}
	sp.pb = pb
	s.cur = sp
	if s.health != nil {
		s.health.playing.Store(pb)
	}
	s.tasks.Go(func() { s.checkpoints(sp) })
}

// startAhead is how long before its time a play on free speakers starts when in step: the
// player's look at the output (300 ms) and the output's fill (about 1.25 × audio.buffer, with
// the queues in front of it) must be over before the first sample is due.
const startAhead = 1500 * time.Millisecond

// heardAt is when, in step, a play's first sample is heard: a play the runner started ahead of
// its time (on free speakers) exactly at that time, the same on every cluster. Any other play
// (right after another programme, joining one mid-way after a restart, sent now: a command,
// an emergency) plays at once, as without in_step: holding it to its time would cut its end
// or its first words.
func (s *speakers) heardAt(ev scheduler.Event, sp *speakerPlay) time.Time {
	if !ev.At.Before(ev.Run.Start) {
		return time.Time{}
	}
	seg := sp.segs[0]
	return seg.Start.Add(sp.froms[0] - seg.Offset)
}

// spoken is a text said by text to speech, as a player item.
func (s *speakers) spoken(text string, cut time.Duration) (player.Item, error) {
	path, err := s.speech.path(context.Background(), text)
	if err != nil {
		return player.Item{}, err
	}
	return player.Item{Path: path, Duration: cut}, nil
}

// item turns a timeline segment into a player item cut at the segment's planned end, with
// what stands in for it if it turns out to be dead air: its fallback text spoken, else the
// device's station identification. The text is spoken only if it was made before (the
// agent makes it when the schedule becomes active): a start never waits for espeak-ng.
func (s *speakers) item(seg scheduler.Segment, cut time.Duration) (player.Item, error) {
	pi, err := s.source(seg, cut)
	if err != nil || seg.Source.Kind() == scheduler.KindText {
		return pi, err
	}
	if text := seg.Source.Fallback; text != "" && s.speech != nil {
		if p, ok := s.speech.cached(text); ok && p != pi.Path {
			pi.Fallback = &player.Item{Path: p}
			return pi, nil
		}
	}
	if s.identFile != "" {
		pi.Fallback = &player.Item{Path: s.identFile}
	}
	return pi, nil
}

// source is the player item of a timeline segment, cut at the segment's planned end.
func (s *speakers) source(seg scheduler.Segment, cut time.Duration) (player.Item, error) {
	it := seg.Source
	switch it.Kind() {
	case scheduler.KindContent:
		r, err := content.ParseRef(it.Content)
		if err != nil {
			return player.Item{}, err
		}
		path, err := s.store.Path(r)
		if err != nil {
			if it.Fallback != "" && s.speech != nil {
				s.log.Warn("content not on this device; speaking its fallback text instead", "program", seg.Program, "ref", it.Content, "err", err)
				return s.spoken(it.Fallback, cut)
			}
			return player.Item{}, fmt.Errorf("content %s: %w", it.Content, err)
		}
		return player.Item{Path: path, Duration: cut}, nil
	case scheduler.KindFile:
		if _, err := os.Stat(it.File); err != nil && it.Fallback != "" && s.speech != nil {
			s.log.Warn("file missing on this device; speaking its fallback text instead", "program", seg.Program, "file", it.File, "err", err)
			return s.spoken(it.Fallback, cut)
		}
		return player.Item{Path: it.File, Duration: cut}, nil
	case scheduler.KindStream:
		d := seg.End.Sub(seg.Start)
		if cut == 0 {
			d += time.Minute // Until ends it first, as planned
		}
		pi := player.Item{URL: it.Stream, Duration: d}
		if it.Stamped != "" && s.stamping != nil {
			if u, st := s.stamping(it); st != nil {
				pi.URL, pi.Stamped = u, st
			}
		}
		return pi, nil
	case scheduler.KindText:
		if s.speech != nil {
			// A text on the speakers is spoken (espeak-ng), so a warning given as text is heard.
			return s.spoken(it.Text, cut)
		}
	}
	return player.Item{}, fmt.Errorf("item %q cannot be played on the speakers", seg.Ref)
}

// stop ends the run with the given key, if it is the one playing.
func (s *speakers) stop(key string, reason scheduler.StopReason) {
	sp := s.cur
	if sp == nil || sp.run.Key != key {
		return
	}
	sp.mu.Lock()
	sp.reason = reason
	sp.mu.Unlock()
	sp.pb.Stop() // returns once every item's OnItemEnd has run
	s.cur = nil
	if s.health != nil {
		s.health.playing.Store(nil)
	}
	if s.onChange != nil {
		s.onChange(nil)
	}
}

// checkpoints bound what a crash can lose of a play's proof: a period of monotonic time.
func (s *speakers) checkpoints(sp *speakerPlay) {
	t := time.NewTicker(s.checkpoint)
	defer t.Stop()
	for {
		select {
		case <-sp.pb.Done():
			if sp.held {
				s.amp.Release()
			}
			return
		case <-t.C:
			p := sp.pb.Progress()
			sp.mu.Lock()
			seq := sp.current
			sp.mu.Unlock()
			if seq == 0 {
				continue
			}
			played := float64(p.ItemFrames) / float64(s.rate)
			// Levels are measured at the item's end; until then the floor stands for them.
			floor := protocol.MinDBFS
			if err := s.journal.Checkpoint(seq, protocol.Proof{PlayedS: played, PeakDBFS: &floor, RMSDBFS: &floor}); err != nil {
				s.log.Debug("journal checkpoint skipped", "seq", seq, "err", err)
			}
		}
	}
}

// finish closes an item's record with what the player measured.
func (s *speakers) finish(sp *speakerPlay, i int, proof player.Proof) {
	sp.mu.Lock()
	seq, began := sp.seqs[i]
	reason, none := sp.reason, len(sp.seqs) == 0
	sp.mu.Unlock()
	if !began {
		switch {
		case proof.Ended == player.EndFailed:
			s.record(sp, sp.segs[i], protocol.ResultFailed, s.clock.Now(), proof.Error)
		case i == 0 && none && (proof.Ended == player.EndUntil || reason == scheduler.StopEnd || reason == scheduler.StopCut):
			// The run's time ran out before its first sound (a relay down all along, a join in
			// its last moments): due and not heard, so it is journalled, not left out.
			s.unheard(sp, proof.Error)
		}
		return // never reached the output: not a play
	}
	result := resultOf(proof.Ended, reason, sp.segs[i].Status)
	end := proof.End
	if end.IsZero() {
		end = s.clock.Now()
	}
	err := s.journal.Finish(seq, result, end, proofOf(proof), proof.Error)
	if err != nil {
		s.log.Error("journal: cannot record the end of a play", "seq", seq, "err", err)
	} else if s.recorded != nil {
		s.recorded()
	}
	if result == protocol.ResultFailed {
		s.log.Error("play failed", "program", sp.run.Program, "ref", sp.segs[i].Ref, "err", proof.Error)
	}
}

// unheard records a run whose time ended before any of it reached the output: failed when the
// source gave an error (a relay that could not be reached), otherwise missed.
func (s *speakers) unheard(sp *speakerPlay, sourceErr string) {
	if sourceErr != "" {
		s.record(sp, sp.segs[0], protocol.ResultFailed, s.clock.Now(), "its time ended before any sound reached the output: "+sourceErr)
		return
	}
	s.record(sp, sp.segs[0], protocol.ResultMissed, s.clock.Now(), "its time ended before any sound reached the output")
}

// proofOf is what the journal keeps of the player's proof of an item.
func proofOf(p player.Proof) protocol.Proof {
	return protocol.Proof{
		PlayedS:  float64(p.Frames) / float64(max(p.Rate, 1)),
		PeakDBFS: &p.PeakDBFS, RMSDBFS: &p.RMSDBFS, SilenceS: p.SilenceS,
		Gaps: p.Gaps, Underruns: int(p.Underruns),
		Dropouts: p.Dropouts, Reconnects: p.Reconnects, MissingS: p.MissingS,
		StartErrorS: p.StartErrorS, RatePPM: p.RatePPM,
	}
}

// resultOf maps how the player ended an item, why the runner stopped it, and how the
// timeline planned its segment to end, to a confirmation result.
func resultOf(ended string, reason scheduler.StopReason, planned scheduler.Status) protocol.Result {
	switch ended {
	case player.EndCompleted:
		return protocol.ResultCompleted
	case player.EndFailed, player.EndDeadAir: // dead air: the proof's error says so
		return protocol.ResultFailed
	case player.EndUntil: // the timeline's planned end of the run
		if planned == scheduler.StatusPreempted {
			return protocol.ResultPreempted
		}
		return protocol.ResultCompleted
	}
	switch reason {
	case scheduler.StopPreempted:
		return protocol.ResultPreempted
	case scheduler.StopEnd, scheduler.StopCut:
		return protocol.ResultCompleted
	}
	return protocol.ResultInterrupted
}

func (s *speakers) recordFor(sp *speakerPlay, seg scheduler.Segment, start time.Time) protocol.Confirmation {
	return protocol.Confirmation{
		Output: seg.Output, ScheduleID: sp.schedID, Revision: uint64(sp.schedRev),
		Program: seg.Program, ItemIndex: seg.Item, Item: seg.Ref,
		Scheduled: seg.Planned(), Start: start, Clock: sp.clock,
		Volume: seg.Gain * sp.volume, Amplifier: sp.amplifier,
	}
}

// record writes a one-shot confirmation (failed, missed, suppressed) for a segment.
func (s *speakers) record(sp *speakerPlay, seg scheduler.Segment, result protocol.Result, at time.Time, msg string) {
	rec := s.recordFor(sp, seg, time.Time{})
	rec.Result, rec.Error, rec.End = result, msg, at
	writeRecord(s.journal, s.log, s.recorded, rec)
}

func clockState(synced bool) protocol.ClockState {
	if synced {
		return protocol.ClockSynced
	}
	return protocol.ClockUnsynced
}

func (s *speakers) playing() string {
	if s.cur == nil {
		return ""
	}
	return s.cur.run.Key
}
