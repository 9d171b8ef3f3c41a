package scheduler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// drive steps the runner as its loop would, sleeping on the fake clock for what Step asks,
// until the wall clock reaches until; it returns every event in order.
func drive(r *Runner, c *clock.Fake, until time.Time) []Event {
	var all []Event
	for c.Now().Before(until) {
		evs, wake := r.Step()
		all = append(all, evs...)
		c.Advance(wake)
	}
	evs, _ := r.Step()
	return append(all, evs...)
}

// describe renders events as "15:04:05 kind program[#play] item.. (reason) +offset".
func describe(evs []Event) []string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%s %s %s", e.At.In(e.Run.Start.Location()).Format("15:04:05"), e.Kind, e.Run.Program)
		if e.Run.Play > 0 {
			s += fmt.Sprintf("#%d", e.Run.Play)
		}
		if e.Reason != "" {
			s += " (" + string(e.Reason) + ")"
		}
		if e.From != (Position{}) {
			s += " +" + e.From.Offset.String()
			if e.From.Segment > 0 {
				s += fmt.Sprintf(" (segment %d)", e.From.Segment)
			}
		}
		if !e.ClockSynced {
			s += " unsynced"
		}
		out = append(out, s)
	}
	return out
}

func expectEvents(t *testing.T, got []Event, want ...string) {
	t.Helper()
	g := describe(got)
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n got: %s\nwant: %s", strings.Join(g, "\n      "), strings.Join(want, "\n      "))
	}
}

const threeProgrammes = header + `programs:
  - {id: morning, cron: "0 30 6 * * *", max_duration: 20m, items: [{file: a.mp3, duration: 10m}, {file: b.mp3, duration: 2m}]}
  - {id: notice, class: priority, cron: "0 35 6 * * *", items: [{file: p.mp3, duration: 3m}]}
  - {id: noon, cron: "0 0 12 * * *", items: [{file: c.mp3, duration: 5m}]}
`

func newTestRunner(t *testing.T, src string, start time.Time, opts RunnerOptions) (*Runner, *clock.Fake) {
	t.Helper()
	c := clock.NewFake(start)
	opts.Clock = c
	if opts.Tick == 0 {
		opts.Tick = 20 * time.Second // keeps the fake-clock walk short; steps are still seen
	}
	r := NewRunner(opts)
	r.SetSchedule(mustParse(t, src))
	return r, c
}

func TestRunnerPlaysInOrderWithPreemption(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 6, 0, 0, 0, hcm), RunnerOptions{})
	evs := drive(r, c, time.Date(2026, 11, 2, 13, 0, 0, 0, hcm))
	expectEvents(t, evs,
		"06:30:00 start morning",
		"06:35:00 stop morning (preempted)",
		"06:35:00 start notice",
		"06:38:00 stop notice (end)",
		"06:38:00 start morning +5m0s",
		"06:45:00 stop morning (end)",
		"12:00:00 start noon",
		"12:05:00 stop noon (end)",
	)
	// The resumed run carries both remaining items for gapless play.
	for _, e := range evs {
		if e.Kind == EventStart && e.Run.Program == "morning" && e.From.Offset > 0 && len(e.Run.Segments) != 2 {
			t.Errorf("resumed morning run has %d segments, want 2", len(e.Run.Segments))
		}
	}
}

func TestRunnerGraceWindow(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	// Booted 3 minutes after the start: plays, from the beginning.
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 6, 33, 0, 0, hcm), RunnerOptions{})
	evs := drive(r, c, time.Date(2026, 11, 2, 6, 34, 0, 0, hcm))
	expectEvents(t, evs, "06:33:00 start morning")
	if evs[0].Late != 3*time.Minute || evs[0].From != (Position{}) {
		t.Errorf("late start: late %s from %+v, want 3m0s and the beginning", evs[0].Late, evs[0].From)
	}
	// Booted 8 minutes after (grace 5 min), just after the priority notice's time: morning is
	// missed, the notice (due 3.5 min ago, inside the grace window) plays late, whole.
	r, c = newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 6, 38, 30, 0, hcm), RunnerOptions{NotBefore: time.Date(2026, 11, 2, 6, 0, 0, 0, hcm), LastRun: time.Date(2026, 11, 2, 6, 0, 0, 0, hcm)})
	evs = drive(r, c, time.Date(2026, 11, 2, 6, 39, 0, 0, hcm))
	// One record per missed occurrence, although morning had two runs around the notice.
	expectEvents(t, evs, "06:38:30 missed morning", "06:38:30 start notice")
	// Grace configurable: 1 minute makes a 3-minute-late start a miss.
	r, c = newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 6, 33, 0, 0, hcm), RunnerOptions{Grace: time.Minute})
	evs = drive(r, c, time.Date(2026, 11, 2, 6, 34, 0, 0, hcm))
	expectEvents(t, evs, "06:33:00 missed morning")
}

