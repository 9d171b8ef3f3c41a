package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// playRecord is what a model agent journals for one segment of a play.
type playRecord struct {
	occ      string
	seg      Segment
	start    time.Time
	end      time.Time
	from     time.Duration
	result   string // playing, completed, preempted, interrupted, missed
	why      string
	late     time.Duration
	sequence int
}

// modelAgent plays what the runner says exactly on the timeline (a perfect player) and
// journals each segment as the agent does: a record when its first sample goes out, closed
// when it ends; a crash closes the open one as interrupted.
type modelAgent struct {
	journal []*playRecord
	run     *Run
	from    Position
	startAt time.Time
	open    *playRecord
	next    int // index in run.Segments of the next segment to begin
}

func (m *modelAgent) add(p *playRecord) {
	p.sequence = len(m.journal)
	m.journal = append(m.journal, p)
}

// advance plays the current run up to now: segments begin and complete at their times.
func (m *modelAgent) advance(now time.Time) {
	if m.run == nil {
		return
	}
	for {
		if m.open != nil {
			if m.open.seg.End.After(now) {
				return
			}
			m.open.end, m.open.result = m.open.seg.End, "completed"
			m.open = nil
		}
		if m.next >= len(m.run.Segments) {
			m.run = nil
			return
		}
		seg := m.run.Segments[m.next]
		begin, from := seg.Start, seg.Offset
		if m.next == m.from.Segment {
			from = m.from.Offset
			begin = m.startAt
		}
		if begin.After(now) {
			return
		}
		m.next++
		m.open = &playRecord{occ: seg.OccurrenceKey(), seg: seg, start: begin, from: from, result: "playing"}
		m.add(m.open)
	}
}

func (m *modelAgent) handle(ev Event) {
	m.advance(ev.At)
	switch ev.Kind {
	case EventStart:
		m.run, m.from, m.startAt, m.next, m.open = ev.Run, ev.From, ev.At, ev.From.Segment, nil
		m.advance(ev.At)
	case EventStop:
		if m.run != nil && m.run.Key == ev.Run.Key || m.open != nil && m.open.seg.OccurrenceKey() == ev.Run.occurrenceKey() {
			if m.open != nil {
				m.open.end, m.open.result = ev.At, "preempted"
				if ev.Reason == StopEnd || ev.Reason == StopCut {
					m.open.result = "completed"
				}
			}
			m.run, m.open = nil, nil
		}
	case EventMissed:
		m.add(&playRecord{occ: ev.Run.occurrenceKey(), seg: ev.Run.Segments[0], end: ev.At, result: "missed", why: ev.Why, late: ev.Late})
	}
}

func (m *modelAgent) crash(at time.Time) {
	m.advance(at)
	if m.open != nil {
		m.open.end, m.open.result = at, "interrupted"
	}
	m.run, m.open = nil, nil
}

// past is what the agent hands a new runner from its journal.
func (m *modelAgent) past() []Past {
	var out []Past
	for _, p := range m.journal {
		was := PastDone
		switch p.result {
		case "interrupted":
			was = PastCut
		case "missed":
			was = PastNoted
		}
		out = append(out, Past{Output: p.seg.Output, Program: p.seg.Program, Item: p.seg.Item, Planned: p.seg.Planned(),
			Start: p.start, From: p.from, Was: was})
	}
	return out
}

// TestRunnerRestartsContinueWhereTheTimelineIs crashes a model agent 30 times (3 seeds) at random
// moments during programmes of many short items of different lengths and restarts it on a
// new runner that knows only the journal and a last-saved time up to 30 s stale. No segment
// is heard whole twice, a play never goes back to an earlier item, every start is where the
// timeline is, and nothing that began is recorded missed (or anything missed twice).
func TestRunnerRestartsContinueWhereTheTimelineIs(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			var items []string
			for i := 0; i < 12; i++ {
				items = append(items, fmt.Sprintf("{file: i%d.mp3, duration: %dms}", i, 700+rng.IntN(4300)))
			}
			src := header + "programs:\n" +
				"  - {id: news, cron: \"0 * * * * *\", max_duration: 50s, items: [" + strings.Join(items, ", ") + "]}\n" +
				"  - {id: alert, class: priority, cron: \"20 */3 * * * *\", items: [{file: a.mp3, duration: 4s}]}\n"
			doc := mustParse(t, src)
			c := clock.NewFake(time.Date(2026, 11, 2, 9, 59, 50, 0, hcm))
			m := &modelAgent{}
			var lastSaved time.Time
			for crash := 0; crash <= 30; crash++ {
				r := NewRunner(RunnerOptions{Clock: c, LastRun: lastSaved, Tick: 500 * time.Millisecond, Horizon: 10 * time.Minute, MissedLookback: time.Hour})
				r.SetSchedule(doc)
				r.Remember(m.past()...)
				until := c.Now().Add(time.Duration(2000+rng.IntN(25000)) * time.Millisecond)
				saved := c.Now()
				for c.Now().Before(until) {
					evs, wake := r.Step()
					for _, e := range evs {
						if e.Kind == EventStart {
							checkStartOnTimeline(t, e)
						}
						m.handle(e)
					}
					if c.Now().Sub(saved) >= 30*time.Second {
						saved, lastSaved = c.Now(), c.Now() // the agent's state file
					}
					c.Advance(min(wake, until.Sub(c.Now())+time.Millisecond))
				}
				m.crash(c.Now())
				c.Advance(time.Duration(100+rng.IntN(4000)) * time.Millisecond) // the restart
			}
			checkModelJournal(t, m.journal)
		})
	}
}

