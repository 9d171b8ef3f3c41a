package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSchedules(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tam-thanh/cl-07", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tam-phu/cl-01", "quang-nam/tam-ky/tam-phu")

	// Bytes are kept exactly, comments and all.
	doc := []byte("version: 1\nid: relay # tiếp sóng\r\nrevision: 1\n\x00binary-safe")
	s1 := must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), ID: "province-relay", Document: doc, Author: "admin"}))
	if s1.Revision != 1 || !s1.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("first schedule: %+v", s1)
	}
	doc[0] = 'X' // the store must have copied it
	got := must[Schedule](t)(db.LatestSchedule(ctx, AreaTarget("quang-nam")))
	if !bytes.HasPrefix(got.Document, []byte("version: 1\nid: relay # tiếp sóng\r\n")) || !bytes.HasSuffix(got.Document, []byte("\x00binary-safe")) {
		t.Fatalf("document changed: %q", got.Document)
	}
	clk.Advance(time.Minute)
	s2 := must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), ID: "province-relay", Document: []byte("r2"), Author: "admin"}))
	if s2.Revision != 2 {
		t.Fatalf("auto revision: %d", s2.Revision)
	}
	s10 := must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), Revision: 10, ID: "province-relay", Document: []byte("r10"), Author: "admin"}))
	if s10.Revision != 10 {
		t.Fatalf("given revision: %d", s10.Revision)
	}
	_, err := db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), Revision: 10, ID: "x", Document: []byte("x"), Author: "a"})
	wantErr(t, err, ErrStaleRevision, "equal revision")
	_, err = db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), Revision: 3, ID: "x", Document: []byte("x"), Author: "a"})
	wantErr(t, err, ErrStaleRevision, "older revision")
	if got := must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), ID: "x", Document: []byte("r11"), Author: "a"})); got.Revision != 11 {
		t.Fatalf("auto revision after 10: %d", got.Revision)
	}
	if got := must[Schedule](t)(db.ScheduleRevision(ctx, AreaTarget("quang-nam"), 2)); string(got.Document) != "r2" || got.Author != "admin" {
		t.Fatalf("revision 2: %+v", got)
	}
	_, err = db.ScheduleRevision(ctx, AreaTarget("quang-nam"), 5)
	wantErr(t, err, ErrNotFound, "missing revision")

	_, err = db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam/nowhere"), ID: "x", Document: []byte("x"), Author: "a"})
	wantErr(t, err, ErrNotFound, "unknown area target")
	_, err = db.PutSchedule(ctx, Schedule{Target: DeviceTarget("tam-thanh/cl-99"), ID: "x", Document: []byte("x"), Author: "a"})
	wantErr(t, err, ErrNotFound, "unknown device target")
	_, err = db.PutSchedule(ctx, Schedule{Target: Target{"group", "x"}, ID: "x", Document: []byte("x"), Author: "a"})
	wantErr(t, err, ErrInvalid, "unknown target kind")
	_, err = db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), ID: "x", Author: "a"})
	wantErr(t, err, ErrInvalid, "empty document")
	_, err = db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), ID: "x", Document: []byte("x")})
	wantErr(t, err, ErrInvalid, "no author")
	_, err = db.LatestSchedule(ctx, AreaTarget("quang-nam/duy-hai"))
	wantErr(t, err, ErrNotFound, "no schedule yet")

	// Revisions are per target: the commune and the device start at 1 on their own.
	c1 := must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam/tam-ky/tam-thanh"), ID: "commune-tam-thanh", Document: []byte("sessions"), Author: "lan"}))
	d1 := must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: DeviceTarget("tam-thanh/cl-07"), ID: "cl-07-extra", Document: []byte("extra"), Author: "lan"}))
	if c1.Revision != 1 || d1.Revision != 1 {
		t.Fatalf("per-target revisions: commune %d, device %d", c1.Revision, d1.Revision)
	}
	// An area and a device may share an id string; their schedules stay apart.
	must[Area](t)(db.AddArea(ctx, Area{ID: "tam-thanh", Name: "confusable root"}))
	must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("tam-thanh"), ID: "other", Document: []byte("other"), Author: "a"}))

	var order []string
	for _, s := range must[[]Schedule](t)(db.SchedulesForDevice(ctx, "tam-thanh/cl-07")) {
		order = append(order, s.Target.String()+"@"+string(s.Document))
	}
	if got := strings.Join(order, " "); got != "area:quang-nam@r11 area:quang-nam/tam-ky/tam-thanh@sessions device:tam-thanh/cl-07@extra" {
		t.Fatalf("schedules for cl-07: %s", got)
	}
	order = nil
	for _, s := range must[[]Schedule](t)(db.SchedulesForDevice(ctx, "tam-phu/cl-01")) {
		order = append(order, s.Target.String()+"@"+string(s.Document))
	}
	if got := strings.Join(order, " "); got != "area:quang-nam@r11" {
		t.Fatalf("schedules for cl-01: %s", got)
	}
	_, err = db.SchedulesForDevice(ctx, "nope")
	wantErr(t, err, ErrNotFound, "schedules for unknown device")
}

