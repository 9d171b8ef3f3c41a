package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/clock"

	"github.com/loa-project/loa/protocol"
)

// TestAgentBootsAt1970ThenSyncs runs the agent in-process on a fake clock that starts at
// 1970 (a Pi without RTC) and then steps to the real date (NTP): only the emergency plays on
// the untrusted clock and its record says so; after the step, nothing stale bursts out and
// programmes play with records marked synced.
func TestAgentBootsAt1970ThenSyncs(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "beep.wav")
	if out, err := exec.Command("sox", "-n", "-r", "48000", "-c", "2", wav, "synth", "0.3", "sine", "440").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "schedule.yaml"), []byte(fmt.Sprintf(`version: 1
id: clock
revision: 1
timezone: UTC
programs:
  - {id: alarm, class: emergency, cron: "0 0 7 * * *", items: [{file: %s}]}
  - {id: news, cron: "0 0 7 * * *", items: [{file: %s}]}
  - {id: later, cron: "0 0 8 * * *", items: [{file: %s}]}
`, wav, wav, wav)), 0o644)
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("device_id: clock-test\ndata_dir: data\nschedule: schedule.yaml\naudio: {output: \"null\"}\n"), 0o644)
	cfg, err := agent.LoadConfig(filepath.Join(dir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(1970, 1, 1, 6, 59, 50, 0, time.UTC))
	advanceUntil := func(t0 time.Time) {
		for clk.Now().Before(t0) {
			time.Sleep(2 * time.Millisecond)
			clk.Advance(50 * time.Millisecond)
		}
	}
	recs := runOnFakeClock(t, cfg, clk, func() {
		advanceUntil(time.Date(1970, 1, 1, 7, 0, 5, 0, time.UTC))
		// NTP: the real date, twenty seconds before the next hour's programme.
		clk.Step(time.Date(2026, 11, 26, 7, 59, 40, 0, time.UTC).Sub(clk.Now()))
		advanceUntil(time.Date(2026, 11, 26, 8, 0, 5, 0, time.UTC))
	})
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s %s %s", r.Program, r.Scheduled.UTC().Format("2006-01-02T15:04"), r.Result, r.Clock))
	}
	want := []string{
		"alarm 1970-01-01T07:00 completed unsynced", // an emergency plays even on a wrong clock
		"later 2026-11-26T08:00 completed synced",   // after the step: no burst of the day's 07:00 programmes
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("journal:\n got %q\nwant %q", got, want)
	}
	for _, r := range recs {
		if protocol.Duration(r.PlayedS) <= 0 || r.Result != protocol.ResultCompleted {
			t.Errorf("record %d: played %s", r.Seq, protocol.Duration(r.PlayedS))
		}
	}
}

// runOnFakeClock runs the agent of cfg on clk while drive moves the clock, stops it once what
// the last step started has settled, and returns its journal.
func runOnFakeClock(t *testing.T, cfg *agent.Config, clk *clock.Fake, drive func()) []journal.Record {
	t.Helper()
	a := agent.New(cfg, slog.New(slog.DiscardHandler), clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	drive()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs, err := agent.ReadJournal(cfg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
