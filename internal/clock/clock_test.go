package clock

import (
	"testing"
	"time"
)

// A step moves the wall clock and fires nothing; only monotonic time passing fires timers.
func TestFakeStepFiresNoTimerAdvanceDoes(t *testing.T) {
	t0 := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(t0)
	due := c.After(time.Minute)
	c.Step(56 * 365 * 24 * time.Hour) // NTP at boot
	select {
	case <-due:
		t.Fatal("a wall-clock step fired a monotonic timer")
	default:
	}
	if c.Monotonic() != 0 {
		t.Fatalf("monotonic after a step = %s, want 0", c.Monotonic())
	}
	c.Advance(59 * time.Second)
	if c.Waiters() != 1 {
		t.Fatalf("waiters = %d before the timer is due, want 1", c.Waiters())
	}
	c.Advance(time.Second)
	select {
	case at := <-due:
		if want := t0.Add(56*365*24*time.Hour + time.Minute); !at.Equal(want) {
			t.Fatalf("timer fired at wall %s, want %s", at, want)
		}
	default:
		t.Fatal("timer not fired after a minute of monotonic time")
	}
	if c.Waiters() != 0 {
		t.Fatalf("waiters = %d after firing, want 0", c.Waiters())
	}
	select {
	case <-c.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
}
