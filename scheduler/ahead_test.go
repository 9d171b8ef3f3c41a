package scheduler

import (
	"strings"
	"testing"
	"time"
)

// TestRunnerStartsAheadOnAFreeOutput: with StartAhead, a run whose output is free starts that
// long before its time (so the agent can have its first sample heard on time), once; a run
// right after another on the same output starts at its time, as does one on an output not
// named (the board); a run begun ahead that a new revision drops is stopped as replaced;
// without StartAhead nothing starts early.
func TestRunnerStartsAheadOnAFreeOutput(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, hcm)
	// news at :10 for 5 s, then music right after it at :15; a bell at :30 alone.
	doc := header + `programs:
  - {id: news, at: "2026-11-02T10:00:10+07:00", items: [{file: n.mp3, duration: 5s}]}
  - {id: music, at: "2026-11-02T10:00:15+07:00", items: [{file: m.mp3, duration: 5s}]}
  - {id: bell, at: "2026-11-02T10:00:30+07:00", items: [{file: b.mp3, duration: 2s}]}
  - {id: sign, at: "2026-11-02T10:00:25+07:00", outputs: [board], items: [{text: "Họp dân", duration: 2s}]}
`
	describeAt := func(evs []Event) string {
		var s []string
		for _, e := range evs {
			if e.Kind == EventStart || e.Kind == EventStop {
				s = append(s, e.At.Format("05.0")+" "+string(e.Kind)+" "+e.Run.Program+" "+string(e.Reason))
			}
		}
		return strings.Join(s, ", ")
	}
	r, c := newTestRunner(t, doc, t0, RunnerOptions{StartAhead: map[string]time.Duration{"speakers": 1500 * time.Millisecond}, Tick: 100 * time.Millisecond})
	want := "08.5 start news , 15.0 stop news end, 15.0 start music , 20.0 stop music end, 25.0 start sign , 27.0 stop sign end, 28.5 start bell , 32.0 stop bell end"
	if got := describeAt(drive(r, c, t0.Add(33*time.Second))); got != want {
		t.Errorf("starts ahead:\n got %s\nwant %s", got, want)
	}

	r, c = newTestRunner(t, doc, t0, RunnerOptions{Tick: 100 * time.Millisecond})
	want = "10.0 start news , 15.0 stop news end, 15.0 start music , 20.0 stop music end, 25.0 start sign , 27.0 stop sign end, 30.0 start bell , 32.0 stop bell end"
	if got := describeAt(drive(r, c, t0.Add(33*time.Second))); got != want {
		t.Errorf("without StartAhead:\n got %s\nwant %s", got, want)
	}

	// Begun ahead, then a revision without it arrives before its time: it stops, replaced.
	r, c = newTestRunner(t, doc, t0, RunnerOptions{StartAhead: map[string]time.Duration{"speakers": 1500 * time.Millisecond}, Tick: 100 * time.Millisecond})
	evs := drive(r, c, t0.Add(9*time.Second))
	r.SetSchedule(mustParse(t, strings.Replace(strings.Replace(doc, "revision: 1", "revision: 2", 1), "  - {id: news", "  - {id: other", 1)))
	evs = append(evs, drive(r, c, t0.Add(12*time.Second))...)
	if got, want := describeAt(evs), "08.5 start news , 09.0 stop news replaced, 09.1 start other "; got != want {
		t.Errorf("replaced before its time:\n got %s\nwant %s", got, want)
	}
}
