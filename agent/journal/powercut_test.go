package journal

import (
	"path/filepath"
	"testing"

	"github.com/loa-project/loa/internal/powercut"
	"github.com/loa-project/loa/protocol"
)

// TestNewJournalSurvivesPowerCut: a record Begin said was on disk is there after a power cut
// even when the journal file was created just before (its name needs the directory's fsync).
func TestNewJournalSurvivesPowerCut(t *testing.T) {
	var seq uint64
	powercut.AcrossACut(t, func(mnt string) func() {
		j, err := Open(filepath.Join(mnt, "journal.db"), Options{DeviceID: "cluster-07"})
		if err != nil {
			t.Fatal(err)
		}
		if seq, err = j.Begin(play("morning", t0)); err != nil {
			t.Fatal(err)
		}
		return func() { j.Close() }
	}, func(mnt string) {
		j, err := Open(filepath.Join(mnt, "journal.db"), Options{DeviceID: "cluster-07"})
		if err != nil {
			t.Fatalf("the journal does not open after the cut: %v", err)
		}
		defer j.Close()
		r, err := j.Get(seq)
		if err != nil {
			t.Fatalf("record %d, begun before the power cut, is gone: %v", seq, err)
		}
		if r.Result != protocol.ResultInterrupted || r.Program != "morning" {
			t.Errorf("record after the cut: %s %s, want morning interrupted", r.Program, r.Result)
		}
	})
}
