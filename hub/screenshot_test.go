package hub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/screenshots"
	"github.com/loa-project/loa/protocol"
)

func testPNG(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 36))
	for y := 0; y < 36; y++ {
		for x := 0; x < 64; x++ {
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts body as a device's screenshot for command; length -1 sends it chunked.
func (h *testHub) upload(device, secret, command string, body io.Reader, length int64) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.http.URL+"/agent/screenshot?command="+command, body)
	req.ContentLength = length
	if device != "" {
		req.Header.Set("Authorization", protocol.FormatDeviceAuth(device, secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// get fetches a staff URL and returns its status, body and headers.
func (h *testHub) get(token, path string) (int, []byte, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func TestScreenshotUploadAuthCheckAndScope(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Truncate(time.Millisecond)}
	h.srv.clock = clk
	for _, a := range []string{"qn/tk", "qn/ha"} {
		h.addArea(a)
	}
	s1 := h.enrol("tk/cl-01", "qn/tk")
	s3 := h.enrol("ha/cl-03", "qn/ha")
	s4 := h.enrol("tk/cl-04", "qn/tk")
	tkStaff, haStaff := h.userToken("tk-staff", "qn/tk"), h.userToken("ha-staff", "qn/ha")

	// Nothing yet; the device is offline, so the command waits and staff are told so.
	code, b, _ := h.get(h.admin, "/api/screenshots/tk/cl-01")
	if code != http.StatusNotFound || !strings.Contains(string(b), "no screenshot of device tk/cl-01 yet") {
		t.Fatalf("latest before any: %d %s", code, b)
	}
	c1 := h.issue(h.admin, api.CommandRequest{To: "tk/cl-01", Action: "screenshot"})
	if c1.Action != "screenshot" || c1.Counts["pending"] != 1 {
		t.Fatalf("screenshot command: %+v", c1)
	}
	code, b, _ = h.get(h.admin, "/api/commands/"+c1.ID+"/screenshot")
	if code != http.StatusNotFound || !strings.Contains(string(b), "device tk/cl-01 is offline: it takes screenshot "+c1.ID+" when it reconnects") {
		t.Fatalf("screenshot of an offline device: %d %s", code, b)
	}
	var e api.Error
	if code := h.call(h.admin, "POST", "/api/commands", api.CommandRequest{To: "tk/cl-01", Action: "screenshot", Output: "speakers"}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "image of the screen output") {
		t.Fatalf("screenshot of the speakers: %d %+v", code, e)
	}

	red := testPNG(t, color.RGBA{R: 220, G: 20, B: 20, A: 255})
	body := func() io.Reader { return bytes.NewReader(red) }
	n := int64(len(red))
	// Who may upload: the device the command was issued to, with its secret.
	for _, tc := range []struct {
		name, dev, secret, cmd string
		want                   int
		msg                    string
	}{
		{"no credentials", "", "", c1.ID, http.StatusUnauthorized, "device authentication required"},
		{"wrong secret", "tk/cl-01", s3, c1.ID, http.StatusUnauthorized, "unknown, revoked, or wrong secret"},
		{"unknown device", "tk/cl-99", s1, c1.ID, http.StatusUnauthorized, "unknown, revoked, or wrong secret"},
		{"another device's command", "ha/cl-03", s3, c1.ID, http.StatusForbidden, "command " + c1.ID + " was not issued to device ha/cl-03"},
		{"a device in the same area", "tk/cl-04", s4, c1.ID, http.StatusForbidden, "was not issued to device tk/cl-04"},
		{"no such command", "tk/cl-01", s1, "cmd-1", http.StatusForbidden, "command cmd-1 was not issued"},
		{"no command named", "tk/cl-01", s1, "", http.StatusBadRequest, "?command=ID"},
	} {
		code, msg := h.upload(tc.dev, tc.secret, tc.cmd, body(), n)
		if code != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, code, msg, tc.want, tc.msg)
		}
	}
	// A command that is not a screenshot takes no image.
	clk.Advance(time.Second)
	stop := h.issue(h.admin, api.CommandRequest{To: "tk/cl-01", Action: "stop"})
	if code, msg := h.upload("tk/cl-01", s1, stop.ID, body(), n); code != http.StatusForbidden || !strings.Contains(msg, "is a stop command, not a screenshot") {
		t.Errorf("upload for a stop command: %d %s", code, msg)
	}
	// The body must be a PNG, within the cap.
	for _, tc := range []struct {
		name string
		body io.Reader
		n    int64
		want int
		msg  string
	}{
		{"a GIF", strings.NewReader("GIF89a......"), 12, http.StatusUnsupportedMediaType, "does not start with the PNG signature"},
		{"a PNG signature and junk", bytes.NewReader(append(append([]byte{}, []byte("\x89PNG\r\n\x1a\n")...), "junk"...)), 12, http.StatusUnsupportedMediaType, "its header does not read"},
		{"empty", bytes.NewReader(nil), 0, http.StatusUnsupportedMediaType, "not a PNG"},
		{"over the cap, chunked", io.MultiReader(bytes.NewReader(red), bytes.NewReader(make([]byte, screenshots.MaxBytes))), -1, http.StatusRequestEntityTooLarge, "over 8388608 bytes"},
	} {
		code, msg := h.upload("tk/cl-01", s1, c1.ID, tc.body, tc.n)
		if code != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, code, msg, tc.want, tc.msg)
		}
	}
	// A declared length over the cap is refused before the body is read (a raw request: Go's
	// client will not send a length its body does not have).
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /agent/screenshot?command=%s HTTP/1.1\r\nHost: hub\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s",
		c1.ID, protocol.FormatDeviceAuth("tk/cl-01", s1), screenshots.MaxBytes+1, []byte("\x89PNG\r\n\x1a\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	conn.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(rb), "at most 8388608") {
		t.Errorf("declared over the cap: %d %s", resp.StatusCode, rb)
	}
	dir := filepath.Join(h.dir, "screenshots", "tk", "cl-01")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("refused uploads left files: %v", ents)
	}

	// The device's upload is stored under its id and the command's.
	code, msg := h.upload("tk/cl-01", s1, c1.ID, body(), n)
	var got api.ScreenshotJSON
	if code != http.StatusCreated || json.Unmarshal([]byte(msg), &got) != nil || got.Device != "tk/cl-01" || got.Command != c1.ID ||
		got.Bytes != n || got.Width != 64 || got.Height != 36 {
		t.Fatalf("upload: %d %s", code, msg)
	}
	if b, err := os.ReadFile(filepath.Join(dir, c1.ID+".png")); err != nil || !bytes.Equal(b, red) {
		t.Fatalf("stored file: %v (equal %v)", err, bytes.Equal(b, red))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files beside the screenshot: %v", ents)
	}

	// Staff of the device's area see it, by device (latest) and by command; others do not.
	for _, tok := range []string{h.admin, tkStaff} {
		for _, path := range []string{"/api/screenshots/tk/cl-01", "/api/commands/" + c1.ID + "/screenshot", "/api/screenshots/tk/cl-01?command=" + c1.ID} {
			code, b, hdr := h.get(tok, path)
			if code != http.StatusOK || !bytes.Equal(b, red) || hdr.Get("Content-Type") != "image/png" ||
				hdr.Get(api.ScreenshotCommandHeader) != c1.ID || hdr.Get(api.ScreenshotDeviceHeader) != "tk/cl-01" || hdr.Get("Last-Modified") == "" {
				t.Errorf("GET %s: %d %s %v", path, code, b[:min(len(b), 200)], hdr)
			}
		}
	}
	for path, want := range map[string]string{
		"/api/screenshots/tk/cl-01":                  "no device tk/cl-01 in your scope qn/ha",
		"/api/commands/" + c1.ID + "/screenshot":     "no command " + c1.ID + " reaching your scope qn/ha",
		"/api/screenshots/ha/cl-03?command=" + c1.ID: "no command " + c1.ID + " reaching your scope qn/ha",
		"/api/commands/" + stop.ID + "/screenshot":   "no command " + stop.ID,
		"/api/screenshots/ha/cl-03":                  "no screenshot of device ha/cl-03 yet",
		"/api/commands/cmd-404/screenshot":           "no command cmd-404",
		"/api/screenshots/ha/cl-03?command=cmd-404":  "no command cmd-404",
	} {
		code, b, _ := h.get(haStaff, path)
		if code != http.StatusNotFound || !strings.Contains(string(b), want) {
			t.Errorf("ha staff GET %s: %d %s, want 404 %q", path, code, b, want)
		}
	}
	if code, b, _ := h.get(h.admin, "/api/commands/"+stop.ID+"/screenshot"); code != http.StatusNotFound || !strings.Contains(string(b), "is a stop command, not a screenshot") {
		t.Errorf("screenshot of a stop command: %d %s", code, b)
	}

	// A later screenshot is the latest; the first stays reachable by its command.
	clk.Advance(time.Minute)
	c2 := h.issue(tkStaff, api.CommandRequest{To: "tk/cl-01", Action: "screenshot", Output: "screen"})
	blue := testPNG(t, color.RGBA{B: 200, A: 255})
	if code, msg := h.upload("tk/cl-01", s1, c2.ID, bytes.NewReader(blue), -1); code != http.StatusCreated {
		t.Fatalf("second upload (chunked): %d %s", code, msg)
	}
	if code, b, hdr := h.get(tkStaff, "/api/screenshots/tk/cl-01"); code != http.StatusOK || !bytes.Equal(b, blue) || hdr.Get(api.ScreenshotCommandHeader) != c2.ID {
		t.Errorf("latest after two: %d, command %s", code, hdr.Get(api.ScreenshotCommandHeader))
	}
	if code, b, _ := h.get(tkStaff, "/api/screenshots/tk/cl-01?command="+c1.ID); code != http.StatusOK || !bytes.Equal(b, red) {
		t.Errorf("first by command: %d", code)
	}

	// A screenshot command to an area needs the device named when fetching.
	clk.Advance(time.Second)
	ca := h.issue(h.admin, api.CommandRequest{To: "qn/tk", Action: "screenshot"})
	if code, b, _ := h.get(h.admin, "/api/commands/"+ca.ID+"/screenshot"); code != http.StatusBadRequest || !strings.Contains(string(b), "went to 2 devices: name one with ?device=ID") {
		t.Errorf("area screenshot without device: %d %s", code, b)
	}
	if code, msg := h.upload("tk/cl-04", s4, ca.ID, bytes.NewReader(red), n); code != http.StatusCreated {
		t.Fatalf("area screenshot upload: %d %s", code, msg)
	}
	if code, b, _ := h.get(h.admin, "/api/commands/"+ca.ID+"/screenshot?device=tk/cl-04"); code != http.StatusOK || !bytes.Equal(b, red) {
		t.Errorf("area screenshot of tk/cl-04: %d", code)
	}

	// A device that could not take it: its reason is what staff read.
	a3 := h.cmdAgent("ha/cl-03", s3, clk, nil)
	clk.Advance(time.Second)
	c3 := h.issue(haStaff, api.CommandRequest{To: "ha/cl-03", Action: "screenshot"})
	m := a3.next().(*protocol.Command)
	a3.send(&protocol.Delivery{Header: protocol.Header{Re: m.ID}, CommandID: c3.ID, State: protocol.DeliveryFailed,
		Reason: "this device has no screen: its outputs are [speakers]"})
	h.outcomes(c3.ID, map[string]string{"ha/cl-03": "failed"})
	if code, b, _ := h.get(haStaff, "/api/commands/"+c3.ID+"/screenshot"); code != http.StatusNotFound ||
		!strings.Contains(string(b), "device ha/cl-03 could not take screenshot "+c3.ID+": this device has no screen") {
		t.Errorf("failed screenshot: %d %s", code, b)
	}

	// Past its expiry and the grace, an upload is refused; a revoked device is refused too.
	clk.Advance(agentlink.DefaultCommandLife + screenshots.Grace + time.Second)
	if code, msg := h.upload("tk/cl-01", s1, c2.ID, bytes.NewReader(blue), -1); code != http.StatusGone || !strings.Contains(msg, "expired at") {
		t.Errorf("late upload: %d %s", code, msg)
	}
	h.mustCall(h.admin, "DELETE", "/api/devices/tk/cl-04", nil, nil, http.StatusOK)
	if code, msg := h.upload("tk/cl-04", s4, ca.ID, bytes.NewReader(red), n); code != http.StatusUnauthorized {
		t.Errorf("revoked device upload: %d %s", code, msg)
	}
}
