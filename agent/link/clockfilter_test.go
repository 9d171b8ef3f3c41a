package link

import (
	"testing"
	"time"
)

// The filter keeps the sample of the shortest round trip among the last eight, forgets
// samples older than its age limit, and starts again at a clock step.
func TestClockFilter(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	t0 := time.Unix(1_000_000, 0)
	var f clockFilter
	f.add(clockSample{offset: ms(1000), rtt: ms(80), at: t0})
	if b := f.add(clockSample{offset: ms(1150), rtt: ms(400), at: t0.Add(time.Minute)}); b.offset != ms(1000) {
		t.Errorf("a slow round trip replaced a fast one: kept %v", b)
	}
	if b := f.add(clockSample{offset: ms(1010), rtt: ms(40), at: t0.Add(2 * time.Minute)}); b.offset != ms(1010) {
		t.Errorf("the fastest round trip is not kept: %v", b)
	}
	// Eight more, slower: the fast one falls out of the window of eight.
	for i := range 8 {
		f.add(clockSample{offset: ms(1020 + i), rtt: ms(100 + i), at: t0.Add(time.Duration(3+i) * time.Minute)})
	}
	if b := f.best(); b.offset != ms(1020) || len(f.samples) != clockWindow {
		t.Errorf("after eight more: kept %v of %d samples, want offset 1.02s of %d", b, len(f.samples), clockWindow)
	}
	// Old samples age out.
	if b := f.add(clockSample{offset: ms(1030), rtt: ms(200), at: t0.Add(3*time.Minute + clockMaxAge + time.Second)}); len(f.samples) > clockWindow || b.rtt == ms(100) {
		t.Errorf("a sample older than %s is still kept: %v", clockMaxAge, b)
	}
	// A step of the clock: the window starts again from the new sample.
	if b := f.add(clockSample{offset: ms(4000), rtt: ms(300), at: t0.Add(20 * time.Minute)}); b.offset != ms(4000) || len(f.samples) != 1 {
		t.Errorf("a 3 s step is not followed: kept %v of %d samples", b, len(f.samples))
	}
}
