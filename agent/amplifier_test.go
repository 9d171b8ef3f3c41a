package agent_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// relayBoard is an LCUS USB relay board played by the test on the far side of a socat pty
// pair: it records every byte the agent sends, with when it came.
type relayBoard struct {
	port string // what the agent opens
	mu   sync.Mutex
	got  []byte
	at   []time.Time
}

func newRelayBoard(t *testing.T) *relayBoard {
	dir := t.TempDir()
	pty := testkit.PtyAt(t, filepath.Join(dir, "relay"), filepath.Join(dir, "board"))
	rb := &relayBoard{port: pty.A}
	f, err := os.OpenFile(pty.B, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			rb.mu.Lock()
			for _, c := range buf[:n] {
				rb.got = append(rb.got, c)
				rb.at = append(rb.at, time.Now())
			}
			rb.mu.Unlock()
		}
	}()
	return rb
}

// frames splits what the board received into LCUS commands and when each arrived.
func (rb *relayBoard) frames() (cmds []string, at []time.Time) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for i := 0; i+4 <= len(rb.got); i += 4 {
		cmds = append(cmds, fmt.Sprintf("% X", rb.got[i:i+4]))
		at = append(at, rb.at[i])
	}
	return cmds, at
}

// TestAgentSwitchesAmplifierAroundPlays: the relay is switched on before the first sample
// (warm-up included), off after the off-delay, the device volume is applied and recorded,
// and the confirmation carries the relay state.
func TestAgentSwitchesAmplifierAroundPlays(t *testing.T) {
	rb := newRelayBoard(t)
	b := newBox(t, fmt.Sprintf("volume: 0.5\namplifier: {driver: lcus, port: %s, channel: 1, warm_up: 1s, off_delay: 1s, refresh: 0s}\n", rb.port))
	tone(t, filepath.Join(b.dir, "media/tone.wav"), 440, 1)
	start := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: amp\nrevision: 1\ntimezone: UTC\nprograms:\n"+
		"  - {id: news, at: %q, items: [{file: media/tone.wav}]}\n", at(start)))
	b.start()
	recs := b.waitFor("the play", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 1 })
	const on, off = "A0 01 01 A2", "A0 01 00 A1"
	deadline := time.Now().Add(15 * time.Second)
	for {
		cmds, _ := rb.frames()
		if n := len(cmds); n >= 3 && cmds[n-1] == off || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.stop()

	cmds, times := rb.frames()
	// Off at start (a crashed agent may have left it on), on before the play, off after it;
	// stopping the agent sends off once more.
	want := []string{off, on, off}
	if len(cmds) < 3 || strings.Join(cmds[:3], " | ") != strings.Join(want, " | ") || strings.Contains(strings.Join(cmds[3:], " "), on) {
		t.Fatalf("relay commands: got %q, want %q then only off\n%s", cmds, want, b.logText())
	}
	samples, capStart := b.captures[0].Samples()
	first, peak := -1, 0.0
	for i, s := range samples {
		if math.Abs(float64(s)) > 0.01 && first < 0 {
			first = i
		}
		peak = math.Max(peak, math.Abs(float64(s)))
	}
	if first < 0 {
		t.Fatal("the sound card heard nothing")
	}
	heard := capStart.Add(time.Duration(float64(first/2) / 48000 * float64(time.Second)))
	if !times[1].Before(heard) {
		t.Errorf("the relay went on at %s, after the first sample was heard at %s", times[1].Format("15:04:05.000"), heard.Format("15:04:05.000"))
	}
	// The tone is written at half scale; the device volume halves it again.
	if peak < 0.2 || peak > 0.3 {
		t.Errorf("peak heard %.3f, want about 0.25 (tone 0.5 × device volume 0.5)", peak)
	}
	r := closed(recs)[0]
	if r.Result != protocol.ResultCompleted || r.Amplifier != "on" || math.Abs(r.Volume-0.5) > 1e-9 {
		t.Errorf("record: result %s, amplifier %q, volume %g; want completed, on, 0.5", r.Result, r.Amplifier, r.Volume)
	}
}
