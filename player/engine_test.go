package player_test

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/player"
)

// twoTones writes A (1 kHz, 1 s, a whole number of periods) and B (1.5 kHz, 0.5 s) starting
// at the phase A ends on, as 48 kHz float WAV files: played back to back they join smoothly.
func twoTones(t *testing.T, dir string) (a, b string, sa, sb []float32) {
	sa = tone(1000, 0.4, 0.3, rate)
	sb = tone(1500, 0.4, 0.3, rate/2)
	a, b = filepath.Join(dir, "a.wav"), filepath.Join(dir, "b.wav")
	writeWAV(t, a, sa, rate)
	writeWAV(t, b, sb, rate)
	return
}

func newPlayer(t *testing.T, o player.Output, clock player.Clock) *player.Player {
	t.Helper()
	p, err := player.New(player.Config{Output: o, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const rampFrames = rate / 50 // the default 20 ms ramp

// TestGaplessJoin plays two files as one program: the output is exactly A then B, with no
// sample inserted or lost at the join, faded in only at the start.
func TestGaplessJoin(t *testing.T) {
	a, b, sa, sb := twoTones(t, t.TempDir())
	o := &memOutput{}
	var starts []int
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{
		Items: []player.Item{{Path: a}, {Path: b}}, Gain: 1,
		OnItemStart: func(i int, _ time.Time, _ time.Duration) { starts = append(starts, i) },
	})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	got := o.get()
	want := append(append([]float32{}, sa...), sb...)
	if len(got) != len(want) {
		t.Fatalf("output has %d frames, A+B have %d", len(got)/2, len(want)/2)
	}
	for i := 2 * rampFrames; i < len(want); i++ {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("sample %d (frame %d) is %v, want %v", i, i/2, got[i], want[i])
		}
	}
	if z := longestZeroRun(got); z > 1 {
		t.Errorf("a run of %d zero frames in the output", z)
	}
	if res.Items[0].Frames != int64(len(sa)/2) || res.Items[1].Frames != int64(len(sb)/2) {
		t.Errorf("proof frames %d and %d, want %d and %d", res.Items[0].Frames, res.Items[1].Frames, len(sa)/2, len(sb)/2)
	}
	if len(starts) != 2 || res.Ended != player.EndCompleted {
		t.Errorf("starts %v, ended %s", starts, res.Ended)
	}
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("result does not serialise: %v", err)
	}
}

