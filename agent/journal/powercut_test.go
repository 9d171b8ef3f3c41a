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
	powercut.SkipInProcess(t)
	backing := t.TempDir()
	mnt := filepath.Join(backing, "mnt")
	pc, err := powercut.Mount(backing, mnt, powercut.Options{})
	if err != nil {
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	j, err := Open(filepath.Join(mnt, "journal.db"), Options{DeviceID: "cluster-07"})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := j.Begin(play("morning", t0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Cut(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	pc.Unmount()
	pc, err = powercut.Mount(backing, mnt, powercut.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Unmount()
	j, err = Open(filepath.Join(mnt, "journal.db"), Options{DeviceID: "cluster-07"})
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
}
