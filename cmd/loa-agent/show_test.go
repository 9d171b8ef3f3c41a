package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// TestShowCommand runs `loa-agent show` as a user would: a bulletin on the screen (mpv with a
// paced null output) with a screenshot, and a text on an LED board behind a socat pty pair.
func TestShowCommand(t *testing.T) {
	bin := testkit.Binary(t, "loa-agent")
	dir := t.TempDir()

	shot := filepath.Join(dir, "shot.png")
	out, errOut, code := run(t, bin, "show", "Thông báo: Bão số 13", "--vo", "null", "--mpv-arg=--vo-null-fps=25",
		"--duration", "500ms", "--ticker", "Tin khẩn", "--screenshot", shot)
	if code != 0 {
		t.Fatalf("show text: exit %d: %s", code, errOut)
	}
	var p struct {
		Kind   string  `json:"kind"`
		Ended  string  `json:"ended"`
		ShownS float64 `json:"shown_s"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Kind != "text" || p.Ended != "completed" || p.ShownS <= 0 {
		t.Fatalf("proof %q: %+v %v", out, p, err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 1920 {
		t.Fatalf("screenshot: %v %v", err, img.Bounds())
	}

	out, _, code = run(t, bin, "show", "/no/such/file.mp4", "--out", "board", "--text", "--port", filepath.Join(dir, "absent"))
	if code != 1 || !strings.Contains(out, `"ended":"failed"`) || !strings.Contains(out, "--port") {
		t.Errorf("board on an absent port: exit %d, %s", code, out)
	}

	// A board on a pty: the Alpha frame arrives with the text transliterated.
	pty := testkit.NewPty(t)
	a, b := pty.A, pty.B
	got := make(chan []byte, 1)
	go func() {
		pf, err := os.Open(b)
		if err != nil {
			got <- nil
			return
		}
		defer pf.Close()
		var all []byte
		buf := make([]byte, 256)
		for !bytes.Contains(all, []byte{0x04}) {
			n, err := pf.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- all
	}()
	out, errOut, code = run(t, bin, "show", "Bão số 13", "--out", "board", "--port", a)
	if code != 0 || !strings.Contains(out, `"sent":"Bao so 13"`) {
		t.Fatalf("show on board: exit %d %s %s", code, out, errOut)
	}
	select {
	case frame := <-got:
		if !bytes.Contains(frame, []byte("Bao so 13\x03")) {
			t.Errorf("the sign received %q", frame)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing reached the sign")
	}
}
