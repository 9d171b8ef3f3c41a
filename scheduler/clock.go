package scheduler

import (
	"sync"
	"time"
)

// Clock is the time the runner reads. Wall time may step (NTP at boot, a technician's date
// command); monotonic time never does. Comparing the two is how a step is noticed.
type Clock interface {
	Now() time.Time                         // wall clock
	Monotonic() time.Duration               // since a fixed point; never steps
	After(d time.Duration) <-chan time.Time // fires after d of monotonic time
}

// SystemClock is the machine's clock.
type SystemClock struct{ base time.Time }

// NewSystemClock returns the machine's clock; its monotonic zero is the moment of the call.
func NewSystemClock() *SystemClock { return &SystemClock{base: time.Now()} }

// Now strips the monotonic reading so that comparisons and subtractions use wall time.
func (c *SystemClock) Now() time.Time                         { return time.Now().Round(0) }
func (c *SystemClock) Monotonic() time.Duration               { return time.Since(c.base) }
func (c *SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// FakeClock is a Clock for tests: Advance moves wall and monotonic time together, Step moves
// only the wall clock, as NTP does.
type FakeClock struct {
	mu      sync.Mutex
	wall    time.Time
	mono    time.Duration
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Duration
	ch chan time.Time
}

// NewFakeClock starts a fake clock at the given wall time.
func NewFakeClock(wall time.Time) *FakeClock { return &FakeClock{wall: wall} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *FakeClock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.wall
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.mono + d, ch})
	return ch
}

// Advance lets d pass on both clocks and fires the timers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
	c.mono += d
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at <= c.mono {
			w.ch <- c.wall
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// Step moves the wall clock by d without time passing, as an NTP correction does.
func (c *FakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// Waiters is how many timers are pending; tests use it to know the runner is asleep.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
