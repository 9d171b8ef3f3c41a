// Package amplifier switches the loudspeaker amplifier on before a program plays and off after
// the speakers have been idle for a while, through a power relay (an LCUS USB serial relay board
// or a GPIO line).
//
// Playback never waits on the relay: Acquire returns once the warm-up has elapsed whether or not
// the relay answered, and a broken or unplugged relay is reported in State and in the log, then
// retried in the background with backoff until it works again. A silent amplifier is bad; a
// silent amplifier that also stopped the emergency bulletin from being confirmed is worse.
package amplifier

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Relay is the switch in the amplifier's mains (or enable) line. Set must return promptly (no
// unbounded waits) and may be called again after an error: drivers reopen their device then, so
// an unplugged-and-replugged relay recovers by itself.
type Relay interface {
	Set(on bool) error
	Close() error
}

// Clock is the time source for the warm-up, the off-delay and the retry backoff.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless the returned Timer is stopped.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface{ Stop() bool }

// SystemClock is the machine's clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Phase is what the amplifier control is doing, in the words of status pages.
type Phase string

// Phases reported by State.
const (
	PhaseOff          Phase = "off"           // idle, relay off (or being kept off)
	PhaseWarmingUp    Phase = "warming_up"    // relay switched on, waiting before the first sample
	PhaseOn           Phase = "on"            // at least one program is playing
	PhaseOffPending   Phase = "off_pending"   // speakers idle, waiting out the off-delay
	PhaseSwitchingOff Phase = "switching_off" // off-delay over, relay not yet confirmed off
)

// State is the amplifier's status for status reports and confirmations.
type State struct {
	Phase Phase `json:"phase"`
	// Relay is the last state the relay accepted: "on", "off", or "unknown" (never set, or the
	// last write failed).
	Relay string `json:"relay"`
	// Users is how many plays hold the amplifier on.
	Users int `json:"users"`
	// Error is the current relay failure, "" when the last write succeeded.
	Error string `json:"error,omitempty"`
	// ErrorSince is when the current run of failures began (zero when Error is "").
	ErrorSince time.Time `json:"error_since,omitempty"`
	// Failures counts consecutive failed relay writes.
	Failures int `json:"failures,omitempty"`
}

// Retry backoff for a failing relay: retryMin, doubling, capped at Config.RetryMax.
const retryMin = time.Second

// Amplifier shares one relay among concurrent plays. Run must be running for the relay to be
// switched; Acquire, Release and State are safe for concurrent use.
type Amplifier struct {
	relay    Relay
	clock    Clock
	log      *slog.Logger
	warmUp   time.Duration
	offDelay time.Duration
	refresh  time.Duration
	retryMax time.Duration

	wake chan struct{} // capacity 1: "the relay may need writing"

	mu         sync.Mutex
	users      int
	want       bool          // the relay should be on
	warm       chan struct{} // closed when this on-cycle's warm-up is over; nil while off
	offGen     uint64        // invalidates off-delay timers that lost a race with Acquire
	offTimer   Timer
	retryTimer Timer
	relayKnown bool // the last write succeeded, so relayOn is what the relay is doing
	relayOn    bool
	lastErr    error
	errSince   time.Time
	failures   int
	writeSince time.Time // a relay write in progress started then; zero when none
}

// stallAfter is how long a relay write may take before State reports it as stuck (a hung USB
// serial adapter can block a write; the plays go on regardless).
const stallAfter = 5 * time.Second

