package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestDeviceStates checks each alarm condition the store judges, the filters, and the page
// read back by id; run on both engines (LOA_STORE=postgres).
func TestDeviceStates(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	tt, tp := "quang-nam/tam-ky/tam-thanh", "quang-nam/tam-ky/tam-phu"
	for _, id := range []string{"tt/quiet", "tt/skewed", "tt/relay", "tt/disk", "tt/refused", "tt/never", "tt/old"} {
		enrol(t, db, id, tt)
	}
	must[Device](t)(db.EnrolDevice(ctx, Device{ID: "tp/board", Name: "Bảng chợ", Area: tp, Kind: KindBoard}, hashOf("b")))
	noErr(t, db.UpdateStatus(ctx, "tt/old", Status{SoftwareVersion: "1.0"}))
	clk.Advance(48 * time.Hour) // tt/old seen two days ago, tt/never enrolled two days ago
	enrol(t, db, "tt/new", tt)  // enrolled just now, never seen: no alarm yet
	noErr(t, db.UpdateStatus(ctx, "tt/quiet", Status{NowPlaying: "morning", SoftwareVersion: "1.2", DiskFreeBytes: 5 << 30}))
	noErr(t, db.UpdateStatus(ctx, "tt/skewed", Status{ClockOffset: -7 * time.Second, SoftwareVersion: "1.2"}))
	noErr(t, db.UpdateStatus(ctx, "tt/relay", Status{Parts: Parts{Relay: &Part{State: "fault", Error: "open /dev/loa-relay: no such file"}, Sign: &Part{State: "ok"}}}))
	noErr(t, db.UpdateStatus(ctx, "tt/disk", Status{DiskFreeBytes: 10 << 20}))
	noErr(t, db.UpdateStatus(ctx, "tt/refused", Status{Parts: Parts{Sign: &Part{State: "ok"}}}))
	noErr(t, db.UpdateStatus(ctx, "tp/board", Status{SoftwareVersion: "1.3"}))
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/refused", Revision: 1, Document: []byte("doc")}))
	must[Delivery](t)(db.MarkDelivery(ctx, "tt/refused", 1, StateRefused, "bad"))
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/refused", Revision: 2, Document: []byte("doc")}))
	must[Delivery](t)(db.MarkDelivery(ctx, "tt/refused", 2, StateRefused, "bad again"))
	// A refusal of an older revision is no alarm once a newer one is taken.
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/quiet", Revision: 1, Document: []byte("doc")}))
	must[Delivery](t)(db.MarkDelivery(ctx, "tt/quiet", 1, StateRefused, "bad"))
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/quiet", Revision: 2, Document: []byte("doc")}))
	must[Delivery](t)(db.MarkDelivery(ctx, "tt/quiet", 2, StateActive, ""))
	noErr(t, db.RevokeDevice(ctx, "tt/new"))

	rules := AlarmRules{LowDisk: 200 << 20, ClockSkew: 5 * time.Second}
	dayAgo := clk.Now().Add(-24 * time.Hour)
	all := must[[]DeviceState](t)(db.DeviceStates(ctx, DeviceQuery{Area: "quang-nam", Rules: rules}))
	got := map[string]string{}
	var ids []string
	for _, s := range all {
		ids = append(ids, s.ID)
		got[s.ID] = fmt.Sprintf("revoked=%v playing=%v stale=%v skewed=%v faulty=%v", s.Revoked, s.Playing, s.Stale(dayAgo), s.Skewed, s.Faulty)
	}
	want := map[string]string{
		"tp/board":   "revoked=false playing=false stale=false skewed=false faulty=false",
		"tt/disk":    "revoked=false playing=false stale=false skewed=false faulty=true",
		"tt/never":   "revoked=false playing=false stale=true skewed=false faulty=false",
		"tt/new":     "revoked=true playing=false stale=false skewed=false faulty=false",
		"tt/old":     "revoked=false playing=false stale=true skewed=false faulty=false",
		"tt/quiet":   "revoked=false playing=true stale=false skewed=false faulty=false",
		"tt/refused": "revoked=false playing=false stale=false skewed=false faulty=true",
		"tt/relay":   "revoked=false playing=false stale=false skewed=false faulty=true",
		"tt/skewed":  "revoked=false playing=false stale=false skewed=true faulty=false",
	}
	if !slices.IsSorted(ids) || len(ids) != len(want) {
		t.Errorf("ids %v: want the %d devices in id order", ids, len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %s, want %s", id, got[id], w)
		}
	}

	for _, c := range []struct {
		q    DeviceQuery
		want []string
	}{
		{DeviceQuery{Area: tp}, []string{"tp/board"}},
		{DeviceQuery{Area: "quang-nam", Kind: string(KindBoard)}, []string{"tp/board"}},
		{DeviceQuery{Area: "quang-nam/tam-ky", Software: "1.2"}, []string{"tt/quiet", "tt/skewed"}},
		{DeviceQuery{Area: "quang-nam/tam", Software: "1.2"}, nil}, // a prefix of a name is not its subtree
		{DeviceQuery{Area: "quang-nam/duy-hai"}, nil},
		{DeviceQuery{IDs: []string{"tt/relay", "tp/board", "nobody"}}, []string{"tp/board", "tt/relay"}},
		{DeviceQuery{Area: tp, IDs: []string{"tt/relay", "tp/board"}}, []string{"tp/board"}},
	} {
		var ids []string
		for _, s := range must[[]DeviceState](t)(db.DeviceStates(ctx, c.q)) {
			ids = append(ids, s.ID)
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%+v: %v, want %v", c.q, ids, c.want)
		}
	}
	if v := must[[]string](t)(db.SoftwareVersions(ctx, "quang-nam")); !slices.Equal(v, []string{"1.0", "1.2", "1.3"}) {
		t.Errorf("versions %v", v)
	}
	if v := must[[]string](t)(db.SoftwareVersions(ctx, tp)); !slices.Equal(v, []string{"1.3"}) {
		t.Errorf("versions under %s: %v", tp, v)
	}
	page := must[[]Device](t)(db.DevicesByID(ctx, []string{"tt/skewed", "tp/board", "nobody"}))
	if len(page) != 2 || page[0].ID != "tp/board" || page[1].ID != "tt/skewed" || page[1].Status.SoftwareVersion != "1.2" {
		t.Errorf("DevicesByID: %+v", page)
	}
}

