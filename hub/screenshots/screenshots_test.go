package screenshots

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzScreenshotBody: any upload body is either stored whole with a PNG header that decodes,
// or refused, leaving no file behind.
func FuzzScreenshotBody(f *testing.F) {
	img := image.NewRGBA(image.Rect(0, 0, 8, 4))
	var buf bytes.Buffer
	png.Encode(&buf, img)
	red := buf.Bytes()
	f.Add(red)
	f.Add(red[:40])
	f.Add(pngMagic)
	f.Add([]byte("GIF89a"))
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		dst := filepath.Join(dir, "cmd-1.png")
		n, w, h, err := saveScreenshot(bytes.NewReader(body), dst)
		ents, _ := os.ReadDir(dir)
		if err != nil {
			if len(ents) != 0 {
				t.Fatalf("refused (%v) but left %v", err, ents)
			}
			return
		}
		got, rerr := os.ReadFile(dst)
		cfg, cerr := png.DecodeConfig(bytes.NewReader(body))
		if rerr != nil || !bytes.Equal(got, body) || n != int64(len(body)) || len(ents) != 1 || cerr != nil || cfg.Width != w || cfg.Height != h || w <= 0 || h <= 0 {
			t.Fatalf("stored %d bytes (%v), %dx%d; header %v %v; files %v", n, rerr, w, h, cfg, cerr, ents)
		}
	})
}

// RemoveOlderThan removes images past the age and keeps recent ones, nested by device id.
func TestRemoveOlderThan(t *testing.T) {
	rm := New(Options{Dir: t.TempDir()})
	dir := filepath.Join(rm.o.Dir, "qn", "cl-1")
	os.MkdirAll(dir, 0o755)
	old, recent := filepath.Join(dir, "cmd-1.png"), filepath.Join(dir, "cmd-2.png")
	for _, p := range []string{old, recent} {
		if err := os.WriteFile(p, []byte("png"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	long := now.Add(-49 * time.Hour)
	os.Chtimes(old, long, long)
	if n := rm.RemoveOlderThan(now, 48*time.Hour); n != 1 {
		t.Errorf("removed %d files, want 1", n)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("an image older than the age is still there (%v)", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent image was removed: %v", err)
	}
}
