package player

import (
	"fmt"
	"math"
	"time"
)

// DeadAir is what counts as dead air: what the source gives stays below LevelDBFS for After
// (0: not watched). Measured on the source's samples before gain, so that a programme turned
// down by staff is not dead air, and in 10 ms blocks like the proof's silence.
type DeadAir struct {
	After     time.Duration
	LevelDBFS float64 // default -50
}

// deadAirWatch follows the silent run of an item's source samples.
type deadAirWatch struct {
	block     int     // frames per block
	threshold float64 // RMS (linear) under which a block is silent
	after     int64   // frames of silent run that make dead air (0: off)
	run       int64   // frames of the current silent run
	sumSq     float64
	frames    int
	loud      bool // a block above the level closed since the last look
}

func newDeadAirWatch(d DeadAir, rate int) *deadAirWatch {
	level := d.LevelDBFS
	if level == 0 {
		level = silenceDBFS
	}
	return &deadAirWatch{block: max(1, rate/100), threshold: math.Pow(10, level/20),
		after: int64(d.After.Seconds() * float64(rate))}
}

// add takes interleaved stereo samples as the source gave them.
func (w *deadAirWatch) add(s []float32) {
	if w.after == 0 {
		return
	}
	for i := 0; i+1 < len(s); i += 2 {
		l, r := float64(s[i]), float64(s[i+1])
		w.sumSq += (l*l + r*r) / 2
		w.frames++
		if w.frames == w.block {
			if math.Sqrt(w.sumSq/float64(w.frames)) < w.threshold {
				w.run += int64(w.frames)
			} else {
				w.run, w.loud = 0, true
			}
			w.sumSq, w.frames = 0, 0
		}
	}
}

// dead says whether the silent run has lasted long enough to be dead air.
func (w *deadAirWatch) dead() bool { return w.after > 0 && w.run >= w.after }

// sounded says whether sound came since it was last asked.
func (w *deadAirWatch) sounded() bool {
	l := w.loud
	w.loud = false
	return l
}

// reset starts a new item: a run does not carry from one item into the next.
func (w *deadAirWatch) reset() { w.run, w.sumSq, w.frames, w.loud = 0, 0, 0, false }

func (w *deadAirWatch) err(d DeadAir, rate int) error {
	level := d.LevelDBFS
	if level == 0 {
		level = silenceDBFS
	}
	return fmt.Errorf("dead air: no sound above %g dBFS for %s; the programme goes on with its next item", level,
		(time.Duration(w.run) * time.Second / time.Duration(rate)).Round(100*time.Millisecond))
}
