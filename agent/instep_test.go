package agent

import (
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

// TestHeardAtInStep: when, in step, a play's first sample is to be heard, by how it started.
func TestHeardAtInStep(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	s := &speakers{timing: SyncConfig{InStep: new(true)}}
	run := func(class scheduler.Class, late time.Duration) *scheduler.Run {
		seg := scheduler.Segment{Start: t0, End: t0.Add(time.Minute), Late: late}
		return &scheduler.Run{Class: class, Start: t0, End: t0.Add(time.Minute), Segments: []scheduler.Segment{seg}}
	}
	for _, c := range []struct {
		name string
		run  *scheduler.Run
		at   time.Time          // the start event's
		from time.Duration      // where in the item the play begins
		want time.Duration      // after t0; -1: at once (no time)
		pos  scheduler.Position // the event's position
	}{
		{"started ahead of its time: heard exactly then", run(scheduler.Normal, 0), t0.Add(-1500 * time.Millisecond), 0, 0, scheduler.Position{}},
		{"an emergency announced ahead: exactly at its time", run(scheduler.Emergency, 0), t0.Add(-time.Second), 0, 0, scheduler.Position{}},
		{"started at its time (the speakers busy until then): at once", run(scheduler.Normal, 0), t0.Add(3 * time.Millisecond), 0, -1, scheduler.Position{}},
		{"joined mid-way (a restart): at once", run(scheduler.Normal, 0), t0.Add(20 * time.Second), 20 * time.Second, -1, scheduler.Position{Offset: 20 * time.Second}},
		{"begun late: at once", run(scheduler.Normal, 5*time.Second), t0.Add(10 * time.Millisecond), 0, -1, scheduler.Position{}},
		{"an emergency sent now: at once", run(scheduler.Emergency, 0), t0.Add(300 * time.Millisecond), 0, -1, scheduler.Position{}},
	} {
		ev := scheduler.Event{Kind: scheduler.EventStart, Run: c.run, At: c.at, From: c.pos}
		sp := &speakerPlay{segs: c.run.Segments, froms: []time.Duration{c.from}}
		got := s.heardAt(ev, sp)
		switch {
		case c.want < 0 && !got.IsZero():
			t.Errorf("%s: heard at %s, want at once (no time)", c.name, got.Format("15:04:05.000"))
		case c.want >= 0 && !got.Equal(t0.Add(c.want)):
			t.Errorf("%s: heard at %s, want %s", c.name, got.Format("15:04:05.000"), t0.Add(c.want).Format("15:04:05.000"))
		}
	}
}
