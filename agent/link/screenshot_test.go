package link

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/loa-project/loa/protocol"
)

// A loopback hub endpoint that records what a device uploads, and the link's upload to it.
func TestUploadScreenshot(t *testing.T) {
	var mu sync.Mutex
	type upload struct {
		device, secret, command, ctype string
		body                           []byte
	}
	var got []upload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/agent/screenshot" {
			http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
			return
		}
		dev, secret, _ := protocol.ParseDeviceAuth(r.Header.Get("Authorization"))
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, upload{dev, secret, r.URL.Query().Get("command"), r.Header.Get("Content-Type"), b})
		mu.Unlock()
		if r.URL.Query().Get("command") == "cmd-refused" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"command cmd-refused was not issued to device cl-07"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	h := newHub(t, testSecret)
	a := newTestAgent(t, h, testSecret, func(c *Config) { c.HubURL = srv.URL })

	dir := t.TempDir()
	pic := filepath.Join(dir, "shot.png")
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pic, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.link.UploadScreenshot(ctx, "cmd-1 x", pic); err != nil {
		t.Fatalf("upload: %v", err)
	}
	mu.Lock()
	if len(got) != 1 {
		t.Fatalf("hub got %d uploads, want 1", len(got))
	}
	u := got[0]
	mu.Unlock()
	if u.device != testDevice || u.secret != testSecret || u.command != "cmd-1 x" || u.ctype != "image/png" || !bytes.Equal(u.body, buf.Bytes()) {
		t.Errorf("hub got device %q secret %q command %q type %q, %d bytes (equal: %v)", u.device, u.secret, u.command, u.ctype,
			len(u.body), bytes.Equal(u.body, buf.Bytes()))
	}
	if _, err := os.Stat(pic); err != nil {
		t.Errorf("the upload removed its file: %v", err)
	}

	// The hub's refusal comes back with its reason.
	err := a.link.UploadScreenshot(ctx, "cmd-refused", pic)
	if err == nil || !strings.Contains(err.Error(), "was not issued to device cl-07") || !strings.Contains(err.Error(), "403") {
		t.Errorf("refused upload: %v", err)
	}

	// Not a PNG, too large, missing: refused on the device, nothing sent.
	junk := filepath.Join(dir, "junk.png")
	os.WriteFile(junk, []byte("GIF89a not a png"), 0o644)
	if err := a.link.UploadScreenshot(ctx, "cmd-2", junk); err == nil || !strings.Contains(err.Error(), "is not a PNG file") {
		t.Errorf("junk: %v", err)
	}
	big := filepath.Join(dir, "big.png")
	os.WriteFile(big, append(append([]byte{}, pngMagic...), make([]byte, MaxScreenshotBytes)...), 0o644)
	if err := a.link.UploadScreenshot(ctx, "cmd-3", big); err == nil || !strings.Contains(err.Error(), "over the 8388608 the hub accepts") {
		t.Errorf("big: %v", err)
	}
	if err := a.link.UploadScreenshot(ctx, "cmd-4", filepath.Join(dir, "none.png")); err == nil || !strings.Contains(err.Error(), "none.png") {
		t.Errorf("missing file: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Errorf("hub got %d uploads, want 2 (the bad files are not sent)", len(got))
	}
}
