package agent_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/powercut"

	"github.com/loa-project/loa/protocol"
)

// powerSchedule is revision rev of the schedule the power-cut test plays: every programme id
// carries the revision, so a schedule mixing two revisions shows.
func powerSchedule(rev int, ref content.Ref) string {
	return fmt.Sprintf(`version: 1
id: power
revision: %d
timezone: UTC
programs:
  - {id: beep-r%d, cron: "*/2 * * * * *", items: [{file: media/beep.wav}]}
  - {id: stored-r%d, cron: "%d/4 * * * * *", class: priority, items: [{content: %q}]}
`, rev, rev, rev, 1+rev%2, ref.String())
}

// TestAgentSurvivesPowerCuts runs the agent with its data directory on internal/powercut and
// cuts the power at random moments (LOA_POWERCUTS of them, 12 by default): during plays,
// journal appends and checkpoints, and schedule activations. After each cut it restarts the
// agent on what survived and checks that it plays, that its journal opens (or was set aside as
// damaged, counted), that every record the running agent had reported before the cut is there
// unchanged, that sequence numbers run 1..N with no play twice, that every stored item verifies,
// and that the saved active schedule is one whole revision, not older than the last one the
// agent said was active.
func TestAgentSurvivesPowerCuts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	// Each restart takes the agent about 5 s to play again (activation and the clock check;
	// docs/reliability.md), so make test runs 8 cuts in about 50 s (its 15 minutes on 2 cores
	// hold no more) and `make soak` 1,000.
	cuts, rng := powercut.Schedule(t, "LOA_POWERCUTS", 8, 17)

	b := newBox(t, "")
	backing, mnt := filepath.Join(b.dir, "disk"), filepath.Join(b.dir, "data")
	var pc *powercut.FS
	mount := func() {
		var err error
		pc, err = powercut.Mount(backing, mnt, powercut.Options{Reorder: rand.New(rand.NewPCG(rng.Uint64(), 1))})
		if err != nil {
			t.Skipf("cannot mount the power-cut filesystem: %v", err)
		}
	}
	mount()
	t.Cleanup(func() { b.kill(); pc.Unmount() })

	tone(t, filepath.Join(b.dir, "media/beep.wav"), 500, 1.8)
	tone(t, filepath.Join(b.dir, "media/stored.mp3"), 700, 0.9)
	store, err := content.Open(filepath.Join(mnt, "content"), content.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := store.PutFile(filepath.Join(b.dir, "media/stored.mp3"), content.Ref{})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	rev, lastActive := 1, 0
	b.writeSchedule(powerSchedule(rev, ref))

	var (
		snap                                 []journal.Record // what the running agent reported before the cut
		checked, lost, damaged, halfFiles    int
		activations, namesRolled, writesLost int
		recovery                             []time.Duration
	)
	seenLog := 0
	for cut := 0; cut <= cuts; cut++ {
		// Boot: the agent must play again, in a journal that holds everything it reported.
		t0 := time.Now()
		b.start()
		recs := waitPlaying(t, b, t0, cut)
		if d := firstStartAfter(recs, t0).Sub(t0); d > 0 {
			recovery = append(recovery, d)
		}
		checkJournal(t, recs, cut)
		logNow := b.logText()
		if strings.Contains(logNow[seenLog:], `"msg":"the journal file is damaged`) {
			damaged++
			lost += len(snap) // kept in the file set aside, not in the journal the hub reads
			t.Logf("cut %d: journal set aside as damaged; %d reported records only in the damaged file", cut, len(snap))
		} else {
			for _, s := range snap {
				checked++
				if s.Seq > uint64(len(recs)) || !sameRecord(s, recs[s.Seq-1]) {
					lost++
					got := "nothing"
					if s.Seq <= uint64(len(recs)) {
						got = dumpRecords(recs[s.Seq-1 : s.Seq])
					}
					t.Errorf("cut %d: record %d reported before the cut is lost or changed:\nhad %s now %s", cut, s.Seq, dumpRecords([]journal.Record{s}), got)
				}
			}
		}
		for _, r := range recs {
			if strings.Contains(r.Error, "corrupt") {
				t.Errorf("cut %d: record %d: %s", cut, r.Seq, r.Error)
			}
		}
		seenLog = len(logNow)
		if cut == cuts {
			break
		}

		// Run a while, note what the agent has reported, maybe offer a new revision, cut.
		time.Sleep(time.Duration(rng.IntN(600)) * time.Millisecond)
		snap = b.journal()
		wait := time.Duration(rng.IntN(900)) * time.Millisecond
		if rng.IntN(2) == 0 {
			rev++
			b.writeSchedule(powerSchedule(rev, ref))
			b.cmd.Process.Signal(syscall.SIGHUP)
			wait = time.Duration(rng.IntN(40)) * time.Millisecond // inside the activation
			activations++
		}
		time.Sleep(wait)
		st, err := pc.Cut()
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		b.kill()
		if err := pc.Unmount(); err != nil {
			t.Fatalf("cut %d: unmount: %v", cut, err)
		}
		namesRolled += st.NamesRolled
		writesLost += st.WritesLost
		if v := lastActivated(b.logText()); v > lastActive {
			lastActive = v
		}
		mount()

		// What survived, before the agent touches it.
		if got := activeRevision(t, filepath.Join(mnt, "schedule-active.json"), cut); got < lastActive || got > rev {
			t.Errorf("cut %d: the saved active schedule is revision %d; the agent had said %d was active, the newest written is %d", cut, got, lastActive, rev)
		}
		halfFiles += verifyStore(t, filepath.Join(mnt, "content"), ref, cut)
	}
	b.stop()
	slices.Sort(recovery)
	med, max := time.Duration(0), time.Duration(0)
	if len(recovery) > 0 {
		med, max = recovery[len(recovery)/2], recovery[len(recovery)-1]
	}
	t.Logf("POWERCUT cuts=%d activations=%d records_checked=%d lost=%d damaged_journals=%d half_files=%d recovery_median=%s recovery_max=%s unsynced_writes_dropped=%d name_changes_undone=%d",
		cuts, activations, checked, lost, damaged, halfFiles, med.Round(time.Millisecond), max.Round(time.Millisecond), writesLost, namesRolled)
	if checked == 0 {
		t.Error("no record was checked across the cuts")
	}
	if os.Getenv("LOA_POWERCUT_LOG") != "" {
		t.Log(b.logText())
	}
}

