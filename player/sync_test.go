package player_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/alsafifo"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/player"
)

// The sync tests play one programme, timed for one wall time, on several FIFO sound cards at
// once, each card drained by its own clock (one of them fast) and stamping what it drains:
// when each burst of the programme came out of each card is then known, and compared.

// syncArgs is what a sync child plays.
type syncArgs struct {
	Path    string
	At      time.Time
	Correct bool
	MaxPPM  float64
}

// TestSyncChild is a child's side; it does nothing in a normal run.
func TestSyncChild(t *testing.T) {
	spec := os.Getenv("LOA_SYNC_CHILD")
	if spec == "" {
		t.Skip("run by the sync tests")
	}
	var args syncArgs
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	var res alsaChildResult
	defer func() {
		b, _ := json.Marshal(res)
		os.Stdout.WriteString("\nRESULT:" + string(b) + "\n")
	}()
	ctx := context.Background()
	o, err := player.OpenOutput(ctx, "alsa", rate, 0, nil)
	if err != nil {
		res.Err = err.Error()
		return
	}
	p, err := player.New(player.Config{Output: o, CorrectRate: args.Correct, MaxCorrectionPPM: args.MaxPPM})
	if err != nil {
		res.Err = err.Error()
		return
	}
	pb, err := p.Play(ctx, player.Program{Items: []player.Item{{Path: args.Path}}, Gain: 1, At: args.At})
	if err != nil {
		res.Err = err.Error()
		return
	}
	res.First = pb.Wait()
	time.Sleep(700 * time.Millisecond) // ALSA's buffer and the FIFO empty
	o.Close()
}

// burstClip writes a WAV file of seconds of silence with a 10 ms 1 kHz burst at 0.5 s, 1.5 s,
// and so on: the marks whose times the cards are compared at.
func burstClip(t *testing.T, path string, seconds int) {
	s := make([]float32, 2*rate*seconds)
	for k := 0; k < seconds; k++ {
		at := rate/2 + k*rate
		for i := 0; i < rate/100; i++ {
			v := float32(0.5 * math.Sin(2*math.Pi*1000*float64(i)/rate))
			s[2*(at+i)], s[2*(at+i)+1] = v, v
		}
	}
	writeWAV(t, path, s, rate)
}

// burstTimes finds the bursts in a card's capture and returns when each came out of it, and
// at which frame.
func burstTimes(c *alsafifo.Capture) ([]time.Time, []int64) {
	s, _ := c.Samples()
	var out []time.Time
	var frames []int64
	quiet := 0
	for f := 0; f < len(s)/2; f++ {
		if math.Abs(float64(s[2*f])) > 0.02 {
			if quiet >= rate/4 {
				if at, ok := c.When(int64(f), rate); ok {
					out = append(out, at)
					frames = append(frames, int64(f))
				}
			}
			quiet = 0
			continue
		}
		quiet++
	}
	return out, frames
}

// maxDry is how long a card may run dry in a run before the run is refused as spoilt by the
// machine's load (the benchmark's long item allows more).
var maxDry = 500 * time.Millisecond

// syncCard is one card of a sync run.
type syncCard struct {
	Name    string
	SkewPPM float64
	Correct bool
	// Offsets of each burst: when it came out of the card less when it was due.
	Offsets []time.Duration
	Proof   player.Proof
	Dry     time.Duration // the card ran dry this long in all (taken out of Offsets)
}

