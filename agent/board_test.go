package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"

	"github.com/loa-project/loa/protocol"
)

// TestAgentShowsBulletinsOnTheBoard: a programme for the board shows its texts one after the
// other on a real Alpha sign line (socat pty), transliterated, at their planned times, blanks
// the sign at its end, and confirms each text like a play.
func TestAgentShowsBulletinsOnTheBoard(t *testing.T) {
	rb := newRelayBoard(t) // the same pty pair stands in for the sign's serial line
	b := newBox(t, fmt.Sprintf("outputs: [speakers, board]\nboard: {port: %s}\n", rb.port))
	start := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: board\nrevision: 1\ntimezone: UTC\nprograms:\n"+
		"  - {id: notice, at: %q, outputs: [board], items: [{text: \"Thông báo lịch tiêm chủng\", duration: 3s}, {text: \"ĐÀ NẴNG: Bão số 13\", duration: 2s}]}\n", at(start)))
	b.start()
	recs := b.waitFor("two bulletins shown", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 2 })
	time.Sleep(500 * time.Millisecond)
	b.stop()

	rb.mu.Lock()
	line := string(rb.got)
	rb.mu.Unlock()
	first := strings.Index(line, "Thong bao lich tiem chung")
	second := strings.Index(line, "DA NANG: Bao so 13")
	if first < 0 || second < first {
		t.Fatalf("the sign line carried %q; want the first bulletin then the second, transliterated", line)
	}
	// After the programme the text file is written empty (blank sign): STX 'A' 'A' ESC '0' 'b' ETX.
	if !strings.Contains(line[second:], "\x02AA\x1b0b\x03") {
		t.Errorf("the sign was not blanked after the programme: %q", line[second:])
	}
	shown := closed(recs)
	for i, want := range []time.Duration{3 * time.Second, 2 * time.Second} {
		r := shown[i]
		if r.Output != "board" || r.Result != protocol.ResultCompleted || r.ItemIndex != i {
			t.Errorf("record %d: output %s, result %s, item %d; want board, completed, %d", i, r.Output, r.Result, r.ItemIndex, i)
		}
		if protocol.Duration(r.PlayedS) < want/2 || protocol.Duration(r.PlayedS) > want+2*time.Second {
			t.Errorf("record %d: shown %s, planned %s", i, protocol.Duration(r.PlayedS), want)
		}
	}
}