// New returns an Amplifier driving relay (nil: no relay, e.g. an amplifier that is always on).
// Timing comes from cfg (WarmUp, OffDelay, Refresh, RetryMax); the driver fields are not used
// here, see OpenRelay.
func New(cfg Config, relay Relay, clock Clock, log *slog.Logger) *Amplifier {
	if relay == nil {
		relay = NoRelay{}
	}
	if clock == nil {
		clock = SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rm := cfg.RetryMax
	if rm < retryMin {
		rm = retryMin
	}
	return &Amplifier{
		relay: relay, clock: clock, log: log,
		warmUp: cfg.WarmUp, offDelay: cfg.OffDelay, refresh: cfg.Refresh, retryMax: rm,
		wake: make(chan struct{}, 1),
	}
}

// Acquire holds the amplifier on for one play. It switches the relay on if it is off and
// returns when the warm-up is over (at once if the amplifier is already warm). A failing relay
// does not fail the play: Acquire still returns nil after the warm-up and the failure is in
// State. The only error is ctx's, in which case the hold has been released. Every successful
// Acquire must be paired with one Release.
func (a *Amplifier) Acquire(ctx context.Context) error {
	a.mu.Lock()
	a.users++
	a.offGen++ // an off-delay running now must not switch off under this play
	if a.offTimer != nil {
		a.offTimer.Stop()
		a.offTimer = nil
	}
	if !a.want {
		a.want = true
		// The warm-up runs from the switch-on request, alongside the relay write (milliseconds
		// at 9600 baud), so a play never waits on the relay: a stalled or broken one delays it
		// by the warm-up and no more.
		w := make(chan struct{})
		a.warm = w
		a.clock.AfterFunc(a.warmUp, func() { close(w) })
		a.kick()
	}
	warm := a.warm
	a.mu.Unlock()

	select {
	case <-warm:
		return nil
	case <-ctx.Done():
		a.Release()
		return ctx.Err()
	}
}

// Release ends one play's hold. When no play holds the amplifier any more, the relay is
// switched off after the off-delay unless a play acquires it again meanwhile (so the gaps
// between items of a program, or between back-to-back programs, do not cycle the amplifier).
func (a *Amplifier) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users == 0 {
		a.log.Warn("amplifier released more often than acquired; ignoring (a bug in the caller)")
		return
	}
	a.users--
	if a.users > 0 {
		return
	}
	a.offGen++
	gen := a.offGen
	if a.offDelay <= 0 {
		a.switchOffLocked()
		return
	}
	a.offTimer = a.clock.AfterFunc(a.offDelay, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.offGen != gen || a.users > 0 {
			return
		}
		a.offTimer = nil
		a.switchOffLocked()
	})
}

// ReleaseNow ends one hold like Release but, when it was the last, switches off at once
// instead of after the off-delay: a technician's test ends with the relay off, as it says.
func (a *Amplifier) ReleaseNow() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users == 0 {
		a.log.Warn("amplifier released more often than acquired; ignoring (a bug in the caller)")
		return
	}
	a.users--
	if a.users > 0 {
		return
	}
	a.offGen++ // cancels a pending off-delay timer
	if a.offTimer != nil {
		a.offTimer.Stop()
		a.offTimer = nil
	}
	a.switchOffLocked()
}

func (a *Amplifier) switchOffLocked() {
	a.want = false
	a.warm = nil // the next Acquire starts a new warm-up
	a.kick()
}

// kick asks Run to write the relay; it never blocks.
func (a *Amplifier) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// State reports what the amplifier is doing and whether the relay is healthy.
func (a *Amplifier) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := State{Phase: a.phaseLocked(), Relay: "unknown", Users: a.users, Failures: a.failures}
	if a.relayKnown {
		s.Relay = "off"
		if a.relayOn {
			s.Relay = "on"
		}
	}
	if a.lastErr != nil {
		s.Error = a.lastErr.Error()
		s.ErrorSince = a.errSince
	}
	if !a.writeSince.IsZero() {
		if d := a.clock.Now().Sub(a.writeSince); d >= stallAfter {
			s.Error = fmt.Sprintf("relay write has not returned for %v (USB serial adapter hung? replug it)", d.Round(time.Second))
			s.ErrorSince = a.writeSince
		}
	}
	return s
}

