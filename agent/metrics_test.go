package agent

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/internal/promtest"
	"github.com/loa-project/loa/protocol"
)

// The agent's endpoint counts plays from the journal's closed records written after it
// started, in order (a play still open holds back the ones after it), and reports the
// journal's backlog and the clock, without running the agent's real-time loop.
func TestAgentMetricsFromJournal(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC))
	a := New(&Config{DeviceID: "tk/cl-01", DataDir: dir}, slog.New(slog.DiscardHandler), clk)
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{DeviceID: "tk/cl-01", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	a.journal = j
	rec := func(res protocol.Result, p protocol.Proof) protocol.Confirmation {
		now := clk.Now()
		return protocol.Confirmation{Device: "tk/cl-01", Output: "speakers", Program: "tk/morning", Item: "sha256:" + strings.Repeat("ab", 32),
			Scheduled: now, Start: now, End: now.Add(time.Minute), Proof: p, Result: res, Clock: protocol.ClockSynced}
	}
	if _, err := j.Record(rec(protocol.ResultCompleted, protocol.Proof{})); err != nil { // before the agent's start: not counted
		t.Fatal(err)
	}
	ms := httptest.NewServer(a.metricsHandler())
	t.Cleanup(ms.Close)

	for _, r := range []protocol.Confirmation{rec(protocol.ResultCompleted, protocol.Proof{Underruns: 2}), rec(protocol.ResultFailed, protocol.Proof{})} {
		if _, err := j.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	open, err := j.Begin(protocol.Confirmation{Device: "tk/cl-01", Output: "speakers", Program: "tk/live", Item: "http://r.example/a.mp3", Scheduled: clk.Now(), Start: clk.Now(), Clock: protocol.ClockSynced})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Record(rec(protocol.ResultCompleted, protocol.Proof{Dropouts: 1})); err != nil {
		t.Fatal(err)
	}

	got := promtest.Scrape(t, ms.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{MetricPlays, []string{"output", "speakers", "result", "completed"}, 1},
		{MetricPlays, []string{"output", "speakers", "result", "failed"}, 1},
		{MetricUnderruns, nil, 2},
		{MetricDropouts, nil, 0}, // after the open play: not read yet
		{MetricJournalUnack, nil, 5},
		{MetricClockSynced, nil, 0},
	} {
		if v := got.Value(c.name, c.labels...); v != c.want {
			t.Errorf("first scrape: %s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	if _, ok := got[MetricClockOffset]; ok {
		t.Error("a clock offset is reported before any welcome")
	}

	// The live relay ends with a drop-out of its own; the hub acknowledges everything.
	if err := j.Finish(open, protocol.ResultCompleted, clk.Now().Add(time.Minute), protocol.Proof{Dropouts: 3}, ""); err != nil {
		t.Fatal(err)
	}
	if err := j.Ack(j.HighWater()); err != nil {
		t.Fatal(err)
	}
	got = promtest.Scrape(t, ms.URL)
	if v := got.Value(MetricPlays, "result", "completed"); v != 3 {
		t.Errorf("plays completed after the relay closed: %v, want 3", v)
	}
	if v := got.Value(MetricDropouts); v != 4 {
		t.Errorf("relay drop-outs %v, want 4", v)
	}
	if v := got.Value(MetricJournalUnack); v != 0 {
		t.Errorf("journal backlog after the ack: %v, want 0", v)
	}
}

func TestAgentMetricsListenOnlyLoopback(t *testing.T) {
	dir := t.TempDir()
	for listen, wantErr := range map[string]string{"127.0.0.1:9470": "", "[::1]:9470": "", "0.0.0.0:9470": "not a loopback", "9470": "metrics_listen"} {
		p := filepath.Join(dir, "agent.yaml")
		os.WriteFile(p, []byte("device_id: a\ndata_dir: d\nmetrics_listen: \""+listen+"\"\n"), 0o644)
		_, err := LoadConfig(p)
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("metrics_listen %q: err %v, want %q", listen, err, wantErr)
		}
	}
}

// serveMetrics answers on metrics_listen and stops with the agent's context; Run's tasks
// wait for it.
func TestAgentServesMetricsUntilStopped(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a := New(&Config{DeviceID: "tk/cl-01", DataDir: dir, MetricsListen: addr}, slog.New(slog.DiscardHandler), nil)
	if a.journal, err = journal.Open(filepath.Join(dir, "journal.db"), journal.Options{DeviceID: "tk/cl-01"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.journal.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.serveMetrics(ctx); err != nil {
		t.Fatal(err)
	}
	if v := promtest.Scrape(t, "http://"+addr+"/metrics").Value(MetricJournalUnack); v != 0 {
		t.Errorf("backlog of an empty journal: %v", v)
	}
	cancel()
	a.tasks.Wait()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("metrics still answer after the agent stopped")
	}
}
