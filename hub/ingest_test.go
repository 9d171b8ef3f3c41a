package hub

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
)

func sine(t *testing.T, path string, seconds string) string {
	t.Helper()
	if out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=d="+seconds, path).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	return path
}

// An upload that names other files (an HLS playlist, a concat list) must not pull them into the
// library: ffmpeg reads only the format the hub recognised, with the file protocol only.
func TestUploadRefusesPlaylistsAndLists(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	h := newTestHub(t)
	// A file on the hub's own disk the uploader should never see.
	private := sine(t, filepath.Join(h.dir, "private.mp3"), "1")
	dir := t.TempDir()
	cases := map[string]string{
		"bulletin.wav":  "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\nfile://" + private + "\n#EXT-X-ENDLIST\n",
		"bulletin.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n" + private + "\n#EXT-X-ENDLIST\n",
		"list.mp3":      "ffconcat version 1.0\nfile '" + private + "'\n",
		// An ID3 tag in front of a playlist: sniffed past the tag, still refused.
		"tagged.mp3": "ID3\x04\x00\x00\x00\x00\x00\x00" + "#EXTM3U\n#EXTINF:1,\nfile://" + private + "\n",
	}
	for name, body := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		code, c, msg := upload(t, h, p, map[string]string{"title": name})
		if code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "is not audio") {
			t.Errorf("%s: %d %+v %q, want 415", name, code, c, msg)
		}
	}
	var list []api.ContentJSON
	h.mustCall(h.admin, "GET", "/api/content", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Fatalf("a playlist brought %d items into the library: %+v", len(list), list)
	}
	// The real thing still goes in.
	if code, _, msg := upload(t, h, private, map[string]string{"title": "ok"}); code != http.StatusCreated {
		t.Fatalf("MP3 upload: %d %q", code, msg)
	}
}

// Transcodes are bounded: in number (the rest are answered 503 with Retry-After), in time, and in
// the length of media taken.
func TestUploadTranscodeLimits(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	h := newTestHub(t)
	tc := h.srv.tc
	tc.MaxConcurrent, tc.MaxQueued, tc.MaxDuration = 1, -1, 2e9
	short := sine(t, filepath.Join(t.TempDir(), "short.mp3"), "1")
	long := sine(t, filepath.Join(t.TempDir(), "long.mp3"), "3")

	release, err := tc.Acquire(context.Background()) // another upload is transcoding
	if err != nil {
		t.Fatal(err)
	}
	req := func() *http.Response {
		f, _ := os.Open(short)
		defer f.Close()
		r, _ := http.NewRequest("POST", h.http.URL+"/api/content?title=busy", f)
		r.Header.Set("Authorization", "Bearer "+h.admin)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := req(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upload while the transcoder is full: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	release()
	if resp := req(); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload once the slot is free: %d", resp.StatusCode)
	}

	if code, _, msg := upload(t, h, long, map[string]string{"title": "long"}); code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "max_content_duration") {
		t.Fatalf("3 s upload with a 2 s limit: %d %q", code, msg)
	}

	tc.Timeout = 1 // already over when ffprobe would start
	if code, _, msg := upload(t, h, short, map[string]string{"title": "slow"}); code != http.StatusUnprocessableEntity || !strings.Contains(msg, "transcode_timeout") {
		t.Fatalf("upload past the timeout: %d %q", code, msg)
	}
}

// max_upload_bytes holds multipart uploads too (what `loa content add` sends), on the body
// itself: a chunked body over the limit is cut off, and a declared Content-Length over it is
// refused before anything is read.
func TestUploadBodyLimit(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	h := newTestHub(t)
	h.srv.opts.MaxUploadBytes = 64 << 10
	wav := filepath.Join(t.TempDir(), "big.wav")
	if out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=2", "-ar", "48000", wav).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	// Multipart, chunked (no Content-Length): the client streams the parts.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("title", "big")
		fw, _ := mw.CreateFormFile("file", "big.wav")
		fw.Write(mustRead(t, wav))
		mw.Close()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.http.URL+"/api/content", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+h.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "max_upload_bytes") {
		t.Fatalf("multipart upload of 192 kB over a 64 kB limit: %d %s", resp.StatusCode, b)
	}
	var list []api.ContentJSON
	h.mustCall(h.admin, "GET", "/api/content", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Fatalf("an upload over the limit was stored: %+v", list)
	}

	// 10 GiB declared, 1 kB sent: answered at once from the header (the read deadline is only
	// there so that a hang fails instead of stopping the test run).
	conn, err := net.Dial("tcp", h.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/content HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer %s\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: %d\r\n\r\n%s",
		h.admin, int64(10)<<30, strings.Repeat("a", 1024))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a 10 GiB Content-Length: %v", err)
	}
	b, _ = io.ReadAll(r.Body)
	if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "at most 65536 bytes") {
		t.Fatalf("10 GiB Content-Length: %d %s", r.StatusCode, b)
	}
}
