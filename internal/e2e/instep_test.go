package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/alsafifo"
	"github.com/loa-project/loa/internal/testkit"
)

// Scheduled items in step (issue 19 item 2): real agents on FIFO sound cards that stamp what
// they drain play one schedule from the hub; each card says when it played each item's first
// sample, so how far apart two clusters start an item is measured from the cards, not from
// what the agents believe.

// itemStarts plays a tone every 3 s on the agents of one area (one agent per entry of syncs,
// its audio.sync settings) for items plays, and returns, agent by agent, when each play's
// first sample came out of its card less when the play was due.
func itemStarts(t *testing.T, syncs []string, items int) (late [][]time.Duration, logs func() string) {
	bins := build(t)
	h := newHub(t, bins)
	testkit.Run(t, h.env, bins.cli, "area", "add", "qn/tk")
	media := t.TempDir()
	ref := h.addTone(t, filepath.Join(media, "tone.wav"), 48000, 700)
	caps, logs := capturedAgents(t, bins, h, syncs, make([]float64, len(syncs)))
	sched := filepath.Join(media, "s.yaml")
	os.WriteFile(sched, []byte("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: tone, cron: \"*/3 * * * * *\", items: [{content: \""+ref+"\"}]}\n"), 0o644)
	testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	pushed := time.Now()
	waitFor(t, "the tone heard on every agent", 60*time.Second, func() bool {
		for _, c := range caps {
			if firstSound(c).IsZero() {
				return false
			}
		}
		return true
	}, logs)
	t.Logf("pushed, then heard on every agent %v later", time.Since(pushed).Round(time.Millisecond))
	// The plays due from the one after next on, once every agent has played one (a play
	// every 3 s leaves the speakers free 1.5 s before the next: started ahead).
	first := time.Now().Truncate(3 * time.Second).Add(6 * time.Second)
	time.Sleep(time.Until(first.Add(time.Duration(items)*3*time.Second + 2*time.Second)))
	late = make([][]time.Duration, len(caps))
	for k := range items {
		due := first.Add(time.Duration(k) * 3 * time.Second)
		for i, c := range caps {
			heard := soundAfter(c, due.Add(-time.Second), due.Add(2500*time.Millisecond))
			if heard.IsZero() {
				t.Fatalf("agent %d: no sound from the play due at %s\n%s", i+1, due.Format("15:04:05"), logs())
			}
			late[i] = append(late[i], heard.Sub(due))
		}
	}
	return late, logs
}

// capturedAgents enrolls one agent of area qn/tk per entry of syncs (its audio.sync settings)
// on a card skews[i] ppm fast that stamps what it drains, starts them, and returns the cards'
// captures and the hub's and agents' logs.
func capturedAgents(t *testing.T, bins binaries, h *hubBox, syncs []string, skews []float64) ([]*alsafifo.Capture, func() string) {
	var boxes []*agentBox
	var caps []*alsafifo.Capture
	for i, sync := range syncs {
		id := fmt.Sprintf("qn/tk/cl-%02d", i+1)
		out := testkit.Run(t, h.env, bins.cli, "device", "enroll", id, "--area", "qn/tk")
		secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(out)[1]
		b := newAgent(t, bins, id, secret, h.url, h.keyLine)
		cfg, _ := os.ReadFile(b.config)
		os.WriteFile(b.config, []byte(strings.Replace(string(cfg), "audio: {output: alsa}", "audio: {output: alsa, sync: {"+sync+"}}", 1)), 0o644)
		boxes, caps = append(boxes, b), append(caps, b.startCapturedAt(t, bins, skews[i]))
	}
	return caps, func() string {
		s := "hub:\n" + h.proc.String()
		for i, b := range boxes {
			s += fmt.Sprintf("\nagent %d:\n%s", i+1, b.proc.String())
		}
		return s
	}
}

