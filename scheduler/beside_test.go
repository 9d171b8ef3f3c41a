package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// TestRunnerCompilesNewScheduleBesideTheLoop: a new revision whose compile takes long (held
// here until the test lets it go) does not stall the runner's loop: the plays of the revision
// playing go on, on time, while it compiles, and the new one takes over at a step once it is
// ready. Before, the loop compiled it inside its step and plays due meanwhile were missed
// ("busy, a slow step").
func TestRunnerCompilesNewScheduleBesideTheLoop(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	rev1 := header + `programs:
  - {id: tick, cron: "*/2 * 10 * * *", items: [{file: t.mp3, duration: 1s}]}
`
	rev2 := strings.Replace(rev1, "revision: 1", "revision: 2", 1) +
		`  - {id: news, class: priority, at: "2026-11-02T10:00:21+07:00", items: [{file: slow.mp3}]}
`
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	defer let()
	c := &sleepWatch{Fake: clock.NewFake(t0.Add(-500 * time.Millisecond))}
	r := NewRunner(RunnerOptions{Clock: c, Tick: 500 * time.Millisecond, Compile: CompileOptions{ItemLength: func(it Item) (time.Duration, bool) {
		if it.File == "slow.mp3" {
			<-release // a dense schedule on a loaded Pi: seconds
			return 3 * time.Second, true
		}
		return 0, false
	}}})
	r.SetSchedule(mustParse(t, rev1))
	r.Step() // the first timeline, compiled before the loop runs

	events, stop := runLoop(r)
	defer func() { let(); stop() }()
	advanceTo := func(until time.Time) []Event { t.Helper(); return c.advanceTo(t, until, events) }

	if got := starts(advanceTo(t0.Add(500 * time.Millisecond))); got != "tick@00" {
		t.Fatalf("before the new revision: %s, want tick@00", got)
	}
	r.SetSchedule(mustParse(t, rev2))
	if got, want := starts(advanceTo(t0.Add(7500*time.Millisecond))), "tick@02 tick@04 tick@06"; got != want {
		t.Errorf("while the new revision compiles: %s, want %s", got, want)
	}
	let()
	if got, want := starts(advanceTo(t0.Add(24500*time.Millisecond))), "tick@08 tick@10 tick@12 tick@14 tick@16 tick@18 tick@20 news@21 tick@24"; got != want {
		t.Errorf("once it is compiled: %s, want %s", got, want)
	}
}

// runLoop runs r's loop in a goroutine; stop ends it and waits for it.
func runLoop(r *Runner) (<-chan Event, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 1000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx, events) }()
	return events, func() { cancel(); wg.Wait() }
}

// starts renders the starts and missed events as "program@seconds" and "MISSED program@seconds (why)".
func starts(evs []Event) string {
	var s []string
	for _, e := range evs {
		switch e.Kind {
		case EventStart:
			s = append(s, e.Run.Program+"@"+e.Run.Scheduled.Format("05"))
		case EventMissed:
			s = append(s, "MISSED "+e.Run.Program+"@"+e.Run.Scheduled.Format("05")+" ("+e.Why+")")
		}
	}
	return strings.Join(s, " ")
}

// TestRunnerStartsWhileItsFirstTimelineCompiles: after a restart the loop goes on stepping
// while its first timeline compiles (held here); the play due meanwhile that the next one
// supersedes is recorded missed as due while the agent was restarting, with its own window,
// the latest begins late, and the next ones play on time.
func TestRunnerStartsWhileItsFirstTimelineCompiles(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	c := &sleepWatch{Fake: clock.NewFake(t0.Add(500 * time.Millisecond))}
	steps := 0
	r := NewRunner(RunnerOptions{Clock: c, Tick: 500 * time.Millisecond, LastRun: t0, NotBefore: t0, Heartbeat: func() { steps++ },
		Compile: CompileOptions{ItemLength: func(it Item) (time.Duration, bool) { <-release; return time.Second, true }}})
	r.SetSchedule(mustParse(t, everyTwoSecondsAt10)) // quick to compile once let go, even under -race
	r.Remember(Past{Output: "speakers", Program: "tick", Planned: t0, Start: t0, Was: PastDone})
	events, stop := runLoop(r)
	defer func() { let(); stop() }()

	if got := starts(c.advanceTo(t, t0.Add(5500*time.Millisecond), events)); got != "" {
		t.Errorf("before its first timeline: %s, want nothing", got)
	}
	let()
	// The step that takes the compiled timeline decides at once (10:00:05.5): wait for it
	// before the clock moves on.
	first := waitEvent(t, events)
	want := "MISSED tick@02 (the agent was not running when it was due (2026-11-02 10:00:02 to 2026-11-02 10:00:03): " +
		"it was off or restarting from 2026-11-02 10:00:00 to 2026-11-02 10:00:05) tick@04 tick@06 tick@08"
	if got := starts(append([]Event{first}, c.advanceTo(t, t0.Add(9500*time.Millisecond), events)...)); got != want {
		t.Errorf("once compiled:\n got %s\nwant %s", got, want)
	}
	stop()
	if steps < 10 {
		t.Errorf("the loop stepped %d times in 9 s of its clock, most of them waiting for its first timeline; want at least 10", steps)
	}
}

// waitEvent waits for the loop's next event, for at most 10 s.
func waitEvent(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the runner's loop in 10 s")
		return Event{}
	}
}

