package agentlink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/metrics"
	"github.com/loa-project/loa/protocol"
)

// BenchmarkCountConfirmations500 is what the metrics add to the ingest of a batch of 500
// records (none of a broadcast): beside BenchmarkDecodeConfirmations500 (protocol) in
// BENCHMARKS.md, "Metrics".
func BenchmarkCountConfirmations500(b *testing.B) {
	s := &Link{}
	s.metrics = metrics.New(s.Connected)
	recs := make([]protocol.Confirmation, 500)
	for i := range recs {
		at := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		recs[i] = protocol.Confirmation{Device: "tk/cl-01", Seq: uint64(i + 1), Output: "speakers", ScheduleID: "dev-tk/cl-01",
			Revision: 1, Program: "qn/morning", Item: "sha256:" + strings.Repeat("ab", 32), Scheduled: at, Start: at,
			End: at.Add(30 * time.Second), Proof: protocol.Proof{PlayedS: 30}, Result: protocol.ResultCompleted, Clock: protocol.ClockSynced}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.countConfirmations(ctx, "tk/cl-01", recs)
	}
}
