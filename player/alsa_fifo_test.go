package player_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/player"
)

// The ALSA tests play through real ALSA (oto, the same code as on a box) into the file
// plugin writing to a FIFO that the test drains at real-time rate. oto allows one context
// per process and reads ALSA_CONFIG_PATH when it opens, so the playing side runs in a child
// process: this test binary again, selected by LOA_ALSA_CHILD.

type alsaChildResult struct {
	First  player.Result `json:"first"`
	Second player.Result `json:"second"`
	Err    string        `json:"err"`
}

// TestALSAChild is the child's side; it does nothing in a normal run.
func TestALSAChild(t *testing.T) {
	spec := os.Getenv("LOA_ALSA_CHILD")
	if spec == "" {
		t.Skip("run by TestALSAThroughFIFO")
	}
	var args struct{ A, B, Device, Mode, URL string }
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	if args.Mode == "open" {
		_, err := player.OpenOutput(context.Background(), "alsa:"+args.Device, rate, 0, nil)
		os.Stdout.WriteString(fmt.Sprintf("\nOPENERR:%v\n", err))
		return
	}
	var res alsaChildResult
	defer func() {
		b, _ := json.Marshal(res)
		os.Stdout.WriteString("\nRESULT:" + string(b) + "\n")
	}()
	ctx := context.Background()
	o, err := player.OpenOutput(ctx, "alsa:"+args.Device, rate, 200*time.Millisecond, nil)
	if err != nil {
		res.Err = err.Error()
		return
	}
	p, err := player.New(player.Config{Output: o})
	if err != nil {
		res.Err = err.Error()
		return
	}
	if args.Mode == "stream" {
		pb, err := p.Play(ctx, player.Program{Items: []player.Item{{URL: args.URL, Duration: 4 * time.Second}}, Gain: 1})
		if err != nil {
			res.Err = err.Error()
			return
		}
		res.First = pb.Wait()
		time.Sleep(600 * time.Millisecond)
		return
	}
	// Program 1: two tones back to back. Program 2, on the same output: a tone stopped early.
	pb, err := p.Play(ctx, player.Program{Items: []player.Item{{Path: args.A}, {Path: args.B}}, Gain: 1})
	if err != nil {
		res.Err = err.Error()
		return
	}
	res.First = pb.Wait()
	time.Sleep(200 * time.Millisecond)
	pb, err = p.Play(ctx, player.Program{Items: []player.Item{{Path: args.A}}, Gain: 1})
	if err != nil {
		res.Err = err.Error()
		return
	}
	for pb.Progress().ProgramFrames < rate*3/10 {
		time.Sleep(5 * time.Millisecond)
	}
	res.Second = pb.Stop()
	// Let ALSA's own buffer and the FIFO empty before the process ends.
	time.Sleep(600 * time.Millisecond)
	o.Close()
}

// alsaFIFO writes an ALSA config whose PCM "loafifo" writes to a FIFO and whose default is
// the null device (so the test also proves the device name is honoured), and drains the
// FIFO at real time. It returns the config path and a function that waits for the capture.
func alsaFIFO(t *testing.T) (conf string, capture func() []float32) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "out.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile("testdata/alsa-fifo.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := strings.ReplaceAll(string(tmpl), "@FIFO@", fifo)
	c = strings.Replace(c, "pcm.!default {", "pcm.!default { type null }\npcm.loafifo {", 1)
	conf = filepath.Join(dir, "asound.conf")
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	// Open our read end without blocking, and hold a write end ourselves until the child is
	// done, so that neither side waits on the other to open.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	hold, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var samples []float32
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.Close()
		const chunk = 480 * 8 // 10 ms
		br := bufio.NewReaderSize(r, 64<<10)
		buf := make([]byte, chunk)
		var start time.Time
		var frames int64
		for {
			n, err := io.ReadFull(br, buf)
			if start.IsZero() {
				start = time.Now() // the pace starts with the first data
			}
			n -= n % 8
			mu.Lock()
			for i := 0; i < n; i += 4 {
				samples = append(samples, math.Float32frombits(binary.LittleEndian.Uint32(buf[i:])))
			}
			mu.Unlock()
			frames += int64(n / 8)
			if err != nil {
				return
			}
			// Real-time pace: 48000 frames a second.
			if d := time.Until(start.Add(time.Duration(frames) * time.Second / rate)); d > 0 {
				time.Sleep(d)
			}
		}
	}()
	return conf, func() []float32 {
		hold.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the FIFO was not closed by the child")
		}
		mu.Lock()
		defer mu.Unlock()
		return samples
	}
}

