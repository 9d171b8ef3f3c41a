package agent

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

// TestLengthsOfScreenMedia: a video's length comes from ffprobe, a still shows for
// stillDuration, and a file that is no media has no length (the schedule must give one).
func TestLengthsOfScreenMedia(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed (scripts/install-deps installs ffmpeg)")
	}
	dir := t.TempDir()
	video, still, junk := filepath.Join(dir, "v.mp4"), filepath.Join(dir, "s.png"), filepath.Join(dir, "j.mp4")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "color=red:s=64x64:d=2.5:r=25", "-c:v", "libx264", "-pix_fmt", "yuv420p", video},
		{"-f", "lavfi", "-i", "color=blue:s=64x64", "-frames:v", "1", still},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v %s", err, out)
		}
	}
	os.WriteFile(junk, []byte("not a video at all"), 0o644)
	c := newLengthCache(48000, slog.New(slog.DiscardHandler))
	if d, ok := c.lengthOf(video); !ok || d < 2400*time.Millisecond || d > 2600*time.Millisecond {
		t.Errorf("video length %s (%v), want about 2.5 s", d, ok)
	}
	if d, ok := c.lengthOf(still); !ok || d != stillDuration {
		t.Errorf("still length %s (%v), want %s", d, ok, stillDuration)
	}
	if d, ok := c.lengthOf(junk); ok {
		t.Errorf("a file that is no media got length %s", d)
	}
}

// A file that vanishes after its schedule was accepted keeps the length it had: compiling the
// schedule again (the runner compiles beside its loop, after activation) must not fail on it
// and silence every programme; the item itself fails at its turn. A file never seen has none.
func TestVanishedItemKeepsItsLastLength(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "tone.wav")
	if out, err := exec.Command("sox", "-n", "-r", "48000", "-c", "1", wav, "synth", "1.5", "sine", "440").CombinedOutput(); err != nil {
		t.Skipf("sox: %v %s", err, out)
	}
	a := &Agent{lengths: newLengthCache(48000, slog.New(slog.DiscardHandler))}
	d, ok := a.itemLength(scheduler.Item{File: wav})
	if !ok || d < 1400*time.Millisecond || d > 1600*time.Millisecond {
		t.Fatalf("length %s (%v), want about 1.5 s", d, ok)
	}
	os.Remove(wav)
	if d2, ok := a.itemLength(scheduler.Item{File: wav}); !ok || d2 != d {
		t.Errorf("after the file vanished: %s (%v), want the %s it had", d2, ok, d)
	}
	if d, ok := a.itemLength(scheduler.Item{File: filepath.Join(dir, "never.wav")}); ok {
		t.Errorf("a file never seen got length %s", d)
	}
}
