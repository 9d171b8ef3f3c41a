package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/loa-project/loa/protocol"
)

var t0 = time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)

// conf builds a confirmation whose fields all derive from seq, so a round trip can be checked.
func conf(seq int64) Confirmation {
	start := t0.Add(time.Duration(seq) * time.Minute)
	return Confirmation{Confirmation: protocol.Confirmation{Seq: uint64(seq), Output: "speakers", ScheduleID: "commune-tam-thanh", Revision: 12, Program: "morning", ItemIndex: int(seq % 3), Item: refOf(fmt.Sprint("item", seq%3)), Scheduled: start.Add(-time.Second), Start: start, End: start.Add(95 * time.Second), Result: "completed", Clock: "synced", Volume: 0.75, Amplifier: "on", Proof: protocol.Proof{PlayedS: 95.25, PeakDBFS: new(float64(-1.5)), RMSDBFS: new(float64(-18.25)), SilenceS: 0.5, Gaps: 1, Underruns: 2, Dropouts: 2, Reconnects: 1, MissingS: 3.5, FramesDropped: 4}}}
}

func confs(seqs ...int64) []Confirmation {
	out := make([]Confirmation, len(seqs))
	for i, s := range seqs {
		out[i] = conf(s)
	}
	return out
}

func storedSeqs(t testing.TB, db *DB, dev string) []int64 {
	t.Helper()
	var out []int64
	for _, c := range must[[]Confirmation](t)(db.ListConfirmations(context.Background(), ConfirmationFilter{DeviceID: dev})) {
		out = append(out, int64(c.Seq))
	}
	slices.Sort(out)
	return out
}

func TestConfirmationsExactlyOnce(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	const dev = "tam-thanh/cl-07"
	enrol(t, db, dev, "quang-nam/tam-ky/tam-thanh")

	step := func(what string, batch []Confirmation, wantAck int64, wantStored []int64) {
		t.Helper()
		ack, err := db.AddConfirmations(ctx, dev, batch)
		noErr(t, err)
		if ack != wantAck {
			t.Fatalf("%s: ack %d, want %d", what, ack, wantAck)
		}
		if got := storedSeqs(t, db, dev); !slices.Equal(got, wantStored) {
			t.Fatalf("%s: stored %v, want %v", what, got, wantStored)
		}
		if a := must[int64](t)(db.AckedSeq(ctx, dev)); a != wantAck {
			t.Fatalf("%s: AckedSeq %d, want %d", what, a, wantAck)
		}
	}
	step("empty batch", nil, 0, nil)
	step("gap at the start", confs(2, 3), 0, []int64{2, 3})
	step("fill the gap, out of order, with duplicates", confs(5, 1, 3, 1), 3, []int64{1, 2, 3, 5})
	step("resend of what is acked", confs(1, 2, 3), 3, []int64{1, 2, 3, 5})
	step("another gap", confs(7, 8), 3, []int64{1, 2, 3, 5, 7, 8})
	step("fill 4: ack stops at the gap at 6", confs(4), 5, []int64{1, 2, 3, 4, 5, 7, 8})
	step("fill 6: ack jumps over stored 7 and 8", confs(6, 6, 9), 9, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9})

	// A resent record with different content does not overwrite the first copy.
	changed := conf(2)
	changed.Result = "failed"
	step("changed duplicate", []Confirmation{changed}, 9, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9})

	// Every field round-trips; the store adds device, area and received time.
	all := must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{DeviceID: dev}))
	for _, got := range all {
		want := conf(int64(got.Seq))
		want.Device, want.Area = dev, "quang-nam/tam-ky/tam-thanh"
		want.ReceivedAt = got.ReceivedAt
		if !reflect.DeepEqual(got, want) || got.ReceivedAt.IsZero() {
			t.Fatalf("seq %d round trip:\n got %+v\nwant %+v", got.Seq, got, want)
		}
	}

	// Silence and unmeasured levels; a missed play has no start.
	odd := conf(10)
	odd.PeakDBFS, odd.RMSDBFS = new(math.Inf(-1)), nil
	odd.Start, odd.End, odd.PlayedS, odd.Result = time.Time{}, time.Time{}, 0, "missed"
	clk.Advance(time.Hour)
	step("odd values", []Confirmation{odd}, 10, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	got := must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{DeviceID: dev, Result: "missed"}))
	if len(got) != 1 || !math.IsInf(*got[0].PeakDBFS, -1) || got[0].RMSDBFS != nil || !got[0].Start.IsZero() ||
		!got[0].Scheduled.Equal(odd.Scheduled) || !got[0].ReceivedAt.Equal(clk.Now()) {
		t.Fatalf("odd values: %+v", got)
	}

	// Bad batches change nothing.
	bad := conf(11)
	bad.Seq = 0
	_, err := db.AddConfirmations(ctx, dev, []Confirmation{conf(11), bad})
	wantErr(t, err, ErrInvalid, "seq 0")
	bad = conf(11)
	bad.PlayedS = math.NaN()
	_, err = db.AddConfirmations(ctx, dev, []Confirmation{bad})
	wantErr(t, err, ErrInvalid, "NaN played seconds")
	bad = conf(11)
	bad.Result = ""
	_, err = db.AddConfirmations(ctx, dev, []Confirmation{bad})
	wantErr(t, err, ErrInvalid, "empty result")
	bad = conf(11)
	bad.Device = "tam-phu/cl-01"
	_, err = db.AddConfirmations(ctx, dev, []Confirmation{bad})
	wantErr(t, err, ErrInvalid, "record naming another device")
	_, err = db.AddConfirmations(ctx, "tam-thanh/cl-99", confs(1))
	wantErr(t, err, ErrNotFound, "unknown device")
	if got := storedSeqs(t, db, dev); len(got) != 10 {
		t.Fatalf("a refused batch stored something: %v", got)
	}
}

