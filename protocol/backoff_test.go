package protocol

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := DefaultBackoff()
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for n, w := range want {
		if c := b.Ceiling(n); c != w*time.Second {
			t.Errorf("ceiling(%d) = %v, want %v", n, c, w*time.Second)
		}
	}
	if c := b.Ceiling(1 << 30); c != time.Minute {
		t.Errorf("ceiling of a huge attempt = %v", c)
	}
	if c := (Backoff{}).Ceiling(3); c != 8*time.Second {
		t.Errorf("zero Backoff uses defaults: %v", c)
	}
	if c := (Backoff{Base: time.Minute, Max: time.Second}).Ceiling(0); c != time.Minute {
		t.Errorf("Max below Base: %v", c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for n := -1; n < 40; n++ {
		for range 200 {
			d := b.Delay(n, r)
			if d < 0 || d > b.Ceiling(max(n, 0)) {
				t.Fatalf("delay(%d) = %v outside [0, %v]", n, d, b.Ceiling(n))
			}
		}
	}
	// Pure: the same source state gives the same delays.
	x, y := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for n := range 10 {
		if b.Delay(n, x) != b.Delay(n, y) {
			t.Fatal("Delay is not a function of attempt and random source")
		}
	}
	for range 100 {
		d := RetryAfter(30*time.Second, r)
		if d < 30*time.Second || d > time.Minute {
			t.Fatalf("RetryAfter(30s) = %v", d)
		}
	}
	if RetryAfter(0, r) != 0 {
		t.Error("RetryAfter(0) waits")
	}
}

func TestBackoffSpread(t *testing.T) {
	// Delays at the cap are spread evenly over [0, Max]: ten buckets each near a tenth.
	b := DefaultBackoff()
	r := rand.New(rand.NewPCG(3, 4))
	const n = 100_000
	var buckets [10]int
	for range n {
		buckets[int(b.Delay(20, r)*10/(b.Max+1))]++
	}
	for i, c := range buckets {
		if c < n/10*9/10 || c > n/10*11/10 {
			t.Errorf("bucket %d holds %d of %d: not uniform (%v)", i, c, n, buckets)
		}
	}
}

// reconnectPeak simulates devices that all lost the hub at time 0, retrying with delay(n) until
// the hub is back at `back`; it returns the most connection attempts the hub sees in any one
// second after it is back, and when the last device got in.
func reconnectPeak(devices int, back time.Duration, delay func(attempt int) time.Duration) (peak int, last time.Duration) {
	perSecond := map[int64]int{}
	for range devices {
		at, n := time.Duration(0), 0
		for {
			at += delay(n)
			n++
			if at >= back {
				break
			}
		}
		perSecond[int64(at/time.Second)]++
		last = max(last, at)
	}
	for _, c := range perSecond {
		peak = max(peak, c)
	}
	return peak, last - back
}

// TestNoStampede: 10,000 devices after a 10-minute hub outage arrive spread over about the cap,
// not at once; the same simulation without jitter shows the stampede it prevents.
func TestNoStampede(t *testing.T) {
	b := DefaultBackoff()
	r := rand.New(rand.NewPCG(5, 6))
	const devices = 10_000
	peak, last := reconnectPeak(devices, 10*time.Minute, func(n int) time.Duration { return b.Delay(n, r) })
	// Uniform arrivals over the cap would give devices/60 ≈ 167 a second; allow 3×.
	if limit := 3 * devices / int(b.Max/time.Second); peak > limit {
		t.Errorf("peak %d connection attempts in one second, limit %d", peak, limit)
	}
	if last > b.Max {
		t.Errorf("last device back %v after the hub, more than the cap %v", last, b.Max)
	}
	t.Logf("full jitter: peak %d/s, all back within %v", peak, last.Round(time.Second))

	noJitter, _ := reconnectPeak(devices, 10*time.Minute, func(n int) time.Duration { return b.Ceiling(n) })
	if noJitter != devices {
		t.Errorf("without jitter the peak should be every device at once, got %d", noJitter)
	}
	// A short outage (a hub restart, 5 s): with the default 1 s base they return within a few
	// seconds; with the base a hub of 10,000 devices sets in its welcome (20 s) they spread.
	peak, _ = reconnectPeak(devices, 5*time.Second, func(n int) time.Duration { return b.Delay(n, r) })
	if peak > devices/2 {
		t.Errorf("after a 5 s outage %d of %d devices retry in the same second", peak, devices)
	}
	hinted := Backoff{Base: 20 * time.Second, Max: 2 * time.Minute}
	peakHinted, last := reconnectPeak(devices, 5*time.Second, func(n int) time.Duration { return hinted.Delay(n, r) })
	if limit := 3 * devices / 20; peakHinted > limit {
		t.Errorf("5 s outage with a 20 s base: peak %d/s, limit %d", peakHinted, limit)
	}
	t.Logf("5 s outage: peak %d/s with a 1 s base, %d/s with a 20 s base (all back within %v)", peak, peakHinted, last.Round(time.Second))
}
