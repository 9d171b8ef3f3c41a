package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/alsafifo"
	"github.com/loa-project/loa/internal/testkit"
)

// TestDeadAirEndToEnd (issue 19 item 5): a file that is silence and a relay whose station goes
// silent, pushed from the hub to a real agent on the FIFO sound card. The file is replaced by
// its spoken fallback_text, the relay by the device's station identification
// (audio.dead_air.fallback_file) and then its station again; the hub shows the dead-air alarm
// within seconds (the agent sends a status when it changes), and clears it when the station's
// sound returns. What the card heard is, in order: the spoken text, the identification's
// 300 Hz, the station's 440 Hz.
func TestDeadAirEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes for about half a minute")
	}
	bins := build(t)
	h := newHub(t, bins)
	const device = "qn/tk/cl-01"
	secret := h.enrollIn(t, "qn/tk", device)
	media := t.TempDir()
	sox := func(out string, args ...string) {
		t.Helper()
		if o, err := exec.Command("sox", append([]string{"-n", "-r", "44100", "-c", "2", "-b", "16", out}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, o)
		}
	}
	silentFile, ident := filepath.Join(media, "silent.wav"), filepath.Join(media, "ident.wav")
	sox(silentFile, "trim", "0", "3")
	sox(ident, "synth", "1.2", "sine", "300", "vol", "0.5")
	quiet, onAir := testkit.MP3(t, "30", "sine", "440", "vol", "0"), testkit.MP3(t, "30", "sine", "440", "vol", "0.5")
	// The station: silent on the first connection, on air from the second. It sends at twice
	// real time, as Icecast sends its burst and then keeps ahead of the listener.
	var conns atomic.Int32
	station := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := quiet
		if conns.Add(1) > 1 {
			b = onAir
		}
		w.Header().Set("Content-Type", "audio/mpeg")
		const chunk = 4000 // 0.5 s at 64 kbit/s
		for i := 0; i < len(b); i += chunk {
			if _, err := w.Write(b[i:min(i+chunk, len(b))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
		<-r.Context().Done()
	}))
	defer station.Close()

	a := newAgent(t, bins, device, secret, h.url, h.keyLine)
	cfg, _ := os.ReadFile(a.config)
	os.WriteFile(a.config, []byte(strings.Replace(string(cfg), "audio: {output: alsa}",
		fmt.Sprintf("audio: {output: alsa, dead_air: {after: 1s, fallback_file: %s}}", ident), 1)), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	card, _, err := alsafifo.Open(ctx, a.fifo, alsafifo.Options{Rate: 48000, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	a.proc = start(t, []string{"ALSA_CONFIG_PATH=" + a.alsaConf}, bins.agent, "run", "--config", a.config)
	logs := func() string { return "hub:\n" + h.proc.String() + "\nagent:\n" + a.proc.String() }
	audio := func() (state, why string) {
		out, err := exec.Command(bins.cli, "--hub", h.url, "--token", h.token, "device", "show", device, "--json").Output()
		var d struct {
			Online bool `json:"online"`
			Audio  *struct {
				State string `json:"state"`
				Error string `json:"error"`
			} `json:"audio"`
		}
		if err != nil || json.Unmarshal(out, &d) != nil || !d.Online || d.Audio == nil {
			return "", ""
		}
		return d.Audio.State, d.Audio.Error
	}
	waitFor(t, "the agent online, its sound reported", 30*time.Second, func() bool { s, _ := audio(); return s == "sound" }, logs)

	loc, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	at := time.Now().Add(6 * time.Second).Truncate(time.Second)
	sched := filepath.Join(media, "tk.yaml")
	os.WriteFile(sched, []byte(fmt.Sprintf(`version: 1
id: tk
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - id: news
    at: %q
    items:
      - {file: %s, fallback_text: "Xin lỗi, bản tin tạm thời gián đoạn"}
      - {stream: %q, duration: 5s}
`, at.In(loc).Format(time.RFC3339), silentFile, station.URL+"/vov1.mp3")), 0o644)
	testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")

	var raised time.Time
	waitFor(t, "the hub showing the dead-air alarm", 40*time.Second, func() bool {
		s, why := audio()
		if s == "dead_air" && strings.Contains(why, "dead air") {
			raised = time.Now()
			return true
		}
		return false
	}, logs)
	t.Logf("alarm at the hub %s after the programme's start", raised.Sub(at).Round(100*time.Millisecond))
	waitFor(t, "the alarm cleared when the station's sound returned", 40*time.Second, func() bool { s, _ := audio(); return s == "sound" }, logs)
	var recs []jrec
	waitFor(t, "both items closed in the journal", 40*time.Second, func() bool {
		recs = having(a.records(bins), func(r jrec) bool {
			return strings.HasSuffix(r.Program, "news") && r.Result != "" && r.Result != "playing"
		})
		return len(recs) >= 2
	}, logs)
	time.Sleep(time.Second) // the card plays out what was handed to it
	if recs[0].Result != "failed" || !strings.Contains(recs[0].Error, "dead air") || !strings.Contains(recs[0].Error, "fallback") {
		t.Errorf("the silent file: %s %q, want failed saying dead air and its fallback", recs[0].Result, recs[0].Error)
	}
	if recs[1].Result != "completed" {
		t.Errorf("the relay: %s %q, want completed (its station came back)", recs[1].Result, recs[1].Error)
	}
	if c := conns.Load(); c < 2 {
		t.Errorf("%d connections to the station, want it reopened after the identification", c)
	}

	// What the card heard, in 100 ms windows from the programme's start: speech (sound that
	// is not a pure tone), then the identification's 300 Hz, then the station's 440 Hz.
	samples, t0 := card.Samples()
	from := int(at.Sub(t0).Seconds() * 48000)
	if from < 0 || from >= len(samples)/2 {
		t.Fatalf("the capture (%d frames from %s) does not reach the programme's start %s", len(samples)/2, t0, at)
	}
	type run struct {
		kind string
		n    int
	}
	var heard []run
	for i := from; i+4800 <= len(samples)/2; i += 4800 {
		w := samples[2*i : 2*(i+4800)]
		kind := "."
		switch {
		case rms(w) < 0.01:
		case toneShare(w, 300, 48000) > 0.8:
			kind = "i"
		case toneShare(w, 440, 48000) > 0.8:
			kind = "s"
		default:
			kind = "v"
		}
		if len(heard) == 0 || heard[len(heard)-1].kind != kind {
			heard = append(heard, run{kind, 0})
		}
		heard[len(heard)-1].n++
	}
	t.Logf("heard (.=silence v=voice i=identification s=station, in 100 ms windows): %v", heard)
	// The first run of each (the identification and the station at least half a second).
	first := func(kind string, min int) int {
		for i, r := range heard {
			if r.kind == kind && r.n >= min {
				return i
			}
		}
		return -1
	}
	iv, ii, is := first("v", 1), first("i", 5), first("s", 5)
	if iv < 0 || ii < iv || is < ii {
		t.Errorf("the card heard %v: want the spoken fallback, then the identification, then the station", heard)
	}
}

func rms(w []float32) float64 {
	var s float64
	for _, x := range w {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s / float64(len(w)))
}

// toneShare is the share of the left channel's energy at frequency f (Goertzel): near 1 for
// a pure tone of f, small for speech or another tone.
func toneShare(w []float32, f float64, rate int) float64 {
	n := len(w) / 2
	c := 2 * math.Cos(2*math.Pi*f/float64(rate))
	var s1, s2, total float64
	for i := 0; i < n; i++ {
		x := float64(w[2*i])
		total += x * x
		s1, s2 = x+c*s1-s2, s1
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	if total == 0 {
		return 0
	}
	return 2 * power / (float64(n) * total)
}
