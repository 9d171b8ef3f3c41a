package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/testkit"
)

// TestKillsAtScale is issue 17's "kills at scale with the hub in the loop", run by `make soak`
// (LOA_KILLS=1000; not in make test): a real agent playing on the FIFO sound card is
// SIGKILLed LOA_KILLS times at random moments while plays close and confirmations flow to a
// real hub, and the hub is SIGKILLed LOA_HUB_KILLS times (default 40 per 1,000) among them.
// At the end the hub holds seq 1..N for the device, no gap, no duplicate, and the same
// records as the agent's journal, field by field. It prints the KILLS figures line.
//
// Each round: start the agent, wait until its link to the hub is up (the recovery time), let
// it run 1–5 s (plays close about every second and are sent as they close), kill it; now and
// then kill the hub too and start it again on the same data before the agent. One round in
// four also kills the agent 0–2.5 s into a start (journal opening, schedule activation).
func TestKillsAtScale(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv("LOA_KILLS"))
	if kills <= 0 {
		t.Skip("LOA_KILLS=N runs N SIGKILLs of the agent with the hub in the loop (make soak)")
	}
	hubKills := max(1, kills*40/1000)
	if n, err := strconv.Atoi(os.Getenv("LOA_HUB_KILLS")); err == nil && n >= 0 {
		hubKills = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d: %d kills of the agent, %d of the hub", seed, kills, hubKills)
	rng := rand.New(rand.NewPCG(seed, 17))
	bins := build(t)
	h := newHub(t, bins)
	const device = "qn/tk/cl-01"
	secret := h.enrollIn(t, "qn/tk", device)

	// Two short tones a play, a play every 2 s: a record closes about every second.
	media := t.TempDir()
	var refs []string
	for i, f := range []int{440, 660} {
		ref := h.addTone(t, filepath.Join(media, fmt.Sprintf("t%d.wav", i)), 48000, f)
		refs = append(refs, fmt.Sprintf("{content: %q}", ref))
	}
	sched := filepath.Join(media, "commune.yaml")
	os.WriteFile(sched, []byte("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: tones, cron: \"*/2 * * * * *\", items: ["+strings.Join(refs, ", ")+"]}\n"), 0o644)
	a := newAgent(t, bins, device, secret, h.url, h.keyLine)
	logs := func() string { return "hub:\n" + h.proc.String() + "\nagent:\n" + a.proc.String() }

	// linkUp starts the agent and waits until its link to the hub is up; it returns how long
	// that took from the process start.
	linkUp := func() time.Duration {
		start := time.Now()
		a.start(t, bins)
		for !strings.Contains(a.proc.String(), `"msg":"hub link up"`) {
			if time.Since(start) > 60*time.Second {
				dumpRunning(t)
				t.Fatalf("the agent's link was not up 60 s after its start\n%s", logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	firstStart := linkUp() // the reference: a start after a clean install, nothing to recover
	testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	waitFor(t, "the first play closed", 40*time.Second, func() bool {
		return len(having(a.records(bins), prog("qn/tk/tones", "completed"))) > 0
	}, logs)

	var recovery []time.Duration
	began := time.Now()
	hubKilled := 0
	early := 0 // kills before the link was up: in the journal's opening, the schedule's activation
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
		a.proc.signal(syscall.SIGKILL)
		a.stopCard()
		// Spread the hub's kills evenly over the run, each at a random moment of its round.
		if hubKilled < hubKills && k*hubKills/kills >= hubKilled {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			h.proc.signal(syscall.SIGKILL)
			hubKilled++
			h.start(t)
		}
		if rng.IntN(4) == 0 && k < kills-1 {
			// One round in four is cut short, anywhere in the agent's start.
			a.start(t, bins)
			time.Sleep(time.Duration(rng.IntN(2500)) * time.Millisecond)
			a.proc.signal(syscall.SIGKILL)
			a.stopCard()
			early++
			k++
		}
		recovery = append(recovery, linkUp())
		if (k+1)%50 == 0 {
			t.Logf("%d kills (%d of the hub) in %s", k+1, hubKilled, time.Since(began).Round(time.Second))
		}
	}

	// The end: a revision that plays nothing soon, so the journal stops growing; the agent runs
	// until the hub holds every record it journalled, then stops cleanly.
	os.WriteFile(sched, []byte("version: 1\nid: tk\nrevision: 2\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: tones, cron: \"0 0 3 1 1 *\", items: ["+strings.Join(refs, ", ")+"]}\n"), 0o644)
	testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	// A stop may close a record (an interrupted play, a missed one the restart found), which
	// the next start sends: stop, read the journal, and if the hub lacks part of it, start
	// again and wait for it.
	var recs []journal.Record
	for attempt := 0; ; attempt++ {
		waitFor(t, "the hub to hold what the agent journalled", 90*time.Second, func() bool {
			cs, ok := h.confirmationsOf(device)
			return ok && len(cs) >= len(a.records(bins))
		}, logs)
		a.proc.signal(syscall.SIGTERM)
		a.stopCard()
		recs = a.fullJournal(bins)
		if cs, ok := h.confirmationsOf(device); ok && len(cs) >= len(recs) {
			break
		}
		if attempt == 5 {
			t.Fatalf("the journal still grew at the 5th clean stop\n%s", logs())
		}
		linkUp()
	}
	hubRecs, ok := h.confirmationsOf(device)
	if !ok {
		t.Fatalf("the hub did not answer for its confirmations\n%s", logs())
	}
	// seq 1..N at the hub, no gap, no duplicate, and each equal to the journal's.
	seen := map[int64]int{}
	duplicated := 0
	for _, c := range hubRecs {
		seen[c.Seq]++
		if seen[c.Seq] > 1 || c.Seq < 1 || c.Seq > int64(len(recs)) {
			duplicated++
			t.Errorf("the hub holds seq %d more than once or beyond the journal's %d", c.Seq, len(recs))
		}
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("the journal's record %d has seq %d: not 1..N", i, r.Seq)
		}
	}
	diffs := hubDiffers(recs, hubRecs)
	for _, d := range diffs {
		t.Error(d)
	}
	if t.Failed() || os.Getenv("LOA_KILLS_DUMP") != "" {
		var b strings.Builder
		for _, r := range recs {
			fmt.Fprintf(&b, "  %d %s item %d %s scheduled %s start %s %s\n", r.Seq, r.Program, r.ItemIndex, r.Result,
				r.Scheduled.Format("15:04:05.000"), r.Start.Format("15:04:05.000"), r.Error)
		}
		t.Logf("journal:\n%shub holds %d records\nlast agent log:\n%s", b.String(), len(hubRecs), a.proc.String())
	}
	sort.Slice(recovery, func(i, j int) bool { return recovery[i] < recovery[j] })
	line := fmt.Sprintf("KILLS agent %d (%d during its start), hub %d, records checked %d, lost %d, duplicated %d, recovery (agent start to link up) median %s max %s (first start %s), %s",
		kills, early, hubKilled, len(recs), len(diffs), duplicated, recovery[len(recovery)/2].Round(time.Millisecond),
		recovery[len(recovery)-1].Round(time.Millisecond), firstStart.Round(time.Millisecond), time.Since(began).Round(time.Second))
	t.Log(line)
	fmt.Println(line)
}

// enrollIn adds area to the hub and enrols device in it; it returns the device's secret.
func (h *hubBox) enrollIn(t *testing.T, area, device string) string {
	t.Helper()
	testkit.Run(t, h.env, h.bins.cli, "area", "add", area)
	out := testkit.Run(t, h.env, h.bins.cli, "device", "enroll", device, "--area", area)
	return regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(out)[1]
}

// addTone makes a 0.8 s mono sine at freq Hz, sampled at rate, at path, adds it to the hub's
// library and returns its reference.
func (h *hubBox) addTone(t *testing.T, path string, rate, freq int) string {
	t.Helper()
	if out, err := exec.Command("sox", "-n", "-r", fmt.Sprint(rate), "-c", "1", path, "synth", "0.8", "sine", fmt.Sprint(freq), "vol", "0.5").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	return regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(testkit.Run(t, h.env, h.bins.cli, "content", "add", path, "--title", filepath.Base(path)))
}
