package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/alsafifo"
	"github.com/loa-project/loa/internal/testkit"

	"github.com/loa-project/loa/protocol"
)

// These tests run the real loa-agent binary, as a technician would, playing through real ALSA
// into a FIFO that the test drains at real-time rate (internal/alsafifo).

func TestMain(m *testing.M) { testkit.Main(m) }

func agentBinary(t *testing.T) string { return testkit.Binary(t, "loa-agent") }

// tone writes a sine of freq Hz lasting secs to path (WAV or, by extension, MP3 via lame).
func tone(t *testing.T, path string, freq int, secs float64) {
	t.Helper()
	wav := strings.TrimSuffix(path, filepath.Ext(path)) + ".src.wav"
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav, "synth", fmt.Sprint(secs), "sine", fmt.Sprint(freq), "vol", "0.5").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	if filepath.Ext(path) == ".mp3" {
		if out, err := exec.Command("lame", "--quiet", "-b", "128", wav, path).CombinedOutput(); err != nil {
			t.Fatalf("lame: %v %s", err, out)
		}
		return
	}
	os.Rename(wav, path)
}

// box is one agent under test: its directory, config and the sound card standing in for ALSA.
type box struct {
	t        *testing.T
	dir      string
	config   string
	alsaConf string
	fifo     string
	mu       sync.Mutex
	captures []*alsafifo.Capture
	cmd      *exec.Cmd
	log      *lockedWriter
	stopCard context.CancelFunc
}

func newBox(t *testing.T, extraConfig string) *box {
	t.Helper()
	// Built before a test picks its programme's start a few seconds ahead: the package's first
	// test builds the agent, which on a loaded machine took longer than that lead, and a first
	// boot plays nothing whose time ended before it.
	agentBinary(t)
	dir := t.TempDir()
	conf, fifo, err := alsafifo.Setup(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &box{t: t, dir: dir, alsaConf: conf, fifo: fifo, config: filepath.Join(dir, "agent.yaml")}
	cfg := "device_id: test-cluster\ndata_dir: data\nschedule: schedule.yaml\naudio: {output: alsa, buffer: 300ms}\ngrace: 1m\njournal: {checkpoint: 1s}\nlog: {format: json, level: debug}\n" + extraConfig
	if err := os.WriteFile(b.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "media"), 0o755)
	t.Cleanup(func() { b.kill() })
	return b
}

func (b *box) writeSchedule(src string) {
	b.t.Helper()
	path := filepath.Join(b.dir, "schedule.yaml")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		b.t.Fatal(err)
	}
	os.Rename(tmp, path)
}

// start runs the agent, with a fresh real-time drain of the FIFO for its ALSA output.
func (b *box) start() {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := alsafifo.Drain(ctx, b.fifo, 48000, true, "")
	if err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	b.captures = append(b.captures, c)
	b.mu.Unlock()
	b.stopCard = cancel
	if b.log == nil {
		b.log = &lockedWriter{w: &bytes.Buffer{}}
	}
	b.cmd = exec.Command(agentBinary(b.t), "run", "--config", b.config)
	b.cmd.Env = append(os.Environ(), "ALSA_CONFIG_PATH="+b.alsaConf)
	b.cmd.Stderr = b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
}

func (b *box) kill() {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Signal(syscall.SIGKILL)
		b.cmd.Wait()
		b.cmd = nil
	}
	if b.stopCard != nil {
		b.stopCard()
	}
}

func (b *box) stop() {
	if b.cmd != nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		b.cmd.Wait()
		b.cmd = nil
	}
	if b.stopCard != nil {
		b.stopCard()
	}
}

// logText is everything the agent logged, across restarts.
func (b *box) logText() string {
	if b.log == nil {
		return ""
	}
	b.log.mu.Lock()
	defer b.log.mu.Unlock()
	return b.log.w.String()
}

