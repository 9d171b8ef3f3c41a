package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"

	"github.com/loa-project/loa/protocol"
)

// TestAgentSetsDamagedJournalAside: a journal file the SD card tore is set aside (kept for
// recovery) with one ERROR line, a new journal is started, and the schedule plays.
func TestAgentSetsDamagedJournalAside(t *testing.T) {
	b := newBox(t, "")
	data := filepath.Join(b.dir, "data")
	os.MkdirAll(data, 0o755)
	garbage := make([]byte, 16384)
	for i := range garbage {
		garbage[i] = byte(i*13 + 5)
	}
	if err := os.WriteFile(filepath.Join(data, "journal.db"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	tone(t, filepath.Join(b.dir, "media/tick.wav"), 660, 0.8)
	start := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: torn\nrevision: 1\ntimezone: UTC\nprograms:\n  - {id: tick, at: %q, items: [{file: media/tick.wav}]}\n", at(start)))
	b.start()
	recs := b.waitFor("a play in the new journal", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 1 })
	b.stop()
	if r := closed(recs)[0]; r.Result != protocol.ResultCompleted || r.Seq != 1 {
		t.Errorf("first record of the new journal: seq %d %s, want 1 completed", r.Seq, r.Result)
	}
	aside, _ := filepath.Glob(filepath.Join(data, "journal.db.damaged-*"))
	if len(aside) != 1 {
		t.Fatalf("damaged journal set aside as %v, want one file", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); string(kept) != string(garbage) {
		t.Error("the damaged file was not kept as it was")
	}
	if n := strings.Count(b.logText(), `"msg":"the journal file is damaged`); n != 1 {
		t.Errorf("the log says the journal is damaged %d times, want once:\n%s", n, b.logText())
	}
}