// Property: whatever batches arrive, in any order with any duplicates, each seq is stored once
// and the ack is the highest contiguous seq of everything sent so far.
func TestConfirmationsAckProperty(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		dev := fmt.Sprintf("prop-%d", n)
		enrol(t, db, dev, "quang-nam/duy-hai")
		sent := map[int64]bool{}
		batches := rapid.SliceOfN(rapid.SliceOfN(rapid.Int64Range(1, 40), 0, 15), 1, 6).Draw(rt, "batches")
		for _, b := range batches {
			ack, err := db.AddConfirmations(ctx, dev, confs(b...))
			if err != nil {
				rt.Fatal(err)
			}
			for _, s := range b {
				sent[s] = true
			}
			want := int64(0)
			for sent[want+1] {
				want++
			}
			if ack != want {
				rt.Fatalf("after %v: ack %d, want %d", b, ack, want)
			}
		}
		var want []int64
		for s := range sent {
			want = append(want, s)
		}
		slices.Sort(want)
		if got := storedSeqs(t, db, dev); !slices.Equal(got, want) {
			rt.Fatalf("stored %v, want %v", got, want)
		}
	})
}

func TestConfirmationFiltersAndReport(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tam-thanh/cl-07", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tam-phu/cl-01", "quang-nam/tam-ky/tam-phu")
	enrol(t, db, "dh-01", "quang-nam/duy-hai")
	for _, c := range []Content{
		{Ref: refOf("ctu-drama"), Language: "ctu", Theme: "human-rights", Format: "drama", ProducingUnit: "nam-giang"},
		{Ref: refOf("vi-report"), Language: "vi", Theme: "human-rights", Format: "radio-report", ProducingUnit: "tam-ky-radio"},
		{Ref: refOf("vi-skit"), Language: "vi", Theme: "health", Format: "skit", ProducingUnit: "tam-ky-radio"},
	} {
		must3(t)(db.AddContent(ctx, c))
	}
	play := func(seq int64, ref string, at time.Time, played float64, result string) Confirmation {
		c := conf(seq)
		c.Item, c.Start, c.Scheduled, c.End, c.PlayedS, c.Result = ref, at, at, at.Add(time.Duration(played*float64(time.Second))), played, protocol.Result(result)
		return c
	}
	day := func(d int) time.Time { return time.Date(2026, time.Month(1), d, 6, 30, 0, 0, time.UTC) }
	noErrAck := func(dev string, cs ...Confirmation) {
		t.Helper()
		_, err := db.AddConfirmations(ctx, dev, cs)
		noErr(t, err)
	}
	noErrAck("tam-thanh/cl-07",
		play(1, refOf("ctu-drama"), day(1), 600, "completed"),
		play(2, refOf("vi-report"), day(1).Add(time.Hour), 300, "completed"),
		play(3, refOf("vi-skit"), day(2), 120, "preempted"),
		play(4, refOf("vi-skit"), day(3), 0, "missed"),
		play(5, "http://radio.example/vov1.mp3", day(3), 1800, "completed"))
	noErrAck("tam-phu/cl-01",
		play(1, refOf("ctu-drama"), day(1), 600, "completed"),
		play(2, refOf("vi-report"), day(20), 300, "interrupted"))
	noErrAck("dh-01",
		play(1, refOf("ctu-drama"), day(2), 600, "completed"))
	// The device moves; its past plays stay where they were heard.
	noErr(t, db.MoveDevice(ctx, "dh-01", "quang-nam/tam-ky/tam-phu"))
	clk.Advance(time.Hour)
	noErrAck("dh-01", play(2, refOf("vi-skit"), day(4), 120, "completed"))

	count := func(f ConfirmationFilter) int {
		return len(must[[]Confirmation](t)(db.ListConfirmations(ctx, f)))
	}
	for _, c := range []struct {
		name string
		f    ConfirmationFilter
		want int
	}{
		{"all", ConfirmationFilter{}, 9},
		{"tam-ky subtree", ConfirmationFilter{Area: "quang-nam/tam-ky"}, 8},
		{"tam-thanh", ConfirmationFilter{Area: "quang-nam/tam-ky/tam-thanh"}, 5},
		{"duy-hai (dh-01 played there before moving)", ConfirmationFilter{Area: "quang-nam/duy-hai"}, 1},
		{"one device", ConfirmationFilter{DeviceID: "tam-phu/cl-01"}, 2},
		{"since day 2", ConfirmationFilter{Since: day(2)}, 6},
		{"until day 2", ConfirmationFilter{Until: day(2)}, 3},
		{"completed in tam-ky", ConfirmationFilter{Area: "quang-nam/tam-ky", Result: "completed"}, 5},
		{"limit", ConfirmationFilter{Limit: 4}, 4},
	} {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d confirmations, want %d", c.name, got, c.want)
		}
	}
	// Streaming stops at the caller's error and returns it.
	seen := 0
	stop := errors.New("enough")
	if err := db.EachConfirmation(ctx, ConfirmationFilter{}, func(Confirmation) error {
		if seen++; seen == 3 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) || seen != 3 {
		t.Fatalf("EachConfirmation: %v after %d", err, seen)
	}
	first := must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{Limit: 2}))
	if first[0].Start.After(first[1].Start) {
		t.Fatalf("not in time order: %v then %v", first[0].Start, first[1].Start)
	}

	jan := ReportFilter{From: day(1), To: day(1).AddDate(0, 1, 0), GroupBy: []Dimension{DimLanguage}}
	rows := must[[]ReportRow](t)(db.Report(ctx, jan))
	// Heard plays only (played > 0): ctu 3×600 s; vi 300+120+300+120; the stream has no metadata.
	want := []ReportRow{
		{Language: "", Plays: 1, PlayedSeconds: 1800, Devices: 1, Items: 1},
		{Language: "ctu", Plays: 3, PlayedSeconds: 1800, Devices: 3, Items: 1},
		{Language: "vi", Plays: 4, PlayedSeconds: 840, Devices: 3, Items: 2},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("report by language:\n got %+v\nwant %+v", rows, want)
	}
	rows = must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: jan.From, To: jan.To, Area: "quang-nam/tam-ky/tam-thanh",
		GroupBy: []Dimension{DimTheme, DimFormat, DimTheme}, Results: []string{"completed"}}))
	want = []ReportRow{
		{Plays: 1, PlayedSeconds: 1800, Devices: 1, Items: 1},
		{Theme: "human-rights", Format: "drama", Plays: 1, PlayedSeconds: 600, Devices: 1, Items: 1},
		{Theme: "human-rights", Format: "radio-report", Plays: 1, PlayedSeconds: 300, Devices: 1, Items: 1},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("report by theme and format in tam-thanh:\n got %+v\nwant %+v", rows, want)
	}
	rows = must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: day(2), To: day(3), GroupBy: []Dimension{DimUnit}}))
	want = []ReportRow{
		{ProducingUnit: "nam-giang", Plays: 1, PlayedSeconds: 600, Devices: 1, Items: 1},
		{ProducingUnit: "tam-ky-radio", Plays: 1, PlayedSeconds: 120, Devices: 1, Items: 1},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("report by unit on day 2:\n got %+v\nwant %+v", rows, want)
	}
	rows = must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: jan.From, To: jan.To}))
	if len(rows) != 1 || rows[0].Plays != 8 || rows[0].PlayedSeconds != 4440 {
		t.Fatalf("ungrouped total: %+v", rows)
	}
	// Per commune (depth 3); duy-hai hangs directly under the province and stays itself.
	rows = must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: jan.From, To: jan.To, AreaDepth: 3, GroupBy: []Dimension{DimLanguage}}))
	want = []ReportRow{
		{Area: "quang-nam/duy-hai", Language: "ctu", Plays: 1, PlayedSeconds: 600, Devices: 1, Items: 1},
		{Area: "quang-nam/tam-ky/tam-phu", Language: "ctu", Plays: 1, PlayedSeconds: 600, Devices: 1, Items: 1},
		{Area: "quang-nam/tam-ky/tam-phu", Language: "vi", Plays: 2, PlayedSeconds: 420, Devices: 2, Items: 2},
		{Area: "quang-nam/tam-ky/tam-thanh", Language: "", Plays: 1, PlayedSeconds: 1800, Devices: 1, Items: 1},
		{Area: "quang-nam/tam-ky/tam-thanh", Language: "ctu", Plays: 1, PlayedSeconds: 600, Devices: 1, Items: 1},
		{Area: "quang-nam/tam-ky/tam-thanh", Language: "vi", Plays: 2, PlayedSeconds: 420, Devices: 1, Items: 2},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("report by commune and language:\n got %+v\nwant %+v", rows, want)
	}
	// Per district (depth 2): the communes of tam-ky roll up, distinct counts stay distinct.
	rows = must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: jan.From, To: jan.To, AreaDepth: 2}))
	want = []ReportRow{
		{Area: "quang-nam/duy-hai", Plays: 1, PlayedSeconds: 600, Devices: 1, Items: 1},
		{Area: "quang-nam/tam-ky", Plays: 7, PlayedSeconds: 3840, Devices: 3, Items: 4},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("report by district:\n got %+v\nwant %+v", rows, want)
	}
	_, err := db.Report(ctx, ReportFilter{From: jan.From, To: jan.To, AreaDepth: -1})
	wantErr(t, err, ErrInvalid, "negative area depth")
	if rows := must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: day(1).AddDate(1, 0, 0), To: day(1).AddDate(2, 0, 0)})); len(rows) != 0 {
		t.Fatalf("empty period: %+v", rows)
	}
	_, err = db.Report(ctx, ReportFilter{From: day(2), To: day(1)})
	wantErr(t, err, ErrInvalid, "reversed period")
	_, err = db.Report(ctx, ReportFilter{From: day(1), To: day(2), GroupBy: []Dimension{"colour"}})
	wantErr(t, err, ErrInvalid, "unknown group")
}

