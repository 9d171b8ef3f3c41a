package player_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchPlayer measures the figures scripts/bench-player prints. It runs only when that
// script sets LOA_BENCH_AGENT (a built loa-agent) and LOA_BENCH_MP3 (the 10-minute file).
func TestBenchPlayer(t *testing.T) {
	agent, mp3 := os.Getenv("LOA_BENCH_AGENT"), os.Getenv("LOA_BENCH_MP3")
	if agent == "" || mp3 == "" {
		t.Skip("run by scripts/bench-player")
	}
	runs := 3
	var ours, ref []time.Duration
	for i := 0; i < runs; i++ {
		ref = append(ref, cpuOf(t, exec.Command("mpg123", "-q", "-r", "48000", "-w", "/dev/null", mp3)))
		ours = append(ours, cpuOf(t, exec.Command(agent, "play", mp3, "--out", "wav:/dev/null")))
	}
	o, r := minDur(ours), minDur(ref)
	fmt.Printf("BENCH decode + resample to 48 kHz of a 10-minute 128 kbps 44.1 kHz stereo MP3, CPU user+sys, best of %d:\n", runs)
	fmt.Printf("BENCH   loa-agent play FILE --out wav:/dev/null   %6.2f s   (runs: %s)\n", o.Seconds(), durs(ours))
	fmt.Printf("BENCH   mpg123 -q -r 48000 -w /dev/null FILE      %6.2f s   (reference; runs: %s)\n", r.Seconds(), durs(ref))
	fmt.Printf("BENCH   ratio loa-agent / mpg123                  %6.2f     (goal: at most 1.5)\n", o.Seconds()/r.Seconds())

	// Real time through ALSA: the FIFO-paced file plugin, drained at 48000 frames/s.
	const seconds = 20
	conf, capture := alsaFIFO(t)
	conf = strings.TrimSpace(conf)
	// alsaFIFO names the FIFO PCM "loafifo" and makes "default" a null device.
	cmd := exec.Command(agent, "play", mp3, "--out", "alsa:loafifo", "--duration", fmt.Sprintf("%ds", seconds))
	cmd.Env = append(os.Environ(), "ALSA_CONFIG_PATH="+conf)
	out, err := cmd.Output()
	got := capture()
	if err != nil {
		t.Fatalf("real-time play: %v\n%s", err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	fmt.Printf("BENCH real-time playback of the same file to ALSA (oto, FIFO file plugin), %d s measured:\n", seconds)
	fmt.Printf("BENCH   peak RSS of loa-agent                     %6.1f MB  (goal: under 30 MB)\n", float64(ru.Maxrss)/1024)
	fmt.Printf("BENCH   CPU user+sys in those %d s                 %6.2f s   = %.1f %% of one core\n", seconds, cpu.Seconds(), 100*cpu.Seconds()/seconds)
	fmt.Printf("BENCH   CPU per hour of playback                  %6.1f s   (the %d s measurement times %d)\n", cpu.Seconds()*3600/seconds, seconds, 3600/seconds)
	fmt.Printf("BENCH   audio reaching the FIFO                   %6.2f s   proof: %s", float64(len(got)/2)/rate, out)
}

func cpuOf(t *testing.T, cmd *exec.Cmd) time.Duration {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func minDur(d []time.Duration) time.Duration {
	m := d[0]
	for _, v := range d[1:] {
		m = min(m, v)
	}
	return m
}

func durs(d []time.Duration) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = fmt.Sprintf("%.2f", v.Seconds())
	}
	return strings.Join(s, " ")
}
