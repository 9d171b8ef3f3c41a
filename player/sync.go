package player

import (
	"math"
	"time"

	"github.com/loa-project/loa/player/mpg123"
)

// Keeping a program in step with the wall clock (issue 19, docs/sync.md): a program with an
// At is heard from At on, the frame at At+t heard at At+t. The start is placed by writing
// silence first (or skipping what is already late); the card's crystal, which runs up to
// ±100 ppm off the system clock, is followed by resampling the program very slightly.

// delayer is an output that knows how long a frame it has consumed takes to be heard: the
// device's own buffer after Consumed (ALSA's buffer, the card).
type delayer interface {
	Delay() time.Duration
}

// Servo time constants. The offset is filtered over filterTau, then corrected proportionally
// over propTau and integrally (the integral learns the card's rate) over integTau = 4·propTau²
// (critically damped). The heard position is known only in steps of the device's period:
// each measure is a millisecond or two off, which these fast gains turn into trim swings of a
// few hundred ppm (inaudible: 500 ppm is a thousandth of a semitone) around the card's rate.
// Slower gains were tried: they need the card's rate fed forward from the fitted line, which
// a loaded machine (the output's thread lagging) makes wrong by thousands of ppm.
const (
	filterTau = 1.0 // s
	propTau   = 2.0 // s
	integTau  = 4 * propTau * propTau
	// window: one measurement is the most advanced look of each window.
	window = time.Second
	// maxPreroll bounds the silence written before a start that cannot be placed.
	maxPreroll = 10 * time.Second
	// measureFor is how long the start is measured before it is placed.
	measureFor = 300 * time.Millisecond
	// startWindows and startBound: in its first windows an output more than startBound off
	// the clock, two windows running, is put back (a start placed a device period off).
	startWindows = 4
	startBound   = 0.020 // s
	// trimScale is the resampler's nominal rate as a multiple of the output rate, so that a
	// ratio is set to a fiftieth of a ppm.
	trimScale = 1000
)

// keeper holds one playback in step.
type keeper struct {
	rate    int
	at      time.Time // when content frame 0 is to be heard
	delay   int64     // frames between Consumed and heard
	correct bool
	maxPPM  float64
	// jump: an output further off the clock than this many frames is put back at once, the
	// late dropping what it cannot play on time, the early waiting in silence, and the servo
	// starts again (a stamped relay: its card ran dry, its start was placed a period off); 0:
	// never.
	jump  int64
	hold  int64   // frames of silence to write before the next (it was early)
	jumps int     // times the output was put back
	far   float64 // the last window's offset when it was beyond jump, else 0

	next int64 // content frame the next write begins with
	drop int64 // frames of the start still to drop (it was late)

	looking   bool // measuring where the output is, to place the start
	consumed0 int64
	looks     int
	lookMax   float64
	lookFrom  time.Time

	marks   []mark // output frame ↔ content frame at write boundaries, oldest first
	trim    *mpg123.Resampler
	trimmed []float32
	trimOut int     // the trim's output rate now (its input rate is rate·trimScale)
	ppm     float64 // the trim applied: output frames per content frame − 1, in ppm
	integ   float64 // its integral part: the card's rate as the servo has learnt it

	errF    float64 // filtered error in frames: heard − scheduled content (positive: early)
	have    bool
	lastT   time.Time
	off     bool // the program left the clock (paused, a stream): nothing more is kept
	rateFit fit  // consumed frames against time: the card's measured rate

	windows       int  // windows measured
	win           bool // a window of looks is open
	winFrom, winT time.Time
	winE, winO    float64
	winOT         time.Time
}

type mark struct{ out, content int64 }

// fit is a running least-squares line of y against x.
type fit struct {
	n                float64
	x0, y0           float64
	sx, sy, sxx, sxy float64
	firstSet         bool
}

func (f *fit) add(x, y float64) {
	if !f.firstSet {
		f.x0, f.y0, f.firstSet = x, y, true
	}
	x, y = x-f.x0, y-f.y0
	f.n++
	f.sx += x
	f.sy += y
	f.sxx += x * x
	f.sxy += x * y
}

