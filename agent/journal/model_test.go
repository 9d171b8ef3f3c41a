package journal

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/loa-project/loa/protocol"
)

// TestJournalModel runs random sequences of journal calls, with reopenings (as after a crash),
// against a small model of what must hold: sequences +1 without gaps, acks monotonic and
// bounded, unacknowledged records never dropped, the cap respected whenever acknowledged
// records are available to drop, Since never reaching an open record.
func TestJournalModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		path := filepath.Join(t.TempDir(), "j.db")
		maxRecords := rapid.IntRange(0, 8).Draw(rt, "maxRecords")
		opts := Options{DeviceID: "m", MaxRecords: maxRecords}
		reopen := func() *Journal {
			j, err := Open(path, opts)
			if err != nil {
				rt.Fatal(err)
			}
			j.db.NoSync = true // durability is the crash test's job; this one checks logic
			return j
		}
		j := reopen()
		defer func() { j.Close() }()

		var written, acked uint64
		open := map[uint64]bool{}
		result := map[uint64]protocol.Result{}

		openSeqs := func() []uint64 {
			var s []uint64
			for k := range open {
				s = append(s, k)
			}
			slices.Sort(s)
			return s
		}
		rt.Repeat(map[string]func(*rapid.T){
			"begin": func(rt *rapid.T) {
				seq, err := j.Begin(play("p", t0))
				if err != nil || seq != written+1 {
					rt.Fatalf("Begin = %d, %v; want %d", seq, err, written+1)
				}
				written = seq
				open[seq] = true
				result[seq] = protocol.ResultPlaying
			},
			"record": func(rt *rapid.T) {
				r := play("p", t0)
				r.Result = rapid.SampledFrom([]protocol.Result{protocol.ResultMissed, protocol.ResultFailed, protocol.ResultSuppressed}).Draw(rt, "result")
				seq, err := j.Record(r)
				if err != nil || seq != written+1 {
					rt.Fatalf("Record = %d, %v; want %d", seq, err, written+1)
				}
				written = seq
				result[seq] = r.Result
			},
			"checkpoint": func(rt *rapid.T) {
				s := openSeqs()
				if len(s) == 0 {
					rt.Skip("nothing open")
				}
				seq := rapid.SampledFrom(s).Draw(rt, "seq")
				if err := j.Checkpoint(seq, protocol.Proof{PlayedS: 1}); err != nil {
					rt.Fatal(err)
				}
			},
			"finish": func(rt *rapid.T) {
				s := openSeqs()
				if len(s) == 0 {
					rt.Skip("nothing open")
				}
				seq := rapid.SampledFrom(s).Draw(rt, "seq")
				if err := j.Finish(seq, protocol.ResultCompleted, t0.Add(time.Minute), protocol.Proof{PlayedS: (time.Minute).Seconds()}, ""); err != nil {
					rt.Fatal(err)
				}
				delete(open, seq)
				result[seq] = protocol.ResultCompleted
			},
			"ack": func(rt *rapid.T) {
				a := rapid.Uint64Range(0, written+2).Draw(rt, "ack")
				err := j.Ack(a)
				s := openSeqs()
				wantErr := a > acked && (a > written || len(s) > 0 && s[0] <= a)
				if (err != nil) != wantErr {
					rt.Fatalf("Ack(%d) with acked %d, written %d, open %v: err %v", a, acked, written, s, err)
				}
				if err == nil && a > acked {
					acked = a
				}
			},
			"reopen": func(rt *rapid.T) {
				j.Close()
				j = reopen()
				for seq := range open {
					result[seq] = protocol.ResultInterrupted
				}
				clear(open)
			},
			"": func(rt *rapid.T) {
				if j.HighWater() != written || j.Acked() != acked {
					rt.Fatalf("high water %d acked %d, model %d %d", j.HighWater(), j.Acked(), written, acked)
				}
				all, err := j.List(0, 0)
				if err != nil {
					rt.Fatal(err)
				}
				for i, r := range all {
					if i > 0 && r.Seq != all[i-1].Seq+1 {
						rt.Fatalf("gap: %d then %d", all[i-1].Seq, r.Seq)
					}
					if r.Result != result[r.Seq] {
						rt.Fatalf("record %d is %s, model %s", r.Seq, r.Result, result[r.Seq])
					}
				}
				if written > 0 && (len(all) == 0 || all[len(all)-1].Seq != written) {
					rt.Fatalf("newest record missing: %d records, written %d", len(all), written)
				}
				first := written + 1
				if len(all) > 0 {
					first = all[0].Seq
				}
				if first > acked+1 {
					rt.Fatalf("unacknowledged record %d dropped (acked %d)", acked+1, acked)
				}
				if maxRecords > 0 && len(all) > maxRecords && first <= acked {
					rt.Fatalf("%d records over the cap of %d while acked record %d could be dropped", len(all), maxRecords, first)
				}
				since, err := j.Since(0, 0)
				if err != nil {
					rt.Fatal(err)
				}
				for _, r := range since {
					if r.Result == protocol.ResultPlaying {
						rt.Fatalf("Since returned open record %d", r.Seq)
					}
				}
				if s := openSeqs(); len(s) > 0 && len(since) > 0 && since[len(since)-1].Seq >= s[0] {
					rt.Fatalf("Since went past open record %d", s[0])
				}
				st, _ := j.Stats()
				if st.Records != len(all) || st.Open != len(open) {
					rt.Fatal(fmt.Sprintf("Stats %+v, listed %d, open %d", st, len(all), len(open)))
				}
			},
		})
	})
}
