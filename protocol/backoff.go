package protocol

import "time"

// Backoff is the agent's reconnect policy: capped exponential backoff with full jitter. The
// delay before attempt n (0 for the first retry) is uniform in [0, min(Max, Base·2^n)].
//
// Full jitter, rather than a fixed exponential series, is what keeps 10,000 agents that lost
// the hub at the same moment from coming back at the same moment: their retries spread
// uniformly over the window instead of arriving in synchronised waves. Reset n to 0 once a
// connection has lasted longer than Max.
type Backoff struct {
	Base time.Duration // ceiling of the first delay; default 1s
	Max  time.Duration // cap of the ceiling; default 60s
}

// DefaultBackoff: a first retry within a second, and after a long outage 10,000 agents
// arriving over a minute (about 330 a second).
func DefaultBackoff() Backoff { return Backoff{Base: time.Second, Max: time.Minute} }

// Rand is the random source Delay draws from; *math/rand/v2.Rand satisfies it.
type Rand interface {
	Int64N(n int64) int64
}

// Ceiling is the upper bound of the delay before attempt n.
func (b Backoff) Ceiling(attempt int) time.Duration {
	d := DefaultBackoff()
	if b.Base <= 0 {
		b.Base = d.Base
	}
	if b.Max <= 0 {
		b.Max = d.Max
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	c := b.Base
	for i := 0; i < attempt && c < b.Max; i++ {
		c *= 2 // c < Max before doubling, so this cannot overflow for any sane Max
	}
	return min(c, b.Max)
}

// Delay is the time to wait before attempt n: a pure function of n and r.
func (b Backoff) Delay(attempt int, r Rand) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	return time.Duration(r.Int64N(int64(b.Ceiling(attempt)) + 1))
}

// RetryAfter is the wait when the hub asked for one (ErrorMessage.RetryAfterS): the hint
// plus a jitter of up to the hint again, so a shed crowd does not return as one.
func RetryAfter(hint time.Duration, r Rand) time.Duration {
	if hint <= 0 {
		return 0
	}
	return hint + time.Duration(r.Int64N(int64(hint)+1))
}
