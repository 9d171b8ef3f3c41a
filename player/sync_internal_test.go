package player

import (
	"math"
	"sort"
	"testing"
	"time"
)

// simulateCard runs a keeper against a simulated card for seconds of programme: the card
// consumes rate·(1+skew) frames a second of the clock, taken a period (2,400 frames) at a time
// as oto takes them, and the writer stays a queue ahead of it. The resampling is the real one
// (libsyn123). It returns how far the content really heard at the end is from where the clock
// says it should be (positive: early), from the card's continuous position rather than the
// steps the keeper sees, and the keeper.
func simulateCard(t *testing.T, skewPPM float64, correct bool, seconds float64) (time.Duration, *keeper) {
	return simulateDryCard(t, skewPPM, correct, seconds, 0, 0, 0)
}

// simulateDryCard is simulateCard with the output running dry once, for dryFor, after dryAt
// seconds of programme (the machine stalled: from then on the card plays everything dryFor
// later), on a keeper that puts the output back when it is more than jump frames off (0:
// never), as the engine does: dropping what is late, waiting in silence when early.
func simulateDryCard(t *testing.T, skewPPM float64, correct bool, seconds, dryAt float64, dryFor time.Duration, jump int64) (time.Duration, *keeper) {
	const rate, period, queue, delay = 48000, 2400, 12000, 6000
	card := rate * (1 + skewPPM/1e6)
	t0 := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	k := newKeeper(rate, t0.Add(delay*time.Second/rate), delay*time.Second/rate, correct, 500)
	k.jump = jump
	defer k.close()
	k.start(0, 0)
	type point struct{ out, content float64 }
	truth := []point{{0, 0}}
	chunk := make([]float32, 2*chunkFrames)
	var written, content int64
	var now time.Time
	var dry time.Duration // the card's clock stopped this long so far
	for content < int64(seconds*rate) {
		if dryFor > 0 && dry == 0 && float64(content) >= dryAt*rate {
			dry = dryFor
		}
		if k.drop > 0 { // late: the engine drops what cannot be heard on time
			d := min(k.drop, chunkFrames)
			k.dropped(d)
			content += d
			continue
		}
		if k.hold > 0 { // early: it waits in silence
			written += k.hold
			k.held(written)
		}
		out, err := k.process(chunk)
		if err != nil {
			t.Fatal(err)
		}
		written += int64(len(out) / 2)
		content += chunkFrames
		k.wrote(chunkFrames, written)
		truth = append(truth, point{float64(written), float64(content)})
		// The writer waits for room: the card has taken all but a queue of what was written.
		now = t0.Add(time.Duration(float64(written-queue)/card*float64(time.Second)) + dry)
		consumed := int64(float64(written-queue)/period) * period
		k.measure(now, max(0, consumed))
	}
	// Where the card really is: continuously, less its delay, traced back to the content.
	h := card*(now.Sub(t0)-dry).Seconds() - delay
	i := sort.Search(len(truth), func(i int) bool { return truth[i].out > h })
	a, b := truth[i-1], truth[i]
	heard := a.content + (h-a.out)*(b.content-a.content)/(b.out-a.out)
	due := now.Sub(k.at).Seconds() * rate
	return time.Duration((heard - due) / rate * float64(time.Second)), k
}

