package store

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const benchBatch = 500

// benchStore is a store with the seed tree and n enrolled devices in two communes.
func benchStore(b *testing.B, n int) *DB {
	db, _, _ := openTest(b)
	seedTree(b, db)
	ctx := context.Background()
	if benchSyncNormal && testEngine == "sqlite" {
		if _, err := db.w.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		area := "quang-nam/tam-ky/tam-thanh"
		if i%2 == 1 {
			area = "quang-nam/tam-ky/tam-phu"
		}
		if _, err := db.EnrolDevice(ctx, Device{ID: fmt.Sprintf("cl-%05d", i), Name: "x", Area: area, Kind: KindCluster,
			Outputs: []string{"speakers"}}, hashOf(fmt.Sprint("s", i))); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// batchFor builds batch k of device d (seqs 500k+1..500k+500). In the "steady" pattern play
// times rise across the whole hub, as when devices report what they play now; in "catchup"
// every device resends the same past hours, interleaved, as after a hub outage. The second
// scatters inserts over the time indexes and is the slower case.
func batchFor(batch []Confirmation, pattern string, d, k, devices int) {
	for j := range batch {
		seq := int64(k*benchBatch + j + 1)
		c := conf(seq)
		if pattern == "steady" {
			at := t0.Add(time.Duration((k*devices+d)*benchBatch+j) * time.Second)
			c.Scheduled, c.Start, c.End = at, at, at.Add(95*time.Second)
		}
		batch[j] = c
	}
}

var patterns = []string{"steady", "catchup"}

// BenchmarkAddConfirmations: one op = one batch of 500 new, contiguous confirmations from one
// device (100 devices in turn), through AddConfirmations: validation, insert, ack walk and
// update, commit (WAL, synchronous=FULL).
func BenchmarkAddConfirmations(b *testing.B) { benchAdd(b, true) }

// BenchmarkAddConfirmationsSyncNormal: the same with the writer at synchronous=NORMAL (the
// setting before the hub's power-cut test showed it loses acknowledged commits), the reference
// for what FULL costs.
func BenchmarkAddConfirmationsSyncNormal(b *testing.B) {
	benchSyncNormal = true
	defer func() { benchSyncNormal = false }()
	benchAdd(b, true)
}

// BenchmarkAddConfirmationsSmallSyncNormal is BenchmarkAddConfirmationsSmall at NORMAL.
func BenchmarkAddConfirmationsSmallSyncNormal(b *testing.B) {
	benchSyncNormal = true
	defer func() { benchSyncNormal = false }()
	BenchmarkAddConfirmationsSmall(b)
}

// benchSyncNormal makes benchStore's writer use synchronous=NORMAL.
var benchSyncNormal bool

// BenchmarkAddConfirmationsNoSummaries: the same without keeping the report summaries
// (play_months, play_days), to show what keeping them costs.
func BenchmarkAddConfirmationsNoSummaries(b *testing.B) { benchAdd(b, false) }

func benchAdd(b *testing.B, summaries bool) {
	for _, pattern := range patterns {
		b.Run(pattern, func(b *testing.B) {
			const devices = 100
			db := benchStore(b, devices)
			db.noSummaries = !summaries
			ctx := context.Background()
			batch := make([]Confirmation, benchBatch)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, k := i%devices, i/devices
				batchFor(batch, pattern, d, k, devices)
				ack, err := db.AddConfirmations(ctx, fmt.Sprintf("cl-%05d", d), batch)
				if err != nil || ack != int64(k+1)*benchBatch {
					b.Fatalf("ack %d, %v", ack, err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "confirmations/s")
		})
	}
}

// BenchmarkAddConfirmationsParallel: as above from 8 goroutines at once (one device each), as
// a hub with many connected agents calls it; the single writer serialises them.
func BenchmarkAddConfirmationsParallel(b *testing.B) {
	for _, pattern := range patterns {
		b.Run(pattern, func(b *testing.B) {
			const devices = 8
			db := benchStore(b, devices)
			ctx := context.Background()
			var dev atomic.Int64
			b.SetParallelism((devices + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				d := int(dev.Add(1) - 1)
				id := fmt.Sprintf("cl-%05d", d)
				batch := make([]Confirmation, benchBatch)
				for k := 0; pb.Next(); k++ {
					batchFor(batch, pattern, d, k, devices)
					ack, err := db.AddConfirmations(ctx, id, batch)
					if err != nil || ack != int64(k+1)*benchBatch {
						b.Errorf("ack %d, %v", ack, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "confirmations/s")
		})
	}
}

// BenchmarkAddConfirmationsSmall: agents sending a few records at a time, 32 goroutines at
// once; group commit folds their batches into shared transactions.
func BenchmarkAddConfirmationsSmall(b *testing.B) {
	for _, size := range []int{1, 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			db := benchStore(b, 64)
			ctx := context.Background()
			var dev atomic.Int64
			b.SetParallelism(32 / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				d := int(dev.Add(1) - 1)
				id := fmt.Sprintf("cl-%05d", d)
				batch := make([]Confirmation, size)
				var next int64
				for pb.Next() {
					for j := range batch {
						batch[j] = conf(next + int64(j) + 1)
					}
					ack, err := db.AddConfirmations(ctx, id, batch)
					if err != nil || ack != next+int64(size) {
						b.Errorf("ack %d, %v", ack, err)
						return
					}
					next = ack
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "confirmations/s")
		})
	}
}

// BenchmarkRawInsertConfirmations is the floor for BenchmarkAddConfirmations: the same rows
// into the same table with its indexes, one prepared INSERT per row in one transaction per
// 500, on the same connection, without any store logic (no validation, device lookup or ack).
func BenchmarkRawInsertConfirmations(b *testing.B) {
	for _, pattern := range patterns {
		b.Run(pattern, func(b *testing.B) {
			const devices = 100
			db := benchStore(b, devices)
			ctx := context.Background()
			batch := make([]Confirmation, benchBatch)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, k := i%devices, i/devices
				batchFor(batch, pattern, d, k, devices)
				id := fmt.Sprintf("cl-%05d", d)
				tx, err := db.w.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				stmt, err := tx.PrepareContext(ctx, `INSERT INTO confirmations(device_id, seq, area_id, at, output, schedule_id,
					revision, program, item_index, item_ref, scheduled_at, started_at, ended_at, played_s, peak_dbfs, rms_dbfs,
					silence_s, gaps, underruns, result, error, clock_state, received_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range batch {
					if _, err := stmt.ExecContext(ctx, id, c.Seq, "quang-nam/tam-ky/tam-thanh", c.Start.UnixNano(), c.Output,
						c.ScheduleID, c.Revision, c.Program, c.ItemIndex, c.Item, c.Scheduled.UnixNano(), c.Start.UnixNano(),
						c.End.UnixNano(), c.PlayedS, *c.PeakDBFS, *c.RMSDBFS, c.SilenceS, c.Gaps, c.Underruns,
						c.Result, c.Error, c.Clock, c.Start.UnixNano()); err != nil {
						b.Fatal(err)
					}
				}
				stmt.Close()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "confirmations/s")
		})
	}
}

const benchDevices = 5000

// BenchmarkGetDevice: full device records by id from 5,000, from parallel goroutines.
func BenchmarkGetDevice(b *testing.B) {
	db := benchStore(b, benchDevices)
	ctx := context.Background()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(7919) % benchDevices
			if _, err := db.GetDevice(ctx, fmt.Sprintf("cl-%05d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkCheckSecret: device authentication (what every connect costs), parallel.
func BenchmarkCheckSecret(b *testing.B) {
	db := benchStore(b, benchDevices)
	ctx := context.Background()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(7919) % benchDevices
			if _, err := db.CheckSecret(ctx, fmt.Sprintf("cl-%05d", i), hashOf(fmt.Sprint("s", i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkRawDeviceLookup is the floor for the two above: one column by primary key with a
// prepared statement through the same read pool, no scanning into a Device.
func BenchmarkRawDeviceLookup(b *testing.B) {
	db := benchStore(b, benchDevices)
	ctx := context.Background()
	stmt, err := db.r.PrepareContext(ctx, "SELECT name FROM devices WHERE id = ?")
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var name string
		for pb.Next() {
			i := n.Add(7919) % benchDevices
			if err := stmt.QueryRowContext(ctx, fmt.Sprintf("cl-%05d", i)).Scan(&name); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkUpdateStatus: heartbeats (status snapshot + last seen), one write each, parallel.
// 10,000 agents beating every 30 s need about 330/s.
func BenchmarkUpdateStatus(b *testing.B) {
	db := benchStore(b, benchDevices)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(7919) % benchDevices
			st := Status{NowPlaying: "morning/2", Volume: 0.8, TemperatureC: 55, Uptime: time.Duration(i) * time.Second}
			if err := db.UpdateStatus(ctx, fmt.Sprintf("cl-%05d", i), st); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
}

// BenchmarkPushWrites: the store's side of a push to 10,000 devices, as the hub does it: every
// device's newest revision in one read, new revisions in batches of 512 (one transaction
// each), then the sent marks in one write. One op = one push; µs/device is the figure.
func BenchmarkPushWrites(b *testing.B) {
	const devices = 10000
	db := benchStore(b, devices)
	ctx := context.Background()
	doc := make([]byte, 950) // the size of a small composed, signed payload
	for i := range doc {
		doc[i] = 'a' + byte(i%26)
	}
	src := []SourceRevision{{AreaTarget("quang-nam"), 1}, {AreaTarget("quang-nam/tam-ky"), 1}}
	b.ResetTimer()
	for i := range b.N {
		heads, err := db.LatestEffectiveHeads(ctx, "quang-nam")
		if err != nil {
			b.Fatal(err)
		}
		var sent []DeviceRevision
		for start := 0; start < devices; start += 512 {
			var batch []EffectiveSchedule
			for d := start; d < min(start+512, devices); d++ {
				id := fmt.Sprintf("cl-%05d", d)
				batch = append(batch, EffectiveSchedule{DeviceID: id, Revision: heads[id].Revision + 1, Document: doc, Signature: doc[:64], Sources: src})
			}
			out, errs, err := db.AddEffectives(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			for j, e := range errs {
				if e != nil {
					b.Fatal(e)
				}
				sent = append(sent, DeviceRevision{out[j].DeviceID, out[j].Revision})
			}
		}
		if err := db.MarkSent(ctx, sent); err != nil {
			b.Fatal(err)
		}
		_ = i
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
}

// BenchmarkLatestOfMany: what a replica told of another's push to 10,000 devices reads, the
// newest effective schedule of each device connected to it, two ways in the same run: one
// query per device four at a time (as it did), and one query per 1,000 devices
// (LatestEffectives, as it does). One op = every device read; µs/device is the figure.
func BenchmarkLatestOfMany(b *testing.B) {
	const devices = 10000
	db := benchStore(b, devices)
	ctx := context.Background()
	doc := make([]byte, 950) // the size of a small composed, signed payload
	ids := make([]string, devices)
	var es []EffectiveSchedule
	for d := range devices {
		ids[d] = fmt.Sprintf("cl-%05d", d)
		es = append(es, EffectiveSchedule{DeviceID: ids[d], Revision: 1, Document: doc, Signature: doc[:64]})
	}
	for chunk := range slices.Chunk(es, 512) {
		if _, _, err := db.AddEffectives(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("one-by-one", func(b *testing.B) {
		for range b.N {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < devices; i = next.Add(1) - 1 {
						if _, err := db.LatestEffective(ctx, ids[i]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
	})
	b.Run("batched", func(b *testing.B) {
		for range b.N {
			for chunk := range slices.Chunk(ids, 1000) {
				got, err := db.LatestEffectives(ctx, chunk)
				if err != nil || len(got) != len(chunk) {
					b.Fatalf("%d of %d read: %v", len(got), len(chunk), err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
	})
}
