package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/alsafifo"

	"github.com/loa-project/loa/protocol"

	"github.com/loa-project/loa/internal/testkit"
)

// fullJournal is the agent's whole journal as `loa-agent journal --json` prints it.
func (b *agentBox) fullJournal(bins binaries) []journal.Record {
	return journalOf[journal.Record](b, bins)
}

// startKeeping runs the agent with a sound card that keeps what it hears.
func (b *agentBox) startKeeping(t *testing.T, bins binaries) *alsafifo.Capture {
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := alsafifo.Drain(ctx, b.fifo, 48000, true, "")
	if err != nil {
		t.Fatal(err)
	}
	b.stopCard = cancel
	b.proc = start(t, []string{"ALSA_CONFIG_PATH=" + b.alsaConf}, bins.agent, "run", "--config", b.config)
	t.Cleanup(cancel)
	return c
}

// crashItems is the programme of the crash test: items of different lengths, each a tone of
// its own pitch so that the captured sound tells which item was heard when.
type crashItem struct {
	freq   float64
	length time.Duration
	ref    string
}

// TestRestartsContinueTheProgramme kills a real agent (FIFO sound card) 16 times at random
// moments while a programme of many short items of different lengths plays, and the hub now
// and then, and checks from the journal, the captured sound and the hub: no item of a play is
// completed twice; a play never goes back to an earlier item; every item starts where its
// timeline puts it; nothing played or cut is also recorded missed, and the one outage long
// enough to miss a play is recorded with its true reason and lateness; the hub's
// confirmations equal the journal's, field by field.
func TestRestartsContinueTheProgramme(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes for about two minutes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))
	bins := build(t)
	h := newHub(t, bins)
	hubURL, keyLine, env, hub := h.url, h.keyLine, h.env, h.proc
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-01", "--area", "qn/tk"))[1]

	media := t.TempDir()
	var items []crashItem
	var refs []string
	for i := 0; i < 10; i++ {
		it := crashItem{freq: float64(400 + 110*i), length: time.Duration(600+rng.IntN(1400)) * time.Millisecond}
		path := filepath.Join(media, fmt.Sprintf("i%d.wav", i))
		if out, err := exec.Command("sox", "-n", "-r", "48000", "-c", "1", path, "synth", fmt.Sprint(it.length.Seconds()), "sine", fmt.Sprint(it.freq), "vol", "0.5").CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
		it.ref = regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(testkit.Run(t, env, bins.cli, "content", "add", path, "--title", fmt.Sprint("Mục ", i)))
		items = append(items, it)
		refs = append(refs, fmt.Sprintf("{content: %q}", it.ref))
	}
	sched := filepath.Join(media, "commune.yaml")
	os.WriteFile(sched, []byte("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: news, cron: \"*/20 * * * * *\", items: ["+strings.Join(refs, ", ")+"]}\n"), 0o644)

	// A grace window short enough that one long outage misses a whole play.
	a := newAgent(t, bins, "qn/tk/cl-01", secret, hubURL, keyLine)
	if err := os.WriteFile(a.config, []byte(strings.Replace(mustRead(t, a.config), "grace: 1m", "grace: 4s\njournal: {checkpoint: 500ms}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := func() string {
		return "hub:\n" + hub.String() + "\nagent:\n" + a.proc.String()
	}
	type life struct {
		capture       *alsafifo.Capture
		started, died time.Time
	}
	var lives []life
	startAgent := func() {
		lives = append(lives, life{capture: a.startKeeping(t, bins), started: time.Now()})
	}
	var agentLog strings.Builder // every life's log, for failures
	killAgent := func() {
		a.proc.signal(syscall.SIGKILL)
		agentLog.WriteString(a.proc.String() + "--- killed\n")
		lives[len(lives)-1].died = time.Now()
		time.Sleep(100 * time.Millisecond) // the last samples drained
		a.stopCard()
	}
	startAgent()
	testkit.Run(t, env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	waitFor(t, "the programme playing", 40*time.Second, func() bool {
		return len(having(a.records(bins), prog("qn/tk/news", "playing"))) > 0
	}, logs)

	const kills = 16        // the hub twice among them (k%7 == 3); make soak kills 1,000 times
	var outage [2]time.Time // the long one
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond) // with the ~1 s a restart takes, kills land all over the 13-s play
		killAgent()
		if k%7 == 3 {
			hub.signal(syscall.SIGKILL)
			hub = h.start(t)
		}
		if k == kills/2 {
			// Off long enough that a whole play passes (20 s apart, about 13 s long).
			outage[0] = time.Now()
			time.Sleep(26 * time.Second)
			outage[1] = time.Now()
		}
		startAgent()
	}
	time.Sleep(3 * time.Second)
	// A last clean stop after the programme ends: every record closed.
	waitFor(t, "the agent idle between plays", 40*time.Second, func() bool {
		return len(having(a.records(bins), prog("qn/tk/news", "playing"))) == 0
	}, logs)
	a.proc.signal(syscall.SIGTERM)
	lives[len(lives)-1].died = time.Now()
	a.stopCard()

	recs := a.fullJournal(bins)
	if len(recs) == 0 {
		t.Fatalf("no journal\n%s", logs())
	}
	dump := func() string {
		var b strings.Builder
		for _, r := range recs {
			fmt.Fprintf(&b, "  %3d item %d %-11s sched %s start %s end %s from %.3fs played %.3fs %s\n", r.Seq, r.ItemIndex, r.Result,
				r.Scheduled.Format("15:04:05.000"), r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"),
				protocol.Duration(r.FromS).Seconds(), protocol.Duration(r.PlayedS).Seconds(), r.Error)
		}
		return b.String()
	}

	// The journal: per play (its first item's scheduled time), items only go forward; an item
	// is completed whole at most once; a cut item goes on from at least where it was cut.
	type play struct {
		began   bool
		missed  int
		lastIdx int
		last    *journal.Record
		shift   time.Duration
	}
	plays := map[time.Time]*play{}
	playOf := func(r journal.Record) time.Time {
		d := time.Duration(0)
		for i := 0; i < r.ItemIndex; i++ {
			d += items[i].length
		}
		return r.Scheduled.Add(-d).Round(time.Second)
	}
	completedWhole := map[string]int{}
	var offsets []time.Duration // each item's start from where its timeline is
	for i := range recs {
		r := &recs[i]
		if r.Program != "qn/tk/news" {
			continue
		}
		p := plays[playOf(*r)]
		if p == nil {
			p = &play{lastIdx: -1}
			plays[playOf(*r)] = p
		}
		if r.Result == "missed" {
			p.missed++
			continue
		}
		if !p.began && r.ItemIndex == 0 && protocol.Duration(r.FromS) == 0 && r.Start.Sub(r.Scheduled) > 200*time.Millisecond {
			// Begun late (restarted just after its time): the agent moves the play's whole
			// timeline to when it began.
			p.shift = r.Start.Sub(r.Scheduled)
		}
		p.began = true
		if r.ItemIndex < p.lastIdx {
			t.Errorf("play %s went back from item %d to item %d (record %d)", playOf(*r).Format("15:04:05"), p.lastIdx, r.ItemIndex, r.Seq)
		}
		if p.last != nil && r.ItemIndex == p.last.ItemIndex {
			if p.last.Result != "interrupted" {
				t.Errorf("record %d: item %d played again after it was %s", r.Seq, r.ItemIndex, p.last.Result)
			} else if protocol.Duration(r.FromS)+300*time.Millisecond < protocol.Duration(p.last.FromS)+protocol.Duration(p.last.PlayedS) {
				t.Errorf("record %d: item %d went on from %.3fs, before where it was cut (%.3fs)", r.Seq, r.ItemIndex,
					protocol.Duration(r.FromS).Seconds(), (protocol.Duration(p.last.FromS) + protocol.Duration(p.last.PlayedS)).Seconds())
			}
		}
		if r.Result == "completed" && protocol.Duration(r.FromS) == 0 {
			completedWhole[fmt.Sprint(playOf(*r).Unix(), "/", r.ItemIndex)]++
		}
		p.lastIdx, p.last = r.ItemIndex, r
		// Where the timeline is: the item's first sample went out at its scheduled time plus how
		// far in it began, plus the play's own lateness (a play begun late moves whole). The
		// bound is the startup of a restarted agent's output (the first buffer) and scheduling
		// on a loaded two-core machine under -race; the figures measured are in BENCHMARKS.md.
		if !r.Start.IsZero() {
			want := r.Scheduled.Add(protocol.Duration(r.FromS)).Add(p.shift)
			off := r.Start.Sub(want)
			offsets = append(offsets, off)
			if off < -startBound || off > startBound {
				t.Errorf("record %d: item %d started %s from where its timeline is", r.Seq, r.ItemIndex, off)
			}
		}
	}
	if len(offsets) > 0 {
		sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
		t.Logf("item starts from their timeline over %d records: min %s, median %s, p95 %s, max %s", len(offsets),
			offsets[0].Round(time.Millisecond), offsets[len(offsets)/2].Round(time.Millisecond),
			offsets[len(offsets)*95/100].Round(time.Millisecond), offsets[len(offsets)-1].Round(time.Millisecond))
	}
	for k, n := range completedWhole {
		if n > 1 {
			t.Errorf("play/item %s completed whole %d times", k, n)
		}
	}
	missedPlays := 0
	for at, p := range plays {
		if p.missed > 0 && p.began {
			t.Errorf("play %s was played (or cut) and also recorded missed", at.Format("15:04:05"))
		}
		if p.missed > 1 {
			t.Errorf("play %s recorded missed %d times", at.Format("15:04:05"), p.missed)
		}
		missedPlays += p.missed
	}
	lateRe := regexp.MustCompile(`could only start (\S+) after it was due`)
	for _, r := range recs {
		if r.Result != "missed" {
			continue
		}
		late := r.End.Sub(r.Scheduled)
		switch {
		case strings.Contains(r.Error, "not running"):
			// Due while the agent was down, and down from before it was due until after.
			downed := false
			for i := 1; i < len(lives); i++ {
				if r.Scheduled.After(lives[i-1].died.Add(-time.Second)) && r.Scheduled.Before(lives[i].started) {
					downed = true
				}
			}
			if !downed {
				t.Errorf("record %d missed at %s as %q, though the agent was running then", r.Seq, r.Scheduled.Format("15:04:05"), r.Error)
			}
		case lateRe.MatchString(r.Error):
			// Could start only this late (the first push arrived after the start): says so.
			said, err := time.ParseDuration(lateRe.FindStringSubmatch(r.Error)[1])
			if err != nil || (said-late).Abs() > time.Second || late <= 4*time.Second {
				t.Errorf("record %d missed %s late, but says %q (grace 4s)", r.Seq, late.Round(time.Millisecond), r.Error)
			}
		default:
			t.Errorf("record %d missed for no reason it states: %q", r.Seq, r.Error)
		}
		if late < 4*time.Second {
			t.Errorf("record %d missed only %s late, inside the grace window", r.Seq, late)
		}
	}
	if missedPlays == 0 {
		t.Errorf("the %s outage from %s missed no play\n%s", outage[1].Sub(outage[0]).Round(time.Second), outage[0].Format("15:04:05"), dump())
	}
	if t.Failed() {
		var starts []string
		for _, l := range strings.Split(agentLog.String()+a.proc.String(), "\n") {
			if strings.Contains(l, "programme st") || strings.Contains(l, "killed") || strings.Contains(l, "agent running") {
				starts = append(starts, l)
			}
		}
		t.Logf("journal:\n%s\nagent starts and stops:\n%s", dump(), strings.Join(starts, "\n"))
	}

	// The sound: in each life of the agent, within a play the items heard never go back, and no
	// item is heard for longer than it lasts.
	heard := map[string]time.Duration{}
	for n, l := range lives {
		samples, first := l.capture.Samples()
		prevPlay, prevItem := time.Time{}, -1
		for _, seg := range toneRuns(samples, 48000, items) {
			at := first.Add(seg.at)
			// The play this sound belongs to is the latest one that began before it.
			p := time.Time{}
			for s := range plays {
				if !s.After(at) && s.After(p) {
					p = s
				}
			}
			if p.Equal(prevPlay) && seg.item < prevItem {
				t.Errorf("life %d: item %d heard at %s after item %d of the same play", n, seg.item, at.Format("15:04:05.000"), prevItem)
			}
			prevPlay, prevItem = p, seg.item
			heard[fmt.Sprint(p.Unix(), "/", seg.item)] += seg.length
		}
	}
	for k, d := range heard {
		var idx int
		fmt.Sscanf(k[strings.Index(k, "/")+1:], "%d", &idx)
		if d > items[idx].length+250*time.Millisecond {
			t.Errorf("play/item %s heard for %s, longer than its %s: part of it was played twice", k, d, items[idx].length)
		}
	}

	// The hub: after the hub's restarts, what it holds equals the journal, field by field.
	a.startKeeping(t, bins)
	var hubRecs []api.ConfirmationJSON
	waitFor(t, "the hub to hold every record", 60*time.Second, func() bool {
		var ok bool
		hubRecs, ok = h.confirmationsOf("qn/tk/cl-01")
		return ok && len(hubRecs) >= len(recs)
	}, logs)
	for _, d := range hubDiffers(recs, hubRecs) {
		t.Error(d)
	}
}

