// Package alsafifo stands in for a sound card: an ALSA configuration whose default device
// writes to a FIFO, and a reader that drains the FIFO at real-time rate, as a card would,
// keeping what it reads. Tests and `make demo` use it on machines without audio hardware.
package alsafifo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// config is the ALSA configuration: the default PCM is the file plugin writing raw samples
// (oto: float32 LE interleaved) to the FIFO; its slave is null, which has no clock, so the
// reader sets the pace. Defining pcm.null is needed because ALSA_CONFIG_PATH replaces the
// system configuration that normally defines it.
const config = `pcm.!default {
	type file
	slave.pcm "null"
	file "%s"
	format "raw"
}
pcm.null {
	type null
}
`

// Setup makes dir/alsa.conf and the FIFO dir/alsa.fifo. Start the playing process with
// ALSA_CONFIG_PATH set to the returned config path.
func Setup(dir string) (configPath, fifoPath string, err error) {
	fifoPath = filepath.Join(dir, "alsa.fifo")
	configPath = filepath.Join(dir, "alsa.conf")
	os.Remove(fifoPath)
	if err := syscall.Mkfifo(fifoPath, 0o600); err != nil {
		return "", "", fmt.Errorf("mkfifo %s: %w", fifoPath, err)
	}
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf(config, fifoPath)), 0o644); err != nil {
		return "", "", err
	}
	return configPath, fifoPath, nil
}

// Capture drains a FIFO at rate frames per second of stereo float32, like a sound card.
type Capture struct {
	mu sync.Mutex
	// blocks hold the samples kept, interleaved stereo as read, a second each: one slice
	// grown by append copied all of it at each growth, and at minutes of three cards in one
	// test process those copies (and the garbage they left) stalled every drain at once for
	// hundreds of milliseconds, which the cards took for running dry.
	blocks [][]float32
	nkept  int
	start  time.Time // when the first byte arrived
	keep   bool
	frames int64
	wav    *os.File
	stamp  bool
	stamps []Stamp
	dry    []Dry
}

// Dry is a time the card ran dry: the writer fell behind the card's clock, and the frames from
// Frame on came out For later than they would have.
type Dry struct {
	Frame int64
	For   time.Duration
}

// Options describe the card Open drains with.
type Options struct {
	Rate int
	// SkewPPM makes the card's crystal run fast (positive) or slow (negative): it consumes
	// Rate×(1+SkewPPM/10⁶) frames per second of the system clock, as a real card off by that
	// much does.
	SkewPPM float64
	// Keep holds the samples in memory (Samples); WAV, if set, receives them as a 32-bit float
	// stereo WAV file (the demo's "sound card").
	Keep bool
	WAV  string
	// Stamp records the wall time each block was drained (Stamps, When), so that a test can
	// tell when a given sample came out of the card.
	Stamp bool
}

// Stamp says that the block beginning at Frame (counted from the card's first frame) left the
// card at At: when the card's clock reached it, or when it came if the card had run dry.
type Stamp struct {
	Frame int64
	At    time.Time
}

// Drain opens fifo for reading and consumes it in real time until ctx ends, like a sound card
// that stays when the program playing through it stops or is killed and another starts. What
// a killed writer left unread in the FIFO is not played: the card starts empty. keep holds
// samples in memory for tests; wavPath, if set, receives them as a 32-bit float stereo WAV file
// (the demo's "sound card").
func Drain(ctx context.Context, fifo string, rate int, keep bool, wavPath string) (*Capture, <-chan error, error) {
	return Open(ctx, fifo, Options{Rate: rate, Keep: keep, WAV: wavPath})
}

// Open is Drain with the card's options: a skewed crystal, time stamps.
func Open(ctx context.Context, fifo string, o Options) (*Capture, <-chan error, error) {
	if o.Rate <= 0 {
		return nil, nil, fmt.Errorf("alsafifo: rate %d is not a sample rate", o.Rate)
	}
	if o.SkewPPM <= -1e6 {
		return nil, nil, fmt.Errorf("alsafifo: skew %v ppm would stop the card", o.SkewPPM)
	}
	c := &Capture{keep: o.Keep, stamp: o.Stamp}
	if o.WAV != "" {
		f, err := os.Create(o.WAV)
		if err != nil {
			return nil, nil, err
		}
		c.wav = f
		f.Write(make([]byte, 44)) // header written at the end, when the length is known
	}
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, fifo, o.Rate, float64(o.Rate)*(1+o.SkewPPM/1e6)) }()
	return c, done, nil
}

