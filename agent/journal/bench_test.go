package journal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// BenchmarkBeginFinish is one play's journal cost: Begin and Finish, two durable commits.
func BenchmarkBeginFinish(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "j.db"), Options{DeviceID: "bench", MaxRecords: 10000})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	rec := play("morning", t0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq, err := j.Begin(rec)
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Finish(seq, protocol.ResultCompleted, t0.Add(time.Minute), protocol.Proof{PlayedS: (time.Minute).Seconds(), PeakDBFS: db(-1), RMSDBFS: db(-18)}, ""); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			j.Ack(j.HighWater())
		}
	}
}

// BenchmarkFsyncReference is the floor Begin+Finish stands on: each bbolt commit writes its
// pages, fdatasyncs, writes its meta page and fdatasyncs again; two commits make four.
func BenchmarkFsyncReference(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 4; k++ {
			if _, err := f.WriteAt(page, int64(k)*4096); err != nil {
				b.Fatal(err)
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBytesPerRecord fills a journal with 5,000 closed records and reports the file size
// per record and the logical (key + JSON) size per record. Sync is off here: it changes the
// time, not the layout.
func BenchmarkBytesPerRecord(b *testing.B) {
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "j.db")
		j, err := Open(path, Options{DeviceID: "cluster-07"})
		if err != nil {
			b.Fatal(err)
		}
		j.db.NoSync, j.db.NoGrowSync = true, true
		const n = 5000
		for k := 0; k < n; k++ {
			seq, err := j.Begin(play("morning", t0))
			if err != nil {
				b.Fatal(err)
			}
			j.Finish(seq, protocol.ResultCompleted, t0.Add(time.Minute), protocol.Proof{PlayedS: (time.Minute).Seconds(), PeakDBFS: db(-1.25), RMSDBFS: db(-18.5)}, "")
		}
		st, _ := j.Stats()
		j.db.NoSync = false
		j.Close()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/n, "file-bytes/record")
		b.ReportMetric(float64(st.Bytes)/n, "json-bytes/record")
	}
}
