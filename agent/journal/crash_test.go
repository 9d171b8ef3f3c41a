package journal

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// The crash test re-executes this test binary as a child that writes to the journal as an
// agent would. The child prints a line only AFTER each call returned: those are promises the
// journal must keep. The parent kills it with SIGKILL at random moments and checks the file.

const (
	envChild = "LOA_JOURNAL_CRASH_CHILD" // journal path: run as the writing child
	envRound = "LOA_JOURNAL_CRASH_ROUND"
	crashCap = 60
)

// TestCrashChild is the child's body; without the env flag it does nothing.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envChild)
	if path == "" {
		t.Skip("only runs as the child of TestCrashSIGKILL")
	}
	round := os.Getenv(envRound)
	clk := clock.NewFake(t0)
	j, err := Open(path, Options{DeviceID: "crash-box", MaxRecords: crashCap, Clock: clk})
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		os.Exit(3)
	}
	say := func(format string, a ...any) { fmt.Fprintf(os.Stdout, format+"\n", a...) } // unbuffered: one write(2) a line
	say("READY")
	for i := 0; ; i++ {
		prog := fmt.Sprintf("r%s-%d", round, i)
		clk.Advance(time.Second)
		if i%5 == 4 {
			r := play(prog, clk.Now())
			r.Result = protocol.ResultMissed
			seq, err := j.Record(r)
			if err != nil {
				say("ERR %v", err)
				os.Exit(3)
			}
			say("R %d %s", seq, prog)
		} else {
			seq, err := j.Begin(play(prog, clk.Now()))
			if err != nil {
				say("ERR %v", err)
				os.Exit(3)
			}
			say("B %d %s", seq, prog)
			for c := 1; c <= i%3+1; c++ {
				clk.Advance(time.Second)
				played := time.Duration(c) * time.Second
				if err := j.Checkpoint(seq, protocol.Proof{PlayedS: played.Seconds(), PeakDBFS: db(-3), RMSDBFS: db(-20)}); err != nil {
					say("ERR %v", err)
					os.Exit(3)
				}
				say("C %d %d", seq, played)
			}
			if err := j.Finish(seq, protocol.ResultCompleted, clk.Now(), protocol.Proof{PlayedS: (10 * time.Second).Seconds()}, ""); err != nil {
				say("ERR %v", err)
				os.Exit(3)
			}
			say("F %d", seq)
		}
		if hw := j.HighWater(); i%8 == 7 && hw > 5 {
			a := hw - 5 // the hub lags a little behind
			if err := j.Ack(a); err != nil {
				say("ERR %v", err)
				os.Exit(3)
			}
			say("A %d", a)
		}
	}
}

type promise struct {
	program    string
	finished   bool
	checkpoint time.Duration // highest checkpoint reported
}

