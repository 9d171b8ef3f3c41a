package player

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/loa-project/loa/player/wav"
)

// Output is where played audio goes: interleaved float32 stereo at Rate(). One Output lives
// for the whole process (an ALSA device is opened once and reused by every program).
type Output interface {
	// Rate is the output sample rate in Hz; every source is resampled to it.
	Rate() int
	// Write hands frames to the output. It returns once the output has taken them, so a
	// real-time device paces the caller.
	Write(ctx context.Context, samples []float32) error
	// Consumed is how many frames the output has taken for playing since it was opened.
	Consumed() int64
	// Drain waits until every frame written has been consumed. Silence after Drain is the
	// output being idle, not an underrun.
	Drain(ctx context.Context) error
	// Underruns counts the times the device found nothing to play while playback was under way.
	Underruns() int64
	Close() error
}

// WAVOutput writes what is played to a 32-bit float stereo WAV file, as fast as the decoder
// goes (no real-time pacing): a converter, and a faithful recording for tests.
type WAVOutput struct {
	rate   int
	f      *os.File
	w      *wav.Writer
	mu     sync.Mutex
	frames atomic.Int64
}

// NewWAVOutput creates (or truncates) path.
func NewWAVOutput(path string, rate int) (*WAVOutput, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wav output: %w", err)
	}
	w, err := wav.NewWriter(f, rate, 2)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wav output %s: %w", path, err)
	}
	return &WAVOutput{rate: rate, f: f, w: w}, nil
}

// Rate implements Output.
func (o *WAVOutput) Rate() int { return o.rate }

// Write implements Output.
func (o *WAVOutput) Write(ctx context.Context, s []float32) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.w.Write(s); err != nil {
		return fmt.Errorf("wav output %s: %w", o.f.Name(), err)
	}
	o.frames.Add(int64(len(s) / 2))
	return nil
}

// Consumed implements Output: a file consumes at once.
func (o *WAVOutput) Consumed() int64 { return o.frames.Load() }

// Drain implements Output.
func (o *WAVOutput) Drain(ctx context.Context) error { return nil }

// Underruns implements Output: a file never runs dry.
func (o *WAVOutput) Underruns() int64 { return 0 }

// Close finishes the header and closes the file.
func (o *WAVOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.w.Close()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// NullOutput discards audio at once; proofs are still measured.
type NullOutput struct {
	rate   int
	frames atomic.Int64
}

// NewNullOutput makes a null output at rate.
func NewNullOutput(rate int) *NullOutput { return &NullOutput{rate: rate} }

// Rate implements Output.
func (o *NullOutput) Rate() int { return o.rate }

// Write implements Output.
func (o *NullOutput) Write(ctx context.Context, s []float32) error {
	o.frames.Add(int64(len(s) / 2))
	return ctx.Err()
}

// Consumed implements Output.
func (o *NullOutput) Consumed() int64 { return o.frames.Load() }

// Drain implements Output.
func (o *NullOutput) Drain(ctx context.Context) error { return nil }

// Underruns implements Output.
func (o *NullOutput) Underruns() int64 { return 0 }

// Close implements Output.
func (o *NullOutput) Close() error { return nil }