func (a *Amplifier) phaseLocked() Phase {
	if !a.want {
		if a.relayKnown && a.relayOn {
			return PhaseSwitchingOff
		}
		return PhaseOff
	}
	select {
	case <-a.warm:
	default:
		return PhaseWarmingUp
	}
	if a.users == 0 {
		return PhaseOffPending
	}
	return PhaseOn
}

// Run writes the relay whenever the wanted state changes, retries failed writes with backoff,
// and re-asserts the wanted state every Refresh (which notices an unplugged relay while idle
// and puts a replugged board, which powers up off, back into the right state). When ctx ends
// it switches the relay off, closes it and returns nil. The first write, at start, asserts the
// wanted state (off unless a play has already acquired the amplifier).
func (a *Amplifier) Run(ctx context.Context) error {
	var refreshTimer Timer
	arm := func() {}
	if a.refresh > 0 {
		arm = func() {
			refreshTimer = a.clock.AfterFunc(a.refresh, func() {
				a.mu.Lock()
				failing := a.failures > 0 // the retry timer is in charge then
				a.mu.Unlock()
				if !failing {
					a.kick()
				}
			})
		}
	}
	a.mu.Lock()
	arm()
	a.mu.Unlock()
	// The relay's state is unknown at start (the agent may have crashed with it on): assert it.
	a.kick()
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			if refreshTimer != nil {
				refreshTimer.Stop()
			}
			if a.retryTimer != nil {
				a.retryTimer.Stop()
			}
			a.mu.Unlock()
			if err := a.relay.Set(false); err != nil {
				a.log.Warn("amplifier relay: could not switch off at shutdown", "err", err)
			}
			if err := a.relay.Close(); err != nil {
				a.log.Warn("amplifier relay: close", "err", err)
			}
			return nil
		case <-a.wake:
		}
		a.mu.Lock()
		if refreshTimer != nil {
			refreshTimer.Stop()
		}
		arm()
		a.mu.Unlock()
		a.apply()
	}
}

// apply writes the wanted state once and records the outcome.
func (a *Amplifier) apply() {
	a.mu.Lock()
	want := a.want
	if a.retryTimer != nil {
		a.retryTimer.Stop()
		a.retryTimer = nil
	}
	a.writeSince = a.clock.Now()
	a.mu.Unlock()

	err := a.relay.Set(want)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.writeSince = time.Time{}
	word := map[bool]string{true: "on", false: "off"}[want]
	if err != nil {
		a.failures++
		a.relayKnown = false
		if a.lastErr == nil {
			a.errSince = a.clock.Now()
			a.log.Error("amplifier relay failed; playback continues but the loudspeakers may be silent"+
				" (check the relay's USB cable/port or GPIO wiring); retrying in the background",
				"want", word, "err", err)
		} else if a.failures%10 == 0 {
			// A reminder in the log for whoever reads it later, without a line per retry.
			a.log.Warn("amplifier relay still failing", "want", word, "failures", a.failures,
				"since", a.errSince, "err", err)
		} else {
			a.log.Debug("amplifier relay still failing", "want", word, "failures", a.failures, "err", err)
		}
		a.lastErr = err
		backoff := retryMin
		for i := 1; i < a.failures && backoff < a.retryMax; i++ {
			backoff *= 2
		}
		backoff = min(backoff, a.retryMax)
		a.retryTimer = a.clock.AfterFunc(backoff, a.kick)
	} else {
		if a.lastErr != nil {
			a.log.Info("amplifier relay works again", "state", word, "failures", a.failures,
				"down_for", a.clock.Now().Sub(a.errSince).Round(time.Second))
		}
		a.lastErr, a.failures, a.errSince = nil, 0, time.Time{}
		a.relayKnown, a.relayOn = true, want
	}
	if want != a.want {
		a.kick()
	}
}

// NoRelay is the relay of an amplifier that is always on (driver "none").
type NoRelay struct{}

// Set implements Relay.
func (NoRelay) Set(bool) error { return nil }

// Close implements Relay.
func (NoRelay) Close() error { return nil }