// confirmationsOf is every confirmation the hub holds for device (loa confirmations --json);
// false when the hub did not answer.
func (h *hubBox) confirmationsOf(device string) ([]api.ConfirmationJSON, bool) {
	out, err := exec.Command(h.bins.cli, "--hub", h.url, "--token", h.token, "confirmations", "--device", device, "--json").Output()
	var cs []api.ConfirmationJSON
	if err != nil || json.Unmarshal(out, &cs) != nil {
		return nil, false
	}
	return cs, true
}

// hubDiffers compares the hub's confirmations of a device with its journal, field by field,
// and returns one line per record missing at the hub or differing.
func hubDiffers(recs []journal.Record, hubRecs []api.ConfirmationJSON) []string {
	var out []string
	sort.Slice(hubRecs, func(i, j int) bool { return hubRecs[i].Seq < hubRecs[j].Seq })
	bySeq := map[int64]api.ConfirmationJSON{}
	for _, c := range hubRecs {
		bySeq[c.Seq] = c
	}
	ft := func(p *time.Time) time.Time {
		if p == nil {
			return time.Time{}
		}
		return *p
	}
	fv := func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	}
	for _, r := range recs {
		c, ok := bySeq[int64(r.Seq)]
		if !ok {
			out = append(out, fmt.Sprintf("record %d is not at the hub", r.Seq))
			continue
		}
		var diffs []string
		cmp := func(name string, a, b any) {
			if fmt.Sprint(a) != fmt.Sprint(b) {
				diffs = append(diffs, fmt.Sprintf("%s: journal %v, hub %v", name, a, b))
			}
		}
		cmpT := func(name string, a, b time.Time) {
			if !a.Equal(b) {
				diffs = append(diffs, fmt.Sprintf("%s: journal %s, hub %s", name, a.Format(time.RFC3339Nano), b.Format(time.RFC3339Nano)))
			}
		}
		cmpF := func(name string, a, b float64) {
			if math.Abs(a-b) > 1e-6 {
				diffs = append(diffs, fmt.Sprintf("%s: journal %v, hub %v", name, a, b))
			}
		}
		cmp("output", r.Output, c.Output)
		cmp("schedule", r.ScheduleID, c.ScheduleID)
		cmp("revision", r.Revision, c.Revision)
		cmp("program", r.Program, c.Program)
		cmp("item_index", r.ItemIndex, c.ItemIndex)
		cmp("item", r.Item, c.Item)
		cmpT("scheduled", r.Scheduled, ft(c.Scheduled))
		cmpT("start", r.Start, ft(c.Start))
		cmpT("end", r.End, ft(c.End))
		cmpF("from", r.FromS, c.FromS)
		cmpF("played", r.PlayedS, c.PlayedS)
		if r.PlayedS > 0 {
			cmpF("peak_dbfs", fv(r.PeakDBFS), fv(c.PeakDBFS))
			cmpF("rms_dbfs", fv(r.RMSDBFS), fv(c.RMSDBFS))
		}
		cmpF("silence", r.SilenceS, c.SilenceS)
		cmp("gaps", r.Gaps, c.Gaps)
		cmp("underruns", r.Underruns, c.Underruns)
		cmp("result", string(r.Result), c.Result)
		cmp("error", r.Error, c.Error)
		cmp("clock", r.Clock, c.Clock)
		cmpF("volume", r.Volume, fv(c.Volume))
		cmp("amplifier", r.Amplifier, c.Amplifier)
		if len(diffs) > 0 {
			out = append(out, fmt.Sprintf("record %d differs at the hub: %s", r.Seq, strings.Join(diffs, "; ")))
		}
	}
	return out
}

