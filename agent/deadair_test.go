package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/protocol"
)

// TestDeadAirSkipsToTheNextItem: a programme's file that is silence is ended after
// audio.dead_air.after, recorded failed saying "dead air", and the programme goes on with its
// next item, which is heard; the agent raises the alarm (log, heartbeat part) and clears it
// when sound comes back.
func TestDeadAirSkipsToTheNextItem(t *testing.T) {
	b := newBox(t, "")
	cfg, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(b.config, []byte(strings.Replace(string(cfg), "audio: {output: alsa, buffer: 300ms}",
		"audio: {output: alsa, buffer: 300ms, dead_air: {after: 1s, level_dbfs: -50}}", 1)), 0o644)
	silent := filepath.Join(b.dir, "media/silent.wav")
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "2", "-b", "16", silent, "trim", "0", "4").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	tone(t, filepath.Join(b.dir, "media/after.wav"), 600, 1.5)
	base := time.Now().Truncate(time.Second).Add(4 * time.Second)
	b.writeSchedule(fmt.Sprintf(`version: 1
id: dead
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - {id: news, at: %q, items: [{file: media/silent.wav}, {file: media/after.wav}]}
`, at(base)))
	b.start()
	recs := b.waitFor("both items closed", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 2 })
	time.Sleep(time.Second) // the card plays out what was handed to it
	b.stop()
	if len(recs) != 2 {
		t.Fatalf("journal has %d records, want 2:\n%s", len(recs), dumpRecords(recs))
	}
	dead, next := recs[0], recs[1]
	if dead.Result != protocol.ResultFailed || !strings.Contains(dead.Error, "dead air") {
		t.Errorf("the silent item: %s %q, want failed saying dead air", dead.Result, dead.Error)
	}
	if d := protocol.Duration(dead.PlayedS); d < 900*time.Millisecond || d > 2*time.Second {
		t.Errorf("the silent item played %s before it was ended, want about 1 s (not its 4 s)", d)
	}
	if next.Result != protocol.ResultCompleted || next.ItemIndex != 1 {
		t.Errorf("the next item: %s item %d, want item 1 completed", next.Result, next.ItemIndex)
	}
	if next.Start.Sub(dead.Start) > 3*time.Second {
		t.Errorf("the next item began %s after the silent one: it waited for the silence to end", next.Start.Sub(dead.Start))
	}
	log := b.logText()
	raised, cleared := strings.Index(log, "dead air: an item was silent too long"), strings.Index(log, "sound is back after dead air")
	if raised < 0 || cleared < raised {
		t.Errorf("the log does not raise the dead-air alarm and then clear it (at %d and %d):\n%s", raised, cleared, log)
	}
	samples, _ := b.captures[0].Samples()
	if runs := soundRuns(samples, 48000); len(runs) != 1 || runs[0] < 1400*time.Millisecond {
		t.Errorf("the card heard %v, want the 1.5 s tone after the silence", runs)
	}
}