// playInStep plays a seconds-long clip due at one wall time on each card at once, and
// returns each card's offsets.
func playInStep(t *testing.T, seconds int, maxPPM float64, cards []*syncCard) error {
	dir := t.TempDir()
	clip := filepath.Join(dir, "bursts.wav")
	burstClip(t, clip, seconds)
	at := time.Now().Add(3 * time.Second).Round(0) // children start and open ALSA before it
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type running struct {
		cap  *alsafifo.Capture
		done <-chan error
		out  []byte
		err  error
	}
	runs := make([]*running, len(cards))
	var wg sync.WaitGroup
	for i, c := range cards {
		cdir := filepath.Join(dir, c.Name)
		if err := os.Mkdir(cdir, 0o755); err != nil {
			return err
		}
		conf, fifo, err := alsafifo.Setup(cdir)
		if err != nil {
			return err
		}
		capt, done, err := alsafifo.Open(ctx, fifo, alsafifo.Options{Rate: rate, SkewPPM: c.SkewPPM, Keep: true, Stamp: true})
		if err != nil {
			return err
		}
		r := &running{cap: capt, done: done}
		runs[i] = r
		spec, _ := json.Marshal(syncArgs{Path: clip, At: at, Correct: c.Correct, MaxPPM: maxPPM})
		cmd := exec.Command(os.Args[0], "-test.run=^TestSyncChild$", "-test.v")
		cmd.Env = append(os.Environ(), "LOA_SYNC_CHILD="+string(spec), "ALSA_CONFIG_PATH="+conf)
		wg.Go(func() { r.out, r.err = cmd.CombinedOutput() })
	}
	wg.Wait()
	cancel()
	for i, r := range runs {
		if err := <-r.done; err != nil {
			return fmt.Errorf("card %s: %w", cards[i].Name, err)
		}
		if r.err != nil {
			return fmt.Errorf("card %s: child: %v\n%s", cards[i].Name, r.err, r.out)
		}
		k := strings.LastIndex(string(r.out), "RESULT:")
		if k < 0 {
			return fmt.Errorf("card %s: child printed no result:\n%s", cards[i].Name, r.out)
		}
		var res alsaChildResult
		if err := json.Unmarshal([]byte(strings.SplitN(string(r.out[k+7:]), "\n", 2)[0]), &res); err != nil {
			return err
		}
		if res.Err != "" {
			return fmt.Errorf("card %s: %s", cards[i].Name, res.Err)
		}
		cards[i].Proof = res.First.Items[0]
		// A card that ran dry (the machine too busy to feed it) plays everything after that
		// later: that is the machine, not the player, so it is taken out of the offsets; a
		// run that starved badly is tried again.
		dry := r.cap.Underruns()
		var total time.Duration
		for _, d := range dry {
			total += d.For
		}
		if total > maxDry {
			return fmt.Errorf("card %s ran dry %d times for %s: the machine is too loaded to play in real time", cards[i].Name, len(dry), total)
		}
		cards[i].Dry = total
		times, frames := burstTimes(r.cap)
		if len(times) != seconds {
			return fmt.Errorf("card %s: %d bursts came out, want %d (proof %s)", cards[i].Name, len(times), seconds, fmtProof(cards[i].Proof))
		}
		cards[i].Offsets = nil
		for b, tm := range times {
			due := at.Add(time.Duration(b)*time.Second + 500*time.Millisecond)
			for _, d := range dry {
				if d.Frame <= frames[b] {
					tm = tm.Add(-d.For)
				}
			}
			cards[i].Offsets = append(cards[i].Offsets, tm.Sub(due))
		}
	}
	return nil
}

