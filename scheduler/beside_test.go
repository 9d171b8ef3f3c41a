package scheduler

import (
	"context"
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

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 1000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx, events) }()
	defer func() { let(); cancel(); wg.Wait() }()

	// advanceTo walks the fake clock in 100 ms steps, each once the loop sleeps again.
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
	advanceTo := func(until time.Time) []Event {
		t.Helper()
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
	starts := func(evs []Event) string {
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

// sleepWatch tells when the runner's loop sleeps: its last timer has not fired yet.
type sleepWatch struct {
	*clock.Fake
	mu    sync.Mutex
	until time.Duration // monotonic time the loop's last sleep ends
}

func (c *sleepWatch) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.until = c.Monotonic() + d
	c.mu.Unlock()
	return c.Fake.After(d)
}

func (c *sleepWatch) asleep() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until > c.Monotonic()
}
