package store

import (
	"context"
	"testing"
	"time"
)

// TestPruneEffective: beyond the newest keep revisions of each device, old ones go with their
// signed documents, except the newest one the device reported active.
func TestPruneEffective(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tt/cl-1", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tt/cl-2", "quang-nam/tam-ky/tam-thanh")
	for rev := int64(1); rev <= 8; rev++ {
		must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/cl-1", Revision: rev, Document: []byte("doc")}))
	}
	for rev := int64(1); rev <= 2; rev++ {
		must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/cl-2", Revision: rev, Document: []byte("doc")}))
	}
	// cl-1 went offline after activating revision 3: 4..8 were never active.
	must[Delivery](t)(db.MarkDelivery(ctx, "tt/cl-1", 3, StateActive, ""))
	n := must[int64](t)(db.PruneEffective(ctx, 3))
	if n != 4 { // 1, 2, 4, 5 of cl-1
		t.Errorf("pruned %d revisions, want 4", n)
	}
	for _, c := range []struct {
		dev  string
		rev  int64
		kept bool
	}{{"tt/cl-1", 1, false}, {"tt/cl-1", 2, false}, {"tt/cl-1", 3, true}, {"tt/cl-1", 4, false}, {"tt/cl-1", 5, false},
		{"tt/cl-1", 6, true}, {"tt/cl-1", 8, true}, {"tt/cl-2", 1, true}, {"tt/cl-2", 2, true}} {
		_, err := db.Effective(ctx, c.dev, c.rev)
		if (err == nil) != c.kept {
			t.Errorf("%s revision %d: kept=%v, want %v (%v)", c.dev, c.rev, err == nil, c.kept, err)
		}
	}
	var docs int
	noErr(t, db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM effective_documents").Scan(&docs))
	if docs != 6 {
		t.Errorf("%d signed documents left, want 6 (one per kept revision)", docs)
	}
	if a := must[EffectiveSchedule](t)(db.LatestActiveEffective(ctx, "tt/cl-1")); a.Revision != 3 {
		t.Errorf("newest active revision after pruning: %d, want 3", a.Revision)
	}
	// A new revision still goes above the newest.
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/cl-1", Revision: 9, Document: []byte("doc")}))
}

// TestPruneCommands: commands that expired before the cut go with their parts and outcomes;
// the newest (highest seq) stays whatever its age, so seq keeps rising after a restart.
func TestPruneCommands(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tt/cl-1", "quang-nam/tam-ky/tam-thanh")
	old := clk.Now()
	noErr(t, db.AddCommand(ctx, testCommand("cmd-1", 1, DeviceTarget("tt/cl-1"), "quang-nam/tam-ky/tam-thanh", old, "tt/cl-1")))
	noErr(t, db.AddCommand(ctx, testCommand("cmd-2", 2, DeviceTarget("tt/cl-1"), "quang-nam/tam-ky/tam-thanh", old, "tt/cl-1")))
	clk.Advance(60 * 24 * time.Hour)
	n := must[int64](t)(db.PruneCommands(ctx, clk.Now().Add(-30*24*time.Hour)))
	if n != 1 {
		t.Errorf("pruned %d commands, want 1", n)
	}
	if _, err := db.GetCommand(ctx, "cmd-1", ""); err == nil {
		t.Error("cmd-1 expired long ago and is still there")
	}
	if _, err := db.GetCommand(ctx, "cmd-2", ""); err != nil {
		t.Errorf("the newest command was pruned: %v", err)
	}
	var rows int
	noErr(t, db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM command_devices WHERE command_id = 'cmd-1'").Scan(&rows))
	if rows != 0 {
		t.Errorf("%d outcome rows of cmd-1 left", rows)
	}
	if last := must[int64](t)(db.LastCommandSeq(ctx)); last != 2 {
		t.Errorf("last seq %d after pruning, want 2", last)
	}
}
