package hub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/loa-project/loa/hub/api"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/protocol"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps installs it): %v", tool, err)
		}
	}
}

func upload(t *testing.T, h *testHub, path string, fields map[string]string) (int, api.ContentJSON, string) {
	t.Helper()
	return uploadAs(t, h, h.admin, path, fields)
}

// uploadAs is upload with token's rights.
func uploadAs(t *testing.T, h *testHub, token, path string, fields map[string]string) (int, api.ContentJSON, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", filepath.Base(path))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(b)
	mw.Close()
	req, _ := http.NewRequest("POST", h.http.URL+"/api/content", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var c api.ContentJSON
	var e api.Error
	json.Unmarshal(raw, &c)
	json.Unmarshal(raw, &e)
	return resp.StatusCode, c, e.Error
}

// Upload a stereo 44.1 kHz WAV: the library keeps a loudness-normalised 48 kHz MP3 by sha256,
// with its duration, and serves it to devices with Range.
func TestUploadTranscodeAndRangeDownload(t *testing.T) {
	needTools(t, "sox", "ffmpeg", "ffprobe")
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	wav := filepath.Join(t.TempDir(), "tone.wav")
	if out, err := exec.Command("sox", "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", wav, "synth", "3", "sine", "440", "vol", "0.1").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	code, c, msg := upload(t, h, wav, map[string]string{"title": "Bản tin thử", "language": "vi", "theme": "health", "format": "radio-report", "unit": "tam-ky"})
	if code != http.StatusCreated {
		t.Fatalf("upload: %d %q", code, msg)
	}
	if !strings.HasPrefix(c.Ref, "sha256:") || c.MIME != "audio/mpeg" || c.Title != "Bản tin thử" || c.Language != "vi" || c.Unit != "tam-ky" {
		t.Fatalf("content %+v", c)
	}
	// The duration is what a gapless decoder plays (the agent's timeline is built on it), not
	// the MP3's whole frames with the encoder's delay and padding (3.048 s here).
	if math.Abs(c.DurationS-3) > 0.002 {
		t.Fatalf("duration %.3f s, want the 3 s that play", c.DurationS)
	}
	file := filepath.Join(h.dir, "content", strings.TrimPrefix(c.Ref, "sha256:"))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != c.Ref || int64(len(data)) != c.Size {
		t.Fatalf("stored file does not match its ref/size")
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels", "-of", "csv=p=0", file).Output()
	if err != nil || strings.TrimSpace(string(out)) != "mp3,48000,2" {
		t.Fatalf("stored file is %q (%v), want mp3,48000,2", out, err)
	}
	// Loudness: the 0.1-amplitude tone was raised towards -16 LUFS.
	ebur, _ := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-i", file, "-af", "ebur128", "-f", "null", "-").CombinedOutput()
	if i := bytes.LastIndex(ebur, []byte("I:")); i < 0 || !bytes.Contains(ebur[i:i+30], []byte("-1")) {
		t.Fatalf("integrated loudness not near -16 LUFS: %s", ebur[max(0, len(ebur)-400):])
	}
	// The same upload again is the same item.
	code, c2, _ := upload(t, h, wav, map[string]string{"title": "again"})
	if code != http.StatusOK || c2.Ref != c.Ref || c2.Created || c2.Title != "Bản tin thử" {
		t.Fatalf("re-upload: %d %+v", code, c2)
	}
	// A raw body with the metadata as query parameters is the same upload.
	req, _ := http.NewRequest("POST", h.http.URL+"/api/content?title=raw&language=vi", bytes.NewReader(mustRead(t, wav)))
	req.Header.Set("Authorization", "Bearer "+h.admin)
	req.Header.Set("Content-Type", "audio/wav")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw api.ContentJSON
	json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || raw.Ref != c.Ref {
		t.Fatalf("raw-body upload: %d %+v", resp.StatusCode, raw)
	}
	var list []api.ContentJSON
	h.mustCall(h.admin, "GET", "/api/content?language=vi", nil, &list, http.StatusOK)
	if len(list) != 1 || list[0].Ref != c.Ref {
		t.Fatalf("library list %+v", list)
	}

	// Download: devices only, with Range.
	get := func(auth, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", h.http.URL+"/content/"+c.Ref, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, _ := get("", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous download: %d", resp.StatusCode)
	}
	if resp, _ := get("Bearer "+h.admin, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("staff token on the device route: %d", resp.StatusCode)
	}
	auth := protocol.FormatDeviceAuth("c1/cl-01", secret)
	resp, b := get(auth, "")
	if resp.StatusCode != 200 || !bytes.Equal(b, data) {
		t.Fatalf("full download: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = get(auth, "bytes=100-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[100:]) {
		t.Fatalf("range resume: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	req, _ = http.NewRequest("GET", h.http.URL+"/content/sha256:"+strings.Repeat("0", 64), nil)
	req.Header.Set("Authorization", auth)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown content: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", h.http.URL+"/content/sha256:../../etc", nil)
	req.Header.Set("Authorization", auth)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bad ref: %d", resp.StatusCode)
	}
}

func TestUploadRefusesNonAudio(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	h := newTestHub(t)
	txt := filepath.Join(t.TempDir(), "minutes.txt")
	os.WriteFile(txt, []byte("Biên bản họp thôn, không phải âm thanh.\n"), 0o644)
	code, _, msg := upload(t, h, txt, map[string]string{"title": "minutes"})
	if code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "minutes.txt is not audio") || !strings.Contains(msg, "MP3, WAV") {
		t.Fatalf("text upload: %d %q", code, msg)
	}
	bmp := filepath.Join(t.TempDir(), "pic.bmp")
	if out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1", bmp).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	code, _, msg = upload(t, h, bmp, map[string]string{"title": "pic"})
	if code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "PNG or JPEG") {
		t.Fatalf("BMP still upload: %d %q", code, msg)
	}
	wavNoTitle := filepath.Join(t.TempDir(), "x.wav")
	os.WriteFile(wavNoTitle, []byte("RIFF"), 0o644)
	if code, _, msg = upload(t, h, wavNoTitle, nil); code != http.StatusBadRequest || !strings.Contains(msg, "--title") {
		t.Fatalf("no title: %d %q", code, msg)
	}
	var list []api.ContentJSON
	h.mustCall(h.admin, "GET", "/api/content", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Fatalf("refused uploads left %d library items", len(list))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Pictures for the screens: a PNG still is kept as it is (duration 0: the schedule or the
// device decides how long it shows); a video that is not H.264 is made H.264/MP4 (what a Pi
// decodes in hardware), within 1080p; an H.264 MP4 is kept bit for bit in its streams.
func TestUploadPicturesForScreens(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	h := newTestHub(t)
	dir := t.TempDir()
	make := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), p)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v %s", name, err, out)
		}
		return p
	}
	png := make("notice.png", "-f", "lavfi", "-i", "color=c=red:s=64x32", "-frames:v", "1")
	code, c, msg := upload(t, h, png, map[string]string{"title": "Thông báo"})
	if code != http.StatusCreated || c.MIME != "image/png" || c.DurationS != 0 {
		t.Fatalf("PNG upload: %d %+v %q", code, c, msg)
	}
	if sum := sha256.Sum256(mustRead(t, png)); c.Ref != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("the still was changed on the way in: %s", c.Ref)
	}
	// VP8 in WebM, 2560 wide: becomes H.264 in MP4, at most 1920 wide.
	webm := make("clip.webm", "-f", "lavfi", "-i", "testsrc2=s=2560x1440:r=25:d=1", "-c:v", "libvpx", "-b:v", "1M")
	code, c, msg = upload(t, h, webm, map[string]string{"title": "clip"})
	if code != http.StatusCreated || c.MIME != "video/mp4" || c.DurationS < 0.9 || c.DurationS > 1.2 {
		t.Fatalf("WebM upload: %d %+v %q", code, c, msg)
	}
	stored := filepath.Join(h.dir, "content", strings.TrimPrefix(c.Ref, "sha256:"))
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,pix_fmt",
		"-of", "csv=p=0", stored).Output()
	if err != nil || strings.TrimSpace(string(out)) != "h264,1920,yuv420p" {
		t.Errorf("stored video is %q (%v), want h264,1920,yuv420p", out, err)
	}
	// Already H.264 in MP4: streams copied, not re-encoded.
	mp4 := make("ready.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-c:v", "libx264", "-pix_fmt", "yuv420p")
	code, c, msg = upload(t, h, mp4, map[string]string{"title": "ready"})
	if code != http.StatusCreated || c.MIME != "video/mp4" {
		t.Fatalf("MP4 upload: %d %+v %q", code, c, msg)
	}
	orig, _ := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size", "-of", "csv=p=0", mp4).Output()
	kept, _ := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size", "-of", "csv=p=0",
		filepath.Join(h.dir, "content", strings.TrimPrefix(c.Ref, "sha256:"))).Output()
	if len(orig) == 0 || string(orig) != string(kept) {
		t.Errorf("an H.264 MP4 was re-encoded: packet sizes differ")
	}
}
