// Package alsa plays audio through ALSA with github.com/ebitengine/oto/v3. oto allows one
// context per process, so Open is called once and the Output reused for every program.
package alsa

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ebitengine/oto/v3"
)

// Config says which device to open and how.
type Config struct {
	// Device is an ALSA PCM name (see `aplay -L`); empty means "default".
	Device string
	// Rate is the output rate in Hz (default 48000).
	Rate int
	// Buffer is the ALSA buffer length (default 100 ms). Raise it on boards that underrun.
	Buffer time.Duration
	// Log receives the device's messages.
	Log *slog.Logger
}

// Output is the ALSA output. It implements player.Output.
type Output struct {
	log    *slog.Logger
	rate   int
	ctx    *oto.Context
	player *oto.Player

	mu      sync.Mutex
	ring    []float32 // pending samples, a FIFO of at most cap(ring) samples
	head    int
	size    int
	dataCh  chan struct{} // signalled when samples arrive
	spaceCh chan struct{} // signalled when room appears
	closed  bool
	active  bool  // between the first Write and Drain: running dry is an underrun
	dry     bool  // current dry spell already counted
	primed  bool  // oto's first queue fill is done (until then idle reads give silence)
	handed  int64 // frames given to oto
	under   int64
	bufTime time.Duration
	buf     []byte
}