func longestZeroRun(s []float32) int {
	best, cur := 0, 0
	for i := 0; i+1 < len(s); i += 2 {
		if s[i] == 0 && s[i+1] == 0 {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}

// TestStopIsClickFree stops a tone in the middle: the output fades out within the ramp.
func TestStopIsClickFree(t *testing.T) {
	a, _, _, _ := twoTones(t, t.TempDir())
	o := &memOutput{delay: time.Millisecond}
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{Items: []player.Item{{Path: a}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	for o.Consumed() < rate/4 {
		time.Sleep(time.Millisecond)
	}
	res := pb.Stop()
	got := o.get()
	if res.Ended != player.EndStopped || res.Items[0].Ended != player.EndStopped {
		t.Fatalf("ended %s / %s, want stopped", res.Ended, res.Items[0].Ended)
	}
	if n := len(got) / 2; n >= rate {
		t.Fatalf("the whole tone played (%d frames) despite Stop", n)
	}
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
	if last := math.Abs(float64(got[len(got)-2])); last > 0.4/float64(rampFrames)+1e-6 {
		t.Errorf("last sample %.4f: not faded to zero", last)
	}
	if res.Items[0].Frames != int64(len(got)/2) || res.Position.Frame != int64(len(got)/2) {
		t.Errorf("proof %d frames, position %+v; the output has %d", res.Items[0].Frames, res.Position, len(got)/2)
	}
}

// TestPauseResumeLosesNothing pauses mid-item and resumes: every frame plays once, in order,
// with a fade out and in around the pause.
func TestPauseResumeLosesNothing(t *testing.T) {
	a, _, sa, _ := twoTones(t, t.TempDir())
	o := &memOutput{delay: time.Millisecond}
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{Items: []player.Item{{Path: a}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	for o.Consumed() < rate/4 {
		time.Sleep(time.Millisecond)
	}
	pos, err := pb.Pause()
	if err != nil {
		t.Fatal(err)
	}
	if !pb.Progress().Paused || pb.Progress().ItemFrames != pos.Frame {
		t.Errorf("progress %+v at pause position %+v", pb.Progress(), pos)
	}
	before := o.Consumed()
	time.Sleep(20 * time.Millisecond)
	if o.Consumed() != before {
		t.Errorf("output went on while paused")
	}
	if err := pb.Resume(); err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	got := o.get()
	if len(got) != len(sa) {
		t.Fatalf("output %d frames, the file %d: frames lost or repeated", len(got)/2, len(sa)/2)
	}
	p := int(pos.Frame)
	for f := 0; f < len(sa)/2; f++ {
		if f < rampFrames || (f > p-rampFrames-2 && f < p+rampFrames+2) {
			continue // fades
		}
		if math.Abs(float64(got[2*f]-sa[2*f])) > 1e-6 {
			t.Fatalf("frame %d is %v, want %v (pause at %d)", f, got[2*f], sa[2*f], p)
		}
	}
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
	if res.Ended != player.EndCompleted || res.Items[0].Frames != int64(len(sa)/2) {
		t.Errorf("result %+v", res)
	}
}

// TestResumeAtPosition starts a program at the position a stop returned.
func TestResumeAtPosition(t *testing.T) {
	a, b, _, sb := twoTones(t, t.TempDir())
	o := &memOutput{}
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{
		Items: []player.Item{{Path: a}, {Path: b}}, Gain: 1, Start: player.Position{Item: 1, Frame: rate / 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	got := o.get()
	want := sb[2*(rate/4):]
	if len(got) != len(want) {
		t.Fatalf("output %d frames, want the last %d of B", len(got)/2, len(want)/2)
	}
	for i := 2 * rampFrames; i < len(want); i++ {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("sample %d is %v, want %v", i, got[i], want[i])
		}
	}
	if res.Items[0].Ended != player.EndSkipped {
		t.Errorf("item 0 ended %q, want skipped", res.Items[0].Ended)
	}
}

// TestGainRamp changes the gain mid-item: no step, and the level follows.
func TestGainRamp(t *testing.T) {
	a, _, _, _ := twoTones(t, t.TempDir())
	o := &memOutput{delay: time.Millisecond}
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{Items: []player.Item{{Path: a}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	for o.Consumed() < rate/4 {
		time.Sleep(time.Millisecond)
	}
	if err := pb.SetGain(0.25); err != nil {
		t.Fatal(err)
	}
	if err := pb.SetGain(2); err == nil {
		t.Error("gain 2 accepted")
	}
	pb.Wait()
	got := o.get()
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
	tail := got[len(got)-2*4800:]
	peak := 0.0
	for _, v := range tail {
		peak = max(peak, math.Abs(float64(v)))
	}
	if math.Abs(peak-0.1) > 0.005 {
		t.Errorf("peak after SetGain(0.25) is %.4f, want 0.1", peak)
	}
}

// TestUntilCuts uses a clock driven by the audio written: the program must be cut at Until.
func TestUntilCuts(t *testing.T) {
	a, b, _, _ := twoTones(t, t.TempDir())
	clock := &frameClock{t0: time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)}
	o := &memOutput{clock: clock}
	until := clock.t0.Add(1200 * time.Millisecond)
	pb, err := newPlayer(t, o, clock).Play(context.Background(), player.Program{
		Items: []player.Item{{Path: a}, {Path: b}}, Gain: 1, Until: until,
	})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	got := o.get()
	n := len(got) / 2
	if n > rate*12/10+1024 || n < rate*12/10-rampFrames-1024 {
		t.Errorf("played %d frames, want about %d (Until)", n, rate*12/10)
	}
	if res.Ended != player.EndUntil || res.Items[1].Ended != player.EndUntil || res.Items[0].Ended != player.EndCompleted {
		t.Errorf("ended %s, items %s/%s", res.Ended, res.Items[0].Ended, res.Items[1].Ended)
	}
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
	if !res.Items[0].Start.Equal(clock.t0) {
		t.Errorf("item 0 started at %v, want %v", res.Items[0].Start, clock.t0)
	}
	if want := clock.t0.Add(time.Second); !res.Items[1].Start.Equal(want) {
		t.Errorf("item 1 started at %v, want %v (after A's one second)", res.Items[1].Start, want)
	}
}

// TestDurationCutsFile plays a file cut by its item duration, with a fade at the cut.
func TestDurationCutsFile(t *testing.T) {
	a, _, _, _ := twoTones(t, t.TempDir())
	o := &memOutput{}
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{Items: []player.Item{{Path: a, Duration: 300 * time.Millisecond}}, Gain: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	got := o.get()
	if len(got)/2 != rate*3/10 || res.Items[0].Frames != rate*3/10 {
		t.Errorf("played %d frames (proof %d), want %d", len(got)/2, res.Items[0].Frames, rate*3/10)
	}
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
	if p := res.Items[0].PeakDBFS; math.Abs(p-(-13.98)) > 0.1 {
		t.Errorf("peak %.2f dBFS, want -13.98 (0.4 tone at gain 0.5)", p)
	}
}

// TestSilenceMeasured plays one second of silence then a tone: the proof counts the silence.
func TestSilenceMeasured(t *testing.T) {
	dir := t.TempDir()
	s := append(make([]float32, 2*rate), tone(1000, 0.5, 0, rate/2)...)
	p := filepath.Join(dir, "s.wav")
	writeWAV(t, p, s, rate)
	proof, _ := playFile(t, p)
	if math.Abs(proof.SilenceS-1) > 0.011 {
		t.Errorf("silence %.3f s, want 1", proof.SilenceS)
	}
}

func TestProgramValidation(t *testing.T) {
	p := newPlayer(t, player.NewNullOutput(rate), nil)
	for _, prog := range []player.Program{
		{},
		{Items: []player.Item{{Path: "x"}}, Gain: 1.5},
		{Items: []player.Item{{URL: "http://127.0.0.1/x"}}, Gain: 1},
		{Items: []player.Item{{Path: "x", URL: "http://127.0.0.1/x"}}, Gain: 1},
		{Items: []player.Item{{Path: "x"}}, Gain: 1, Start: player.Position{Item: 3}},
	} {
		if _, err := p.Play(context.Background(), prog); err == nil {
			t.Errorf("program %+v accepted", prog)
		}
	}
}

// TestPlayPreempts: playing a new program stops the one playing (faded), then plays.
func TestPlayPreempts(t *testing.T) {
	a, b, _, sb := twoTones(t, t.TempDir())
	o := &memOutput{delay: time.Millisecond}
	p := newPlayer(t, o, nil)
	first, err := p.Play(context.Background(), player.Program{Items: []player.Item{{Path: a}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	for o.Consumed() < rate/10 {
		time.Sleep(time.Millisecond)
	}
	second, err := p.Play(context.Background(), player.Program{Items: []player.Item{{Path: b}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := first.Wait(), second.Wait()
	if r1.Ended != player.EndStopped || r2.Ended != player.EndCompleted {
		t.Fatalf("first %s, second %s", r1.Ended, r2.Ended)
	}
	got := o.get()
	if n := int64(len(got) / 2); n != r1.Items[0].Frames+int64(len(sb)/2) {
		t.Errorf("output %d frames, proofs %d + %d", n, r1.Items[0].Frames, len(sb)/2)
	}
	if step, at := maxStep(got); step > 0.1 {
		t.Errorf("step of %.3f at frame %d: a click", step, at)
	}
}

// realtimeOutput is a memory output that says it plays in real time (a delayer): a program
// with an At is held to the clock on it. With a frameClock the clock is the audio written.
type realtimeOutput struct {
	*memOutput
	delay time.Duration
}

func (o realtimeOutput) Delay() time.Duration { return o.delay }

// TestInStepStartSaysWhereItIsHeardFrom: a program held to the clock that can only start late
// skips what it is late by, and says so: the first sample handed over is frame `skipped` of
// the item, and it is heard at At plus skipped (the item's own timeline). One that is early
// waits in silence, skips nothing and is heard at At.
func TestInStepStartSaysWhereItIsHeardFrom(t *testing.T) {
	src := make([]float32, 2*2*rate) // 2 s of a rising ramp: each frame says where it is
	for f := 0; f < len(src)/2; f++ {
		v := 0.1 + 0.8*float32(f)/float32(len(src)/2)
		src[2*f], src[2*f+1] = v, v
	}
	path := filepath.Join(t.TempDir(), "ramp.wav")
	writeWAV(t, path, src, rate)
	for _, tc := range []struct {
		name string
		at   time.Duration // the program's At from the clock's start
		late bool
	}{{"late by half a second", -500 * time.Millisecond, true}, {"early by two seconds", 2 * time.Second, false}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &frameClock{t0: time.Date(2026, 12, 5, 6, 30, 0, 0, time.UTC)}
			o := realtimeOutput{memOutput: &memOutput{clock: clock}, delay: 100 * time.Millisecond}
			at := clock.t0.Add(tc.at)
			var heard time.Time
			var skipped time.Duration
			starts := 0
			pb, err := newPlayer(t, o, clock).Play(context.Background(), player.Program{
				Items: []player.Item{{Path: path}}, Gain: 1, At: at,
				OnItemStart: func(_ int, a time.Time, s time.Duration) { heard, skipped, starts = a, s, starts+1 },
			})
			if err != nil {
				t.Fatal(err)
			}
			res := pb.Wait()
			if starts != 1 {
				t.Fatalf("OnItemStart called %d times, want once", starts)
			}
			if tc.late && skipped < 500*time.Millisecond {
				t.Errorf("late by 0.5 s (and the output's 0.1 s) but says it skipped only %s", skipped)
			}
			if !tc.late && skipped != 0 {
				t.Errorf("early, yet says it skipped %s", skipped)
			}
			if off := heard.Sub(at.Add(skipped)); off.Abs() > time.Millisecond {
				t.Errorf("heard at %s with %s skipped: %s off its timeline (At %s)", heard.Format("15:04:05.000"), skipped,
					off, at.Format("15:04:05.000"))
			}
			// The first sample handed over is the frame it says it skipped to.
			got := o.get()
			first := 0
			for first < len(got)/2 && got[2*first] == 0 {
				first++
			}
			from := int(skipped.Seconds()*rate + 0.5)
			if n := len(got)/2 - first; n != len(src)/2-from {
				t.Fatalf("%d frames of the item went out after the silence, want %d (2 s less %s skipped)", n, len(src)/2-from, skipped)
			}
			for k := 2 * rampFrames; k < len(got)/2-first; k += rate / 10 {
				if g, w := got[2*(first+k)], src[2*(from+k)]; math.Abs(float64(g-w)) > 1e-6 {
					t.Fatalf("frame %d after the start is %v, the item's frame %d is %v: the skip is not what it says", k, g, from+k, w)
				}
			}
			if p := res.Items[0]; p.Frames != int64(len(src)/2-from) {
				t.Errorf("proof: %d frames played, want %d", p.Frames, len(src)/2-from)
			}
		})
	}
}

// laggingOutput takes what is written into a queue of lag frames that it never plays out: what
// it has consumed is always lag frames behind what it was given (an agent killed with its
// output's queue full).
type laggingOutput struct {
	memOutput
	lag int64
}

func (o *laggingOutput) Consumed() int64 { return max(0, o.memOutput.Consumed()-o.lag) }

// TestItemStartReportedWhenTheOutputTakesIt: an item handed to the output but still in its
// queue when the program ends was not played, so its start is not reported (an agent killed
// then would journal a start it never played); the item before it, taken, is.
func TestItemStartReportedWhenTheOutputTakesIt(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.wav"), filepath.Join(dir, "b.wav")
	writeWAV(t, a, tone(1000, 0.4, 0, rate), rate)   // 1 s
	writeWAV(t, b, tone(1500, 0.4, 0, rate/5), rate) // 0.2 s, all of it inside the queue
	o := &laggingOutput{lag: rate * 3 / 10}
	var starts []int
	ends := map[int]player.Proof{}
	pb, err := newPlayer(t, o, nil).Play(context.Background(), player.Program{
		Items: []player.Item{{Path: a}, {Path: b}}, Gain: 1,
		OnItemStart: func(i int, _ time.Time, _ time.Duration) { starts = append(starts, i) },
		OnItemEnd:   func(i int, p player.Proof) { ends[i] = p },
	})
	if err != nil {
		t.Fatal(err)
	}
	pb.Wait()
	if len(starts) != 1 || starts[0] != 0 {
		t.Errorf("starts reported %v; want only item 0's (item 1 never left the queue)", starts)
	}
	if len(ends) != 2 || ends[1].Frames != 0 || ends[0].Frames != int64(rate-rate/10) {
		t.Errorf("ends %v; want item 0 with %d frames taken, item 1 with none", ends, rate-rate/10)
	}
}
