package agent_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"

	"github.com/loa-project/loa/protocol"
)

// TestAgentSurvivesSIGKILL kills the playing agent 20 times at random moments and checks,
// after every restart, that nothing it stored is lost or doubled and that playback goes on.
func TestAgentSurvivesSIGKILL(t *testing.T) {
	b := newBox(t, "")
	tone(t, filepath.Join(b.dir, "media/beep.wav"), 500, 1.2)
	tone(t, filepath.Join(b.dir, "media/stored.mp3"), 700, 0.9)
	// Put one item in the content store before the agent owns it.
	store, err := content.Open(filepath.Join(b.dir, "data/content"), content.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := store.PutFile(filepath.Join(b.dir, "media/stored.mp3"), content.Ref{})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	b.writeSchedule(fmt.Sprintf(`version: 1
id: crash
revision: 1
timezone: UTC
programs:
  - {id: beep, cron: "*/2 * * * * *", items: [{file: media/beep.wav}]}
  - {id: stored, cron: "1/4 * * * * *", class: priority, items: [{content: %q}]}
`, ref.String()))

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for kill := 0; kill < 20; kill++ {
		b.start()
		time.Sleep(time.Duration(300+rng.IntN(2200)) * time.Millisecond)
		b.kill()
		checkJournal(t, b.journal(), kill)
	}
	// After the last crash: it opens, closes what the crash left open, and plays on.
	b.start()
	before := len(closed(b.journal()))
	recs := b.waitFor("playback to go on after the crashes", 20*time.Second, func(r []journal.Record) bool {
		n := 0
		for _, x := range closed(r) {
			if x.Result == protocol.ResultCompleted {
				n++
			}
		}
		return len(closed(r)) > before+2 && n > 0
	})
	b.stop()
	recs = b.journal()
	checkJournal(t, recs, 20)
	for _, r := range recs {
		if r.Result == protocol.ResultPlaying {
			t.Errorf("record %d still open after a clean stop", r.Seq)
		}
	}
	store, err = content.Open(filepath.Join(b.dir, "data/content"), content.Options{})
	if err != nil {
		t.Fatalf("content store does not open after the crashes: %v", err)
	}
	defer store.Close()
	if err := store.Verify(ref); err != nil {
		t.Errorf("stored item does not verify after the crashes: %v", err)
	}
	interrupted := 0
	for _, r := range recs {
		if r.Result == protocol.ResultInterrupted {
			interrupted++
		}
	}
	t.Logf("%d records after 20 kills, %d closed as interrupted", len(recs), interrupted)
	if len(recs) == 0 {
		t.Fatal("nothing was recorded")
	}
}

// checkJournal: sequence numbers 1..N without gaps or repeats, at most one record per play
// (a play is an item started at one moment), and at most one record left open.
func checkJournal(t *testing.T, recs []journal.Record, round int) {
	t.Helper()
	seen := map[string]uint64{}
	open := 0
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("after kill %d: record %d has seq %d: gap or repeat", round, i+1, r.Seq)
		}
		if r.Result == protocol.ResultPlaying {
			open++
		}
		if r.Start.IsZero() {
			continue // missed/failed notes have no start
		}
		key := fmt.Sprintf("%s|%d|%s", r.Program, r.ItemIndex, r.Start.Format(time.RFC3339Nano))
		if s, dup := seen[key]; dup {
			t.Fatalf("after kill %d: play %s recorded twice (seq %d and %d)", round, key, s, r.Seq)
		}
		seen[key] = r.Seq
	}
	if open > 1 {
		t.Fatalf("after kill %d: %d records open, at most the one the crash cut may be", round, open)
	}
	_ = os.Getpid
}
