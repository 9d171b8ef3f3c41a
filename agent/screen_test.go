package agent_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"

	"github.com/loa-project/loa/protocol"
)

// TestAgentShowsOnTheScreen: programmes for the screen play through real mpv (null video
// output, paced): a video then a bulletin, a priority bulletin preempting the video, the video
// resuming; each item confirmed from mpv's own events.
func TestAgentShowsOnTheScreen(t *testing.T) {
	for _, tool := range []string{"mpv", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps installs it)", tool)
		}
	}
	b := newBox(t, "outputs: [speakers, screen]\nscreen: {vo: \"null\", mpv_args: [\"--vo-null-fps=25\", \"--hwdec=no\"]}\n")
	video := filepath.Join(b.dir, "media/red.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=320x240:d=3:r=25",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", video).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	start := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: screen\nrevision: 1\ntimezone: UTC\nprograms:\n"+
		"  - {id: news, at: %q, outputs: [screen], max_duration: 20s, items: [{file: media/red.mp4, duration: 3s}, {text: \"Thông báo lịch tiêm chủng\", duration: 2s, ticker: \"Lịch tiêm: 7h sáng thứ Hai\"}]}\n"+
		"  - {id: alert, class: priority, at: %q, outputs: [screen], items: [{text: \"Cảnh báo: nước lên\", duration: 2s}]}\n",
		at(start), at(start.Add(time.Second))))
	b.start()
	recs := b.waitFor("the screen programmes", 40*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 4 })
	b.stop()

	got := map[string]journal.Record{}
	var order []string
	for _, r := range closed(recs) {
		if r.Output != "screen" {
			t.Errorf("record on output %q, want screen", r.Output)
		}
		k := fmt.Sprintf("%s/%d/%s", r.Program, r.ItemIndex, r.Result)
		got[k] = r
		order = append(order, k)
	}
	for _, want := range []struct {
		key        string
		minS, maxS float64
	}{
		{"news/0/preempted", 0.3, 2}, // the video, until the alert takes the screen
		// The bounds tell which part was shown (a whole 2-s item, a cut one), not how fast
		// mpv is: a busy machine shows an item up to a second late and its played time is
		// shorter by that much.
		{"alert/0/completed", 1.0, 3}, // the priority bulletin, its full 2 s
		{"news/0/completed", 0.5, 3},  // the video resumes where it was
		{"news/1/completed", 1.0, 3},  // then the bulletin
	} {
		r, ok := got[want.key]
		if !ok {
			t.Errorf("no %s record; records: %v\n%s", want.key, order, b.logText())
			continue
		}
		if s := protocol.Duration(r.PlayedS).Seconds(); s < want.minS || s > want.maxS {
			t.Errorf("%s shown %.2f s, want %.1f–%.1f s", want.key, s, want.minS, want.maxS)
		}
	}
}