// TestConfirmationFiltersAndCursor pages newest first with the cursor through plays filtered
// by programme and content, and checks the pages together are the unpaged list.
func TestConfirmationFiltersAndCursor(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tt/a", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tt/b", "quang-nam/tam-ky/tam-thanh")
	var a, b []Confirmation
	for seq := int64(1); seq <= 30; seq++ {
		c := conf(seq)
		if seq%4 == 0 {
			c.Program = "evening"
		}
		if seq == 30 { // nothing started nor scheduled: no time, last in newest-first order
			c.Start, c.Scheduled, c.End, c.Result = time.Time{}, time.Time{}, time.Time{}, "missed"
		}
		a = append(a, c)
		d := conf(seq) // the same times on the other device: ties broken by device, then seq
		b = append(b, d)
	}
	must[int64](t)(db.AddConfirmations(ctx, "tt/a", a))
	must[int64](t)(db.AddConfirmations(ctx, "tt/b", b))
	item := refOf("item1")
	for _, f := range []ConfirmationFilter{
		{Area: "quang-nam"},
		{Area: "quang-nam", Program: "morning"},
		{Area: "quang-nam/tam-ky", Program: "evening", Item: item},
		{DeviceID: "tt/a", Item: item},
	} {
		f.Newest = true
		whole := must[[]Confirmation](t)(db.ListConfirmations(ctx, f))
		if len(whole) == 0 {
			t.Fatalf("%+v: nothing", f)
		}
		for _, c := range whole {
			if f.Program != "" && c.Program != f.Program || f.Item != "" && c.Item != f.Item {
				t.Fatalf("%+v: got %s:%d of %s, %s", f, c.Device, c.Seq, c.Program, c.Item)
			}
		}
		var paged []Confirmation
		for page := 0; ; page++ {
			f.Limit = 7
			got := must[[]Confirmation](t)(db.ListConfirmations(ctx, f))
			paged = append(paged, got...)
			if len(got) < f.Limit || page > 20 {
				break
			}
			last := got[len(got)-1]
			f.After = &ConfirmationKey{Device: last.Device, Seq: int64(last.Seq)}
		}
		if len(paged) != len(whole) {
			t.Fatalf("%+v: %d rows paged, %d whole", f, len(paged), len(whole))
		}
		for i := range whole {
			if paged[i].Device != whole[i].Device || paged[i].Seq != whole[i].Seq {
				t.Fatalf("%+v: row %d paged %s:%d, whole %s:%d", f, i, paged[i].Device, paged[i].Seq, whole[i].Device, whole[i].Seq)
			}
		}
	}
	_, err := db.ListConfirmations(ctx, ConfirmationFilter{Newest: true, Limit: 5, After: &ConfirmationKey{Device: "tt/a", Seq: 99}})
	wantErr(t, err, ErrNotFound, "cursor past no confirmation")
}
