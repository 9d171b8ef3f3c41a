package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
)

// TestAgentFullDisk puts the data directory on a small tmpfs and fills it while the agent
// plays: the loudspeakers go on, the log says what is wrong, and once space is back the
// journal records plays again with its sequence intact.
func TestAgentFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	b := newBox(t, "")
	data := filepath.Join(b.dir, "data")
	os.MkdirAll(data, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { b.kill(); exec.Command("umount", "-l", data).Run() })
	tone(t, filepath.Join(b.dir, "media/tick.wav"), 500, 0.5)
	b.writeSchedule("version: 1\nid: full\nrevision: 1\ntimezone: UTC\nprograms:\n  - {id: tick, cron: \"*/2 * * * * *\", items: [{file: media/tick.wav}]}\n")
	b.start()
	b.waitFor("a first record", 15*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 1 })

	// Fill the disk to the last byte.
	filler := filepath.Join(data, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	small := make([]byte, 512)
	for {
		g, err := os.OpenFile(filler, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			break
		}
		_, err = g.Write(small)
		g.Close()
		if err != nil {
			break
		}
	}
	b.mu.Lock()
	card := b.captures[len(b.captures)-1]
	b.mu.Unlock()
	heardBefore := card.Frames()
	time.Sleep(5 * time.Second) // two or three ticks with a full disk
	samples, _ := card.Samples()
	if runs := soundRuns(samples[heardBefore*2:], 48000); len(runs) < 2 {
		t.Errorf("with the disk full the speakers played %d ticks in 5 s, want them to go on", len(runs))
	}
	if !strings.Contains(b.logText(), "cannot record") || !strings.Contains(b.logText(), "no space left") {
		t.Errorf("the log does not say the journal could not write for lack of space:\n%s", b.logText())
	}
	if b.cmd == nil || b.cmd.ProcessState != nil {
		t.Fatal("the agent died on a full disk")
	}

	// Space comes back: records resume, numbering without gaps.
	os.Remove(filler)
	before := len(b.journal())
	recs := b.waitFor("records after space came back", 15*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= before+2 })
	b.stop()
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("sequence broken after the full disk: record %d has seq %d\n%s", i+1, r.Seq, dumpRecords(recs))
		}
	}
}
