package screen_test

import (
	"context"
	"flag"
	"image"
	"image/draw"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/device/screen"
)

var update = flag.Bool("update", false, "rewrite testdata/bulletin-vi.png from this machine's rendering")

const (
	bulletinNFC = "Thông báo khẩn: Bão số 13 đổ bộ Quảng Nam, người dân không ra biển"
	// The same text typed with combining marks (NFD), as some keyboards and converters give it.
	bulletinNFD = "Tho\u0302ng ba\u0301o kha\u0302\u0309n: Ba\u0303o so\u0302\u0301 13 \u0111o\u0302\u0309 bo\u0323\u0302 Qua\u0309ng Nam, ngu\u031bo\u031b\u0300i da\u0302n kho\u0302ng ra bie\u0302\u0309n"
	// What a renderer that loses the marks would show.
	bulletinBare = "Thong bao khan: Bao so 13 do bo Quang Nam, nguoi dan khong ra bien"
)

// render shows one bulletin on a 640×360 canvas and returns a screenshot of it.
func render(t *testing.T, s *screen.Screen, dir, name string, it screen.Item) image.Image {
	t.Helper()
	ev := newEvents(1)
	it.Duration = time.Minute
	sh, err := s.Show(context.Background(), ev.program(it))
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	img := shot(t, s, dir, name)
	sh.Stop()
	return img
}

// TestVietnameseBulletinRendering compares the rendered bulletin with a stored rendering
// (tolerantly: anti-aliasing may move a little between library versions) and checks that the
// tone marks are really drawn: the same text without them must look different.
func TestVietnameseBulletinRendering(t *testing.T) {
	dir := t.TempDir()
	s := openPaced(t, screen.Config{Width: 640, Height: 360}, nil)
	nfc := render(t, s, dir, "nfc.png", screen.Item{Text: bulletinNFC})
	nfd := render(t, s, dir, "nfd.png", screen.Item{Text: bulletinNFD})
	bare := render(t, s, dir, "bare.png", screen.Item{Text: bulletinBare})

	golden := filepath.Join("testdata", "bulletin-vi.png")
	if *update {
		writePNG(t, golden, nfc)
		t.Logf("wrote %s", golden)
	}
	want := readImage(t, golden)
	dGolden, dNFD, dBare := diffFraction(nfc, want), diffFraction(nfc, nfd), diffFraction(nfc, bare)
	t.Logf("pixels differing: from golden %.4f, NFC vs NFD %.4f, with vs without diacritics %.4f", dGolden, dNFD, dBare)
	// The tone marks and the bar of đ of this text are about 650 pixels (0.28% of the
	// canvas). Losing or misplacing even a fifth of them must fail, anti-aliasing noise must
	// not: the tolerance is 0.05% of the canvas (115 pixels).
	const tolerance = 0.0005
	if dGolden > tolerance {
		writePNG(t, filepath.Join(dir, "got.png"), nfc)
		t.Errorf("bulletin differs from %s in %.3f%% of pixels (tolerance %.3f%%); look at %s/got.png",
			golden, 100*dGolden, 100*tolerance, dir)
	}
	if dNFD > tolerance {
		t.Errorf("the same text typed with combining marks renders differently (%.3f%% of pixels)", 100*dNFD)
	}
	if dBare < 3*tolerance {
		t.Errorf("the text without diacritics looks almost the same (%.3f%% of pixels differ): tone marks are not drawn", 100*dBare)
	}
	if dBare > 0.02 {
		t.Errorf("removing the diacritics changed %.2f%% of the pixels: the layout moved, so this test no longer isolates the marks", 100*dBare)
	}
}

// TestTickerRunsAlongTheBottom: the ticker band sits at the bottom and its text moves with
// playback time while the bulletin above stays still.
func TestTickerRunsAlongTheBottom(t *testing.T) {
	dir := t.TempDir()
	s := openPaced(t, screen.Config{Width: 640, Height: 360}, nil)
	ev := newEvents(1)
	sh, err := s.Show(context.Background(), ev.program(screen.Item{
		Text: "Lịch tiêm chủng", Ticker: "Tin mới: đường ĐT 603 ngập sâu, người dân không qua lại", Duration: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Stop()
	ev.waitStart(t, 0)
	first := shot(t, s, dir, "a.png")
	_, at0 := sh.Progress()
	for _, at := sh.Progress(); at < at0+2*time.Second; _, at = sh.Progress() {
		time.Sleep(50 * time.Millisecond)
	}
	second := shot(t, s, dir, "b.png")
	band := 360 / 9
	top := image.Rect(0, 0, 640, 360-band)
	bottom := image.Rect(0, 360-band, 640, 360)
	if d := diffFraction(crop(first, top), crop(second, top)); d > 0.001 {
		t.Errorf("the bulletin above the ticker changed in %.2f%% of its pixels", 100*d)
	}
	if d := diffFraction(crop(first, bottom), crop(second, bottom)); d < 0.01 {
		t.Errorf("the ticker did not move in a second (%.2f%% of its band changed)", 100*d)
	}
	// The band is the configured yellow at its right end before any letter gets there.
	if got := nameOf(meanAt(first, 636, 360-band/2, 2)); got != "yellow" {
		t.Errorf("ticker band: %s, want yellow", got)
	}
}

func crop(img image.Image, r image.Rectangle) image.Image {
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(out, out.Bounds(), img, r.Min, draw.Src)
	return out
}

// TestTickerOverAStill: a still image with a ticker is repeated as frames so the ticker runs,
// on the bulletin canvas, and still ends after its duration.
func TestTickerOverAStill(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "s.png")
	stillImage(t, img, "blue")
	s := openPaced(t, screen.Config{Width: 640, Height: 360}, nil)
	ev := newEvents(1)
	sh, err := s.Show(context.Background(), ev.program(screen.Item{Path: img, Duration: 3 * time.Second, Ticker: "Tin mới: đường ĐT 603 ngập sâu"}))
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	a := shot(t, s, dir, "a.png")
	for _, at := sh.Progress(); at < time.Second; _, at = sh.Progress() {
		time.Sleep(50 * time.Millisecond)
	}
	b := shot(t, s, dir, "b.png")
	if a.Bounds().Dx() != 640 || a.Bounds().Dy() != 360 {
		t.Fatalf("a still with a ticker is shown at %v, want the 640x360 canvas", a.Bounds())
	}
	band := image.Rect(0, 360-360/9, 640, 360)
	if d := diffFraction(crop(a, band), crop(b, band)); d < 0.01 {
		t.Errorf("the ticker over the still did not move (%.2f%% of its band changed)", 100*d)
	}
	if got := nameOf(centre(b)); got != "blue" {
		t.Errorf("the still is %s at the centre", got)
	}
	res := waitDone(t, sh)
	if p := res.Items[0]; p.Ended != screen.EndCompleted || p.Kind != "image" || p.ShownS < 2.9 {
		t.Errorf("proof: %+v", p)
	}
}
