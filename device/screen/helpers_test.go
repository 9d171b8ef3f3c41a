package screen_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/internal/testkit"
)

// colourVideo makes an H.264/MP4 of solid colours, each shown for secs seconds at 25 fps.
func colourVideo(t testing.TB, path string, secs float64, colours ...string) {
	t.Helper()
	args := []string{"-v", "error", "-y"}
	var filt strings.Builder
	for i, c := range colours {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("color=c=%s:s=160x120:r=25:d=%g", c, secs))
		fmt.Fprintf(&filt, "[%d:v]", i)
	}
	fmt.Fprintf(&filt, "concat=n=%d:v=1:a=0[v]", len(colours))
	args = append(args, "-filter_complex", filt.String(), "-map", "[v]",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", path)
	testkit.Run(t, nil, "ffmpeg", args...)
}

// stillImage makes a PNG of one colour.
func stillImage(t testing.TB, path, colour string) {
	t.Helper()
	testkit.Run(t, nil, "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c="+colour+":s=160x120", "-frames:v", "1", path)
}

func mustMpv(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("mpv"); err != nil {
		t.Fatal("mpv is not installed: run scripts/install-deps (Debian package mpv)")
	}
}

// openPaced opens a screen whose video output accepts 25 frames per second, like a display
// does: items take their real time and screenshots show what is on screen.
func openPaced(t testing.TB, cfg screen.Config, clk screen.Clock) *screen.Screen {
	t.Helper()
	mustMpv(t)
	cfg.VO = "null"
	// No hardware decoder to probe on a test machine (and no log lines about it).
	cfg.Args = append(cfg.Args, "--vo-null-fps=25", "--hwdec=no")
	if cfg.Dir == "" {
		cfg.Dir = shortDir(t)
	}
	s, err := screen.Open(cfg, clk, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// shortDir is a temporary directory with a short path (unix socket paths are limited).
func shortDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "lsc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func readImage(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// centre is the mean colour of a 9×9 block around the middle of img.
func centre(img image.Image) color.RGBA {
	b := img.Bounds()
	return meanAt(img, (b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2, 4)
}

func meanAt(img image.Image, x0, y0, r int) color.RGBA {
	var sr, sg, sb, n uint32
	for y := y0 - r; y <= y0+r; y++ {
		for x := x0 - r; x <= x0+r; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sr, sg, sb, n = sr+cr>>8, sg+cg>>8, sb+cb>>8, n+1
		}
	}
	return color.RGBA{uint8(sr / n), uint8(sg / n), uint8(sb / n), 255}
}

// named colours as the tests generate them, and the name of the nearest one.
var palette = map[string]color.RGBA{
	"black":   {0, 0, 0, 255},
	"red":     {255, 0, 0, 255},
	"lime":    {0, 255, 0, 255},
	"blue":    {0, 0, 255, 255},
	"yellow":  {255, 255, 0, 255},
	"magenta": {255, 0, 255, 255},
	"cyan":    {0, 255, 255, 255},
	"white":   {255, 255, 255, 255},
}

// nameOf is the palette colour within 60 per channel of c, or "other".
func nameOf(c color.RGBA) string {
	for n, p := range palette {
		if near(c.R, p.R) && near(c.G, p.G) && near(c.B, p.B) {
			return n
		}
	}
	return fmt.Sprintf("other(%d,%d,%d)", c.R, c.G, c.B)
}

func near(a, b uint8) bool {
	d := int(a) - int(b)
	return d > -60 && d < 60
}

// diffFraction is the share of pixels whose channels differ by more than 64 (anti-aliasing
// and scaler noise stay below it, a missing or moved letter does not).
func diffFraction(a, b image.Image) float64 {
	ab, bb := a.Bounds(), b.Bounds()
	if ab.Dx() != bb.Dx() || ab.Dy() != bb.Dy() {
		return 1
	}
	n := 0
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			if absDiff(r1, r2) > 64<<8 || absDiff(g1, g2) > 64<<8 || absDiff(b1, b2) > 64<<8 {
				n++
			}
		}
	}
	return float64(n) / float64(ab.Dx()*ab.Dy())
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// events records the item callbacks of a program.
type events struct {
	mu      sync.Mutex
	started map[int]chan struct{}
	ended   map[int]screen.Proof
}

func newEvents(n int) *events {
	e := &events{started: map[int]chan struct{}{}, ended: map[int]screen.Proof{}}
	for i := 0; i < n; i++ {
		e.started[i] = make(chan struct{})
	}
	return e
}

func (e *events) program(items ...screen.Item) screen.Program {
	return screen.Program{
		Items:       items,
		OnItemStart: func(i int, _ time.Time) { close(e.started[i]) },
		OnItemEnd: func(i int, p screen.Proof) {
			e.mu.Lock()
			e.ended[i] = p
			e.mu.Unlock()
		},
	}
}

// waitStart waits for item i's first frame.
func (e *events) waitStart(t testing.TB, i int) {
	t.Helper()
	select {
	case <-e.started[i]:
	case <-time.After(30 * time.Second):
		t.Fatalf("item %d never showed its first frame", i)
	}
}

// waitDone waits for a program's end.
func waitDone(t testing.TB, sh *screen.Showing) screen.Result {
	t.Helper()
	select {
	case <-sh.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("program did not end")
	}
	return sh.Wait()
}

// shot takes a screenshot and decodes it.
func shot(t testing.TB, s *screen.Screen, dir, name string) image.Image {
	t.Helper()
	p := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Screenshot(ctx, p); err != nil {
		t.Fatal(err)
	}
	return readImage(t, p)
}