// Open opens the device and waits until it is ready. Errors name the device and what to check.
func Open(ctx context.Context, cfg Config) (*Output, error) {
	if cfg.Rate == 0 {
		cfg.Rate = 48000
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dev := cfg.Device
	if dev == "" {
		dev = "default"
	}
	if dev != "default" {
		// oto always opens "default": point it at the chosen device with a config file
		// layered over the system's (ALSA_CONFIG_PATH takes a ':'-separated list).
		if err := aliasDefault(dev); err != nil {
			return nil, fmt.Errorf("alsa output %q: %w", dev, err)
		}
	}
	octx, ready, err := oto.NewContext(&oto.NewContextOptions{
		SampleRate:   cfg.Rate,
		ChannelCount: 2,
		Format:       oto.FormatFloat32LE,
		BufferSize:   cfg.Buffer,
	})
	if err != nil {
		return nil, fmt.Errorf("alsa output %q: %w (only one audio output can be opened per process)", dev, err)
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := octx.Err(); err != nil {
		return nil, fmt.Errorf("alsa output %q cannot be opened: %w; check the device name with `aplay -L`, that the sound card is present and not held by another program", dev, err)
	}
	ringFrames := cfg.Rate / 20 // 50 ms between the decoder and oto
	o := &Output{
		log:     cfg.Log,
		rate:    cfg.Rate,
		ctx:     octx,
		ring:    make([]float32, 2*ringFrames),
		dataCh:  make(chan struct{}, 1),
		spaceCh: make(chan struct{}, 1),
		bufTime: cfg.Buffer,
	}
	o.player = octx.NewPlayer(reader{o})
	// oto keeps its own queue in front of ALSA. At two ALSA buffers (four periods): with
	// only one buffer, ALSA taking periods back to back outran oto's refill and whole
	// periods of silence went out (seen in the FIFO test); longer would slow stop and gain.
	bytes := 2 * int(int64(cfg.Rate)*int64(cfg.Buffer)/int64(time.Second)) * 8
	if bytes < 4096*8 {
		bytes = 4096 * 8
	}
	o.player.SetBufferSize(bytes)
	// Play fills oto's queue before the player joins the mixer. Filled from an idle output it
	// would wait for real samples, and a first play shorter than the queue would then sit in
	// it unheard for ever (a 0.5 s chime with a 300 ms buffer). So the first fill is silence.
	o.player.Play()
	for i := 0; o.player.BufferedSize() < bytes && i < 2000; i++ {
		time.Sleep(time.Millisecond)
	}
	o.mu.Lock()
	o.primed = true
	o.mu.Unlock()
	cfg.Log.Info("audio output open", "device", dev, "rate", cfg.Rate, "buffer", cfg.Buffer)
	return o, nil
}

func aliasDefault(dev string) error {
	if strings.ContainsAny(dev, "\"\n\\") {
		return fmt.Errorf("device name has a quote, backslash or newline")
	}
	base := os.Getenv("ALSA_CONFIG_PATH")
	if base == "" {
		base = "/usr/share/alsa/alsa.conf"
	}
	dir, err := os.MkdirTemp("", "loa-alsa-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "default.conf")
	conf := fmt.Sprintf("pcm.!default { type plug slave.pcm \"%s\" }\n", dev)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	return os.Setenv("ALSA_CONFIG_PATH", base+":"+path)
}

// Rate implements player.Output.
func (o *Output) Rate() int { return o.rate }

// Write implements player.Output: it blocks while the 50 ms queue in front of oto is full.
func (o *Output) Write(ctx context.Context, s []float32) error {
	for len(s) > 0 {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return errors.New("alsa output is closed")
		}
		if err := o.ctx.Err(); err != nil {
			o.mu.Unlock()
			return fmt.Errorf("alsa output failed: %w", err)
		}
		o.active = true
		n := len(o.ring) - o.size
		if n > len(s) {
			n = len(s)
		}
		n -= n % 2
		for i := 0; i < n; i++ {
			o.ring[(o.head+o.size+i)%len(o.ring)] = s[i]
		}
		o.size += n
		s = s[n:]
		o.mu.Unlock()
		if n > 0 {
			signal(o.dataCh)
		}
		if len(s) == 0 {
			return nil
		}
		select {
		case <-o.spaceCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Consumed implements player.Output: frames handed to oto less those still in oto's queue.
func (o *Output) Consumed() int64 {
	o.mu.Lock()
	h := o.handed
	o.mu.Unlock()
	return h - int64(o.player.BufferedSize()/8)
}

// Delay is how long after Consumed counts a frame it is heard. oto takes a period (half the
// ALSA buffer) at a time from its queue and then waits for room for it in ALSA's buffer,
// which it keeps full: a frame taken is heard about one and a quarter buffers later, plus
// what the card adds. This is a model: snd_pcm_delay would say it, but oto keeps the PCM to
// itself (docs/sync.md says what that costs and how to correct it with output_delay).
func (o *Output) Delay() time.Duration { return o.bufTime * 5 / 4 }

// Drain implements player.Output.
func (o *Output) Drain(ctx context.Context) error {
	// What is queued plays out; running dry after it is the end, not an underrun.
	o.mu.Lock()
	o.active = false
	o.mu.Unlock()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		o.mu.Lock()
		empty := o.size == 0
		o.mu.Unlock()
		if empty && o.player.BufferedSize() == 0 {
			return o.ctx.Err()
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Underruns implements player.Output.
func (o *Output) Underruns() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.under
}

// Close stops feeding oto; the process's oto context itself cannot be closed.
func (o *Output) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	signal(o.dataCh)
	o.player.Pause()
	return nil
}

// reader is what oto pulls from. oto calls Read without holding its own lock, so blocking
// here until samples arrive is safe and keeps the idle output free of busy loops.
type reader struct{ o *Output }

func (r reader) Read(p []byte) (int, error) {
	o := r.o
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return 0, io.EOF
		}
		if o.size > 0 {
			n := min(len(p)/8, o.size/2)
			out := p[:n*8]
			for i := 0; i < 2*n; i++ {
				binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(o.ring[(o.head+i)%len(o.ring)]))
			}
			o.head = (o.head + 2*n) % len(o.ring)
			o.size -= 2 * n
			o.handed += int64(n)
			o.dry = false
			o.mu.Unlock()
			signal(o.spaceCh)
			return n * 8, nil
		}
		if !o.primed {
			n := len(p) / 8
			clear(p[:n*8])
			o.handed += int64(n)
			o.mu.Unlock()
			return n * 8, nil
		}
		watch := o.active && !o.dry
		o.mu.Unlock()
		if watch && tick == nil {
			// Playing but starved: look every few ms whether oto's queue ran out too.
			tick = time.NewTicker(2 * time.Millisecond)
		}
		if !watch && tick != nil {
			tick.Stop()
			tick = nil
		}
		var tc <-chan time.Time
		if tick != nil {
			tc = tick.C
		}
		select {
		case <-o.dataCh:
		case <-tc:
			if o.player.BufferedSize() == 0 {
				o.mu.Lock()
				if o.active && !o.dry && o.size == 0 {
					o.dry = true
					o.under++
					o.log.Warn("audio output ran dry (underrun): the decoder or the stream did not keep up")
				}
				o.mu.Unlock()
			}
		}
	}
}