// One group commit holding a good batch, a batch for an unknown device and another good batch
// for the first device: the bad one fails alone and the others see each other's records.
func TestGroupCommitIsolatesBatches(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "cl-1", "quang-nam/duy-hai")
	var acks []*int64
	mk := func(dev string, seqs ...int64) *writeReq {
		r, ack := db.confRequest(ctx, dev, confs(seqs...))
		acks = append(acks, ack)
		return r
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	group := []*writeReq{mk("cl-1", 2, 3), mk("nobody", 1), mk("cl-1", 1), mk("cl-1", 4)}
	group[3].ctx = cancelled
	db.commitGroup(group)
	for i, r := range group {
		<-r.done
		t.Logf("request %d: ack %d err %v", i, *acks[i], r.err)
	}
	if group[0].err != nil || *acks[0] != 0 {
		t.Fatalf("first batch (gap at 1): ack %d err %v", *acks[0], group[0].err)
	}
	wantErr(t, group[1].err, ErrNotFound, "batch of an unknown device in a group")
	if group[2].err != nil || *acks[2] != 3 {
		t.Fatalf("third batch fills the gap: ack %d err %v", *acks[2], group[2].err)
	}
	wantErr(t, group[3].err, context.Canceled, "batch whose caller gave up before the commit")
	if got := storedSeqs(t, db, "cl-1"); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("stored %v", got)
	}
}

