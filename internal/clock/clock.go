// Package clock is the agent's one time source: a wall clock that may step (NTP at boot, a
// technician's date command), a monotonic clock that never does, and timers on the monotonic
// clock. The agent builds one and hands it to everything that makes a wall-clock decision (the
// scheduler's runner, journal timestamps, proofs, command expiry, the link's hello and status);
// Fake drives all of them at once in tests, including wall-clock steps.
package clock

import (
	"sync"
	"time"
)

// Clock is the time the agent reads. Comparing wall and monotonic time is how a step is
// noticed (the scheduler's runner does it).
type Clock interface {
	Now() time.Time                         // wall clock
	Monotonic() time.Duration               // since a fixed point; never steps
	After(d time.Duration) <-chan time.Time // fires after d of monotonic time
}

// System is the machine's clock.
type System struct{ base time.Time }

// NewSystem returns the machine's clock; its monotonic zero is the moment of the call.
func NewSystem() *System { return &System{base: time.Now()} }

// Now strips the monotonic reading so that comparisons and subtractions use wall time.
func (c *System) Now() time.Time                         { return time.Now().Round(0) }
func (c *System) Monotonic() time.Duration               { return time.Since(c.base) }
func (c *System) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a Clock for tests: Advance moves wall and monotonic time together, Step moves only
// the wall clock, as NTP does.
type Fake struct {
	mu      sync.Mutex
	wall    time.Time
	mono    time.Duration
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Duration
	ch chan time.Time
}

// NewFake starts a fake clock at the given wall time.
func NewFake(wall time.Time) *Fake { return &Fake{wall: wall} }

func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *Fake) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

func (c *Fake) After(d time.Duration) <-chan time.Time {
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
func (c *Fake) Advance(d time.Duration) {
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
	clear(c.waiters[len(kept):]) // fired channels are not kept alive by the slice's tail
	c.waiters = kept
}

// Step moves the wall clock by d without time passing, as an NTP correction does.
func (c *Fake) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// Waiters is how many timers are pending; tests use it to know the runner is asleep.
func (c *Fake) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
