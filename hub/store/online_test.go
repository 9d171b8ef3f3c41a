package store

import (
	"context"
	"math"
	"testing"
	"time"
)

// Online time is cut at midnight +07, capped at a day for overlapping connections, kept in
// the area the device was in, reported as a share of the period's time past, and pruned.
func TestOnlineTime(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "a", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "b", "quang-nam/tam-ky/tam-phu")
	enrol(t, db, "c", "quang-nam/tam-ky/tam-thanh") // never connected
	vn := time.FixedZone("ICT", 7*3600)
	at := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, vn) }
	span := func(id string, from, to time.Time) { noErr(t, db.AddOnline(ctx, id, from, to)) }
	span("a", at(23, 0), at(24, 0))
	span("a", at(23, 0), at(24, 0)) // an old connection and its successor overlapping: still one day
	span("a", at(24, 22), at(25, 2))
	span("a", at(25, 10), at(25, 12))
	span("b", at(25, 0), at(25, 6))
	noErr(t, db.MoveDevice(ctx, "b", "quang-nam/tam-ky/tam-thanh"))
	span("b", at(25, 12), at(25, 13))
	span("a", at(20, 0), at(20, 0)) // empty: nothing
	if now := clk.Now(); !now.Equal(time.Date(2026, 11, 26, 6, 30, 0, 123456789, vn)) {
		t.Fatalf("the test's clock moved: %v", now)
	}

	// The hand count: 23rd 24 h, 24th 2 h, 25th 2 h + 2 h for a; b 6 h in Tam Phú, 1 h in Tam Thanh.
	period := PeriodFilter{Area: "quang-nam/tam-ky/tam-thanh", From: at(23, 0), To: at(26, 0)}
	rep, err := db.Devices(ctx, period, vn)
	noErr(t, err)
	want := map[string]float64{"a": 30 * 3600, "b": 3600, "c": 0}
	if rep.Elapsed != 3*86400 {
		t.Errorf("elapsed %v s, want 3 days", rep.Elapsed)
	}
	got := map[string]float64{}
	for _, l := range rep.Lines {
		got[l.Device] = l.OnlineSeconds
		if w := want[l.Device] / (3 * 86400); math.Abs(l.OnlineShare-w) > 1e-9 {
			t.Errorf("%s online share %v, want %v", l.Device, l.OnlineShare, w)
		}
	}
	for id, w := range want {
		if math.Abs(got[id]-w) > 1e-6 {
			t.Errorf("%s online %v s in Tam Thanh, want %v", id, got[id], w)
		}
	}
	rep, err = db.Devices(ctx, PeriodFilter{Area: "quang-nam/tam-ky/tam-phu", From: at(25, 0), To: at(26, 0)}, vn)
	noErr(t, err)
	if len(rep.Lines) != 1 || rep.Lines[0].Device != "b" || rep.Lines[0].OnlineSeconds != 6*3600 {
		t.Errorf("Tam Phú keeps b's 6 h from before it moved: %+v", rep.Lines)
	}
	// A period reaching past now: its share is of the time already past.
	rep, err = db.Devices(ctx, PeriodFilter{Area: "quang-nam/tam-ky/tam-thanh", From: at(25, 0), To: at(28, 0)}, vn)
	noErr(t, err)
	if e := clk.Now().Sub(at(25, 0)).Seconds(); rep.Elapsed != e {
		t.Errorf("elapsed %v s, want %v (up to now)", rep.Elapsed, e)
	}

	plan, err := db.Plan(ctx, PlanOptions{PeriodFilter: PeriodFilter{Area: "quang-nam/tam-ky", From: at(23, 0), To: at(26, 0)}})
	noErr(t, err)
	if w := (30*3600 + 6*3600 + 3600.0) / (3 * 3 * 86400); plan.Devices != 3 || math.Abs(plan.OnlineShare-w) > 1e-9 {
		t.Errorf("plan: %d devices online %v of the time, want 3 and %v", plan.Devices, plan.OnlineShare, w)
	}

	n, err := db.PruneOnline(ctx, at(25, 0))
	noErr(t, err)
	if n != 2 { // a's 23rd and 24th
		t.Errorf("pruned %d device-days, want 2", n)
	}
	rep, err = db.Devices(ctx, period, vn)
	noErr(t, err)
	for _, l := range rep.Lines {
		if l.Device == "a" && l.OnlineSeconds != 4*3600 {
			t.Errorf("after pruning a has %v s, want the 25th's 4 h", l.OnlineSeconds)
		}
	}
}

// Settings keep their last value and when it was set.
func TestSettings(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	_, err := db.GetSetting(ctx, "report.target")
	wantErr(t, err, ErrNotFound, "a setting never set")
	noErr(t, db.SetSetting(ctx, "report.target", `{"a":1}`))
	clk.Advance(time.Hour)
	noErr(t, db.SetSetting(ctx, "report.target", `{"a":2}`))
	s, err := db.GetSetting(ctx, "report.target")
	noErr(t, err)
	if s.Value != `{"a":2}` || !s.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("setting %+v, want the second value set at %v", s, clk.Now())
	}
	wantErr(t, db.SetSetting(ctx, "report.target", "bad\x00"), ErrInvalid, "a value with a NUL")
}
