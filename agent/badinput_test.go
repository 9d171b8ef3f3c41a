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
	"github.com/loa-project/loa/content"

	"github.com/loa-project/loa/protocol"
)

// TestAgentBadInput feeds a running agent a bad schedule, one needing content it lacks, a
// file that vanished and a store item that rotted. Each is one clear log line or a failed
// confirmation; the running schedule keeps playing throughout.
func TestAgentBadInput(t *testing.T) {
	b := newBox(t, "")
	tone(t, filepath.Join(b.dir, "media/tick.wav"), 500, 0.5)
	tone(t, filepath.Join(b.dir, "media/gone.wav"), 600, 0.5)
	tone(t, filepath.Join(b.dir, "media/stored.mp3"), 700, 0.5)
	store, err := content.Open(filepath.Join(b.dir, "data/content"), content.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.PutFile(filepath.Join(b.dir, "media/stored.mp3"), content.Ref{})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	schedule := func(rev int, extra string) string {
		return fmt.Sprintf("version: 1\nid: bad\nrevision: %d\ntimezone: UTC\nprograms:\n  - {id: tick, cron: \"*/2 * * * * *\", items: [{file: media/tick.wav}]}\n%s", rev, extra)
	}
	ticks := func(r []journal.Record) int {
		n := 0
		for _, x := range r {
			if x.Program == "tick" && x.Result == protocol.ResultCompleted {
				n++
			}
		}
		return n
	}
	b.writeSchedule(schedule(1, ""))
	b.start()
	b.waitFor("the first tick", 15*time.Second, func(r []journal.Record) bool { return ticks(r) >= 1 })
	keepsPlaying := func(what string) {
		t.Helper()
		n := ticks(b.journal())
		b.waitFor("ticks to go on after "+what, 15*time.Second, func(r []journal.Record) bool { return ticks(r) >= n+2 })
	}

	// 1. A schedule that fails validation.
	b.writeSchedule(schedule(2, "  - {id: late, cron: \"0 61 * * *\", items: [{file: media/tick.wav}]}\n"))
	keepsPlaying("a bad schedule")
	if n := strings.Count(b.logText(), `schedule file refused`); n != 1 {
		t.Errorf("bad schedule: %d log lines, want 1:\n%s", n, b.logText())
	}
	if !strings.Contains(b.logText(), `hour \"61\"`) {
		t.Errorf("the log does not say what is wrong:\n%s", b.logText())
	}

	// 2. A schedule needing content the device does not have.
	missing := "sha256:" + strings.Repeat("ab", 32)
	b.writeSchedule(schedule(3, fmt.Sprintf("  - {id: news, cron: \"0 0 6 * * *\", items: [{content: %q, duration: 1m}]}\n", missing)))
	keepsPlaying("a schedule with missing content")
	if !strings.Contains(b.logText(), "not every item is on this device yet") || !strings.Contains(b.logText(), missing) {
		t.Errorf("the log does not name the missing item:\n%s", b.logText())
	}

	// 3. A file that vanishes after activation, and a stored item that rots: failed records.
	// Far enough ahead that the revision is active well before (on a loaded machine its
	// activation took over 4 s and the play was journalled missed, not failed).
	soon := time.Now().Add(7 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(schedule(4, fmt.Sprintf(
		"  - {id: vanished, at: %q, class: priority, items: [{file: media/gone.wav}]}\n  - {id: rotten, at: %q, class: priority, items: [{content: %q}]}\n",
		at(soon), at(soon.Add(2*time.Second)), stored.String())))
	b.waitFor("revision 4 to be active", 10*time.Second, func([]journal.Record) bool {
		return strings.Contains(b.logText(), `"revision":4`)
	})
	os.Remove(filepath.Join(b.dir, "media/gone.wav"))
	obj := filepath.Join(b.dir, "data/content/objects", stored.Hex())
	if err := os.WriteFile(obj, []byte("rotten bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := b.waitFor("two failed confirmations", 20*time.Second, func(r []journal.Record) bool {
		n := 0
		for _, x := range r {
			if x.Result == protocol.ResultFailed {
				n++
			}
		}
		return n >= 2
	})
	for _, x := range recs {
		if x.Result != protocol.ResultFailed {
			continue
		}
		switch x.Program {
		case "vanished":
			if !strings.Contains(x.Error, "gone.wav") {
				t.Errorf("vanished file: error %q does not name the file", x.Error)
			}
		case "rotten":
			if !strings.Contains(x.Error, stored.Hex()[:12]) {
				t.Errorf("rotten content: error %q does not name the item", x.Error)
			}
		default:
			t.Errorf("unexpected failed record %+v", x)
		}
	}
	keepsPlaying("failed plays")
	b.stop()
	if _, err := os.Stat(obj); err == nil {
		t.Errorf("the rotten store item is still there; it must be removed, never served")
	}

	// 4. A config with an unknown field: the agent refuses to start and says which.
	bad := filepath.Join(b.dir, "bad.yaml")
	os.WriteFile(bad, []byte("device_id: x\ndata_dir: data\nvolum: 3\n"), 0o644)
	out, err := exec.Command(agentBinary(t), "run", "--config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "volum") || !strings.Contains(string(out), "not found") {
		t.Errorf("config with an unknown field: err %v, output %q", err, out)
	}
}
