package agent_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// TestAgentJournalsRunsNeverHeard: a run whose time ends before any of it reached the output
// is journalled, not left out (the lost week found relays down all along and short plays
// stopped before their first sample with no record at all). A relay that cannot be reached is
// failed, with the stream's error; a relay that connects but sends nothing is missed.
func TestAgentJournalsRunsNeverHeard(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String() + "/down.mp3"
	l.Close() // nothing listens there: connection refused
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // connected, and never a byte of audio
	}))
	defer silent.Close()
	os.WriteFile(filepath.Join(dir, "schedule.yaml"), fmt.Appendf(nil, `version: 1
id: unheard
revision: 1
timezone: UTC
programs:
  - {id: down, cron: "0 0 7 * * *", items: [{stream: "%s", duration: 1m}]}
  - {id: silent, cron: "0 0 8 * * *", items: [{stream: "%s", duration: 1m}]}
`, deadURL, silent.URL+"/silent.mp3"), 0o644)
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("device_id: unheard\ndata_dir: data\nschedule: schedule.yaml\naudio: {output: \"null\"}\n"), 0o644)
	cfg, err := agent.LoadConfig(filepath.Join(dir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 11, 26, 6, 59, 0, 0, time.UTC))
	recs := runOnFakeClock(t, cfg, clk, func() {
		for end := time.Date(2026, 11, 26, 8, 2, 0, 0, time.UTC); clk.Now().Before(end); {
			clk.Advance(time.Second)
			time.Sleep(time.Millisecond)
		}
	})
	var got []string
	for _, r := range recs {
		why, _, _ := strings.Cut(r.Error, ": nothing played")
		got = append(got, fmt.Sprintf("%s %s %s", r.Program, r.Result, why))
	}
	want := []string{
		"down failed its time ended before any sound reached the output",
		"silent missed its time ended before any sound reached the output",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("journal:\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(recs[0].Error, "connection refused") {
		t.Errorf("the unreachable relay's record does not say why: %q", recs[0].Error)
	}
	for _, r := range recs {
		if r.PlayedS != 0 || r.Result == protocol.ResultCompleted {
			t.Errorf("%s: played %.1fs, result %s", r.Program, r.PlayedS, r.Result)
		}
	}
}
