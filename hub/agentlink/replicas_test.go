package agentlink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/loa-project/loa/hub/store"
)

// notes records what a link announces to the other replicas.
type notes struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notes) Notify(_ context.Context, topic, payload string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.msgs = append(n.msgs, topic+"\n"+payload)
	return nil
}

// A push's stored batches are announced by device id, in notifications that fit PostgreSQL's
// payload limit however many devices a batch holds, every id exactly once, each after the
// announcing replica's id.
func TestStoredBatchesAnnouncedWithinTheLimit(t *testing.T) {
	n := &notes{}
	s := &Link{opts: Options{Peers: n}, replica: "0123456789abcdef", log: slog.New(slog.DiscardHandler)}
	ann := s.announceStored(context.Background())
	var want []string
	for b := range 3 {
		var batch []string
		for i := range 700 { // more than one notification's worth (7,900 bytes) of ids
			batch = append(batch, fmt.Sprintf("quang-nam/cl-%d-%05d", b, i))
		}
		want = append(want, batch...)
		ann.add(batch)
	}
	ann.add(nil) // a batch where nothing was stored announces nothing
	ann.close()

	seen := map[string]int{}
	for _, m := range n.msgs {
		if len(m) > store.MaxNotifyPayload {
			t.Errorf("a notification of %d bytes, over the limit of %d", len(m), store.MaxNotifyPayload)
		}
		topic, payload, _ := strings.Cut(m, "\n")
		f := strings.Fields(payload)
		if topic != topicStored || len(f) < 2 || f[0] != s.replica {
			t.Fatalf("notification %q…, want topic %q then the replica's id and device ids", m[:min(len(m), 60)], topicStored)
		}
		for _, id := range f[1:] {
			seen[id]++
		}
	}
	if len(n.msgs) < 6 {
		t.Errorf("%d notifications for 2,100 ids of 22 bytes, want at least 6", len(n.msgs))
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s announced %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d ids announced, want %d", len(seen), len(want))
	}
	// Alone (no other replicas), nothing is announced and adding costs nothing.
	alone := (&Link{}).announceStored(context.Background())
	alone.add([]string{"x"})
	alone.close()
}
