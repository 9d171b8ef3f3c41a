package link

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/protocol"
)

// memJournal is a journal in memory: the benchmark measures the link and the wire, not bbolt
// (agent/journal has its own benchmarks).
type memJournal struct {
	mu    sync.Mutex
	recs  []journal.Record
	acked uint64
}

func (j *memJournal) Since(after uint64, limit int) ([]journal.Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	end := min(int(after)+limit, len(j.recs))
	if int(after) >= end {
		return nil, nil
	}
	return j.recs[after:end], nil
}
func (j *memJournal) Ack(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.acked = max(j.acked, seq)
	return nil
}
func (j *memJournal) HighWater() uint64 { j.mu.Lock(); defer j.mu.Unlock(); return uint64(len(j.recs)) }
func (j *memJournal) Acked() uint64     { j.mu.Lock(); defer j.mu.Unlock(); return j.acked }
func (j *memJournal) ID() string        { return "mem" }

const benchRecords = 10000

func benchRecordsList() []journal.Record {
	recs := make([]journal.Record, benchRecords)
	start := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	for i := range recs {
		peak, rms := -1.2, -18.4
		recs[i] = journal.Record{Confirmation: protocol.Confirmation{
			Seq: uint64(i + 1), Device: testDevice, Output: "speakers", ScheduleID: "dev-cl-07", Revision: 12,
			Program: "morning", Item: "sha256:9f2c3a0d5b6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
			Scheduled: start.Add(time.Duration(i) * time.Minute), Start: start.Add(time.Duration(i) * time.Minute),
			End:   start.Add(time.Duration(i)*time.Minute + 5*time.Minute),
			Proof: protocol.Proof{PlayedS: 300, PeakDBFS: &peak, RMSDBFS: &rms}, Result: protocol.ResultCompleted,
			Clock: protocol.ClockSynced,
		}}
	}
	return recs
}

// BenchmarkCatchUp: an agent that was offline reconnects holding 10,000 unsent confirmations.
// "link" is the time until the hub has acknowledged all of them through the link (batches of
// 500, at most two unacknowledged); "floor" sends the same batches, encoded beforehand, over a
// bare websocket to the same hub with no window and waits for the last ack.
func BenchmarkCatchUp(b *testing.B) {
	recs := benchRecordsList()
	b.Run("link", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			h := newHub(b, testSecret)
			j := &memJournal{recs: recs}
			run := benchLink(b, Config{HubURL: "http://" + h.addr, TrustedKeys: protocol.TrustedKeys{testKeyID: h.pub}, Poll: time.Second}, j, 1)
			b.StartTimer()
			stop := run()
			for j.Acked() < benchRecords {
				time.Sleep(200 * time.Microsecond)
			}
			b.StopTimer()
			stop()
			h.stop()
		}
		b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("floor", func(b *testing.B) {
		var batches [][]byte
		for k := 0; k < benchRecords; k += 500 {
			m := &protocol.Confirmations{Header: protocol.Header{ID: "f"}}
			for r := k; r < k+500; r++ {
				m.Records = append(m.Records, recs[r].Confirmation)
			}
			bb, err := protocol.Encode(m)
			if err != nil {
				b.Fatal(err)
			}
			batches = append(batches, bb)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			h := newHub(b, testSecret)
			b.StartTimer()
			c, _, err := websocket.DefaultDialer.Dial("ws://"+h.addr+"/agent/ws", http.Header{"Authorization": {protocol.FormatDeviceAuth(testDevice, testSecret)}})
			if err != nil {
				b.Fatal(err)
			}
			hello, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "a-1"}, DeviceID: testDevice, SoftwareVersion: "floor"})
			c.WriteMessage(websocket.TextMessage, hello)
			c.ReadMessage() // welcome
			go func() {
				for _, bb := range batches {
					c.WriteMessage(websocket.TextMessage, bb)
				}
			}()
			for {
				_, bb, err := c.ReadMessage()
				if err != nil {
					b.Fatal(err)
				}
				if m, _ := protocol.Decode(bb); m != nil {
					if a, ok := m.(*protocol.Ack); ok && a.Seq == benchRecords {
						break
					}
				}
			}
			b.StopTimer()
			c.Close()
			h.stop()
		}
		b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
