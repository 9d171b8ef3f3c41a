package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// TestPicturesEndToEnd: staff upload a WebM video and a PNG still to the hub's library, push a
// programme of both to a board's screen; the agent fetches them, mpv shows them (paced null
// video output), and the hub receives a screen confirmation per item, the video's length from
// the library, the still for its written duration.
func TestPicturesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes and mpv for about 15 s")
	}
	for _, tool := range []string{"mpv", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps installs it)", tool)
		}
	}
	bins := build(t)
	env, hubURL, keyLine, hub := hubEnv(t, bins)
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(
		testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/board-01", "--area", "qn/tk"))[1]
	board := newAgent(t, bins, "qn/tk/board-01", secret, hubURL, keyLine)
	cfg, err := os.ReadFile(board.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, []byte("outputs: [speakers, screen]\n"+
		"screen: {vo: \"null\", width: 320, height: 180, mpv_args: [\"--vo-null-fps=25\", \"--hwdec=no\"]}\n")...)
	os.WriteFile(board.config, cfg, 0o644)
	board.start(t, bins)
	logs := func() string { return "hub:\n" + hub.String() + "\nboard:\n" + board.proc.String() }

	dir := t.TempDir()
	media := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), p)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v %s", name, err, out)
		}
		return p
	}
	refRe := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	video := refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add",
		media("clip.webm", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=2", "-c:v", "libvpx", "-b:v", "500k"), "--title", "Phim tuyên truyền"))
	still := refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add",
		media("notice.png", "-f", "lavfi", "-i", "color=c=blue:s=320x180", "-frames:v", "1"), "--title", "Thông báo"))
	if video == "" || still == "" {
		t.Fatalf("uploads gave refs %q and %q\n%s", video, still, logs())
	}
	doc := fmt.Sprintf(`version: 1
id: pictures
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - id: screen-session
    at: %s
    outputs: [screen]
    items:
      - content: %s
      - content: %s
        duration: 2s
`, time.Now().Add(4*time.Second).Format(time.RFC3339), video, still)
	docFile := filepath.Join(dir, "pictures.yaml")
	os.WriteFile(docFile, []byte(doc), 0o644)
	testkit.Run(t, env, bins.cli, "schedule", "push", docFile, "--to", "qn/tk/board-01")

	type conf struct {
		Program string  `json:"program"`
		Output  string  `json:"output"`
		Item    string  `json:"item"`
		Result  string  `json:"result"`
		PlayedS float64 `json:"played_s"`
	}
	var got []conf
	waitFor(t, "two screen confirmations at the hub", 60*time.Second, func() bool {
		got = nil
		json.Unmarshal([]byte(testkit.Run(t, env, bins.cli, "confirmations", "--json")), &got)
		return len(got) >= 2
	}, logs)
	want := map[string][2]float64{video: {1.5, 3}, still: {1.5, 3}}
	for _, c := range got {
		r, ok := want[c.Item]
		if !ok || c.Output != "screen" || c.Result != "completed" || !strings.HasSuffix(c.Program, "screen-session") {
			t.Errorf("confirmation %+v: want a completed screen item of the session", c)
			continue
		}
		if c.PlayedS < r[0] || c.PlayedS > r[1] {
			t.Errorf("%s shown %.2f s, want %.1f–%.1f s", c.Item, c.PlayedS, r[0], r[1])
		}
		delete(want, c.Item)
	}
	if len(want) != 0 {
		t.Errorf("no confirmation for %v; got %+v\n%s", want, got, logs())
	}
}