func TestRunnerClockStepForwardDuringProgramme(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	src := header + `programs:
  - {id: relay, cron: "0 0 11 * * *", items: [{stream: "http://radio.example/a.mp3", duration: 2h}]}
  - {id: short, cron: "0 20 11 * * *", class: priority, items: [{file: s.mp3, duration: 5m}]}
`
	r, c := newTestRunner(t, src, time.Date(2026, 11, 2, 10, 59, 0, 0, hcm), RunnerOptions{})
	evs := drive(r, c, time.Date(2026, 11, 2, 11, 10, 0, 0, hcm))
	expectEvents(t, evs, "11:00:00 start relay")
	c.Step(time.Hour) // NTP corrects the clock forward by an hour: 12:10
	evs = drive(r, c, time.Date(2026, 11, 2, 12, 11, 0, 0, hcm))
	// The relay's first run ended at 11:20 (the priority notice), so it stops; the notice's
	// time passed unseen: missed. The relay's resumed run joins where the timeline is.
	expectEvents(t, evs,
		"12:10:00 stop relay (preempted)",
		"12:10:00 missed short",
		"12:10:00 start relay +1h5m0s", // 20m played before the notice, 45m late
	)
}

func TestRunnerClockStepBackDuringProgramme(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 11, 55, 0, 0, hcm), RunnerOptions{})
	evs := drive(r, c, time.Date(2026, 11, 2, 12, 2, 0, 0, hcm))
	expectEvents(t, evs, "12:00:00 start noon")
	c.Step(-time.Hour) // back to 11:02
	evs = drive(r, c, time.Date(2026, 11, 2, 12, 30, 0, 0, hcm))
	// noon keeps playing for its real length (by the monotonic clock), ending at 11:05 on the
	// stepped wall clock, and is not played again when the wall clock reaches 12:00 again.
	expectEvents(t, evs, "11:05:00 stop noon (end)")
}

func TestRunnerBootAt1970ThenSync(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	lastSeen := time.Date(2026, 11, 2, 5, 0, 0, 0, hcm) // saved by the previous run
	src := threeProgrammes + `  - {id: alarm, class: emergency, cron: "0 0 7 * * *", items: [{file: e.mp3, duration: 1m}]}
  - {id: epoch, cron: "0 0 7 * * *", items: [{file: e.mp3, duration: 1m}]}
`
	boot := time.Date(1970, 1, 1, 7, 0, 0, 0, hcm)
	r, c := newTestRunner(t, src, boot.Add(-time.Minute), RunnerOptions{NotBefore: lastSeen, LastRun: lastSeen})
	evs := drive(r, c, boot.Add(10*time.Minute))
	// At 1970 07:00 the emergency's cron fires: emergencies play on an untrusted clock;
	// the normal programme at the same time does not.
	expectEvents(t, evs, "07:00:00 start alarm unsynced", "07:01:00 stop alarm (end) unsynced")
	// NTP steps to 06:37 on the real day. Morning (06:30) is 7 min late: missed, not a
	// stale start; the notice (06:35, 2 min ago) plays from its start; nothing else bursts.
	c.Step(time.Date(2026, 11, 2, 6, 37, 0, 0, hcm).Sub(c.Now()))
	evs = drive(r, c, time.Date(2026, 11, 2, 6, 37, 30, 0, hcm))
	expectEvents(t, evs,
		"06:37:00 missed morning",
		"06:37:00 start notice",
	)
	if evs[1].Late != 2*time.Minute || evs[1].From != (Position{}) {
		t.Errorf("notice: late %s from %+v, want 2m0s late from the start", evs[1].Late, evs[1].From)
	}
}

