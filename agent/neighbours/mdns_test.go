package neighbours

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// TestDiscoverFindsTheCommuneByMDNS: two agents of one commune announce themselves and find
// each other on the LAN; an agent of another commune is not taken. Skipped where the machine
// has no multicast.
func TestDiscoverFindsTheCommuneByMDNS(t *testing.T) {
	key := make([]byte, protocol.NeighbourKeyBytes)
	rand.Read(key)
	other := make([]byte, protocol.NeighbourKeyBytes)
	rand.Read(other)
	a, b, c := serve(t, Config{}), serve(t, Config{}), serve(t, Config{})
	a.n.self, b.n.self, c.n.self = "tt/cl-1", "tt/cl-2", "tp/cl-1"
	a.n.Hint(&protocol.Neighbours{Key: protocol.FormatNeighbourKey(key)})
	b.n.Hint(&protocol.Neighbours{Key: protocol.FormatNeighbourKey(key)})
	c.n.Hint(&protocol.Neighbours{Key: protocol.FormatNeighbourKey(other)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, s := range []*serving{a, b, c} {
		wg.Go(func() { errs <- s.n.Discover(ctx, 300*time.Millisecond) })
	}
	found := testkit.Poll(15*time.Second, 100*time.Millisecond, func() bool {
		na, _ := a.n.Known()
		nb, _ := b.n.Known()
		return na == 1 && nb == 1
	})
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Skipf("mDNS cannot run here: %v", err)
		}
	}
	if !found {
		t.Fatalf("after 15 s: a knows %v, b knows %v", a.n.all(), b.n.all())
	}
	if _, ok := a.n.all()["tp/cl-1"]; ok {
		t.Fatal("an agent of another commune was taken as a neighbour")
	}
	if b.n.all()["tt/cl-1"] != a.n.ContentAddr() {
		t.Fatalf("b has a at %q, a serves at %q", b.n.all()["tt/cl-1"], a.n.ContentAddr())
	}
}
