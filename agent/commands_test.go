package agent

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// TestCommandsFromTheHub: play_now of a stream plays at once and is confirmed under its
// command id; volume changes the device volume, kept in state.json; stop ends what plays.
// (The link verifies signatures before Execute; that is tested in agent/link.)
func TestCommandsFromTheHub(t *testing.T) {
	dir := t.TempDir()
	mp3 := filepath.Join(dir, "tone.mp3")
	if out, err := exec.Command("sox", "-n", "-r", "48000", "-c", "2", mp3, "synth", "30", "sine", "440", "vol", "0.5").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	radio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		http.ServeFile(w, r, mp3)
	}))
	defer radio.Close()
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("device_id: cmd-test\ndata_dir: data\naudio: {output: \"null\"}\n"), 0o644)
	cfg, err := LoadConfig(filepath.Join(dir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, slog.New(slog.DiscardHandler), clock.NewSystem())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	cmd := func(action string, mod func(*protocol.CommandPayload)) error {
		now := time.Now()
		c := &protocol.CommandPayload{Kind: protocol.KindCommand, ID: "c-" + action, Seq: 1, Devices: []string{"cmd-test"},
			IssuedAt: now, ExpiresAt: now.Add(time.Minute), IssuedBy: "staff", Action: action}
		if mod != nil {
			mod(c)
		}
		ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
		defer ecancel()
		return a.Execute(ectx, c)
	}
	waitRecord := func(what string, ok func(journal.Record) bool) journal.Record {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			recs, _ := ReadJournal(cfg, 0, 0)
			for _, r := range recs {
				if ok(r) {
					return r
				}
			}
		}
		t.Fatalf("no record: %s", what)
		return journal.Record{}
	}

	// play_now of a stream: plays until the command expires.
	if err := cmd(protocol.ActionPlayNow, func(c *protocol.CommandPayload) {
		c.Stream, c.ExpiresAt, c.Title = radio.URL+"/live.mp3", c.IssuedAt.Add(3*time.Second), "Tiếp sóng"
	}); err != nil {
		t.Fatal(err)
	}
	r := waitRecord("the play_now", func(r journal.Record) bool {
		return r.Program == "command:c-play_now" && r.Result != protocol.ResultPlaying
	})
	if r.Result != protocol.ResultCompleted || protocol.Duration(r.PlayedS) < time.Second {
		t.Errorf("play_now: %s, played %s; want completed, about 3 s", r.Result, protocol.Duration(r.PlayedS))
	}

	// volume: kept across restarts.
	if err := cmd(protocol.ActionVolume, func(c *protocol.CommandPayload) { v := 0.3; c.Volume = &v }); err != nil {
		t.Fatal(err)
	}
	if st := a.status(); st.Volume != 0.3 {
		t.Errorf("status volume %g after the command, want 0.3", st.Volume)
	}
	if b, _ := os.ReadFile(cfg.statePath()); !strings.Contains(string(b), `"volume":0.3`) {
		t.Errorf("state.json does not keep the volume: %s", b)
	}

	// stop: a long play_now ends at once, recorded as interrupted.
	if err := cmd(protocol.ActionPlayNow, func(c *protocol.CommandPayload) {
		c.ID, c.Stream, c.ExpiresAt = "c-long", radio.URL+"/live.mp3", c.IssuedAt.Add(20*time.Second)
	}); err != nil {
		t.Fatal(err)
	}
	waitRecord("the long play_now playing", func(r journal.Record) bool { return r.Program == "command:c-long" })
	if err := cmd(protocol.ActionStop, nil); err != nil {
		t.Fatal(err)
	}
	r = waitRecord("the stopped play_now", func(r journal.Record) bool {
		return r.Program == "command:c-long" && r.Result != protocol.ResultPlaying
	})
	// (The null output is not paced, so the wall time tells that the stop cut it, not played.)
	if wall := r.End.Sub(r.Start); r.Result != protocol.ResultInterrupted || wall > 15*time.Second || round3(r.Volume) != 0.3 {
		t.Errorf("stopped play_now: %s after %s, volume %g; want interrupted well before its 20 s, volume 0.3", r.Result, wall, r.Volume)
	}

	// A command the agent does not know is refused with a reason.
	if err := cmd("dance", nil); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unknown command: %v", err)
	}
}

func round3(v float64) float64 { return float64(int(v*1000+0.5)) / 1000 }