// slope is 0 until the points span something.
func (f *fit) slope() float64 {
	d := f.n*f.sxx - f.sx*f.sx
	if f.n < 3 || d <= 0 {
		return 0
	}
	return (f.n*f.sxy - f.sx*f.sy) / d
}

func newKeeper(rate int, at time.Time, delay time.Duration, correct bool, maxPPM float64) *keeper {
	return &keeper{rate: rate, at: at, delay: int64(delay.Seconds() * float64(rate)), correct: correct, maxPPM: maxPPM}
}

// lateFrames is how much of the program's start is already too late to be heard on time
// if writing began now on an idle output: that many frames are skipped.
func (k *keeper) lateFrames(now time.Time) int64 {
	late := now.Sub(k.at).Seconds()*float64(k.rate) + float64(k.delay)
	return max(0, int64(late))
}

// lead looks at the output (consumed frames at now, the next frame written is out) and, once
// it has looked for measureFor while the output was consuming, says how many frames of silence
// to write before the program's first frame (k.next) so that it is heard at its time; negative:
// how many of its frames are already late.
func (k *keeper) lead(now time.Time, consumed, out int64) (int64, bool) {
	if !k.looking {
		k.looking, k.consumed0 = true, consumed
	}
	if consumed-k.consumed0 < int64(k.rate)/20 {
		return 0, false // not consuming steadily yet (an idle output takes a period to start)
	}
	if k.looks == 0 {
		k.lookFrom = now
	}
	// The consumed count against the clock: a line of slope rate, whose offset is the most
	// advanced look's (see measure).
	o := float64(consumed) - now.Sub(k.at).Seconds()*float64(k.rate)
	if k.looks == 0 || o > k.lookMax {
		k.lookMax = o
	}
	k.looks++
	if now.Sub(k.lookFrom) < measureFor {
		return 0, false
	}
	heardAtAt := k.lookMax - float64(k.delay) // output frame heard at At
	return int64(math.Round(heardAtAt)) + k.next - out, true
}

// start records that the program's frame k.next follows lead frames of silence written from
// output frame out.
func (k *keeper) start(out, lead int64) {
	k.marks = append(k.marks[:0], mark{out: out, content: k.next - lead})
}

// dropped records that d late frames were thrown away rather than written.
func (k *keeper) dropped(d int64) {
	k.next += d
	k.drop -= d
	if len(k.marks) == 1 { // at the start
		k.marks[0].content = k.next
		return
	}
	k.marks = append(k.marks, mark{out: k.marks[len(k.marks)-1].out, content: k.next})
}

// held records that silence was written up to output frame out before the next frame.
func (k *keeper) held(out int64) {
	k.hold = 0
	k.marks = append(k.marks, mark{out: out, content: k.next})
}

// wrote records that content frames up to k.next+contentN went out as output frames up to out.
func (k *keeper) wrote(contentN int, out int64) {
	k.next += int64(contentN)
	k.marks = append(k.marks, mark{out: out, content: k.next})
}

// heard is the content frame the output is playing now, from where it has consumed to.
func (k *keeper) heard(consumed int64) (float64, bool) {
	h := consumed - k.delay
	for len(k.marks) > 2 && k.marks[1].out <= h {
		k.marks = k.marks[1:]
	}
	if len(k.marks) < 2 {
		return 0, false
	}
	a, b := k.marks[0], k.marks[1]
	if h < a.out || h > b.out { // not yet heard, or the output ran past what was written
		return 0, false
	}
	if b.out == a.out {
		return float64(b.content), true
	}
	return float64(a.content) + float64(h-a.out)*float64(b.content-a.content)/float64(b.out-a.out), true
}

