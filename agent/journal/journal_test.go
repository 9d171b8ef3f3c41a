package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

var t0 = time.Date(2026, 11, 26, 6, 30, 0, 0, time.FixedZone("ICT", 7*3600))

func play(program string, start time.Time) protocol.Confirmation {
	return protocol.Confirmation{
		Output: "speakers", ScheduleID: "commune-tam-thanh", Revision: 12,
		Program: program, ItemIndex: 0, Item: "sha256:" + strings.Repeat("ab", 32),
		Scheduled: start, Start: start.Add(3 * time.Millisecond),
		Clock: protocol.ClockSynced,
	}
}

func open(t *testing.T, path string, opts Options) *Journal {
	t.Helper()
	if opts.DeviceID == "" {
		opts.DeviceID = "cluster-07"
	}
	j, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestBeginCheckpointFinish(t *testing.T) {
	clk := clock.NewFake(t0)
	j := open(t, filepath.Join(t.TempDir(), "journal.db"), Options{Clock: clk})
	rec := play("morning", t0)
	seq, err := j.Begin(rec)
	if err != nil || seq != 1 {
		t.Fatalf("Begin = %d, %v", seq, err)
	}
	clk.Advance(5 * time.Second)
	if err := j.Checkpoint(seq, protocol.Proof{PlayedS: 4.99, PeakDBFS: db(-3), RMSDBFS: db(-18)}); err != nil {
		t.Fatal(err)
	}
	r, _ := j.Get(seq)
	if r.Result != protocol.ResultPlaying || r.PlayedS != 4.99 || !r.Checkpoint.Equal(t0.Add(5*time.Second)) || *r.PeakDBFS != -3 {
		t.Fatalf("after checkpoint: %+v", r)
	}
	end := t0.Add(62 * time.Second)
	proof := protocol.Proof{PlayedS: 61.997, PeakDBFS: db(-1.5), RMSDBFS: db(-17), SilenceS: 2, Gaps: 1, Underruns: 2}
	err = j.Finish(seq, protocol.ResultCompleted, end, proof, "")
	if err != nil {
		t.Fatal(err)
	}
	r, _ = j.Get(seq)
	want := Record{Confirmation: rec}
	want.Seq, want.Device, want.Result, want.End, want.Proof = 1, "cluster-07", protocol.ResultCompleted, end, proof
	want.Checkpoint = t0.Add(5 * time.Second)
	if !sameRecord(r, want) {
		t.Fatalf("record\n got %+v\nwant %+v", r, want)
	}
	if err := j.Finish(seq, protocol.ResultCompleted, end, protocol.Proof{}, ""); err == nil || !strings.Contains(err.Error(), "not playing any more") {
		t.Fatalf("second Finish: %v", err)
	}
	if err := j.Checkpoint(seq, protocol.Proof{PlayedS: 1}); err == nil {
		t.Fatal("Checkpoint of a closed record accepted")
	}
	if err := j.Finish(99, protocol.ResultCompleted, end, protocol.Proof{}, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Finish of an unknown record: %v", err)
	}
	// The record is the hub's confirmation, in the wire's names and units (seconds).
	b, _ := json.Marshal(r)
	for _, f := range []string{`"seq":1`, `"device":"cluster-07"`, `"output":"speakers"`, `"revision":12`,
		`"played_s":61.997`, `"peak_dbfs":-1.5`, `"silence_s":2`, `"underruns":2`,
		`"result":"completed"`, `"clock":"synced"`} {
		if !bytes.Contains(b, []byte(f)) {
			t.Errorf("JSON %s lacks %s", b, f)
		}
	}
	var wire protocol.Confirmation
	if err := json.Unmarshal(b, &wire); err != nil || !reflect.DeepEqual(wire, r.Confirmation) {
		t.Errorf("the record's JSON read as a confirmation: %+v, %v; want %+v", wire, err, r.Confirmation)
	}
}

func db(v float64) *float64 { return &v }

func sameRecord(a, b Record) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestOneShotAndSequence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j.db")
	j := open(t, path, Options{})
	missed := play("noon", t0)
	missed.Start = time.Time{}
	missed.Result = protocol.ResultMissed
	missed.Clock = protocol.ClockUnsynced
	for i := 1; i <= 5; i++ {
		seq, err := j.Record(missed)
		if err != nil || seq != uint64(i) {
			t.Fatalf("Record #%d = %d, %v", i, seq, err)
		}
	}
	j.Close()
	j = open(t, path, Options{})
	if j.HighWater() != 5 {
		t.Fatalf("HighWater after reopen = %d", j.HighWater())
	}
	seq, err := j.Begin(play("evening", t0))
	if err != nil || seq != 6 {
		t.Fatalf("Begin after reopen = %d, %v", seq, err)
	}
	r, _ := j.Get(3)
	if r.Result != protocol.ResultMissed || r.Clock != protocol.ClockUnsynced || !r.Start.IsZero() {
		t.Fatalf("missed record: %+v", r)
	}
}