// checkStartOnTimeline: a start begins where the run's timeline is at that moment.
func checkStartOnTimeline(t *testing.T, e Event) {
	t.Helper()
	if e.From == e.Run.Beginning() {
		return
	}
	want := e.Run.PositionAt(e.At)
	if e.From.Segment < want.Segment || e.From.Segment == want.Segment && e.From.Offset != want.Offset {
		t.Errorf("%s: start of %s from %+v, but the timeline is at %+v", e.At.Format("15:04:05.000"), e.Run.Program, e.From, want)
	}
}

func checkModelJournal(t *testing.T, journal []*playRecord) {
	t.Helper()
	completed := map[string]int{}
	last := map[string]*playRecord{}
	began := map[string]bool{}
	missed := map[string]int{}
	for _, p := range journal {
		if p.result == "missed" {
			missed[p.occ]++
			continue
		}
		began[p.occ] = true
		if p.result == "completed" && p.from == p.seg.Offset {
			completed[p.seg.Key()]++
		}
		if prev := last[p.occ]; prev != nil {
			if p.seg.Start.Before(prev.seg.Start) {
				t.Errorf("%s went back from item %d to item %d after a restart", p.occ, prev.seg.Item, p.seg.Item)
			}
			if p.seg.Key() == prev.seg.Key() && (prev.result != "interrupted" || p.from < prev.from+prev.end.Sub(prev.start)-time.Millisecond) {
				t.Errorf("%s item %d played again from %s after it was %s at %s", p.occ, p.seg.Item, p.from, prev.result, prev.from+prev.end.Sub(prev.start))
			}
		}
		last[p.occ] = p
		if p.result == "completed" && p.seg.Offset != p.from && p.from != p.seg.Offset {
			// A joined item completes from where it was joined: its record says so (from).
			if p.from <= p.seg.Offset {
				t.Errorf("%s item %d joined at %s, before its segment's offset %s", p.occ, p.seg.Item, p.from, p.seg.Offset)
			}
		}
	}
	for k, n := range completed {
		if n > 1 {
			t.Errorf("segment %s completed whole %d times", k, n)
		}
	}
	for occ, n := range missed {
		if began[occ] {
			t.Errorf("%s was played (or cut) and also recorded missed", occ)
		}
		if n > 1 {
			t.Errorf("%s recorded missed %d times", occ, n)
		}
	}
	for _, p := range journal {
		if p.result != "missed" {
			continue
		}
		if p.late <= 0 || !strings.Contains(p.why, "grace") && !strings.Contains(p.why, "not running") {
			t.Errorf("missed %s: late %s, why %q", p.occ, p.late, p.why)
		}
	}
	if len(began) == 0 {
		t.Fatal("nothing played")
	}
}

