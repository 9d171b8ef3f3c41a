package player_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/player"
	"github.com/loa-project/loa/player/wav"
)

const rate = 48000

// run runs a media tool (lame, sox, mpg123, espeak-ng) and fails the test with its output.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	testkit.Run(t, nil, name, args...)
}

// readWAV reads a WAV file as interleaved stereo.
func readWAV(t testing.TB, path string) ([]float32, wav.Format) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := wav.NewReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var all []float32
	buf := make([]float32, 8192)
	for {
		n, err := r.Read(buf)
		all = append(all, buf[:2*n]...)
		if err == io.EOF {
			return all, r.Format()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeWAV writes interleaved stereo float32 at rate with our own writer.
func writeWAV(t testing.TB, path string, s []float32, r int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := wav.NewWriter(f, r, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// tone is amp*cos(2π f n/r + phase) on both channels, n frames.
func tone(f, amp, phase float64, n int) []float32 {
	s := make([]float32, 2*n)
	for i := 0; i < n; i++ {
		v := float32(amp * math.Cos(2*math.Pi*f*float64(i)/rate+phase))
		s[2*i], s[2*i+1] = v, v
	}
	return s
}

// left takes the left channel.
func left(s []float32) []float64 {
	out := make([]float64, len(s)/2)
	for i := range out {
		out[i] = float64(s[2*i])
	}
	return out
}

// correlation of a and b over their common length.
func correlation(a, b []float64) float64 {
	n := min(len(a), len(b))
	var ab, aa, bb float64
	for i := 0; i < n; i++ {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// alignedCorrelation finds the lag (within ±maxLag) that best aligns b to a on a probe
// window, then returns the correlation of the whole signals at that lag.
func alignedCorrelation(a, b []float64, maxLag int) (float64, int) {
	n := min(len(a), len(b))
	probeStart, probeLen := n/3, min(rate/2, n/3)
	best, bestLag := math.Inf(-1), 0
	for lag := -maxLag; lag <= maxLag; lag++ {
		var s float64
		for i := probeStart; i < probeStart+probeLen; i++ {
			j := i + lag
			if j < 0 || j >= len(b) {
				continue
			}
			s += a[i] * b[j]
		}
		if s > best {
			best, bestLag = s, lag
		}
	}
	if bestLag >= 0 {
		return correlation(a, b[bestLag:]), bestLag
	}
	return correlation(a[-bestLag:], b), bestLag
}

// memOutput records what is played; each Write can be slowed to give commands time to act.
type memOutput struct {
	mu      sync.Mutex
	samples []float32
	delay   time.Duration
	clock   *frameClock
}

func (o *memOutput) Rate() int { return rate }
func (o *memOutput) Write(ctx context.Context, s []float32) error {
	if o.delay > 0 {
		time.Sleep(o.delay)
	}
	o.mu.Lock()
	o.samples = append(o.samples, s...)
	o.mu.Unlock()
	if o.clock != nil {
		o.clock.advance(len(s) / 2)
	}
	return ctx.Err()
}
func (o *memOutput) Consumed() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.samples) / 2)
}
func (o *memOutput) Drain(context.Context) error { return nil }
func (o *memOutput) Underruns() int64            { return 0 }
func (o *memOutput) Close() error                { return nil }
func (o *memOutput) get() []float32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]float32(nil), o.samples...)
}

// frameClock is a fake clock whose time is the audio written so far: the until cut can be
// checked in frames, exactly.
type frameClock struct {
	mu     sync.Mutex
	t0     time.Time
	frames int64
}

func (c *frameClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t0.Add(time.Duration(c.frames) * time.Second / rate)
}
func (c *frameClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (c *frameClock) advance(n int) {
	c.mu.Lock()
	c.frames += int64(n)
	c.mu.Unlock()
}

// playFile plays one file to a WAV output in dir and returns the proof and the samples.
func playFile(t *testing.T, path string) (player.Proof, []float32) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.wav")
	o, err := player.NewWAVOutput(out, rate)
	if err != nil {
		t.Fatal(err)
	}
	p, err := player.New(player.Config{Output: o})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.Play(context.Background(), player.Program{Items: []player.Item{{Path: path}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := readWAV(t, out)
	return res.Items[0], s
}

// maxStep is the largest sample-to-sample change on the left channel: a click shows here.
func maxStep(s []float32) (float64, int) {
	m, at := 0.0, 0
	for i := 2; i < len(s); i += 2 {
		if d := math.Abs(float64(s[i] - s[i-2])); d > m {
			m, at = d, i/2
		}
	}
	return m, at
}

func fmtProof(p player.Proof) string { return fmt.Sprintf("%+v", p) }