// startBound is how far from its timeline an item's first sample may reach the sound card.
// A restarted agent decides where to join at one instant and its first sample goes out after
// the process has opened its output and the item's file (about 20 ms here, more under -race
// on two loaded cores); gapless items after it follow with the same offset. The figures are in
// BENCHMARKS.md ("Restarts").
const startBound = 400 * time.Millisecond

func mustRead(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// toneRun is a stretch of captured sound in which one item's tone is heard.
type toneRun struct {
	item   int
	at     time.Duration // from the first captured sample
	length time.Duration
}

// toneRuns finds, in 20 ms windows of the left channel, which item's tone is loudest
// (Goertzel at each item's pitch) and joins windows of the same item into runs. Windows at
// item boundaries, silence and runs shorter than two windows are left out.
func toneRuns(samples []float32, rate int, items []crashItem) []toneRun {
	const win = 960 // 20 ms at 48 kHz
	var runs []toneRun
	cur := toneRun{item: -1}
	flush := func() {
		if cur.item >= 0 && cur.length >= 2*20*time.Millisecond {
			runs = append(runs, cur)
		}
		cur = toneRun{item: -1}
	}
	for w := 0; (w+1)*win*2 <= len(samples); w++ {
		var energy float64
		best, bestP := -1, 0.0
		for i, it := range items {
			k := 2 * math.Cos(2*math.Pi*it.freq/float64(rate))
			var s1, s2 float64
			for n := 0; n < win; n++ {
				x := float64(samples[(w*win+n)*2])
				if i == 0 {
					energy += x * x
				}
				s1, s2 = x+k*s1-s2, s1
			}
			p := s1*s1 + s2*s2 - k*s1*s2
			if p > bestP {
				best, bestP = i, p
			}
		}
		// A pure tone puts most of its energy at its own pitch; a boundary window shares it.
		if energy/float64(win) < 1e-4 || bestP < 0.6*energy*float64(win)/2 {
			flush()
			continue
		}
		at := time.Duration(w) * 20 * time.Millisecond
		if best != cur.item || at != cur.at+cur.length {
			flush()
			cur = toneRun{item: best, at: at}
		}
		cur.length += 20 * time.Millisecond
	}
	flush()
	return runs
}