func TestEffectiveAndDelivery(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tam-thanh/cl-07", "quang-nam/tam-ky/tam-thanh")
	const dev = "tam-thanh/cl-07"

	_, err := db.LatestEffective(ctx, dev)
	wantErr(t, err, ErrNotFound, "no effective schedule yet")
	src := []SourceRevision{{AreaTarget("quang-nam"), 3}, {AreaTarget("quang-nam/tam-ky/tam-thanh"), 7}}
	e1 := must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev, Revision: 1, Document: []byte(`{"revision":1}`), Signature: []byte("sig1"), Sources: src}))
	if e1.Delivery.State != StateComposed || !e1.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("new effective: %+v", e1)
	}
	_, err = db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev, Revision: 1, Document: []byte("x")})
	wantErr(t, err, ErrStaleRevision, "same effective revision")
	_, err = db.AddEffective(ctx, EffectiveSchedule{DeviceID: "nope", Revision: 1, Document: []byte("x")})
	wantErr(t, err, ErrNotFound, "unknown device")
	_, err = db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev, Revision: 0, Document: []byte("x")})
	wantErr(t, err, ErrInvalid, "revision 0")

	sent := clk.Advance(time.Second)
	must[Delivery](t)(db.MarkDelivery(ctx, dev, 1, StateSent, ""))
	recv := clk.Advance(time.Second)
	must[Delivery](t)(db.MarkDelivery(ctx, dev, 1, StateReceived, ""))
	clk.Advance(time.Second)
	d := must[Delivery](t)(db.MarkDelivery(ctx, dev, 1, StateSent, "")) // a resend keeps the first time
	if d.State != StateReceived || !d.SentAt.Equal(sent) || !d.ReceivedAt.Equal(recv) {
		t.Fatalf("after resend: %+v", d)
	}
	ready := clk.Advance(time.Minute)
	must[Delivery](t)(db.MarkDelivery(ctx, dev, 1, StateContentReady, ""))
	active := clk.Advance(time.Second)
	d = must[Delivery](t)(db.MarkDelivery(ctx, dev, 1, StateActive, ""))
	if d.State != StateActive || !d.ContentReadyAt.Equal(ready) || !d.ActiveAt.Equal(active) || !d.RefusedAt.IsZero() {
		t.Fatalf("active: %+v", d)
	}
	got := must[EffectiveSchedule](t)(db.LatestEffective(ctx, dev))
	if got.Revision != 1 || string(got.Document) != `{"revision":1}` || string(got.Signature) != "sig1" ||
		len(got.Sources) != 2 || got.Sources[1] != src[1] || got.Delivery != d {
		t.Fatalf("latest effective: %+v", got)
	}

	// Revision 2 is refused; revision 1 stays the active one.
	clk.Advance(time.Hour)
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev, Revision: 2, Document: []byte(`{"revision":2}`)}))
	must[Delivery](t)(db.MarkDelivery(ctx, dev, 2, StateSent, ""))
	_, err = db.MarkDelivery(ctx, dev, 2, StateRefused, "")
	wantErr(t, err, ErrInvalid, "refusal without a reason")
	refused := clk.Advance(time.Second)
	d = must[Delivery](t)(db.MarkDelivery(ctx, dev, 2, StateRefused, "bad signature: key 3f2a… not trusted"))
	clk.Advance(time.Second)
	must[Delivery](t)(db.MarkDelivery(ctx, dev, 2, StateRefused, "second reason"))
	got = must[EffectiveSchedule](t)(db.LatestEffective(ctx, dev))
	if got.Revision != 2 || got.Delivery.State != StateRefused || !got.Delivery.RefusedAt.Equal(refused) ||
		got.Delivery.RefusedReason != "bad signature: key 3f2a… not trusted" || got.Signature != nil {
		t.Fatalf("refused revision: %+v (first reason: %+v)", got, d)
	}
	act := must[EffectiveSchedule](t)(db.LatestActiveEffective(ctx, dev))
	if act.Revision != 1 {
		t.Fatalf("active revision: %d", act.Revision)
	}
	if e := must[EffectiveSchedule](t)(db.Effective(ctx, dev, 1)); e.Delivery.State != StateActive {
		t.Fatalf("revision 1: %+v", e)
	}
	_, err = db.MarkDelivery(ctx, dev, 9, StateSent, "")
	wantErr(t, err, ErrNotFound, "mark a missing revision")
	_, err = db.MarkDelivery(ctx, dev, 1, "played", "")
	wantErr(t, err, ErrInvalid, "unknown state")
	_, err = db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev, Revision: 2, Document: []byte("x")})
	wantErr(t, err, ErrStaleRevision, "a refused revision is still used up")
}