// journal reads the confirmations as `loa-agent journal --json` prints them.
func (b *box) journal() []journal.Record {
	b.t.Helper()
	cmd := exec.Command(agentBinary(b.t), "journal", "--config", b.config, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("loa-agent journal: %v: %s", err, stderr.String())
	}
	var recs []journal.Record
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		var r journal.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			b.t.Fatalf("journal line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// waitFor polls the journal until cond holds or the deadline passes.
func (b *box) waitFor(what string, d time.Duration, cond func([]journal.Record) bool) []journal.Record {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		recs := b.journal()
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			// A stuck agent says where: SIGQUIT makes the Go runtime print every goroutine.
			if b.cmd != nil && b.cmd.Process != nil {
				b.cmd.Process.Signal(syscall.SIGQUIT)
				b.cmd.Wait()
				b.cmd = nil
			}
			b.t.Fatalf("timed out waiting for %s; journal:\n%s\nagent log (and its goroutines):\n%s", what, dumpRecords(recs), b.logText())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func dumpRecords(recs []journal.Record) string {
	var s strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&s, "  #%d %s item %d %s played %s %s underruns %d %s\n", r.Seq, r.Program, r.ItemIndex, r.Result, protocol.Duration(r.PlayedS), r.Start.Format("15:04:05.000"), r.Underruns, r.Error)
	}
	return s.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func closed(recs []journal.Record) []journal.Record {
	var out []journal.Record
	for _, r := range recs {
		if r.Result != protocol.ResultPlaying {
			out = append(out, r)
		}
	}
	return out
}

func at(t time.Time) string { return t.Format(time.RFC3339) }

// soundRuns finds the stretches of sound in captured stereo samples (10 ms blocks above
// -40 dBFS RMS), merging stretches closer than 50 ms.
func soundRuns(samples []float32, rate int) []time.Duration {
	var out []time.Duration
	for _, s := range soundStretches(samples, rate) {
		out = append(out, s.length)
	}
	return out
}

// stretch is a run of sound in a capture: where it begins (from the capture's start) and
// how long it is heard.
type stretch struct{ at, length time.Duration }

func soundStretches(samples []float32, rate int) []stretch {
	block := rate / 100
	var runs []stretch
	active, quiet, start := 0, 0, 0
	for b, i := 0, 0; i+2*block <= len(samples); b, i = b+1, i+2*block {
		var sum float64
		for _, s := range samples[i : i+2*block] {
			sum += float64(s) * float64(s)
		}
		loud := math.Sqrt(sum/float64(2*block)) > 0.01
		switch {
		case loud:
			if active == 0 {
				start = b
			}
			active += 1 + quiet*boolInt(active > 0)
			quiet = 0
		case active > 0:
			quiet++
			if quiet > 5 {
				runs = append(runs, stretch{time.Duration(start) * 10 * time.Millisecond, time.Duration(active) * 10 * time.Millisecond})
				active, quiet = 0, 0
			}
		}
	}
	if active > 0 {
		runs = append(runs, stretch{time.Duration(start) * 10 * time.Millisecond, time.Duration(active) * 10 * time.Millisecond})
	}
	return runs
}

// heardPlays matches the stretches of sound to the journal's plays, in order. A play the
// journal says ran dry (underruns > 0) may be heard in parts a short silence apart: its
// sound is the sum of its parts. A split the journal does not own up to stays a split.
func heardPlays(runs []stretch, recs []journal.Record, within time.Duration) []time.Duration {
	var heard []time.Duration
	for i := 0; i < len(runs); i++ {
		sound, end := runs[i].length, runs[i].at+runs[i].length
		if k := len(heard); k < len(recs) && recs[k].Underruns > 0 {
			for i+1 < len(runs) && runs[i+1].at-end < within {
				i++
				sound, end = sound+runs[i].length, runs[i].at+runs[i].length
			}
		}
		heard = append(heard, sound)
	}
	return heard
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAgentPlaysScheduleEndToEnd(t *testing.T) {
	b := newBox(t, "")
	tone(t, filepath.Join(b.dir, "media/a.mp3"), 440, 1.0)
	tone(t, filepath.Join(b.dir, "media/b.wav"), 660, 1.5)
	tone(t, filepath.Join(b.dir, "media/c.mp3"), 880, 0.8)
	base := time.Now().Truncate(time.Second).Add(4 * time.Second)
	b.writeSchedule(fmt.Sprintf(`version: 1
id: e2e
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - {id: first, at: %q, items: [{file: media/a.mp3}]}
  - {id: second, at: %q, items: [{file: media/b.wav}]}
  - {id: third, at: %q, items: [{file: media/c.mp3}]}
`, at(base), at(base.Add(2*time.Second)), at(base.Add(5*time.Second))))
	b.start()
	recs := b.waitFor("three completed plays", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 3 })
	// A record closes when its last frame is handed to ALSA; let the card play out its buffer.
	time.Sleep(time.Second)
	b.stop()

	want := []struct {
		program string
		length  time.Duration
		at      time.Time
	}{{"first", time.Second, base}, {"second", 1500 * time.Millisecond, base.Add(2 * time.Second)}, {"third", 800 * time.Millisecond, base.Add(5 * time.Second)}}
	if len(recs) != 3 {
		t.Fatalf("journal has %d records, want 3:\n%s", len(recs), dumpRecords(recs))
	}
	for i, w := range want {
		r := recs[i]
		if r.Program != w.program || r.Result != protocol.ResultCompleted {
			t.Errorf("record %d: %s %s, want %s completed", i, r.Program, r.Result, w.program)
		}
		// On a loaded machine a start can be late; the planned end still holds, so a play may
		// be shorter than its file, never longer.
		if protocol.Duration(r.PlayedS) <= 0 || protocol.Duration(r.PlayedS) > w.length+50*time.Millisecond {
			t.Errorf("%s: played %s, the file is %s (scheduled %s, started %s)", w.program, protocol.Duration(r.PlayedS), w.length, w.at.Format("15:04:05.000"), r.Start.Format("15:04:05.000"))
		}
		// In step (the default) a play is heard at its time, to within how well its start
		// was placed; never earlier than that.
		if r.Start.Before(w.at.Add(-20 * time.Millisecond)) {
			t.Errorf("%s started at %s, before its time %s", w.program, r.Start.Format(time.RFC3339Nano), w.at.Format(time.RFC3339Nano))
		}
		if r.Seq != uint64(i+1) || r.Device != "test-cluster" || r.Output != "speakers" || r.Clock != protocol.ClockSynced {
			t.Errorf("record %d: seq %d device %q output %q clock %q", i, r.Seq, r.Device, r.Output, r.Clock)
		}
	}
	// What reached the sound card: three tones whose lengths match the played durations.
	samples, _ := b.captures[0].Samples()
	// Plays are 1 s and more apart; a play that ran dry on a loaded machine is silent for less.
	runs := heardPlays(soundStretches(samples, 48000), recs, 500*time.Millisecond)
	if len(runs) != 3 {
		t.Fatalf("the sound card heard %d stretches of sound, want 3: %v\njournal:\n%s\nagent log:\n%s", len(runs), runs, dumpRecords(recs), b.logText())
	}
	for i, r := range runs {
		if d := r - protocol.Duration(recs[i].PlayedS); d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("tone %d: heard for %s, journal says %s", i, r, protocol.Duration(recs[i].PlayedS))
		}
	}
}

// The matcher owns up only to splits the journal owns up to.
func TestHeardPlays(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	runs := []stretch{{0, ms(1000)}, {ms(2000), ms(70)}, {ms(2200), ms(1440)}, {ms(5000), ms(800)}}
	plays := []journal.Record{{}, {}, {}}
	if got := heardPlays(runs, plays, ms(500)); len(got) != 4 {
		t.Errorf("no underrun in the journal: heard %v, want the split kept (4 stretches)", got)
	}
	plays[1].Underruns = 1
	got := heardPlays(runs, plays, ms(500))
	if want := []time.Duration{ms(1000), ms(1510), ms(800)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second play ran dry: heard %v, want %v", got, want)
	}
	plays[0].Underruns = 1 // the first play's neighbour is 1 s away: not a part of it
	if got := heardPlays(runs, plays, ms(500)); len(got) != 3 || got[0] != ms(1000) {
		t.Errorf("a play 1 s later was merged into the first: %v", got)
	}
}
