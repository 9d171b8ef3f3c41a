package screen_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/device/screen"
)

// TestBenchScreen is run by scripts/bench-screen: a 1080p H.264 video loops (as a program of
// copies of it) on a paced output for LOA_BENCH_SECONDS; it prints the CPU and RSS of this
// process (the driver) beside mpv's own, the gap between consecutive items from mpv's events,
// and how long an emergency takes to be on screen.
func TestBenchScreen(t *testing.T) {
	video := os.Getenv("LOA_BENCH_SCREEN_VIDEO")
	if video == "" {
		t.Skip("run by scripts/bench-screen")
	}
	secs, _ := strconv.Atoi(os.Getenv("LOA_BENCH_SECONDS"))
	if secs <= 0 {
		secs = 60
	}
	vo := os.Getenv("LOA_BENCH_VO")
	if vo == "" {
		vo = "null"
	}
	clipS, err := strconv.ParseFloat(os.Getenv("LOA_BENCH_CLIP_SECONDS"), 64)
	if err != nil || clipS <= 0 {
		t.Fatal("LOA_BENCH_CLIP_SECONDS: the clip's length in seconds")
	}
	hwdec := os.Getenv("LOA_BENCH_HWDEC") // on a Pi: auto-safe
	if hwdec == "" {
		hwdec = "no"
	}
	s, err := screen.Open(screen.Config{VO: vo, Dir: shortDir(t), Args: []string{"--vo-null-fps=25", "--hwdec=" + hwdec}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := int(float64(secs)/clipS + 0.999)
	items := make([]screen.Item, n)
	for i := range items {
		items[i] = screen.Item{Path: video}
	}
	pid := s.State().PID
	selfCPU0, mpvCPU0 := selfCPU(), procCPU(t, pid)
	t0 := time.Now()
	sh, err := s.Show(context.Background(), screen.Program{Items: items})
	if err != nil {
		t.Fatal(err)
	}
	res := sh.Wait()
	wall := time.Since(t0)
	selfCPU1, mpvCPU1 := selfCPU(), procCPU(t, pid)
	selfRSS, selfHWM := procMem(t, os.Getpid())
	mpvRSS, mpvHWM := procMem(t, pid)

	var gaps []time.Duration
	dropped := int64(0)
	for i, p := range res.Items {
		if p.Ended != screen.EndCompleted {
			t.Fatalf("item %d: %+v", i, p)
		}
		dropped += p.FramesDropped
		if i > 0 {
			gaps = append(gaps, p.Start.Sub(res.Items[i-1].End))
		}
	}
	slices.Sort(gaps)
	pct := func(d time.Duration) string { return fmt.Sprintf("%.1f%%", 100*d.Seconds()/wall.Seconds()) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Printf("BENCH %d items of a %.0f s 1080p25 H.264 clip, %.1f s on a paced 25 fps output (--vo=%s, --hwdec=%s)\n", n, clipS, wall.Seconds(), vo, hwdec)
	fmt.Printf("BENCH %-28s %12s %12s\n", "", "driver (Go)", "mpv")
	fmt.Printf("BENCH %-28s %12s %12s\n", "CPU (user+sys)", fmt.Sprintf("%.2f s", (selfCPU1-selfCPU0).Seconds()), fmt.Sprintf("%.2f s", (mpvCPU1-mpvCPU0).Seconds()))
	fmt.Printf("BENCH %-28s %12s %12s\n", "CPU, share of one core", pct(selfCPU1-selfCPU0), pct(mpvCPU1-mpvCPU0))
	fmt.Printf("BENCH %-28s %12s %12s\n", "RSS at the end", mb(selfRSS), mb(mpvRSS))
	fmt.Printf("BENCH %-28s %12s %12s\n", "peak RSS", mb(selfHWM), mb(mpvHWM))
	if len(gaps) > 0 {
		fmt.Printf("BENCH item change (end-file -> first frame of the next), %d changes: median %s, max %s\n", len(gaps), ms(gaps[len(gaps)/2]), ms(gaps[len(gaps)-1]))
	}
	fmt.Printf("BENCH frames dropped: %d of about %.0f\n", dropped, wall.Seconds()*25)

	// Preemption: an emergency bulletin over a playing video, 10 times.
	var lat []time.Duration
	for k := 0; k < 10; k++ {
		ev := newEvents(1)
		sh, err := s.Show(context.Background(), ev.program(screen.Item{Path: video}))
		if err != nil {
			t.Fatal(err)
		}
		ev.waitStart(t, 0)
		time.Sleep(500 * time.Millisecond)
		em := newEvents(1)
		asked := time.Now()
		e, err := s.Show(context.Background(), em.program(screen.Item{Text: "KHẨN CẤP", Duration: time.Minute, Background: "#C00000"}))
		if err != nil {
			t.Fatal(err)
		}
		em.waitStart(t, 0)
		lat = append(lat, time.Since(asked))
		sh.Wait()
		e.Stop()
	}
	slices.Sort(lat)
	fmt.Printf("BENCH emergency over a playing 1080p video, Show -> its first frame, 10 times: median %s, max %s\n", ms(lat[len(lat)/2]), ms(lat[len(lat)-1]))
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is utime+stime of a process from /proc (clock ticks of 10 ms).
func procCPU(t testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procMem is VmRSS and VmHWM in bytes.
func procMem(t testing.TB, pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && (fs[0] == "VmRSS:" || fs[0] == "VmHWM:") {
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			if fs[0] == "VmRSS:" {
				rss = v * 1024
			} else {
				hwm = v * 1024
			}
		}
	}
	return rss, hwm
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
