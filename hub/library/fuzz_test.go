package library

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/staffapi"
)

// FuzzUploadIngest drives the content upload path up to where ffmpeg would be called: the body
// limit, the multipart reader and format detection. Whatever the body, no more than the limit
// is written, and only an allowed demuxer, with the file protocol alone, is ever chosen.
func FuzzUploadIngest(f *testing.F) {
	const limit = 4096
	mp := func(parts string) string {
		return "--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nt\r\n" + parts + "--x--\r\n"
	}
	for _, s := range []struct {
		ct, body string
	}{
		{"audio/wav", "RIFF\x00\x00\x00\x00WAVEfmt "},
		{"multipart/form-data; boundary=x", mp("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\r\nID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00\r\n")},
		{"multipart/form-data; boundary=x", mp("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n#EXTM3U\nfile:///etc/passwd\r\n")},
		{"application/octet-stream", "ffconcat version 1.0\nfile '/etc/passwd'\n"},
		{"application/octet-stream", "\x00\x00\x00\x18ftypmp42"},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	allowed := map[string]bool{}
	for _, a := range media.Formats() {
		allowed[a.Demuxer] = true
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var got bytes.Buffer
		h := staffapi.LimitBody(func() int64 { return limit }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := readUpload(r, &got); err != nil {
				return
			}
			if got.Len() > limit {
				t.Fatalf("%d bytes written past a %d-byte limit", got.Len(), limit)
			}
			fm, err := media.Sniff(got.Bytes()[:min(got.Len(), media.SniffHead)])
			if err != nil {
				if !errors.Is(err, media.ErrNotAudio) {
					t.Fatalf("refusal %v is not media.ErrNotAudio", err)
				}
				return
			}
			if !allowed[fm.Demuxer] {
				t.Fatalf("demuxer %q is not in the allow-list", fm.Demuxer)
			}
			head := strings.TrimLeft(got.String(), "\x00")
			for _, bad := range []string{"#EXTM3U", "ffconcat", "[playlist]"} {
				if strings.HasPrefix(head, bad) {
					t.Fatalf("a %s list was taken as %s", bad, fm.Demuxer)
				}
			}
			args := strings.Join(fm.InputArgs("/tmp/x"), " ")
			if !strings.HasPrefix(args, "-protocol_whitelist file -format_whitelist "+fm.Demuxer+" -f "+fm.Demuxer) || !strings.HasSuffix(args, "-i file:/tmp/x") {
				t.Fatalf("ffmpeg input args %q", args)
			}
		}))
		req := httptest.NewRequest("POST", "/api/content?title=x", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		h.ServeHTTP(httptest.NewRecorder(), req)
	})
}