// run drains fifo: rate is the nominal rate (the WAV header's), pace the frames per second of
// the system clock the card really consumes.
func (c *Capture) run(ctx context.Context, fifo string, rate int, pace float64) error {
	defer c.finishWAV(rate)
	// Opening a FIFO for reading blocks until a writer comes; open non-blocking and poll so
	// that ctx can end the wait.
	fd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	const frameBytes = 8
	chunk := rate / 100 * frameBytes // 10 ms
	buf := make([]byte, chunk)
	// A writer SIGKILLed before this card was opened may have left samples in the FIFO; a
	// new card read them, saw no writer (EOF) and, when it ended there, left the next agent
	// writing into a FIFO nobody read: it hung in snd_pcm_writei. Read them away until the
	// FIFO is empty (EOF: no writer; EAGAIN: a writer, nothing written yet). On the raw
	// descriptor: through os.File an empty FIFO with a writer waits for data instead of saying
	// EAGAIN, and a writer that came first and never paused was thrown away for ever.
	for ctx.Err() == nil {
		n, err := syscall.Read(fd, buf)
		if n == 0 || errors.Is(err, syscall.EAGAIN) {
			break
		} else if err != nil && !errors.Is(err, syscall.EINTR) {
			syscall.Close(fd)
			return err
		}
	}
	f := os.NewFile(uintptr(fd), fifo)
	defer f.Close()
	var begun time.Time
	var readBytes int64
	writerSeen := false
	for ctx.Err() == nil {
		// The card plays on its own clock: a block is due when the frames before it have
		// played. It comes out then even if this reader was scheduled late (a card does not
		// wait for the CPU), unless the FIFO did not hold it: the writer fell behind, the card
		// ran dry, and its clock starts again when the block comes.
		due := begun.Add(time.Duration(float64(readBytes/frameBytes) / pace * float64(time.Second)))
		starved := !begun.IsZero() && queued(fd) < len(buf)
		n, err := f.Read(buf)
		if n > 0 {
			writerSeen = true
			now := time.Now()
			if begun.IsZero() {
				begun, due = now, now
				c.mu.Lock()
				if c.start.IsZero() {
					c.start = begun
				}
				c.mu.Unlock()
			} else if starved && now.Sub(due) > time.Millisecond {
				begun = begun.Add(now.Sub(due))
				c.mu.Lock()
				c.dry = append(c.dry, Dry{Frame: c.frames, For: now.Sub(due)})
				c.mu.Unlock()
				due = now
			}
			c.add(buf[:n], due)
			readBytes += int64(n)
			// Pace: never run ahead of the card's clock.
			due = begun.Add(time.Duration(float64(readBytes/frameBytes) / pace * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			continue
		}
		if err == io.EOF && writerSeen {
			// The writer closed (its process stopped or was killed): wait for the next one,
			// paced from its own first sample.
			writerSeen, begun, readBytes = false, time.Time{}, 0
		}
		if err != nil && err != io.EOF && !errors.Is(err, syscall.EAGAIN) {
			return err
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return nil
}

// fionread is Linux's ioctl for the bytes waiting in a pipe.
const fionread = 0x541B

// queued is how many bytes wait in the FIFO (0 if it cannot tell).
func queued(fd int) int {
	var n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), fionread, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0
	}
	return int(n)
}

func (c *Capture) add(b []byte, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(b) / 4
	if c.stamp {
		c.stamps = append(c.stamps, Stamp{Frame: c.frames, At: at})
	}
	c.frames += int64(n / 2)
	if c.keep {
		for i := 0; i < n; i++ {
			if len(c.blocks) == 0 || len(c.blocks[len(c.blocks)-1]) == cap(c.blocks[len(c.blocks)-1]) {
				c.blocks = append(c.blocks, make([]float32, 0, keptBlock))
			}
			last := &c.blocks[len(c.blocks)-1]
			*last = append(*last, math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:])))
		}
		c.nkept += n
	}
	if c.wav != nil {
		c.wav.Write(b[:n*4])
	}
}

func (c *Capture) finishWAV(rate int) {
	if c.wav == nil {
		return
	}
	c.mu.Lock()
	dataLen := uint32(c.frames * 8)
	c.mu.Unlock()
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataLen)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 3) // IEEE float
	binary.LittleEndian.PutUint16(h[22:], 2)
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*8))
	binary.LittleEndian.PutUint16(h[32:], 8)
	binary.LittleEndian.PutUint16(h[34:], 32)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataLen)
	c.wav.WriteAt(h, 0)
	c.wav.Close()
}

// Samples returns a copy of the interleaved samples read so far (when kept) and the wall time
// the first one arrived.
func (c *Capture) Samples() ([]float32, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]float32, 0, c.nkept)
	for _, b := range c.blocks {
		out = append(out, b...)
	}
	return out, c.start
}

// keptBlock is the samples of one block kept: a second of stereo at 48 kHz.
const keptBlock = 2 * 48000

// Frames is how many frames have been consumed.
func (c *Capture) Frames() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// Stamps returns a copy of the blocks' time stamps (with Options.Stamp).
func (c *Capture) Stamps() []Stamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Stamp(nil), c.stamps...)
}

// When is the wall time frame f left the card: its block's stamp plus its place in the block
// at the nominal rate. It is false for a frame not yet drained or drained without stamps.
func (c *Capture) When(f int64, rate int) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f < 0 || f >= c.frames || len(c.stamps) == 0 {
		return time.Time{}, false
	}
	i := sort.Search(len(c.stamps), func(i int) bool { return c.stamps[i].Frame > f }) - 1
	if i < 0 {
		return time.Time{}, false
	}
	s := c.stamps[i]
	return s.At.Add(time.Duration(f-s.Frame) * time.Second / time.Duration(rate)), true
}

// Underruns are the times the card ran dry while a writer was playing.
func (c *Capture) Underruns() []Dry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Dry(nil), c.dry...)
}
