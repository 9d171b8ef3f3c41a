package testkit

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// MP3 encodes seconds of audio made by sox's synth (e.g. "sine 440", "pinknoise") as 48 kHz
// 64 kbit/s stereo MP3 with lame, as a radio's encoder would.
func MP3(t testing.TB, seconds string, synth ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	wav, mp3 := filepath.Join(dir, "t.wav"), filepath.Join(dir, "t.mp3")
	for _, c := range [][]string{
		append([]string{"sox", "-n", "-r", "48000", "-c", "2", "-b", "16", wav, "synth", seconds}, synth...),
		{"lame", "--quiet", "--cbr", "-b", "64", "--resample", "48", wav, mp3},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s (run scripts/install-deps)", c, err, out)
		}
	}
	b, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Upstream is an Icecast-like server of one live stream: every listener gets the stream from
// where it is now (a live radio, not a file), at real-time pace for 64 kbit/s, after a burst
// of Burst bytes as Icecast sends. Drop cuts every listener and refuses new ones for a while.
type Upstream struct {
	MP3   []byte
	Burst int

	once    sync.Once
	t0      time.Time
	mu      sync.Mutex
	downTil time.Time
	cut     chan struct{}
	conns   int
}

// bytesPerSecond is the stream's rate: 64 kbit/s.
const bytesPerSecond = 8000

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.once.Do(func() { u.t0 = time.Now(); u.cut = make(chan struct{}) })
	u.mu.Lock()
	down, cut := time.Now().Before(u.downTil), u.cut
	u.conns++
	u.mu.Unlock()
	if down {
		http.Error(w, "source away", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "audio/mpeg")
	fl := w.(http.Flusher)
	// Where the live stream is now, less the burst; sent in 100 ms pieces from there on.
	off := int(time.Since(u.t0).Seconds()*bytesPerSecond) - u.Burst
	off = max(0, off) % max(1, len(u.MP3))
	for {
		end := int(time.Since(u.t0).Seconds()*bytesPerSecond) % len(u.MP3)
		if end < off { // looped
			end = len(u.MP3)
		}
		if end > off {
			if _, err := w.Write(u.MP3[off:end]); err != nil {
				return
			}
			fl.Flush()
			off = end % len(u.MP3)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-cut:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// Drop cuts every listener and answers 404 (the source is away) for d.
func (u *Upstream) Drop(d time.Duration) {
	u.once.Do(func() { u.t0 = time.Now(); u.cut = make(chan struct{}) })
	u.mu.Lock()
	defer u.mu.Unlock()
	close(u.cut)
	u.cut = make(chan struct{})
	u.downTil = time.Now().Add(d)
}

// Connections is how many listeners have connected.
func (u *Upstream) Connections() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}