// TestRunnerLateStartPlaysWholeAndResumes: a schedule that reaches a device 7.5 s after a
// programme's start (a slow boot, a late push) plays it from its first item, whole; an
// emergency then preempts it and it resumes after, inside its window. After a crash the
// restarted runner finds the late begin in the journal and keeps the moved timeline.
func TestRunnerLateStartPlaysWholeAndResumes(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	src := header + `programs:
  - {id: normal, cron: "*/20 * * * * *", max_duration: 18s, on_interrupt: resume, items: [{file: n.mp3, duration: 8s}]}
`
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	r, c := newTestRunner(t, src, t0.Add(7500*time.Millisecond), RunnerOptions{Tick: time.Second})
	evs := drive(r, c, t0.Add(9*time.Second))
	expectEvents(t, evs, "10:00:07 start normal")
	if evs[0].Late != 7500*time.Millisecond || evs[0].From != (Position{}) || !evs[0].Run.End.Equal(t0.Add(15500*time.Millisecond)) {
		t.Fatalf("late start: late %s from %+v until %s; want 7.5s late, from the beginning, until 10:00:15.5", evs[0].Late, evs[0].From, evs[0].Run.End.Format("15:04:05.000"))
	}
	r.SetSchedule(mustParse(t, src+`  - {id: storm, class: emergency, at: "2026-11-02T10:00:09+07:00", items: [{file: s.mp3, duration: 5s}]}
`))
	// The storm arrives at 10:00:09.5 (the clock walks in whole seconds from 07.5): it too
	// begins half a second late and keeps its full five seconds.
	evs = drive(r, c, t0.Add(19*time.Second))
	expectEvents(t, evs,
		"10:00:09 stop normal (preempted)",
		"10:00:09 start storm",
		"10:00:14 stop storm (end)",
		"10:00:14 start normal +2s",
		"10:00:18 stop normal (cut)", // its window: 18 s from when it was due
	)

	// Killed at 10:00:16 during the resumed part; the journal shows item 0 began 7.5 s late.
	past := []Past{
		{Output: "speakers", Program: "normal", Item: 0, Planned: t0, Start: t0.Add(7500 * time.Millisecond), Was: PastDone},
		{Output: "speakers", Program: "storm", Item: 0, Planned: t0.Add(9 * time.Second), Start: t0.Add(9500 * time.Millisecond), Was: PastDone},
		{Output: "speakers", Program: "normal", Item: 0, Planned: t0.Add(7 * time.Second), Start: t0.Add(14500 * time.Millisecond), From: 2 * time.Second, Was: PastCut},
	}
	c2 := clock.NewFake(t0.Add(16500 * time.Millisecond))
	r2 := NewRunner(RunnerOptions{Clock: c2, Tick: time.Second, LastRun: t0})
	r2.SetSchedule(mustParse(t, src+`  - {id: storm, class: emergency, at: "2026-11-02T10:00:09+07:00", items: [{file: s.mp3, duration: 5s}]}
`))
	r2.Remember(past...)
	evs = drive(r2, c2, t0.Add(19*time.Second))
	expectEvents(t, evs, "10:00:16 start normal +4s", "10:00:18 stop normal (cut)")
}

// TestRunnerMissedSaysWhy: each missed record says what kept the programme from playing.
func TestRunnerMissedSaysWhy(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	day := func(h, m, s int) time.Time { return time.Date(2026, 11, 2, h, m, s, 0, hcm) }
	// Off from 06:00 to 06:50: morning (06:30-06:42) passed while it was off.
	r, c := newTestRunner(t, threeProgrammes, day(6, 50, 0), RunnerOptions{LastRun: day(6, 0, 0)})
	evs := drive(r, c, day(6, 51, 0))
	if len(evs) != 2 || !strings.Contains(evs[0].Why, "not running") || !strings.Contains(evs[0].Why, "06:00:00 to 2026-11-02 06:50:00") {
		t.Errorf("off: %v %q", describe(evs), evs[0].Why)
	}
	// Back at 06:36 with a 1-minute grace: the notice could start 1 min late only.
	r, c = newTestRunner(t, threeProgrammes, day(6, 36, 0), RunnerOptions{LastRun: day(6, 0, 0), Grace: 30 * time.Second})
	evs = drive(r, c, day(6, 36, 10))
	var why []string
	for _, e := range evs {
		if e.Kind == EventMissed {
			why = append(why, e.Run.Program+": "+e.Why)
			if e.Late != c.Now().Sub(e.Run.Start) && e.Late <= 0 {
				t.Errorf("missed %s: late %s", e.Run.Program, e.Late)
			}
		}
	}
	if got := strings.Join(why, " | "); !strings.Contains(got, "notice: could only start 1m0s after it was due, beyond the grace window of 30s") {
		t.Errorf("late: %s", got)
	}
}

// TestRunnerKeepsTimelineWhenRecompileFails: a file whose length was known when the schedule
// was compiled vanishes; a later compile of the same document cannot place it, and the runner
// keeps the timeline it had instead of silencing the device (the item fails when its turn
// comes, saying why).
func TestRunnerKeepsTimelineWhenRecompileFails(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	src := header + `programs:
  - {id: tick, cron: "*/10 * * * * *", items: [{file: t.mp3, duration: 2s}]}
  - {id: news, at: "2026-11-02T10:00:30+07:00", items: [{file: gone.mp3}]}
`
	known := true
	r, c := newTestRunner(t, src, time.Date(2026, 11, 2, 10, 0, 0, 0, hcm), RunnerOptions{Tick: time.Second,
		Compile: CompileOptions{ItemLength: func(it Item) (time.Duration, bool) { return 5 * time.Second, known && it.File == "gone.mp3" }}})
	drive(r, c, time.Date(2026, 11, 2, 10, 0, 5, 0, hcm))
	known = false
	c.Step(3 * time.Second) // a clock step: the runner compiles again
	evs := drive(r, c, time.Date(2026, 11, 2, 10, 0, 40, 0, hcm))
	var got []string
	for _, e := range evs {
		if e.Kind == EventStart {
			got = append(got, e.Run.Program)
		}
	}
	// tick at :10, :20, :30; news (due :30, tied with tick, after it) at :32; tick at :40.
	if strings.Join(got, " ") != "tick tick tick news tick" {
		t.Errorf("starts after the failed recompile: %v, want tick, tick, tick, news, tick", got)
	}
}
