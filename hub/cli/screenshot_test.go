package cli

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-project/loa/protocol"
)

// The CLI against a real hub; the device's side is its HTTP upload (the e2e test runs a real
// agent with a screen).
func TestScreenshotCLI(t *testing.T) {
	url, tok := startHub(t)
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k]
	}}
	runCLI(env, "area", "add", "qn/tk")
	code, out, e := runCLI(env, "device", "enroll", "tk/board-01", "--area", "qn/tk")
	if code != 0 {
		t.Fatal(e)
	}
	secret := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out)[1]

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"screenshot"}, "one DEVICE"},
		{[]string{"screenshot", "a", "b"}, "one DEVICE"},
		{[]string{"screenshot", "tk/board-01", "--latest", "--command", "cmd-1"}, "not both"},
	} {
		if code, _, e := runCLI(env, tc.args...); code != 2 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, e, tc.want)
		}
	}
	if code, _, e := runCLI(env, "screenshot", "tk/board-01", "--latest"); code != 1 || !strings.Contains(e, "no screenshot of device tk/board-01 yet: take one with `loa screenshot tk/board-01`") {
		t.Errorf("latest of none: %d %q", code, e)
	}
	// The device is offline: the command waits for it, and the CLI says how to fetch it later.
	code, _, e = runCLI(env, "screenshot", "tk/board-01", "--wait", "0")
	m := regexp.MustCompile("device tk/board-01 is offline: it takes the screenshot when it reconnects, until [0-9:]+ \\(command (cmd-[0-9]+)\\); fetch it then with `loa screenshot tk/board-01 --command (cmd-[0-9]+)`").FindStringSubmatch(e)
	if code != 1 || m == nil || m[1] != m[2] {
		t.Fatalf("offline device: %d %q", code, e)
	}
	id := m[1]

	// The device uploads its image; the command fetches it.
	img := image.NewRGBA(image.Rect(0, 0, 32, 18))
	for i := 0; i < 32*18; i++ {
		img.SetRGBA(i%32, i/32, color.RGBA{G: 180, A: 255})
	}
	var pic bytes.Buffer
	png.Encode(&pic, img)
	req, _ := http.NewRequest("POST", url+"/agent/screenshot?command="+id, bytes.NewReader(pic.Bytes()))
	req.Header.Set("Authorization", protocol.FormatDeviceAuth("tk/board-01", secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("device upload: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "shot.png")
	code, out, e = runCLI(env, "screenshot", "tk/board-01", "--command", id, "-o", file)
	if code != 0 || !strings.Contains(out, "screenshot of tk/board-01 (command "+id) || !strings.Contains(out, "32×18") || !strings.Contains(out, "saved to "+file) {
		t.Fatalf("fetch by command: %d %q %q", code, out, e)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, pic.Bytes()) {
		t.Fatalf("saved file: %v", err)
	}
	// --latest, saved under the default name in the working directory.
	t.Chdir(dir)
	if code, out, e = runCLI(env, "screenshot", "tk/board-01", "--latest"); code != 0 {
		t.Fatalf("latest: %d %q", code, e)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "screenshot-tk-board-01-"+id+".png")); err != nil || !bytes.Equal(b, pic.Bytes()) {
		t.Fatalf("default file name: %v\n%s", err, out)
	}
}