// A card 300 ppm fast, over ten minutes: corrected, the programme is heard on the clock to a
// millisecond or two and the keeper has learnt the card's rate; uncorrected, it runs
// ahead by what the skew makes (180 ms). No real time: the card is simulated, so this checks
// the servo itself whatever the machine's load.
func TestKeeperFollowsAFastCard(t *testing.T) {
	const skew, seconds = 300.0, 600.0
	off, k := simulateCard(t, skew, true, seconds)
	t.Logf("corrected: %.3f ms off at the end, trim %+.1f ppm (learnt %+.1f), card measured %+.1f ppm", ms(off), k.ppm, k.integ, k.ratePPM())
	// The keeper sees the card in steps of its period: a millisecond or so of its estimate is
	// that, the same on every card alike.
	if off.Abs() > 2*time.Millisecond {
		t.Errorf("corrected, the programme ends %.2f ms off the clock; want within 2 ms", ms(off))
	}
	// The trim swings about the card's rate with the looks' noise; its integral part has
	// learnt the rate.
	if math.Abs(k.integ-skew) > 150 {
		t.Errorf("the servo learnt the card's rate as %+.1f ppm; it runs %+.0f", k.integ, skew)
	}
	if r := k.ratePPM(); math.Abs(r-skew) > 20 {
		t.Errorf("the card's rate is measured %+.1f ppm; it runs %+.0f", r, skew)
	}
	drift, k := simulateCard(t, skew, false, seconds)
	want := time.Duration(skew / 1e6 * seconds * float64(time.Second))
	t.Logf("uncorrected: %.1f ms ahead (skew makes %.1f ms), card measured %+.1f ppm", ms(drift), ms(want), k.ratePPM())
	if (drift - want).Abs() > 5*time.Millisecond {
		t.Errorf("uncorrected, the programme ends %.1f ms ahead; the skew makes %.1f ms", ms(drift), ms(want))
	}
	if k.ppm != 0 {
		t.Errorf("uncorrected, the trim moved to %+.1f ppm", k.ppm)
	}
}

// The correction never passes its bound, whatever the card does.
func TestKeeperCorrectionIsBounded(t *testing.T) {
	_, k := simulateCard(t, 2000, true, 60)
	if k.ppm != 500 {
		t.Errorf("a card 2,000 ppm fast drove the trim to %+.1f ppm; want it held at the bound, 500", k.ppm)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The output runs dry for 300 ms a minute into a five-minute programme (the machine stalled):
// everything after it would be heard 300 ms late, and resampling at its bound closes that in
// ten minutes. Held to the clock, the keeper drops what is late instead (a cut in the sound)
// and is back on the clock to a few milliseconds by the end (the goal between two clusters is
// 5 ms); a card 300 ppm fast too. Without putting back (jump 0) it ends far off.
func TestKeeperPutsBackAfterTheCardRanDry(t *testing.T) {
	const jump = 4800 // 100 ms, as jumpFrames gives for the default 100 ms buffer
	for _, skew := range []float64{0, 300} {
		off, k := simulateDryCard(t, skew, true, 300, 60, 300*time.Millisecond, jump)
		t.Logf("card %+.0f ppm, dry 300 ms: %.3f ms off at the end, put back %d times, trim %+.1f ppm (learnt %+.1f), card measured %+.1f ppm",
			skew, ms(off), k.jumps, k.ppm, k.integ, k.ratePPM())
		if off.Abs() > 3*time.Millisecond {
			t.Errorf("card %+.0f ppm: after running dry the programme ends %.2f ms off the clock; want within 3 ms", skew, ms(off))
		}
		if k.jumps != 1 {
			t.Errorf("card %+.0f ppm: put back %d times; want once", skew, k.jumps)
		}
	}
	if off, _ := simulateDryCard(t, 0, true, 300, 60, 300*time.Millisecond, 0); off.Abs() < 50*time.Millisecond {
		t.Errorf("never put back, the programme still ended only %.1f ms off: the dry spell did not show", ms(off))
	}
}

// A start placed a device period (50 ms) late: the first windows see it, and the keeper puts
// it back within seconds instead of leaving the servo to close it at 500 ppm over 100 s (or
// never, uncorrected). Later, an offset that small is the servo's (the put-back bound is two
// periods).
func TestKeeperPutsBackAStartPlacedAPeriodOff(t *testing.T) {
	const jump = 4800
	for _, correct := range []bool{true, false} {
		off, k := simulateDryCard(t, 0, correct, 20, 0, 50*time.Millisecond, jump)
		t.Logf("correct %v: %.3f ms off after 20 s, put back %d times", correct, ms(off), k.jumps)
		if off.Abs() > 3*time.Millisecond || k.jumps != 1 {
			t.Errorf("correct %v: a start placed 50 ms late is %.2f ms off after 20 s, put back %d times; want within 3 ms, once", correct, ms(off), k.jumps)
		}
	}
	// The same 50 ms behind, a minute into the programme: left to the servo.
	_, k := simulateDryCard(t, 0, true, 90, 60, 50*time.Millisecond, jump)
	if k.jumps != 0 {
		t.Errorf("50 ms off a minute in was put back %d times; want it left to the servo", k.jumps)
	}
}