// TestALSAThroughFIFO plays through real ALSA in real time. A run on a machine so loaded that
// the output starved is tried again (up to three runs), saying so; the last must pass.
func TestALSAThroughFIFO(t *testing.T) {
	dir := t.TempDir()
	a, b, sa, sb := twoTones(t, dir)
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		problems = alsaAttempt(t, a, b, sa, sb)
		if len(problems) == 0 {
			return
		}
		t.Logf("run %d through ALSA failed (load average %s): %s", attempt, testkit.LoadAverage(), strings.Join(problems, "; "))
	}
	t.Fatalf("ALSA playback: %s", strings.Join(problems, "; "))
}

// alsaAttempt runs the child once and checks the capture; it returns what is wrong.
func alsaAttempt(t *testing.T, a, b string, sa, sb []float32) (problems []string) {
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	conf, capture := alsaFIFO(t)
	spec, _ := json.Marshal(map[string]string{"A": a, "B": b, "Device": "loafifo"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestALSAChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LOA_ALSA_CHILD="+string(spec), "ALSA_CONFIG_PATH="+conf)
	out, err := cmd.CombinedOutput()
	got := capture()
	if err != nil {
		errorf("child: %v\n%s", err, out)
		return
	}
	i := strings.LastIndex(string(out), "RESULT:")
	if i < 0 {
		errorf("child printed no result:\n%s", out)
		return
	}
	var res alsaChildResult
	if err := json.Unmarshal([]byte(strings.SplitN(string(out[i+7:]), "\n", 2)[0]), &res); err != nil {
		errorf("child result: %v", err)
		return
	}
	if res.Err != "" {
		errorf("child: %s", res.Err)
		return
	}

	// Program 1 is found sample-accurate: the fade-in, then A and B exactly, then silence.
	s0 := firstNonZero(got, 0)
	if s0 < 0 {
		errorf("nothing but silence reached the FIFO")
		return
	}
	want := append(append([]float32{}, sa...), sb...)
	if len(got)/2 < s0+len(want)/2 {
		errorf("the FIFO holds %d frames after the start at %d, fewer than the program's %d", len(got)/2-s0, s0, len(want)/2)
		return
	}
	for f := 0; f < len(want)/2; f++ {
		g := 1.0
		if f < rampFrames {
			g = float64(f+1) / rampFrames
		}
		w := float64(want[2*f]) * g
		if d := math.Abs(float64(got[2*(s0+f)]) - w); d > 1e-4 {
			errorf("frame %d of the program is %v in the FIFO, want %v", f, got[2*(s0+f)], w)
			return
		}
	}
	end := s0 + len(want)/2
	if z := longestZeroRun(got[2*s0 : 2*end]); z > 0 {
		errorf("a run of %d zero frames inside the program (not gapless)", z)
	}
	if end < len(got)/2 && got[2*end] != 0 {
		errorf("sound after the program's end: %v", got[2*end])
	}
	if f := res.First.Items; f[0].Frames != int64(len(sa)/2) || f[1].Frames != int64(len(sb)/2) {
		errorf("proof frames %d, %d; want %d, %d", f[0].Frames, f[1].Frames, len(sa)/2, len(sb)/2)
	}
	if u := res.First.Items[0].Underruns + res.First.Items[1].Underruns; u != 0 {
		errorf("%d underruns reported while the FIFO was drained in real time", u)
	}

	// Program 2 on the same output: starts with A, is stopped, fades out: no click anywhere.
	s1 := firstNonZero(got, end)
	if s1 < 0 {
		errorf("the second program never reached the FIFO")
		return
	}
	last := lastNonZero(got)
	stopped := res.Second.Items[0]
	if stopped.Ended != player.EndStopped {
		errorf("second program ended %q, want stopped", stopped.Ended)
	}
	if n := int64(last - s1 + 1); n < stopped.Frames-2 || n > stopped.Frames {
		errorf("second program: %d frames in the FIFO, proof says %d", n, stopped.Frames)
	}
	if stopped.Frames >= int64(len(sa)/2) {
		errorf("second program played whole (%d frames) despite Stop", stopped.Frames)
	}
	// B ends where its file ends (mid-wave, a cut in the file itself): look at the fade-in
	// and the joins of program 1, and at all of program 2 including its stop.
	if step, at := maxStep(got[2*s0 : 2*end]); step > 0.1 {
		errorf("step of %.3f at frame %d of program 1: a click", step, at)
	}
	if step, at := maxStep(got[2*(s1-1):]); step > 0.1 {
		errorf("step of %.3f at frame %d of program 2: a click", step, at)
	}
	return problems
}

// TestALSAUnderrunReported: a stream that stalls (without dropping) starves the device; the
// proof must say so rather than claim clean playback.
func TestALSAUnderrunReported(t *testing.T) {
	dir := t.TempDir()
	wavPath, mp3 := filepath.Join(dir, "s.wav"), filepath.Join(dir, "s.mp3")
	run(t, "sox", "-n", "-r", "48000", "-c", "2", "-b", "16", wavPath, "synth", "3", "sine", "440", "vol", "0.5")
	run(t, "lame", "--quiet", "-b", "128", wavPath, mp3)
	audio, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		third := len(audio) / 3
		w.Write(audio[:third]) // one second of audio
		w.(http.Flusher).Flush()
		select { // then nothing for two seconds: the output runs dry
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Write(audio[third:])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	conf, capture := alsaFIFO(t)
	spec, _ := json.Marshal(map[string]string{"Device": "loafifo", "Mode": "stream", "URL": srv.URL + "/live.mp3"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestALSAChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LOA_ALSA_CHILD="+string(spec), "ALSA_CONFIG_PATH="+conf)
	out, err := cmd.CombinedOutput()
	got := capture()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	i := strings.LastIndex(string(out), "RESULT:")
	if i < 0 {
		t.Fatalf("child printed no result:\n%s", out)
	}
	var res alsaChildResult
	if err := json.Unmarshal([]byte(strings.SplitN(string(out[i+7:]), "\n", 2)[0]), &res); err != nil {
		t.Fatal(err)
	}
	if res.Err != "" {
		t.Fatal(res.Err)
	}
	proof := res.First.Items[0]
	t.Logf("proof %s", fmtProof(proof))
	if proof.Underruns < 1 {
		t.Errorf("the stream stalled for 2 s but the proof reports %d underruns", proof.Underruns)
	}
	if proof.Gaps != 0 {
		t.Errorf("a stall without a drop reported as %d gaps", proof.Gaps)
	}
	s0, last := firstNonZero(got, 0), lastNonZero(got)
	if s0 < 0 {
		t.Fatal("nothing reached the FIFO")
	}
	if z := longestZeroRun(got[2*s0 : 2*last]); z < rate/2 {
		t.Errorf("longest silence inside the stream is %d frames; the stall should leave at least %d", z, rate/2)
	}
}

// TestALSAOpenError: a device that does not exist gives an error naming it and what to check.
func TestALSAOpenError(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "asound.conf")
	if err := os.WriteFile(conf, []byte("pcm.null { type null }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestALSAChild$", "-test.v")
	cmd.Env = append(os.Environ(), `LOA_ALSA_CHILD={"Device":"hw:CARD=Loa9","Mode":"open"}`, "ALSA_CONFIG_PATH="+conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	i := strings.LastIndex(string(out), "OPENERR:")
	if i < 0 {
		t.Fatalf("child printed no result:\n%s", out)
	}
	msg := strings.SplitN(string(out[i+8:]), "\n", 2)[0]
	t.Logf("open error: %s", msg)
	if !strings.Contains(msg, "hw:CARD=Loa9") || !strings.Contains(msg, "aplay -L") {
		t.Errorf("open error %q should name the device and say what to check", msg)
	}
}

func firstNonZero(s []float32, from int) int {
	for f := from; f < len(s)/2; f++ {
		if s[2*f] != 0 || s[2*f+1] != 0 {
			return f
		}
	}
	return -1
}

func lastNonZero(s []float32) int {
	for f := len(s)/2 - 1; f >= 0; f-- {
		if s[2*f] != 0 || s[2*f+1] != 0 {
			return f
		}
	}
	return -1
}