func TestBadInput(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"), Options{})
	cases := []struct {
		name string
		do   func() error
		want string
	}{
		{"no output", func() error { r := play("p", t0); r.Output = ""; _, err := j.Begin(r); return err }, "missing [output]"},
		{"no program", func() error { r := play("", t0); _, err := j.Begin(r); return err }, "missing [program]"},
		{"no start", func() error { r := play("p", t0); r.Start = time.Time{}; _, err := j.Begin(r); return err }, "without a start time"},
		{"bad clock", func() error { r := play("p", t0); r.Clock = "ok"; _, err := j.Begin(r); return err }, `clock state "ok"`},
		{"begin done", func() error {
			r := play("p", t0)
			r.Result = protocol.ResultCompleted
			_, err := j.Begin(r)
			return err
		}, "use Record"},
		{"record playing", func() error { r := play("p", t0); r.Result = protocol.ResultPlaying; _, err := j.Record(r); return err }, `result "playing"`},
		{"record unknown", func() error { r := play("p", t0); r.Result = "ok"; _, err := j.Record(r); return err }, `result "ok"`},
		{"finish playing", func() error { return j.Finish(1, protocol.ResultPlaying, t0, protocol.Proof{}, "") }, `result "playing"`},
		{"finish no end", func() error { return j.Finish(1, protocol.ResultCompleted, time.Time{}, protocol.Proof{}, "") }, "without an end time"},
	}
	for _, c := range cases {
		if err := c.do(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if j.HighWater() != 0 {
		t.Fatalf("refused records consumed sequence numbers: %d", j.HighWater())
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{}); err == nil || !strings.Contains(err.Error(), "no device id") {
		t.Fatalf("Open without device id: %v", err)
	}
}

func TestLevelsAndClockStep(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"), Options{})
	seq, _ := j.Begin(play("p", t0))
	// Digital silence is -Inf dBFS; NaN from a broken meter. Both must still encode.
	err := j.Finish(seq, protocol.ResultCompleted, t0.Add(-time.Hour), protocol.Proof{PlayedS: (10 * time.Second).Seconds(), PeakDBFS: db(math.Inf(-1)), RMSDBFS: db(math.NaN())}, "")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := j.Get(seq)
	if *r.PeakDBFS != protocol.MinDBFS || *r.RMSDBFS != protocol.MinDBFS {
		t.Fatalf("levels = %v %v", *r.PeakDBFS, *r.RMSDBFS)
	}
	// The clock stepped back an hour during the play: no record that ends before it starts.
	if !r.End.Equal(r.Start.Add(10*time.Second)) || r.Clock != protocol.ClockUnsynced {
		t.Fatalf("end %v start %v clock %v", r.End, r.Start, r.Clock)
	}
}

func TestCrashLeftOpenIsInterrupted(t *testing.T) {
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path, Options{DeviceID: "d", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := j.Begin(play("a", t0))
	clk.Advance(5 * time.Second)
	j.Checkpoint(a, protocol.Proof{PlayedS: 5, PeakDBFS: db(-6), RMSDBFS: db(-20)})
	clk.Advance(5 * time.Second)
	j.Checkpoint(a, protocol.Proof{PlayedS: 10, PeakDBFS: db(-5), RMSDBFS: db(-19)})
	b, _ := j.Begin(play("b", t0.Add(time.Minute))) // never checkpointed
	j.Close()                                       // as if the process died: nothing finished

	var logs bytes.Buffer
	j = open(t, path, Options{DeviceID: "d", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ra, _ := j.Get(a)
	if ra.Result != protocol.ResultInterrupted || ra.PlayedS != 10 || !ra.End.Equal(t0.Add(10*time.Second)) || *ra.PeakDBFS != -5 || ra.Error == "" {
		t.Fatalf("record a after crash: %+v", ra)
	}
	rb, _ := j.Get(b)
	if rb.Result != protocol.ResultInterrupted || rb.PlayedS != 0 || !rb.End.Equal(rb.Start) {
		t.Fatalf("record b after crash: %+v", rb)
	}
	if st, _ := j.Stats(); st.Open != 0 {
		t.Fatalf("open records after reopen: %d", st.Open)
	}
	if c := strings.Count(logs.String(), "cut by a crash"); c != 2 {
		t.Fatalf("%d log lines about interrupted plays:\n%s", c, logs.String())
	}
}

func TestAckAndSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := open(t, path, Options{})
	for i := 0; i < 3; i++ {
		s, _ := j.Begin(play("p", t0))
		j.Finish(s, protocol.ResultCompleted, t0.Add(time.Minute), protocol.Proof{PlayedS: (time.Minute).Seconds()}, "")
	}
	open4, _ := j.Begin(play("long", t0)) // 4 still playing
	r := play("x", t0)
	r.Result = protocol.ResultFailed
	r.Error = "content sha256:… missing from the store"
	j.Record(r) // 5

	got, _ := j.Since(0, 0)
	if len(got) != 3 || got[2].Seq != 3 {
		t.Fatalf("Since(0) returned %d records: it must stop before the open record 4", len(got))
	}
	all, _ := j.List(0, 0)
	if len(all) != 5 {
		t.Fatalf("List(0) returned %d records", len(all))
	}
	if got, _ := j.Since(1, 1); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("Since(1, 1) = %+v", got)
	}
	if err := j.Ack(2); err != nil || j.Acked() != 2 {
		t.Fatalf("Ack(2): %v, acked %d", err, j.Acked())
	}
	if err := j.Ack(1); err != nil || j.Acked() != 2 {
		t.Fatalf("lower ack: %v, acked %d", err, j.Acked())
	}
	if err := j.Ack(9); err == nil || !strings.Contains(err.Error(), "last record written is 5") {
		t.Fatalf("ack beyond high water: %v", err)
	}
	if err := j.Ack(5); err == nil || !strings.Contains(err.Error(), "record 4 is still playing") {
		t.Fatalf("ack over an open record: %v", err)
	}
	j.Finish(open4, protocol.ResultPreempted, t0.Add(time.Minute), protocol.Proof{PlayedS: (30 * time.Second).Seconds()}, "")
	if got, _ := j.Since(2, 0); len(got) != 3 || got[2].Result != protocol.ResultFailed {
		t.Fatalf("Since(2) after finish = %+v", got)
	}
	if err := j.Ack(5); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, path, Options{})
	if j.Acked() != 5 || j.HighWater() != 5 {
		t.Fatalf("after reopen acked %d high water %d", j.Acked(), j.HighWater())
	}
	if got, _ := j.Since(5, 0); len(got) != 0 {
		t.Fatalf("Since(high water) = %d records", len(got))
	}
}

func TestCapDropsOnlyAcked(t *testing.T) {
	var logs bytes.Buffer
	j := open(t, filepath.Join(t.TempDir(), "j.db"), Options{MaxRecords: 10, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	r := play("p", t0)
	r.Result = protocol.ResultCompleted
	for i := 0; i < 15; i++ {
		if _, err := j.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := j.Stats()
	if st.Records != 15 {
		t.Fatalf("unacknowledged records dropped: %d left of 15", st.Records)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "unacknowledged") {
		t.Fatalf("no loud log when the cap holds only unacked records:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Fatalf("%d error lines for 5 records over the cap: should be rate-limited", n)
	}
	if err := j.Ack(12); err != nil {
		t.Fatal(err)
	}
	st, _ = j.Stats()
	all, _ := j.List(0, 0)
	if st.Records != 10 || len(all) != 10 || all[0].Seq != 6 || all[9].Seq != 15 {
		t.Fatalf("after ack: %d records, first %d", st.Records, all[0].Seq)
	}
	// New records now push out acknowledged ones, oldest first, until only unacked are left.
	for i := 0; i < 10; i++ {
		j.Record(r)
	}
	all, _ = j.List(0, 0)
	if all[0].Seq != 13 || len(all) != 13 {
		t.Fatalf("after more records: %d records from %d, want 13 from 13", len(all), all[0].Seq)
	}
}

func TestCapBytes(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"), Options{MaxBytes: 4000})
	r := play("p", t0)
	r.Result = protocol.ResultCompleted
	for i := 0; i < 40; i++ {
		j.Record(r)
		if i%5 == 4 {
			j.Ack(j.HighWater())
		}
	}
	st, _ := j.Stats()
	if st.Bytes > 4000 || st.Records == 0 {
		t.Fatalf("Stats = %+v, want at most 4000 bytes", st)
	}
	all, _ := j.List(0, 0)
	if all[len(all)-1].Seq != 40 {
		t.Fatal("newest record dropped")
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("gap between %d and %d", all[i-1].Seq, all[i].Seq)
		}
	}
}

func TestDeviceAndLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := open(t, path, Options{DeviceID: "a"})
	_, err := Open(path, Options{DeviceID: "a"})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
	j.Close()
	_, err = Open(path, Options{DeviceID: "b"})
	if err == nil || !strings.Contains(err.Error(), `belongs to device "a"`) {
		t.Fatalf("Open with another device id: %v", err)
	}
}

// TestDamagedFileAndID: a file whose pages are garbage is reported as ErrDamaged (the agent
// sets it aside); a journal keeps its random id across reopenings and a new file has another.
func TestDamagedFileAndID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	j := open(t, path, Options{DeviceID: "cl-1"})
	id := j.ID()
	if len(id) != 16 {
		t.Fatalf("journal id %q, want 16 hex digits", id)
	}
	j.Close()
	j = open(t, path, Options{DeviceID: "cl-1"})
	if j.ID() != id {
		t.Errorf("id changed on reopening: %q then %q", id, j.ID())
	}
	j.Close()
	other := open(t, filepath.Join(dir, "other.db"), Options{DeviceID: "cl-1"})
	if other.ID() == id {
		t.Errorf("two journal files have the same id %q", id)
	}
	other.Close()

	// A torn write over the file's first pages (its meta pages).
	garbage := make([]byte, 8192)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(garbage, 0)
	f.Close()
	if _, err := Open(path, Options{DeviceID: "cl-1"}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("opening a damaged file: %v, want ErrDamaged", err)
	}
	// A journal of another device is a configuration mistake, not damage.
	if _, err := Open(filepath.Join(dir, "other.db"), Options{DeviceID: "cl-2"}); err == nil || errors.Is(err, ErrDamaged) {
		t.Fatalf("another device's journal: %v, want an error that is not ErrDamaged", err)
	}
}

// TestRecent: the records of the last stretch of time, newest first and bounded, as a
// restarted agent reads them; a record still open counts by its start, a missed one by when
// it was written.
func TestRecent(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "journal.db"), Options{})
	for i, p := range []string{"a", "b", "c", "d"} {
		if _, err := j.Begin(play(p, t0.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	j.Record(protocol.Confirmation{Output: "speakers", Program: "e", Scheduled: t0, End: t0.Add(5 * time.Hour), Result: protocol.ResultMissed, Clock: protocol.ClockSynced})
	got, err := j.Recent(t0.Add(90*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Program)
	}
	if strings.Join(names, "") != "edc" {
		t.Errorf("Recent = %v, want e d c (newest first, only since 01:30)", names)
	}
	if got, _ := j.Recent(t0, 2); len(got) != 2 || got[0].Program != "e" {
		t.Errorf("Recent with max 2 = %+v", got)
	}
}