func TestAddConfirmationsAfterCloseAndCancel(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "cl-1", "quang-nam/duy-hai")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := db.AddConfirmations(cctx, "cl-1", confs(1))
	wantErr(t, err, context.Canceled, "cancelled context")
	noErr(t, db.Close())
	_, err = db.AddConfirmations(ctx, "cl-1", confs(1))
	wantErr(t, err, ErrClosed, "after Close")
}

// TestJournalRestart: a device whose journal is new numbers from 1 again; its records follow
// what the hub holds of the old journal instead of being dropped as duplicates, and records of
// the old journal the hub never got (a gap) are passed over.
func TestJournalRestart(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	const dev = "tam-thanh/cl-07"
	enrol(t, db, dev, "quang-nam/tam-ky/tam-thanh")
	if r, _, err := db.SeeJournal(ctx, dev, "journal-a"); err != nil || r {
		t.Fatalf("first journal seen: restarted=%v err=%v", r, err)
	}
	if ack := must[int64](t)(db.AddConfirmations(ctx, dev, confs(1, 2, 3, 5))); ack != 3 {
		t.Fatalf("ack %d, want 3 (4 never came)", ack)
	}
	if r, _, err := db.SeeJournal(ctx, dev, "journal-a"); err != nil || r {
		t.Fatalf("same journal again: restarted=%v err=%v", r, err)
	}
	r, oldAck, err := db.SeeJournal(ctx, dev, "journal-b")
	if err != nil || !r || oldAck != 3 {
		t.Fatalf("new journal: restarted=%v oldAck=%d err=%v, want true, 3", r, oldAck, err)
	}
	if a := must[int64](t)(db.AckedSeq(ctx, dev)); a != 0 {
		t.Fatalf("ack in the new journal's numbering %d, want 0", a)
	}
	if ack := must[int64](t)(db.AddConfirmations(ctx, dev, confs(1, 2))); ack != 2 {
		t.Fatalf("new journal's ack %d, want 2", ack)
	}
	if got, want := storedSeqs(t, db, dev), []int64{1, 2, 3, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("stored seqs %v, want %v (the new records after the old journal's 5)", got, want)
	}
	// A resend of the new journal's records is still a duplicate.
	if ack := must[int64](t)(db.AddConfirmations(ctx, dev, confs(1, 2, 3))); ack != 3 {
		t.Fatalf("ack after a resend plus one %d, want 3", ack)
	}
	if got := storedSeqs(t, db, dev); len(got) != 7 {
		t.Fatalf("stored %v after a resend, want 7 records", got)
	}
	// An agent that does not say which journal changes nothing.
	if r, _, err := db.SeeJournal(ctx, dev, ""); err != nil || r {
		t.Fatalf("no journal id: restarted=%v err=%v", r, err)
	}
}

// Every field of a play's proof has its column: a field added to protocol.Proof without a
// schema step fails here, not at the first confirmation a hub stores.
func TestProofColumns(t *testing.T) {
	db, _, _ := openTest(t)
	have := map[string]bool{}
	q := "SELECT name FROM pragma_table_info('confirmations')"
	if db.pg {
		q = "SELECT column_name FROM information_schema.columns WHERE table_name = 'confirmations'"
	}
	rows, err := db.r.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		have[name] = true
	}
	if len(proofCols) < 11 {
		t.Fatalf("proof columns %v: fewer than protocol.Proof has", proofCols)
	}
	for _, c := range proofCols {
		if !have[c] {
			t.Errorf("protocol.Proof's %s has no column in the confirmations table: add a schema step", c)
		}
	}
}