// TestRunnerMissedWhileOffThenBootAt1970: a box off over a programme that boots without RTC
// (1970) and is then set by NTP records the programme missed because it was off, not because
// the clock "jumped forward past its time" (the lost week found this: the step that sets the
// clock is not a jump the agent watched).
func TestRunnerMissedWhileOffThenBootAt1970(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	lastSeen := time.Date(2026, 11, 2, 5, 0, 0, 0, hcm) // the box went off at 05:00
	boot := time.Date(1970, 1, 1, 6, 59, 0, 0, hcm)
	r, c := newTestRunner(t, threeProgrammes, boot, RunnerOptions{NotBefore: lastSeen, LastRun: lastSeen})
	drive(r, c, boot.Add(time.Minute))
	c.Step(time.Date(2026, 11, 2, 6, 40, 0, 0, hcm).Sub(c.Now()))
	evs := drive(r, c, time.Date(2026, 11, 2, 6, 40, 30, 0, hcm))
	expectEvents(t, evs, "06:40:00 missed morning", "06:40:00 start notice") // the notice is within grace
	for _, ev := range evs[:1] {
		if !strings.HasPrefix(ev.Why, "the agent was not running when it was due") || !strings.Contains(ev.Why, "from 2026-11-02 05:00:00") ||
			!strings.Contains(ev.Why, "clock was set at 2026-11-02 06:40:00") {
			t.Errorf("%s missed: why %q, want not running from 05:00 until the clock was set at 06:40", ev.Run.Program, ev.Why)
		}
	}
	// A step once the clock is trusted is a jump the agent watched: noon (12:00-12:05) is
	// passed over.
	c.Step(time.Date(2026, 11, 2, 12, 10, 0, 0, hcm).Sub(c.Now()))
	evs = drive(r, c, time.Date(2026, 11, 2, 12, 11, 0, 0, hcm))
	expectEvents(t, evs, "12:10:00 stop notice (end)", "12:10:00 missed noon")
	if !strings.HasPrefix(evs[1].Why, "the wall clock jumped forward past its time") {
		t.Errorf("noon missed after a step on a trusted clock: why %q", evs[1].Why)
	}
}

func TestRunnerReplacedSchedule(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 11, 59, 0, 0, hcm), RunnerOptions{})
	drive(r, c, time.Date(2026, 11, 2, 12, 1, 0, 0, hcm))
	r.SetSchedule(mustParse(t, strings.Replace(threeProgrammes, `"0 0 12 * * *"`, `"0 0 13 * * *"`, 1)))
	evs := drive(r, c, time.Date(2026, 11, 2, 12, 2, 0, 0, hcm))
	expectEvents(t, evs, "12:01:00 stop noon (replaced)")
}

func TestRunnerQuietHoursAndSkipAreReported(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	src := header + `quiet_hours: [{from: "22:00", to: "05:00"}]
programs:
  - {id: late, cron: "0 30 22 * * *", items: [{file: a.mp3, duration: 5m}]}
`
	r, c := newTestRunner(t, src, time.Date(2026, 11, 2, 22, 0, 0, 0, hcm), RunnerOptions{})
	evs := drive(r, c, time.Date(2026, 11, 2, 23, 0, 0, 0, hcm))
	expectEvents(t, evs, "22:30:00 suppressed late")
}

func TestRunnerLoopWithRealTimers(t *testing.T) {
	// The loop itself, on the system clock: an `at` a moment from now starts and stops.
	now := time.Now()
	src := fmt.Sprintf(`version: 1
id: loop
revision: 1
timezone: UTC
programs:
  - {id: soon, at: "%s", items: [{text: "hello", duration: 1s}], outputs: [board]}
`, now.Add(1500*time.Millisecond).UTC().Format(time.RFC3339))
	r := NewRunner(RunnerOptions{Tick: 100 * time.Millisecond})
	r.SetSchedule(mustParse(t, src))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := make(chan Event, 16)
	go r.Run(ctx, events)
	var kinds []string
	for len(kinds) < 2 {
		select {
		case e := <-events:
			kinds = append(kinds, string(e.Kind)+" "+e.Run.Program)
		case <-ctx.Done():
			t.Fatalf("loop gave %v before the deadline", kinds)
		}
	}
	if strings.Join(kinds, ",") != "start soon,stop soon" {
		t.Fatalf("events %v", kinds)
	}
}

func TestRunnerFirstBootReportsNothingMissed(t *testing.T) {
	// A new device switched on in the afternoon has not "missed" the morning's programmes.
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 15, 0, 0, 0, hcm), RunnerOptions{})
	if evs := drive(r, c, time.Date(2026, 11, 2, 15, 1, 0, 0, hcm)); len(evs) != 0 {
		t.Fatalf("first boot produced %v", describe(evs))
	}
	// The same device after a restart knows when it last ran: what fell between is missed.
	r, c = newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 15, 0, 0, 0, hcm), RunnerOptions{LastRun: time.Date(2026, 11, 2, 11, 0, 0, 0, hcm)})
	expectEvents(t, drive(r, c, time.Date(2026, 11, 2, 15, 1, 0, 0, hcm)), "15:00:00 missed noon")
}

