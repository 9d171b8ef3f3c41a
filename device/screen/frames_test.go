package screen_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/internal/testkit"
)

// TestFramesInOrderWithoutBlack captures every frame mpv puts out (--vo=image writes each one
// as a PNG, as fast as it can) for a program of video, image, video. Frame k of a video shows
// the colour of second k/25 of it; the still image comes between them; no frame is black.
func TestFramesInOrderWithoutBlack(t *testing.T) {
	mustMpv(t)
	dir := t.TempDir()
	a, b, img := filepath.Join(dir, "a.mp4"), filepath.Join(dir, "b.mp4"), filepath.Join(dir, "blue.png")
	colourVideo(t, a, 1, "red", "lime")
	colourVideo(t, b, 1, "yellow", "magenta")
	stillImage(t, img, "blue")
	out := filepath.Join(dir, "frames")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := screen.Open(screen.Config{VO: "image", Dir: shortDir(t),
		Args: []string{"--vo-image-outdir=" + out, "--vo-image-format=png"}}, nil, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := newEvents(3)
	sh, err := s.Show(context.Background(), ev.program(
		screen.Item{Path: a}, screen.Item{Path: img, Duration: time.Second}, screen.Item{Path: b}))
	if err != nil {
		t.Fatal(err)
	}
	res := waitDone(t, sh)
	if res.Ended != screen.EndCompleted {
		t.Fatalf("program ended %q: %+v", res.Ended, res.Items)
	}
	for i, p := range res.Items {
		if p.Ended != screen.EndCompleted || p.Start.IsZero() || p.End.Before(p.Start) || p.Error != "" {
			t.Errorf("item %d proof: %+v", i, p)
		}
		if want := []string{"video", "image", "video"}[i]; p.Kind != want {
			t.Errorf("item %d kind %q, want %q", i, p.Kind, want)
		}
	}
	for _, i := range []int{0, 2} {
		if p := res.Items[i].PositionS; p < 1.9 || p > 2.05 {
			t.Errorf("video %d played to %.3f s of its 2 s", i, p)
		}
	}

	files, _ := filepath.Glob(filepath.Join(out, "*.png"))
	slices.Sort(files) // mpv numbers them 00000001.png, 00000002.png…
	var names []string
	for _, f := range files {
		names = append(names, nameOf(centre(readImage(t, f))))
	}
	// Runs of one colour, in order.
	type run struct {
		name string
		n    int
	}
	var runs []run
	for _, n := range names {
		if len(runs) > 0 && runs[len(runs)-1].name == n {
			runs[len(runs)-1].n++
			continue
		}
		runs = append(runs, run{n, 1})
	}
	var order []string
	for _, r := range runs {
		order = append(order, r.name)
	}
	if got, want := strings.Join(order, " "), "red lime blue yellow magenta"; got != want {
		t.Fatalf("colours on screen in order: %s\nwant %s (%d frames: %v)", got, want, len(names), runs)
	}
	// 25 frames per second of video: frame k of a video is at k/25 s.
	for _, r := range runs {
		if r.name == "blue" {
			if r.n < 1 {
				t.Errorf("the still image was never on screen")
			}
			continue
		}
		if r.n != 25 {
			t.Errorf("%s: %d frames, want 25 (one second at 25 fps): %v", r.name, r.n, runs)
		}
	}
}

// TestFramesDroppedAreReported shows a 25 fps video on an output that takes 5 frames a second:
// mpv drops frames to keep time, and the proof says so.
func TestFramesDroppedAreReported(t *testing.T) {
	mustMpv(t)
	dir := t.TempDir()
	v := filepath.Join(dir, "v.mp4")
	colourVideo(t, v, 1, "red", "lime")
	s, err := screen.Open(screen.Config{VO: "null", Dir: shortDir(t), Args: []string{"--vo-null-fps=5"}}, nil, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sh, err := s.Show(context.Background(), screen.Program{Items: []screen.Item{{Path: v}}})
	if err != nil {
		t.Fatal(err)
	}
	res := waitDone(t, sh)
	p := res.Items[0]
	if p.Ended != screen.EndCompleted || p.FramesDropped < 10 {
		t.Fatalf("a 25 fps video on a 5 fps output: %d frames dropped, want most of its 50: %+v", p.FramesDropped, p)
	}
	t.Logf("frames dropped: %d of 50", p.FramesDropped)
}
