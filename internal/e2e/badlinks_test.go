package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/faultnet"
	"github.com/loa-project/loa/internal/testkit"
)

// TestPlayingThroughBadLinks (issue 17, item 3; LOA_SOAK=1, run by make soak: it takes about a
// minute of real play) puts internal/faultnet between a real agent playing on the FIFO sound
// card and a real hub, and checks that nothing playing is disturbed: through a link gone
// silent without closing, a connection cut mid-frame, and a push with new content over the 2G
// link (64 kbit/s, 600 ms round trip, 5% loss), every play due meanwhile is completed with no
// underrun and no gap, and the push becomes active and plays.
func TestPlayingThroughBadLinks(t *testing.T) {
	if os.Getenv("LOA_SOAK") == "" {
		t.Skip("LOA_SOAK=1: about a minute of real play through bad links (make soak)")
	}
	bins := build(t)
	h := newHub(t, bins)
	const device = "qn/tk/cl-01"
	secret := h.enrollIn(t, "qn/tk", device)
	media := t.TempDir()
	ref1 := h.addTone(t, filepath.Join(media, "a.wav"), 48000, 440)
	ref2 := h.addTone(t, filepath.Join(media, "b.wav"), 8000, 660) // 13 kB: about 1.6 s of the 2G link's bandwidth
	sched := filepath.Join(media, "commune.yaml")
	var pushed time.Time
	// A play every 2 s in this hour and the next only: the 32 hours of them the compile covers
	// (58,000 plays) take the agent a second or two to compile on a loaded machine, and plays
	// due meanwhile are missed, which is the compile's doing, not the link's
	// (docs/reliability.md, "Found, not fixed").
	loc, lerr := time.LoadLocation("Asia/Ho_Chi_Minh")
	if lerr != nil {
		t.Fatal(lerr)
	}
	hour := time.Now().In(loc).Hour()
	hours := fmt.Sprintf("%d,%d", hour, (hour+1)%24)
	revision := func(rev int, extra string) {
		os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
			"  - {id: tones, cron: \"*/2 * %s * * *\", items: [{content: %q}]}\n%s", rev, hours, ref1, extra)), 0o644)
		testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
		pushed = time.Now()
	}

	p, err := faultnet.New(h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	a := newAgent(t, bins, device, secret, "http://"+p.Addr(), h.keyLine)
	a.start(t, bins)
	logs := func() string { return "hub:\n" + h.proc.String() + "\nagent:\n" + a.proc.String() }
	revision(1, "")
	waitFor(t, "the first play", 40*time.Second, func() bool {
		return len(having(a.records(bins), prog("qn/tk/tones", "completed"))) > 0
	}, logs)

	faultsFrom := time.Now()
	// Silent without closing for 6 s, then the dead connection reset (as a NAT that forgot it).
	p.Silence(true)
	time.Sleep(6 * time.Second)
	p.Down()
	p.Silence(false)
	// The next connection is cut inside the hub's first frames.
	p.CutNext(faultnet.ToClient, 300)
	p.Up()
	time.Sleep(4 * time.Second)
	// A push with new content over 2G.
	p.SetShape(faultnet.Shape{Rate: 8000, Delay: 300 * time.Millisecond, Loss: 0.05})
	revision(2, fmt.Sprintf("  - {id: notice, cron: \"1/10 * %s * * *\", items: [{content: %q}]}\n", hours, ref2))
	activeRe := regexp.MustCompile(`"msg":"schedule active".*"revision":2`)
	waitFor(t, "revision 2 active over the 2G link", 60*time.Second, func() bool { return activeRe.MatchString(a.proc.String()) }, logs)
	t.Logf("2G: revision 2 and its 13 kB item pushed (loa schedule push returned), active %s later", time.Since(pushed).Round(100*time.Millisecond))
	waitFor(t, "revision 2 to play", 30*time.Second, func() bool {
		return len(having(a.records(bins), prog("qn/tk/notice", "completed"))) > 0
	}, logs)
	faultsTo := time.Now()

	recs := a.fullJournal(bins)
	played := 0
	for _, r := range recs {
		if r.Program != "qn/tk/tones" || r.Scheduled.Before(faultsFrom) || r.Scheduled.After(faultsTo.Add(-2*time.Second)) {
			continue
		}
		played++
		if r.Result != "completed" || r.Underruns != 0 || r.Gaps != 0 {
			t.Errorf("record %d, due %s during the faults: %s, %d underruns, %d gaps %s", r.Seq, r.Scheduled.Format("15:04:05"),
				r.Result, r.Underruns, r.Gaps, r.Error)
		}
	}
	if want := int(faultsTo.Sub(faultsFrom)/(2*time.Second)) - 2; played < want {
		t.Errorf("%d plays during %s of faults; want at least %d", played, faultsTo.Sub(faultsFrom).Round(time.Second), want)
	}
	if t.Failed() {
		var lines []string
		for _, l := range strings.Split(a.proc.String(), "\n") {
			if !strings.Contains(l, `"level":"DEBUG"`) {
				lines = append(lines, l)
			}
		}
		t.Logf("faults from %s to %s; the agent's log:\n%s", faultsFrom.Format("15:04:05.000"), faultsTo.Format("15:04:05.000"), strings.Join(lines, "\n"))
	}
	if st := p.Stats(); st.CutsTaken != 1 {
		t.Errorf("%d connections cut mid-frame, want 1", st.CutsTaken)
	}
	if n := strings.Count(a.proc.String(), `"msg":"hub link up"`); n < 2 {
		t.Errorf("the link came up %d times; want again after the faults\n%s", n, logs())
	}
}