// waitPlaying polls the running agent until a play started after t0 is in its journal.
func waitPlaying(t *testing.T, b *box, t0 time.Time, cut int) []journal.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs := b.journal()
		if !firstStartAfter(recs, t0).IsZero() {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after cut %d the agent does not play; journal:\n%s\nagent log:\n%s", cut, dumpRecords(recs), b.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstStartAfter(recs []journal.Record, t0 time.Time) time.Time {
	var first time.Time
	for _, r := range recs {
		if r.Start.After(t0) && (first.IsZero() || r.Start.Before(first)) {
			first = r.Start
		}
	}
	return first
}

// sameRecord: what was reported stays; an open record may since have been closed.
func sameRecord(was, now journal.Record) bool {
	if was.Seq != now.Seq || was.Program != now.Program || was.ItemIndex != now.ItemIndex ||
		!was.Start.Equal(now.Start) || !was.Scheduled.Equal(now.Scheduled) {
		return false
	}
	if was.Result == protocol.ResultPlaying {
		return true
	}
	return was.Result == now.Result && protocol.Duration(was.PlayedS) == protocol.Duration(now.PlayedS) && was.Error == now.Error
}

// lastActivated is the newest revision the agent's log says became active.
func lastActivated(log string) int {
	best := 0
	for _, l := range strings.Split(log, "\n") {
		var e struct {
			Msg      string `json:"msg"`
			Revision int    `json:"revision"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "schedule active" && e.Revision > best {
			best = e.Revision
		}
	}
	return best
}

// activeRevision reads the saved active schedule and checks it is one whole revision.
func activeRevision(t *testing.T, path string, cut int) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("cut %d: the saved active schedule: %v", cut, err)
		return 0
	}
	var doc struct {
		Revision int `json:"revision"`
		Programs []struct {
			ID string `json:"id"`
		} `json:"programs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Errorf("cut %d: the saved active schedule is torn: %v: %q", cut, err, b)
		return 0
	}
	for _, p := range doc.Programs {
		if !strings.HasSuffix(p.ID, fmt.Sprintf("-r%d", doc.Revision)) {
			t.Errorf("cut %d: the saved active schedule of revision %d has programme %s", cut, doc.Revision, p.ID)
		}
	}
	if len(doc.Programs) != 2 {
		t.Errorf("cut %d: the saved active schedule has %d programmes, want 2", cut, len(doc.Programs))
	}
	return doc.Revision
}

// verifyStore hashes every stored item; it returns how many did not verify (half files).
func verifyStore(t *testing.T, dir string, want content.Ref, cut int) int {
	t.Helper()
	s, err := content.Open(dir, content.Options{})
	if err != nil {
		t.Errorf("cut %d: the content store does not open: %v", cut, err)
		return 0
	}
	defer s.Close()
	bad := 0
	for _, r := range s.Refs() {
		if err := s.Verify(r); err != nil {
			bad++
			t.Errorf("cut %d: stored item %s: %v", cut, r, err)
		}
	}
	if !s.Has(want) {
		t.Errorf("cut %d: the stored item %s, stored and synced before the first start, is gone", cut, want)
	}
	return bad
}