func TestCrashSIGKILL(t *testing.T) {
	if os.Getenv(envChild) != "" {
		t.Skip("child")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(t.TempDir(), "journal.db")
	seen := map[string]uint64{} // program -> seq, across all rounds
	var lastHigh uint64
	var totalPromised, totalInterrupted int

	for round := 0; round < 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChild+"="+path, envRound+"="+strconv.Itoa(round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Most rounds die while writing; some while opening (recovering the previous crash).
		var delay time.Duration
		if rng.IntN(4) == 0 {
			delay = time.Duration(rng.IntN(150)) * time.Millisecond
		} else {
			delay = time.Duration(30+rng.IntN(400)) * time.Millisecond
			for l := range lines { // wait until the child writes
				if l == "READY" {
					break
				}
				if strings.HasPrefix(l, "ERR") {
					t.Fatalf("round %d child: %s", round, l)
				}
			}
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		promised := map[uint64]*promise{}
		var maxSeq, firstSeq uint64
		for l := range lines {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "ERR":
				t.Fatalf("round %d child: %s", round, l)
			case "B", "R":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				promised[seq] = &promise{program: f[2], finished: f[0] == "R"}
				if firstSeq == 0 {
					firstSeq = seq
				}
				maxSeq = max(maxSeq, seq)
			case "C":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				d, _ := strconv.ParseInt(f[2], 10, 64)
				promised[seq].checkpoint = time.Duration(d)
			case "F":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				promised[seq].finished = true
			}
		}
		if firstSeq != 0 && firstSeq != lastHigh+1 {
			t.Fatalf("round %d: child's first sequence %d after high water %d: gap or repeat across a crash", round, firstSeq, lastHigh)
		}

		j, err := Open(path, Options{DeviceID: "crash-box", MaxRecords: crashCap})
		if err != nil {
			t.Fatalf("round %d: journal does not open after SIGKILL: %v", round, err)
		}
		st, _ := j.Stats()
		all, err := j.List(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st.Open != 0 {
			t.Fatalf("round %d: %d records still open after reopen", round, st.Open)
		}
		hw := j.HighWater()
		if hw < maxSeq || hw < lastHigh {
			t.Fatalf("round %d: high water %d below a committed sequence (%d, previous %d)", round, hw, maxSeq, lastHigh)
		}
		if len(all) > 0 && all[len(all)-1].Seq != hw {
			t.Fatalf("round %d: last record %d, high water %d", round, all[len(all)-1].Seq, hw)
		}
		byseq := map[uint64]Record{}
		for i, r := range all {
			if i > 0 && r.Seq != all[i-1].Seq+1 {
				t.Fatalf("round %d: sequence jumps from %d to %d", round, all[i-1].Seq, r.Seq)
			}
			if r.Result == protocol.ResultPlaying {
				t.Fatalf("round %d: record %d still playing", round, r.Seq)
			}
			if prev, ok := seen[r.Program]; ok && prev != r.Seq {
				t.Fatalf("round %d: play %s recorded twice, as %d and %d", round, r.Program, prev, r.Seq)
			}
			seen[r.Program] = r.Seq
			byseq[r.Seq] = r
		}
		// Records this round wrote beyond the promises: at most the one whose line was lost.
		if hw > lastHigh+uint64(len(promised))+1 {
			t.Fatalf("round %d: %d records written, %d promised", round, hw-lastHigh, len(promised))
		}
		for seq, p := range promised {
			totalPromised++
			r, ok := byseq[seq]
			if !ok {
				if seq <= j.Acked() && st.Records >= crashCap {
					continue // acknowledged and dropped by the cap: allowed
				}
				t.Fatalf("round %d: committed record %d (%s) is missing", round, seq, p.program)
			}
			if r.Program != p.program {
				t.Fatalf("round %d: record %d holds %s, child committed %s", round, seq, r.Program, p.program)
			}
			switch {
			case p.finished && r.Result == protocol.ResultInterrupted:
				t.Fatalf("round %d: finished record %d closed as interrupted", round, seq)
			case r.Result == protocol.ResultInterrupted:
				totalInterrupted++
				wantEnd := r.Checkpoint
				if wantEnd.IsZero() {
					wantEnd = r.Start
				}
				if !r.End.Equal(wantEnd) {
					t.Fatalf("round %d: interrupted record %d ends %v, its last checkpoint was %v", round, seq, r.End, wantEnd)
				}
				if protocol.Duration(r.PlayedS) < p.checkpoint || r.End.Before(r.Start) {
					t.Fatalf("round %d: interrupted record %d played %v, last checkpoint promised %v, end %v start %v", round, seq, r.PlayedS, p.checkpoint, r.End, r.Start)
				}
			case r.Result != protocol.ResultCompleted && r.Result != protocol.ResultMissed:
				t.Fatalf("round %d: record %d result %s", round, seq, r.Result)
			}
		}
		lastHigh = hw
		j.Close()
	}
	t.Logf("20 SIGKILLs: %d records promised, %d closed as interrupted, high water %d", totalPromised, totalInterrupted, lastHigh)
	if totalPromised == 0 {
		t.Fatal("the child never committed a record: the test tested nothing")
	}
}