// TestTwoCardsInStep: the same programme, due at one time, on a card running true and a card
// running 3,000 ppm fast (a stronger skew than a real crystal's ±100 ppm, so that ten seconds
// show what thirty minutes would). Both start within 50 ms of each other; over the programme
// the fast card, corrected, stays with the true one, where uncorrected its skew would take
// it 27 ms ahead. The figures come from the cards' own stamps, not from what the players
// believe. With LOA_SOAK=1 a third card, fast and uncorrected, shows that drift measured.
func TestTwoCardsInStep(t *testing.T) {
	// Two real players held to the wall clock are a measurement of the machine as much as of
	// the code: on CI's 2 cores beside the package checks the servo misjudged a true card by
	// 2,700 ppm and the drift bound failed twice. make test checks the servo on a simulated
	// card (TestKeeperFollowsAFastCard, TestKeeperCorrectionIsBounded); this runs in make
	// soak and scripts/bench-sync.
	if os.Getenv("LOA_SOAK") == "" {
		t.Skip("real-time run of two players on FIFO cards: LOA_SOAK=1 (make soak)")
	}
	const seconds, skew = 10, 3000.0
	cards := []*syncCard{{Name: "true", Correct: true}, {Name: "fast", SkewPPM: skew, Correct: true},
		{Name: "fast-uncorrected", SkewPPM: skew}}
	// A run on a machine so loaded that the players' own threads lag by whole seconds is
	// tried again once, saying so; the second must pass.
	var problems []string
	for attempt := 1; attempt <= 2; attempt++ {
		if err := playInStep(t, seconds, 2*skew, cards); err != nil {
			problems = []string{err.Error()}
		} else {
			problems = checkInStep(t, cards, seconds, skew)
		}
		if len(problems) == 0 {
			return
		}
		t.Logf("run %d in step failed (load average %s): %s", attempt, testkit.LoadAverage(), strings.Join(problems, "; "))
	}
	if l := loadPerCore(); l > 4 {
		// Lags of whole seconds in the players' own threads are the machine's, not the code's.
		t.Skipf("in step: %s; the machine is too loaded to judge (load %.1f a core)", strings.Join(problems, "; "), l)
	}
	t.Fatalf("in step: %s", strings.Join(problems, "; "))
}

// loadPerCore is the one-minute load average over the cores.
func loadPerCore() float64 {
	var l float64
	fmt.Sscan(testkit.LoadAverage(), &l)
	return l / float64(runtime.NumCPU())
}

// TestSyncFigures measures what BENCHMARKS.md reports (scripts/bench-sync; LOA_BENCH_SYNC=1):
// the first-sample difference between cards over many items, and the offset after a long item
// with one card fast, correction on and off in the same run. Thirty minutes at +100 ppm (180 ms
// uncorrected) is run as ten minutes at +300 ppm: the same drift, sooner, inside the
// correction's production bound (500 ppm).
func TestSyncFigures(t *testing.T) {
	if os.Getenv("LOA_BENCH_SYNC") == "" {
		t.Skip("a benchmark: scripts/bench-sync")
	}
	items, long, skew := 20, 600, 300.0
	fmt.Sscan(os.Getenv("LOA_BENCH_SYNC_ITEMS"), &items)
	fmt.Sscan(os.Getenv("LOA_BENCH_SYNC_LONG"), &long)
	fmt.Sscan(os.Getenv("LOA_BENCH_SYNC_SKEW"), &skew)
	// First samples: three cards, one true, one 100 ppm fast corrected, one uncorrected.
	var on, off []float64
	troubled := 0 // items where a player's output or a card ran dry
	for i := 0; i < items; i++ {
		cards := []*syncCard{{Name: "true", Correct: true}, {Name: "fast", SkewPPM: 100, Correct: true}, {Name: "fast-uncorrected", SkewPPM: 100}}
		if err := playInStep(t, 2, 500, cards); err != nil {
			t.Logf("item %d: %v", i, err)
			continue
		}
		for _, c := range cards {
			if c.Dry > 0 || c.Proof.Underruns > 0 {
				troubled++
				break
			}
		}
		on = append(on, math.Abs(ms(cards[1].Offsets[0]-cards[0].Offsets[0])))
		off = append(off, math.Abs(ms(cards[2].Offsets[0]-cards[0].Offsets[0])))
	}
	fmt.Printf("SYNC first sample, %d items (%d with an underrun): correction on: |difference| median %.2f ms, p99 %.2f ms, max %.2f ms; off: median %.2f ms, p99 %.2f ms, max %.2f ms\n",
		len(on), troubled, quantile(on, 0.5), quantile(on, 0.99), quantile(on, 1), quantile(off, 0.5), quantile(off, 0.99), quantile(off, 1))
	cards := []*syncCard{{Name: "true", Correct: true}, {Name: "fast", SkewPPM: skew, Correct: true}, {Name: "fast-uncorrected", SkewPPM: skew}}
	maxDry = time.Minute // ten minutes on a shared machine: report what ran dry rather than fail
	if err := playInStep(t, long, 500, cards); err != nil {
		t.Fatal(err)
	}
	last := long - 1
	rel := func(c *syncCard) float64 {
		return ms((c.Offsets[last] - cards[0].Offsets[last]) - (c.Offsets[0] - cards[0].Offsets[0]))
	}
	var worst float64
	for b := range long {
		worst = math.Max(worst, math.Abs(ms((cards[1].Offsets[b]-cards[0].Offsets[b])-(cards[1].Offsets[0]-cards[0].Offsets[0]))))
	}
	fmt.Printf("SYNC drift over %d s at %+.0f ppm (as 30 min at %+.0f ppm, correction bound 500 ppm): correction on %+.2f ms (worst %.2f ms), off %+.2f ms (skew predicts %+.1f ms); proofs: %+.0f and %+.0f ppm measured; underruns (player/card dry): %d/%s, %d/%s, %d/%s\n",
		last, skew, skew*float64(last)/1800, rel(cards[1]), worst, rel(cards[2]), -skew*float64(last)/1000, cards[1].Proof.RatePPM, cards[2].Proof.RatePPM,
		cards[0].Proof.Underruns, cards[0].Dry, cards[1].Proof.Underruns, cards[1].Dry, cards[2].Proof.Underruns, cards[2].Dry)
}