// measure compares where the output is with where the clock says it should be, and sets the
// trim for what comes next.
func (k *keeper) measure(now time.Time, consumed int64) {
	if k.off {
		return
	}
	c, ok := k.heard(consumed)
	if !ok {
		return
	}
	e := c - now.Sub(k.at).Seconds()*float64(k.rate)
	// A look can only be late: the CPU busy elsewhere, or the output's own thread late to take
	// frames, make the output seem behind, never ahead. So each window gives its most
	// advanced look.
	if !k.win || e > k.winE {
		k.winE, k.winT = e, now
	}
	// The card's rate likewise: the most advanced look at the consumed count alone.
	if o := float64(consumed) - now.Sub(k.at).Seconds()*float64(k.rate); !k.win || o > k.winO {
		k.winO, k.winOT = o, now
	}
	if !k.win {
		k.win, k.winFrom = true, now
	}
	if now.Sub(k.winFrom) < window {
		return
	}
	k.win = false
	k.windows++
	e, now = k.winE, k.winT
	x := k.winOT.Sub(k.at).Seconds()
	k.rateFit.add(x, k.winO+x*float64(k.rate))
	if k.jump > 0 && k.drop == 0 && k.hold == 0 {
		// Too far off to close by resampling (the output ran dry, the machine stalled), two
		// windows running (one look can be a device period out): drop what cannot be heard on
		// time, or wait, by the lesser of the two, and measure afresh from there. A window
		// that far off is not the card's rate: it is kept out of the servo, whose integral
		// (the card's rate as learnt) would otherwise wind up to its bound on one window and
		// take minutes to come back, and out of the rate's fit.
		far := k.far
		k.far = 0
		bound := float64(k.jump)
		if k.windows <= startWindows {
			// The start's placement is one set of looks; the first windows are many more. A
			// start they find half a device period off is put back now, not by the servo
			// over minutes (at most 500 ppm: 50 ms in 100 s) or never (correct_rate off).
			bound = min(bound, startBound*float64(k.rate))
		}
		if math.Abs(e) > bound {
			k.far = e
			if far*e > 0 {
				off := math.Min(math.Abs(far), math.Abs(e))
				if e < 0 {
					k.drop = int64(off)
				} else {
					k.hold = int64(off)
				}
				k.have, k.far = false, 0
				k.rateFit = fit{}
				k.jumps++
			}
			return
		}
	}
	if !k.have {
		k.errF, k.have, k.lastT = e, true, now
		return
	}
	dt := now.Sub(k.lastT).Seconds()
	if dt <= 0 {
		return
	}
	k.lastT = now
	k.errF += min(1, dt/filterTau) * (e - k.errF)
	if !k.correct {
		return
	}
	early := k.errF / float64(k.rate) // seconds
	k.integ = clampPPM(k.integ+early/integTau*dt*1e6, k.maxPPM)
	k.ppm = clampPPM(k.integ+early/propTau*1e6, k.maxPPM)
}

func clampPPM(v, bound float64) float64 { return math.Max(-bound, math.Min(bound, v)) }

// errorS is the filtered offset in seconds, positive when the program is heard late.
func (k *keeper) errorS() (float64, bool) {
	return -k.errF / float64(k.rate), k.have
}

// ratePPM is the card's measured consumption rate against the system clock, in ppm off the
// nominal rate.
func (k *keeper) ratePPM() float64 {
	s := k.rateFit.slope()
	if s == 0 {
		return 0
	}
	return (s/float64(k.rate) - 1) * 1e6
}

// process returns chunk resampled by the current trim (chunk itself when not correcting).
func (k *keeper) process(chunk []float32) ([]float32, error) {
	if !k.correct || k.off {
		return chunk, nil
	}
	in := k.rate * trimScale
	out := int(math.Round(float64(in) * (1 + k.ppm/1e6)))
	if k.trim == nil {
		t, err := mpg123.NewTrim(in, out, 2)
		if err != nil {
			return nil, err
		}
		k.trim, k.trimOut = t, out
	} else if out != k.trimOut {
		if err := k.trim.Retune(in, out); err != nil {
			return nil, err
		}
		k.trimOut = out
	}
	k.trimmed = k.trim.Process(k.trimmed[:0], chunk)
	return k.trimmed, nil
}

// stop lets the program leave the clock (a pause, a live stream): later frames go out as
// they come, untrimmed.
func (k *keeper) stop() { k.off = true }

func (k *keeper) close() {
	if k.trim != nil {
		k.trim.Close()
		k.trim = nil
	}
}
