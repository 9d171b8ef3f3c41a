package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// everyTwoSeconds plays a one-second item every 2 s, as the kills-at-scale soak does.
const everyTwoSeconds = header + `programs:
  - {id: tick, cron: "*/2 * * * * *", items: [{file: t.mp3}]}
`

// everyTwoSecondsAt10 does so in the 10 o'clock hour only: the same plays around 10:00, and a
// compile of the runner's 32 hours that takes milliseconds, not seconds, under -race.
var everyTwoSecondsAt10 = strings.Replace(everyTwoSeconds, `"*/2 * * * * *"`, `"*/2 * 10 * * *"`, 1)

// TestRunnerMissedWhileDownOnePerOccurrence: an agent down from 10:00:20 to 10:00:46 with a
// play every 2 s journals, after its restart, one missed record for each occurrence due while
// it was down, each with its own window and "not running"; the one due at the restart plays.
// The restart's first compile takes 2.5 s (a Pi under load), on the fake clock.
func TestRunnerMissedWhileDownOnePerOccurrence(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	down, up := t0.Add(20*time.Second), t0.Add(45*time.Second)
	c := clock.NewFake(up)
	slow := true
	r := NewRunner(RunnerOptions{Clock: c, LastRun: down, NotBefore: down, Tick: 500 * time.Millisecond,
		Compile: CompileOptions{ItemLength: func(Item) (time.Duration, bool) {
			if slow {
				slow = false
				c.Advance(2500 * time.Millisecond)
			}
			return time.Second, true
		}}})
	r.SetSchedule(mustParse(t, everyTwoSecondsAt10))
	// The journal: the play due at 10:00:20 began, and the agent died during it.
	r.Remember(Past{Output: "speakers", Program: "tick", Planned: down, Start: down, Was: PastCut})
	evs := drive(r, c, t0.Add(51*time.Second))
	var missed, started []string
	for _, e := range evs {
		switch e.Kind {
		case EventMissed:
			missed = append(missed, e.Run.Scheduled.Format("05"))
			window := fmt.Sprintf("(%s to %s)", e.Run.Start.Format("2006-01-02 15:04:05"), e.Run.End.Format("2006-01-02 15:04:05"))
			if !strings.HasPrefix(e.Why, "the agent was not running when it was due "+window) {
				t.Errorf("missed %s: why %q, want not running, with its own window %s", e.Run.Scheduled.Format("15:04:05"), e.Why, window)
			}
		case EventStart:
			started = append(started, e.Run.Scheduled.Format("05"))
		}
	}
	if got, want := strings.Join(missed, " "), "22 24 26 28 30 32 34 36 38 40 42 44"; got != want {
		t.Errorf("missed occurrences (seconds past 10:00): %s, want %s", got, want)
	}
	// The restart took until 10:00:47.5: the play due at :46 begins late, then :48 and :50 on time.
	if got, want := strings.Join(started, " "), "46 48 50"; got != want {
		t.Errorf("started occurrences: %s, want %s", got, want)
	}
}

// TestRunnerMissedAfterAWeekOffIsBounded: a box off for a week with a play every 2 s records,
// at its restart, at most MissedPerProgram missed records for the programme (MissedLookback
// bounds how far back it looks: a day by default, 43,200 occurrences; an hour here, 1,800, to
// keep the compile short): the last ones one by one, with their own windows, and one on the
// earliest that counts the rest.
func TestRunnerMissedAfterAWeekOffIsBounded(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	off := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	up := off.Add(7 * 24 * time.Hour)
	r, _ := newTestRunner(t, everyTwoSeconds, up, RunnerOptions{LastRun: off, NotBefore: off, Tick: 500 * time.Millisecond,
		MissedLookback: time.Hour, Horizon: 10 * time.Minute,
		Compile: CompileOptions{ItemLength: func(Item) (time.Duration, bool) { return time.Second, true }}})
	evs, _ := r.Step()
	var missed []Event
	total := 0
	for _, e := range evs {
		if e.Kind == EventMissed {
			missed = append(missed, e)
			total += max(e.Count, 1)
		}
	}
	if len(missed) != MissedPerProgram {
		t.Fatalf("%d missed records after a week off, want %d", len(missed), MissedPerProgram)
	}
	// An hour back (the lookback) up to the occurrence due 2 s before the restart; the one due
	// at the restart plays.
	if want := 60 * 30; total != want {
		t.Errorf("the missed records stand for %d occurrences, want %d (an hour at one every 2 s)", total, want)
	}
	first := missed[0]
	if first.Count != total-(MissedPerProgram-1) || !first.Run.Scheduled.Equal(up.Add(-time.Hour)) ||
		!strings.HasPrefix(first.Why, fmt.Sprintf("%d occurrences from 2026-11-09 09:00:00 to %s were missed", first.Count,
			up.Add(-time.Duration(2*MissedPerProgram-1)*time.Second).Format("2006-01-02 15:04:05"))) ||
		!strings.Contains(first.Why, "the agent was not running") {
		t.Errorf("first record: count %d, scheduled %s, why %q", first.Count, first.Run.Scheduled, first.Why)
	}
	for i, e := range missed[1:] {
		want := up.Add(time.Duration(i-MissedPerProgram+1) * 2 * time.Second)
		if e.Count != 0 || !e.Run.Scheduled.Equal(want) || !strings.Contains(e.Why, "not running when it was due ("+e.Run.Start.Format("2006-01-02 15:04:05")) {
			t.Errorf("record %d: count %d, scheduled %s (want %s), why %q", i+1, e.Count, e.Run.Scheduled.Format("15:04:05"), want.Format("15:04:05"), e.Why)
		}
	}
	if last := evs[len(evs)-1]; last.Kind != EventStart || !last.Run.Scheduled.Equal(up) {
		t.Errorf("last event %s, want the start of the play due at the restart", describe(evs[len(evs)-1:]))
	}
}
