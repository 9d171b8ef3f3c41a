package protocol

import (
	"testing"
	"time"
)

func TestClockOffset(t *testing.T) {
	hub := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	cases := []struct {
		name              string
		agentError        time.Duration // agent clock minus hub clock
		up, down, process time.Duration
	}{
		{"agent 10 min slow, symmetric", -10 * time.Minute, 80 * time.Millisecond, 80 * time.Millisecond, 5 * time.Millisecond},
		{"agent 3 s fast, asymmetric 4G", 3 * time.Second, 400 * time.Millisecond, 60 * time.Millisecond, 2 * time.Millisecond},
		{"Pi booted in 1970", -time.Duration(56*365*24) * time.Hour, 100 * time.Millisecond, 100 * time.Millisecond, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := hub.Add(c.agentError)             // agent sends hello (agent clock)
			t1 := hub.Add(c.up)                     // hub receives (hub clock)
			t2 := t1.Add(c.process)                 // hub sends welcome
			t3 := t0.Add(c.up + c.process + c.down) // agent receives (agent clock)
			offset, rtt := ClockOffset(t0, t1, t2, t3)
			if rtt != c.up+c.down {
				t.Errorf("round trip %v, want %v", rtt, c.up+c.down)
			}
			// Exact for symmetric legs; otherwise within half the round trip.
			errAbs := (offset + c.agentError).Abs()
			if errAbs > rtt/2 {
				t.Errorf("offset %v, true %v: error %v beyond rtt/2 %v", offset, -c.agentError, errAbs, rtt/2)
			}
			if c.up == c.down && errAbs != 0 {
				t.Errorf("symmetric legs: offset %v, want exactly %v", offset, -c.agentError)
			}
			// Corrected agent time at reception agrees with the hub's.
			if got := t3.Add(offset); (got.Sub(t2.Add(c.down))).Abs() > rtt/2 {
				t.Errorf("corrected time %v, hub %v", got, t2.Add(c.down))
			}
		})
	}
	// Hub processing longer than the agent measured (hub clock running fast): no negative rtt.
	if _, rtt := ClockOffset(hub, hub, hub.Add(time.Second), hub.Add(time.Millisecond)); rtt != 0 {
		t.Errorf("negative round trip not clamped: %v", rtt)
	}
}
