package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// testdata/v1.journal was written by the journal before records became protocol.Confirmation
// (format loa-journal-1): a completed play (acknowledged), a missed one, and a play_now
// command's play left open by a "crash" after one checkpoint.
func TestUpgradeFromV1(t *testing.T) {
	b, err := os.ReadFile("testdata/v1.journal")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "j.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j := open(t, path, Options{DeviceID: "qn/tk/tt/cl-1"})
	recs, err := j.List(0, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("records after the upgrade: %d, %v", len(recs), err)
	}
	at := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	done := recs[0]
	if done.Device != "qn/tk/tt/cl-1" || done.Seq != 1 || done.Output != "speakers" || done.ScheduleID != "dev-cl-1" ||
		done.Revision != 7 || done.Program != "qn/tk/tt/morning" || done.ItemIndex != 1 ||
		done.Item != "sha256:ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12" ||
		!done.Scheduled.Equal(at) || !done.Start.Equal(at.Add(time.Second)) || !done.End.Equal(at.Add(61*time.Second)) ||
		done.Result != protocol.ResultCompleted || done.Clock != protocol.ClockSynced || done.Volume != 0.8 || done.Amplifier != "on" {
		t.Errorf("completed record: %+v", done)
	}
	want := protocol.Proof{FromS: 1.5, PlayedS: 59.5, PeakDBFS: db(-3.5), RMSDBFS: db(-18.25), SilenceS: 0.25, Gaps: 1,
		Underruns: 2, Dropouts: 3, Reconnects: 2, MissingS: 4, FramesDropped: 5}
	if got := done.Proof; got.FromS != want.FromS || got.PlayedS != want.PlayedS || *got.PeakDBFS != *want.PeakDBFS ||
		*got.RMSDBFS != *want.RMSDBFS || got.SilenceS != want.SilenceS || got.Gaps != want.Gaps || got.Underruns != want.Underruns ||
		got.Dropouts != want.Dropouts || got.Reconnects != want.Reconnects || got.MissingS != want.MissingS ||
		got.FramesDropped != want.FramesDropped {
		t.Errorf("completed record's proof: %+v", got)
	}
	missed := recs[1]
	if missed.Result != protocol.ResultMissed || missed.Error != "the agent was off" || missed.Clock != protocol.ClockUnsynced ||
		missed.PeakDBFS != nil || missed.PlayedS != 0 {
		t.Errorf("missed record: %+v", missed)
	}
	cut := recs[2]
	if cut.Result != protocol.ResultInterrupted || cut.PlayedS != 10 || *cut.PeakDBFS != protocol.MinDBFS ||
		cut.CommandID != "c-42" || cut.Program != "command:c-42" || cut.Checkpoint.IsZero() || !cut.End.Equal(cut.Checkpoint) {
		t.Errorf("record left open: %+v", cut)
	}
	if j.Acked() != 1 || j.HighWater() != 3 {
		t.Errorf("acked %d, high water %d", j.Acked(), j.HighWater())
	}
	// What is sent next: the records after the acknowledged one, as they were.
	if next, err := j.Since(1, 0); err != nil || len(next) != 2 || next[0].Seq != 2 {
		t.Errorf("Since(1) = %+v, %v", next, err)
	}
	j.Close()
	// Upgraded once: the file now opens in the current format, records unchanged.
	j = open(t, path, Options{DeviceID: "qn/tk/tt/cl-1"})
	again, _ := j.List(0, 0)
	for i := range again {
		if !sameRecord(again[i], recs[i]) {
			t.Errorf("record %d changed at the second open:\n%+v\n%+v", i+1, again[i], recs[i])
		}
	}
}