// soundAfter is the wall time the card first played sound in [from, until); zero if it did not.
func soundAfter(c *alsafifo.Capture, from, until time.Time) time.Time {
	s, _ := c.Samples()
	end := frameAt(c, until)
	for f := frameAt(c, from); f < end && 2*f+1 < int64(len(s)); f++ {
		if math.Abs(float64(s[2*f])) > 1e-3 {
			at, _ := c.When(f, 48000)
			return at
		}
	}
	return time.Time{}
}

// apart is, item by item, how much later agent j started it than agent i.
func apart(late [][]time.Duration, i, j int) []time.Duration {
	var d []time.Duration
	for k := range late[i] {
		d = append(d, late[j][k]-late[i][k])
	}
	return d
}

// TestScheduledItemsInStep: two agents in step (audio.sync.in_step, the default) start the
// plays of one schedule within a device period of each other in the median (mostly within a
// millisecond; BENCHMARKS.md), and on time: the runner starts
// a play on free speakers ahead of its time and the player has its first sample heard then,
// not the output's fill (about 0.25 s here) later. The cards' 64 KiB FIFO (171 ms at 48 kHz
// stereo) sits after ALSA where no player can see it: in step a play comes out of the FIFO
// about 185 ms after its time, without in step about 400 ms (BENCHMARKS.md, the same pairs in
// one run), so the median lateness must be under 300 ms. The bounds on single plays are
// generous (160 ms apart, 500 ms late): on a shared machine a start is now and then placed one
// or two device periods (50 ms) off, a weakness the figures show.
func TestScheduledItemsInStep(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes for about 40 s")
	}
	late, logs := itemStarts(t, []string{"in_step: true", "in_step: true"}, 6)
	d := apart(late, 0, 1)
	t.Logf("first samples, agent 2 − agent 1: %v; lateness: %v and %v", d, late[0], late[1])
	median := func(v []time.Duration) time.Duration {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	abs := make([]time.Duration, len(d))
	for k := range d {
		abs[k] = d[k].Abs()
	}
	// The goal is 5 ms; an agent can place several starts in a row one device period (50 ms)
	// off on a busy machine (a clean-clone run: four of six), so the median is held to a
	// period. The lateness below is what tells plays held to the clock from plays that are not.
	if med := median(abs); med > 60*time.Millisecond {
		t.Errorf("first samples: the median difference is %v, want within a device period (50 ms; the goal is 5 ms)\n%s", med, logs())
	}
	if med := median(append(slices.Clone(late[0]), late[1]...)); med > 300*time.Millisecond {
		t.Errorf("plays heard a median %v after their time, want under 300 ms (the FIFO's 171 ms and the placement): not held to the clock\n%s", med, logs())
	}
	for k := range d {
		if d[k].Abs() > 160*time.Millisecond {
			t.Errorf("play %d: agent 2 started %v from agent 1, want within 160 ms\n%s", k, d[k], logs())
		}
		for i := range late {
			if late[i][k] < -50*time.Millisecond || late[i][k] > 500*time.Millisecond {
				t.Errorf("play %d: agent %d heard it %v after its time, want within 500 ms\n%s", k, i+1, late[i][k], logs())
			}
		}
	}
}

// TestScheduledItemsInStepBench measures what BENCHMARKS.md reports (LOA_BENCH_SYNC_E2E=1;
// scripts/bench-sync): two agents in step beside two agents as by default (in_step off), one
// schedule, in the same run: the first-sample difference of each pair, item by item.
func TestScheduledItemsInStepBench(t *testing.T) {
	if os.Getenv("LOA_BENCH_SYNC_E2E") == "" {
		t.Skip("a benchmark: LOA_BENCH_SYNC_E2E=1 (scripts/bench-sync)")
	}
	items := 20
	fmt.Sscan(os.Getenv("LOA_BENCH_SYNC_ITEMS"), &items)
	late, _ := itemStarts(t, []string{"in_step: true", "in_step: true", "in_step: false", "in_step: false"}, items)
	for _, pair := range []struct {
		name string
		i, j int
	}{{"in step", 0, 1}, {"in_step off", 2, 3}} {
		var abs []float64
		for _, d := range apart(late, pair.i, pair.j) {
			abs = append(abs, float64(d.Abs().Microseconds())/1000)
		}
		var lat []float64
		for _, l := range append(slices.Clone(late[pair.i]), late[pair.j]...) {
			lat = append(lat, float64(l.Microseconds())/1000)
		}
		slices.Sort(abs)
		slices.Sort(lat)
		q := func(v []float64, p float64) float64 { return v[int(math.Ceil(p*float64(len(v))))-1] }
		fmt.Printf("SYNC-E2E %s, %d plays: |first sample difference| median %.2f ms, p99 %.2f ms, max %.2f ms; heard after its time median %.0f ms, max %.0f ms\n",
			pair.name, len(abs), q(abs, 0.5), q(abs, 0.99), abs[len(abs)-1], q(lat, 0.5), lat[len(lat)-1])
	}
}