// TestRunnerAnnouncesUpcomingRuns: with a Lead, each audible run is announced once, Lead
// before its start (the amplifier warms up then), and never for a suppressed one.
func TestRunnerAnnouncesUpcomingRuns(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 6, 0, 0, 0, hcm), RunnerOptions{Lead: 3 * time.Second})
	evs := drive(r, c, time.Date(2026, 11, 2, 12, 1, 0, 0, hcm))
	expectEvents(t, evs,
		"06:29:57 upcoming morning",
		"06:30:00 start morning",
		"06:34:57 upcoming notice",
		"06:35:00 stop morning (preempted)",
		"06:35:00 start notice",
		"06:37:57 upcoming morning",
		"06:38:00 stop notice (end)",
		"06:38:00 start morning +5m0s",
		"06:45:00 stop morning (end)",
		"11:59:57 upcoming noon",
		"12:00:00 start noon",
	)
}

// TestRunnerEmergencyPushedPreempts: a new revision that adds an emergency starting now stops
// the running programme as preempted (its journal says so), and the programme resumes after.
func TestRunnerEmergencyPushedPreempts(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	r, c := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 2, 11, 59, 0, 0, hcm), RunnerOptions{})
	drive(r, c, time.Date(2026, 11, 2, 12, 1, 0, 0, hcm))
	r.SetSchedule(mustParse(t, threeProgrammes+`  - {id: storm, class: emergency, at: "2026-11-02T12:01:00+07:00", items: [{file: s.mp3, duration: 1m}]}
`))
	evs := drive(r, c, time.Date(2026, 11, 2, 12, 7, 0, 0, hcm))
	expectEvents(t, evs,
		"12:01:00 stop noon (preempted)",
		"12:01:00 start storm",
		"12:02:00 stop storm (end)",
		"12:02:00 start noon +1m0s",
		"12:05:00 stop noon (cut)", // never past its window
	)
}

// TestRunnerLateEmergencyPlaysInsideItsWindow: beyond the grace window a normal programme is
// missed, but an emergency whose window is still open plays from its beginning.
func TestRunnerLateEmergencyPlaysInsideItsWindow(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	src := header + `programs:
  - {id: storm, class: emergency, at: "2026-11-02T12:00:00+07:00", max_duration: 2h, items: [{file: s.mp3, duration: 1m}]}
  - {id: news, at: "2026-11-02T12:00:00+07:00", max_duration: 2h, items: [{file: n.mp3, duration: 1m}]}
`
	// The box comes back 40 minutes after both were due (grace 5 min).
	r, c := newTestRunner(t, src, time.Date(2026, 11, 2, 12, 40, 0, 0, hcm), RunnerOptions{LastRun: time.Date(2026, 11, 2, 11, 0, 0, 0, hcm)})
	evs := drive(r, c, time.Date(2026, 11, 2, 12, 45, 0, 0, hcm))
	var got []string
	for _, e := range evs {
		got = append(got, string(e.Kind)+" "+e.Run.Program)
	}
	want := "missed news|start storm|stop storm"
	if g := strings.Join(got, "|"); g != want && g != "start storm|missed news|stop storm" {
		t.Errorf("events %q, want the storm played and the news missed (%q)", g, want)
	}
}

// Check answers with the runner's own options: an item whose length only the runner's
// ItemLength knows is fine; one it does not know is refused.
func TestRunnerCheck(t *testing.T) {
	known := true
	opts := RunnerOptions{Compile: CompileOptions{ItemLength: func(it Item) (time.Duration, bool) { return 90 * time.Second, known && it.File == "x.mp3" }}}
	r, _ := newTestRunner(t, threeProgrammes, time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC), opts)
	noLength := mustParse(t, header+"programs:\n  - {id: p, cron: \"0 0 7 * * *\", items: [{file: x.mp3}]}\n")
	if err := r.Check(noLength); err != nil {
		t.Fatalf("an item the runner's ItemLength knows: %v", err)
	}
	known = false
	if err := r.Check(noLength); err == nil {
		t.Fatal("an item of unknown length was accepted")
	}
	if err := r.Check(mustParse(t, threeProgrammes)); err != nil {
		t.Fatalf("a playable schedule: %v", err)
	}
}