func TestDeviceOverview(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tam-thanh/cl-07", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tam-thanh/cl-08", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tam-phu/cl-01", "quang-nam/tam-ky/tam-phu")
	enrol(t, db, "dh-01", "quang-nam/duy-hai")
	add := func(dev string, rev int64, states ...DeliveryState) {
		t.Helper()
		must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev, Revision: rev, Document: []byte("x")}))
		for _, s := range states {
			reason := ""
			if s == StateRefused {
				reason = "bad signature"
			}
			must[Delivery](t)(db.MarkDelivery(ctx, dev, rev, s, reason))
		}
	}
	add("tam-thanh/cl-07", 1, StateSent, StateReceived, StateContentReady, StateActive)
	add("tam-thanh/cl-07", 2, StateSent, StateReceived)
	add("tam-thanh/cl-08", 5, StateSent, StateRefused)
	add("tam-phu/cl-01", 3, StateSent, StateReceived, StateActive)
	noErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", Status{NowPlaying: "morning", Volume: 0.7}))

	got := must[[]DeviceOverview](t)(db.ListDeviceOverview(ctx, "quang-nam/tam-ky"))
	var lines []string
	for _, o := range got {
		lines = append(lines, fmt.Sprintf("%s %d %s %d %q", o.ID, o.LatestRevision, o.LatestState, o.ActiveRevision, o.Status.NowPlaying))
	}
	want := []string{
		`tam-phu/cl-01 3 active 3 ""`,
		`tam-thanh/cl-07 2 received 1 "morning"`,
		`tam-thanh/cl-08 5 refused 0 ""`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("overview:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	all := must[[]DeviceOverview](t)(db.ListDeviceOverview(ctx, ""))
	if len(all) != 4 || all[0].ID != "dh-01" || all[0].LatestRevision != 0 || all[0].LatestState != "" || all[0].Area != "quang-nam/duy-hai" {
		t.Fatalf("overview of all: %+v", all[0])
	}
}

// TestManyDeliveryReportsAtOnce: the reports of hundreds of devices arriving together (after a
// push), which PostgreSQL's store folds into one statement per state, each get their own
// answer: the delivery as their report left it, ErrNotFound for a revision that does not
// exist (without failing the others), the first reason of a revision refused twice.
func TestManyDeliveryReportsAtOnce(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	const n = 300
	dev := func(i int) string { return fmt.Sprintf("tam-thanh/cl-%03d", i) }
	for i := range n {
		enrol(t, db, dev(i), "quang-nam/tam-ky/tam-thanh")
		must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev(i), Revision: 1, Document: []byte("x")}))
	}
	at := clk.Advance(time.Second)
	type answer struct {
		d   Delivery
		err error
	}
	got := make([]answer, n)
	missing := make([]error, 20)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Every device received; one in three also played, reported twice (the agent
			// repeated itself) and in the same moment as the others' receipts.
			d, err := db.MarkDelivery(ctx, dev(i), 1, StateReceived, "")
			if err == nil && i%3 == 0 {
				db.MarkDelivery(ctx, dev(i), 1, StateActive, "")
				d, err = db.MarkDelivery(ctx, dev(i), 1, StateActive, "")
			}
			got[i] = answer{d, err}
		})
	}
	for k := range missing {
		wg.Go(func() { _, missing[k] = db.MarkDelivery(ctx, dev(k), 2, StateReceived, "") })
	}
	wg.Wait()
	for i, a := range got {
		want := StateReceived
		if i%3 == 0 {
			want = StateActive
		}
		if a.err != nil || a.d.State != want || !a.d.ReceivedAt.Equal(at) || (want == StateActive) != a.d.ActiveAt.Equal(at) {
			t.Fatalf("device %s: %+v %v; want %s received at %v", dev(i), a.d, a.err, want, at)
		}
		if e := must[EffectiveSchedule](t)(db.LatestEffective(ctx, dev(i))); e.Delivery != a.d {
			t.Fatalf("device %s: stored %+v, answered %+v", dev(i), e.Delivery, a.d)
		}
	}
	for k, err := range missing {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("report of %s's missing revision 2: %v, want ErrNotFound", dev(k), err)
		}
	}
	t.Logf("a missing revision: %v", missing[0])

	// Two refusals of one revision at once: one reason is kept, and a later one changes nothing.
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: dev(0), Revision: 2, Document: []byte("x")}))
	reasons := []string{"bad signature", "schedule does not compile"}
	errs := make([]error, len(reasons))
	for k, r := range reasons {
		wg.Go(func() { _, errs[k] = db.MarkDelivery(ctx, dev(0), 2, StateRefused, r) })
	}
	wg.Wait()
	noErr(t, errors.Join(errs...))
	first := must[EffectiveSchedule](t)(db.Effective(ctx, dev(0), 2)).Delivery.RefusedReason
	if !slices.Contains(reasons, first) {
		t.Fatalf("refusal reason %q, want one of %q", first, reasons)
	}
	if d := must[Delivery](t)(db.MarkDelivery(ctx, dev(0), 2, StateRefused, "later")); d.RefusedReason != first || d.State != StateRefused {
		t.Fatalf("after a later refusal: %+v, want the reason %q kept", d, first)
	}
}
