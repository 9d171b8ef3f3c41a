package e2e

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// TestScreenshotEndToEnd: a board shows a red bulletin pushed by the hub; `loa screenshot`
// issues the command, the agent takes the image with mpv and uploads it, and the CLI saves a
// PNG whose pixels are that red. A cluster without a screen fails the command and the CLI
// says so.
func TestScreenshotEndToEnd(t *testing.T) {
	t.Parallel() // waits more than it works, and measures no time: beside another such test
	if testing.Short() {
		t.Skip("real processes and mpv for about 15 s")
	}
	if _, err := exec.LookPath("mpv"); err != nil {
		t.Skip("mpv is not installed (Debian: apt-get install mpv)")
	}
	bins := build(t)
	env, hubURL, keyLine, hub := hubEnv(t, bins)
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secretRe := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`)
	sb := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/board-01", "--area", "qn/tk"))[1]
	sc := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-02", "--area", "qn/tk"))[1]

	board := newAgent(t, bins, "qn/tk/board-01", sb, hubURL, keyLine)
	cfg, err := os.ReadFile(board.config)
	if err != nil {
		t.Fatal(err)
	}
	// A small canvas keeps mpv cheap; the null video output is paced like a display.
	cfg = append(cfg, []byte("outputs: [speakers, screen]\n"+
		"screen: {vo: \"null\", width: 320, height: 180, background: \"#C81E1E\", mpv_args: [\"--vo-null-fps=25\", \"--hwdec=no\"]}\n")...)
	if err := os.WriteFile(board.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cluster := newAgent(t, bins, "qn/tk/cl-02", sc, hubURL, keyLine)
	board.start(t, bins)
	cluster.start(t, bins)
	logs := func() string {
		return "hub:\n" + hub.String() + "\nboard:\n" + board.proc.String() + "\ncluster:\n" + cluster.proc.String()
	}

	// A bulletin on the board's screen from now on for ten minutes (a start a second ago
	// plays: it is within the agent's grace).
	doc := fmt.Sprintf(`version: 1
id: board-e2e
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - id: bulletin
    title: Bản tin
    class: normal
    at: %s
    outputs: [screen]
    items:
      - text: "Thông báo"
        duration: 10m
`, time.Now().Add(-time.Second).Format(time.RFC3339))
	docFile := filepath.Join(t.TempDir(), "board.yaml")
	os.WriteFile(docFile, []byte(doc), 0o644)
	testkit.Run(t, env, bins.cli, "schedule", "push", docFile, "--to", "qn/tk/board-01")
	waitFor(t, "the bulletin on the board's screen", 30*time.Second, func() bool {
		for _, r := range board.records(bins) {
			if strings.HasSuffix(r.Program, "/bulletin") {
				return true
			}
		}
		return false
	}, logs)

	dir := t.TempDir()
	shot := filepath.Join(dir, "board.png")
	start := time.Now()
	cmd := exec.Command(bins.cli, "screenshot", "qn/tk/board-01", "-o", shot, "--wait", "20s")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loa screenshot: %v\n%s\n%s", err, out, logs())
	}
	t.Logf("loa screenshot took %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	if !regexp.MustCompile(`screenshot of qn/tk/board-01 \(command cmd-[0-9]+, taken .*\): 320×180, [0-9]+ bytes, saved to ` + regexp.QuoteMeta(shot)).Match(out) {
		t.Errorf("loa screenshot said: %s", out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("saved screenshot: %v", err)
	}
	// The bulletin's background fills most of the canvas (the white text is in the middle).
	b := img.Bounds()
	red, n := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			n++
			if near(img, x, y, 0xC8, 0x1E, 0x1E) {
				red++
			}
		}
	}
	if red*10 < n*6 {
		t.Errorf("%d of %d sampled pixels are the bulletin's red #C81E1E; corner pixel %v", red, n, img.At(b.Min.X+2, b.Min.Y+2))
	}
	// The agent removed its temporary file; the hub keeps the image under the device and command.
	if left, _ := filepath.Glob(filepath.Join(board.dir, "data", "screenshot-*")); len(left) != 0 {
		t.Errorf("temporary screenshots left on the device: %v", left)
	}

	// The cluster has no screen: the command fails and the CLI says why.
	cmd = exec.Command(bins.cli, "screenshot", "qn/tk/cl-02", "-o", filepath.Join(dir, "cl.png"))
	cmd.Env = append(os.Environ(), env...)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "device qn/tk/cl-02 could not take a screenshot") || !strings.Contains(string(out), "this device has no screen") {
		t.Errorf("screenshot of a cluster without a screen: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "cl.png")); err == nil {
		t.Error("a file was saved for a failed screenshot")
	}
}

// near reports whether the pixel at x, y is within 24 of r, g, b in each channel (PNG of a
// scaled, chroma-subsampled frame is not exact).
func near(img image.Image, x, y int, r, g, b uint8) bool {
	pr, pg, pb, _ := img.At(x, y).RGBA()
	d := func(a uint32, want uint8) bool {
		v := int(a>>8) - int(want)
		return v > -24 && v < 24
	}
	return d(pr, r) && d(pg, g) && d(pb, b)
}