// quantile of v (0..1, nearest rank); 0 for none.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, max(0, int(math.Ceil(q*float64(len(s))))-1))]
}

// checkInStep compares the cards' offsets (the first card runs true) and says what is wrong.
func checkInStep(t *testing.T, cards []*syncCard, seconds int, skew float64) (problems []string) {
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ref := cards[0].Offsets
	for _, c := range cards {
		t.Logf("card %-16s start %7.2f ms, end %7.2f ms, start error %.2f ms and rate %+.0f ppm by its proof",
			c.Name, ms(c.Offsets[0]), ms(c.Offsets[seconds-1]), c.Proof.StartErrorS*1000, c.Proof.RatePPM)
		if d := c.Offsets[0] - ref[0]; d.Abs() > 50*time.Millisecond {
			errorf("card %s started %.1f ms from the true card's start; want within 50 ms", c.Name, ms(d))
		}
	}
	span := float64(seconds-1) * float64(time.Second)
	drift := func(c *syncCard) time.Duration {
		return (c.Offsets[seconds-1] - ref[seconds-1]) - (c.Offsets[0] - ref[0])
	}
	// A card fast by skew plays its last burst skew·span early, uncorrected.
	want := -time.Duration(skew / 1e6 * span)
	if len(cards) > 2 {
		if d := drift(cards[2]); (d - want).Abs() > 10*time.Millisecond {
			errorf("the uncorrected fast card drifted %.1f ms from the true card; its skew makes %.1f ms", ms(d), ms(want))
		}
	}
	if d := drift(cards[1]); d.Abs() > 10*time.Millisecond {
		errorf("the corrected fast card drifted %.1f ms from the true card (uncorrected: %.1f ms); want within 10 ms", ms(d), ms(want))
	}
	if r := cards[1].Proof.RatePPM; math.Abs(r-skew) > 1500 {
		errorf("the fast card's proof says it runs %+.0f ppm; it runs %+.0f", r, skew)
	}
	if r := cards[0].Proof.RatePPM; math.Abs(r) > 1500 {
		errorf("the true card's proof says it runs %+.0f ppm; it runs true", r)
	}
	return problems
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