// TestLongItemInStepBench measures item 3 with whole agents (LOA_BENCH_SYNC_LONG_E2E=1;
// scripts/bench-sync): one long item of pink noise (LOA_BENCH_SYNC_LONG seconds, default 600)
// pushed by the hub to three agents of one area, at one time: one on a true card, one on a
// card LOA_BENCH_SYNC_SKEW ppm fast (default 300: ten minutes at +300 ppm drift as far as 30
// minutes at +100 ppm, 180 ms) with rate correction, one on such a card without. Every 10 s
// the captures are cross-correlated: how far each fast card is from the true one. It asserts
// a generous bound (the corrected card within 20 ms throughout, the uncorrected one drifting
// at least half its skew's due) and prints the figures.
func TestLongItemInStepBench(t *testing.T) {
	if os.Getenv("LOA_BENCH_SYNC_LONG_E2E") == "" {
		t.Skip("a benchmark: LOA_BENCH_SYNC_LONG_E2E=1 (scripts/bench-sync)")
	}
	long, skew := 600, 300.0
	fmt.Sscan(os.Getenv("LOA_BENCH_SYNC_LONG"), &long)
	fmt.Sscan(os.Getenv("LOA_BENCH_SYNC_SKEW"), &skew)
	bins := build(t)
	h := newHub(t, bins)
	testkit.Run(t, h.env, bins.cli, "area", "add", "qn/tk")
	media := t.TempDir()
	noise := filepath.Join(media, "noise.mp3")
	os.WriteFile(noise, testkit.MP3(t, fmt.Sprint(long), "pinknoise"), 0o644)
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(testkit.Run(t, h.env, bins.cli, "content", "add", noise, "--title", "noise"))
	cards := []struct {
		name    string
		skewPPM float64
		sync    string
	}{{"true", 0, "in_step: true, correct_rate: true"}, {"fast", skew, "in_step: true, correct_rate: true"}, {"fast-uncorrected", skew, "in_step: true, correct_rate: false"}}
	if s := os.Getenv("LOA_BENCH_SYNC_TRUE"); s != "" {
		cards[0].sync = s // e.g. "in_step: true, correct_rate: false": a reference card not corrected
	}
	var syncs []string
	var skews []float64
	for _, c := range cards {
		syncs, skews = append(syncs, c.sync), append(skews, c.skewPPM)
	}
	caps, logs := capturedAgents(t, bins, h, syncs, skews)
	due := time.Now().Truncate(time.Second).Add(20 * time.Second)
	sched := filepath.Join(media, "s.yaml")
	os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: noise, at: %q, items: [{content: %q}]}\n", due.Format(time.RFC3339), ref)), 0o644)
	testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	time.Sleep(time.Until(due.Add(time.Duration(long)*time.Second + 3*time.Second)))
	for i, c := range caps {
		if firstSound(c).IsZero() {
			t.Fatalf("agent %d (%s card) played nothing\n%s", i+1, cards[i].name, logs())
		}
	}
	// A card that ran dry (the machine stalled the agent) is put back by its player a second
	// or two later, dropping what it is late by: a look across that cut compares two cards
	// cut at different moments, so looks near a dry spell are left out (and counted).
	var drySpells []time.Time
	for _, c := range caps {
		for _, d := range c.Underruns() {
			if at, ok := c.When(d.Frame, 48000); ok {
				drySpells = append(drySpells, at)
			}
		}
	}
	nearDry := func(at time.Time) bool {
		for _, d := range drySpells {
			if at.After(d.Add(-2*time.Second)) && at.Before(d.Add(4*time.Second)) {
				return true
			}
		}
		return false
	}
	var offs [2][]time.Duration
	skipped := 0
	for s := 5; s <= long-5; s += 10 {
		at := due.Add(time.Duration(s) * time.Second)
		if nearDry(at) {
			skipped++
			continue
		}
		for k := range 2 {
			off, corr := offsetAt(caps[0], caps[k+1], at)
			if corr < 0.5 {
				t.Fatalf("%s card at %d s: the captures do not match (correlation %.2f)\n%s", cards[k+1].name, s, corr, logs())
			}
			offs[k] = append(offs[k], off)
		}
	}
	fmt.Printf("SYNC-LONG the cards ran dry %d times in all (the machine stalled the agents); %d looks near them left out, load average %s\n",
		len(drySpells), skipped, testkit.LoadAverage())
	if len(offs[0]) < 2 {
		t.Fatalf("too few looks away from dry spells (%d ran dry): the machine is too loaded to measure", len(drySpells))
	}
	// Corrected: the servo holds each card to the clock, so it also closes a start placed a
	// device period off (at most 500 ppm: 50 ms in under two minutes); what counts is where
	// it stays after that and where it ends. Uncorrected: the card drifts by its skew, and is
	// put back by silence when 100 ms early (docs/sync.md): its rate is the median step
	// between looks, put-backs left out.
	settle := min(12, len(offs[0])/2) // looks: two minutes
	med, p99, mx := figures(offs[0][settle:])
	fmt.Printf("SYNC-LONG corrected fast card (%+.0f ppm) against the true card over %d s: first %v, at the end %v; from %d s on (%d looks) |offset| median %v, p99 %v, max %v\n",
		skew, long, offs[0][0], offs[0][len(offs[0])-1], 10*settle, len(offs[0])-settle, med, p99, mx)
	var steps []time.Duration
	putBack := 0
	for i := 1; i < len(offs[1]); i++ {
		if d := offs[1][i] - offs[1][i-1]; d.Abs() > 20*time.Millisecond {
			putBack++
		} else {
			steps = append(steps, d)
		}
	}
	slices.Sort(steps)
	rate := steps[len(steps)/2] // per 10 s
	ratePPM := -rate.Seconds() / 10 * 1e6
	fmt.Printf("SYNC-LONG uncorrected fast card (%+.0f ppm): drifts %v every 10 s (%+.0f ppm), put back %d times; first %v, at the end %v\n",
		skew, rate, ratePPM, putBack, offs[1][0], offs[1][len(offs[1])-1])
	t.Logf("corrected fast card, every 10 s: %v", offs[0])
	t.Logf("uncorrected fast card, every 10 s: %v", offs[1])
	// What each agent's servo saw and did (the player logs it every 10 s at debug).
	for _, l := range strings.Split(logs(), "\n") {
		if strings.HasPrefix(l, "agent ") || strings.Contains(l, "in step: the output") {
			t.Log(l)
		}
	}
	if mx > 20*time.Millisecond || offs[0][len(offs[0])-1].Abs() > 20*time.Millisecond {
		t.Errorf("the corrected fast card went %v from the true one after two minutes (%v at the end), want within 20 ms", mx, offs[0][len(offs[0])-1])
	}
	if ratePPM < skew/2 || ratePPM > 2*skew {
		t.Errorf("the uncorrected fast card drifted %+.0f ppm against the true one; it runs %+.0f ppm: the skew did not show", ratePPM, skew)
	}
}