// advanceTo walks the fake clock to until in 100 ms steps, each once the loop sleeps again, and
// returns the events sent meanwhile.
func (c *sleepWatch) advanceTo(t *testing.T, until time.Time, events <-chan Event) []Event {
	t.Helper()
	asleep := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !c.asleep() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the runner's loop has not slept again for 10 s: it is stuck in a step", c.Now().Format("15:04:05.000"))
			}
			time.Sleep(time.Millisecond)
		}
	}
	for c.Now().Before(until) {
		asleep()
		c.Advance(min(100*time.Millisecond, until.Sub(c.Now())))
	}
	asleep() // the events of its last step are sent before it sleeps
	var evs []Event
	for {
		select {
		case e := <-events:
			evs = append(evs, e)
		default:
			return evs
		}
	}
}

// sleepWatch tells when the runner's loop sleeps: its last timer has not fired yet.
type sleepWatch struct {
	*clock.Fake
	mu    sync.Mutex
	until time.Duration // monotonic time the loop's last sleep ends
}

func (c *sleepWatch) After(d time.Duration) <-chan time.Time {
	c.mu.Lock() // no Advance between reading the time and setting the timer
	defer c.mu.Unlock()
	c.until = c.Monotonic() + d
	return c.Fake.After(d)
}

func (c *sleepWatch) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Fake.Advance(d)
}

func (c *sleepWatch) asleep() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until > c.Monotonic()
}

// TestRunnerFirstTimelineAfterARestartIsShort: a restart with a dense schedule (a play every
// 2 s) first compiles only the minutes around now and since the agent last ran, so that it
// plays within a step or two instead of after the whole window is compiled (on a loaded Pi a
// minute of silence after every restart: found by the power-cut soak); the whole window
// follows beside the loop and takes over without a play started, missed or stopped twice.
// What it decides is what a runner that compiled the whole window first decides.
func TestRunnerFirstTimelineAfterARestartIsShort(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	down, up := t0.Add(20*time.Second), t0.Add(45200*time.Millisecond)
	// And a three-hour programme on the board, begun two and a half hours before the agent
	// last ran: still playing, it must be in the short timeline too.
	doc := mustParse(t, everyTwoSeconds+`  - {id: long, cron: "0 30 7 * * *", outputs: [board], items: [{file: l.mp3, duration: 3h}]}
`)
	longBegan := time.Date(2026, 11, 2, 7, 30, 0, 0, hcm)
	newRunner := func(c clock.Clock) *Runner {
		r := NewRunner(RunnerOptions{Clock: c, LastRun: down, NotBefore: down, Tick: 500 * time.Millisecond,
			MissedLookback: 6 * time.Hour, Horizon: time.Hour,
			Compile: CompileOptions{ItemLength: func(Item) (time.Duration, bool) { return time.Second, true }}})
		r.SetSchedule(doc)
		r.Remember(Past{Output: "speakers", Program: "tick", Planned: down, Start: down, Was: PastCut},
			Past{Output: "board", Program: "long", Planned: longBegan, Start: longBegan, Was: PastCut})
		return r
	}
	// What happened, without when it was decided: the two runners decide a step apart.
	what := func(evs []Event) []string {
		var s []string
		for _, e := range evs {
			s = append(s, fmt.Sprintf("%s %s@%s %s", e.Kind, e.Run.Program, e.Run.Scheduled.Format("15:04:05"), e.Reason))
		}
		return s
	}
	end := up.Add(8 * time.Second)

	// The reference: the whole window compiled in its first step (Step alone does so).
	rc := clock.NewFake(up)
	ref := newRunner(rc)
	var want []Event
	for !rc.Now().After(end) {
		evs, _ := ref.Step()
		want = append(want, evs...)
		rc.Advance(250 * time.Millisecond)
	}
	full := len(ref.runs)

	// As Run does it: compiled beside the loop, the short timeline first.
	c := clock.NewFake(up)
	r := newRunner(c)
	r.async = true
	var got []Event
	var lengths []int
	for !c.Now().After(end) {
		evs, _ := r.Step()
		got = append(got, evs...)
		r.compiles.Wait() // at most one step late, as on a quiet machine
		if len(lengths) == 0 || lengths[len(lengths)-1] != len(r.runs) {
			lengths = append(lengths, len(r.runs))
			if len(r.runs) > 0 && len(lengths) == 2 {
				if ahead := r.compiledTo.Sub(c.Now()); ahead > firstAhead || !r.short {
					t.Errorf("the first timeline reaches %v ahead (short %v), want at most %v", ahead, r.short, firstAhead)
				}
				if back := down.Sub(r.compiledFrom); back > 2*time.Hour+2*time.Minute {
					t.Errorf("the first timeline begins %v before the agent last ran, want about the two hours a play may still be going", back)
				}
			}
		}
		c.Advance(250 * time.Millisecond)
	}
	if len(lengths) != 3 || lengths[0] != 0 || lengths[1]*3 > full || lengths[2] != full || r.short {
		t.Errorf("timelines installed (runs in each): %v, want none, then a short one (under a third of %d), then the whole window's %d (short now: %v)", lengths, full, full, r.short)
	}
	if g, w := strings.Join(what(got), "\n"), strings.Join(what(want), "\n"); g != w || len(want) < 5 || !strings.Contains(g, "start long@07:30:00") {
		t.Errorf("short timeline first:\n%s\nthe whole window first:\n%s", g, w)
	}
}
