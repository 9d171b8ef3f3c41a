package link

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/testkit"
)

// newReplica is a second hub on the first one's ledger, signing key and device secret, as
// replicas share their database and identity. It listens on its own loopback port.
func newReplica(t testing.TB, of *testHub) *testHub {
	return startHub(t, &testHub{t: t, secret: of.secret, signer: of.signer, pub: of.pub, mu: of.mu, ledger: of.ledger})
}

func onHubs(hubs ...*testHub) func(*Config) {
	return func(c *Config) {
		c.HubURL, c.HubURLs = "", nil
		for _, h := range hubs {
			c.HubURLs = append(c.HubURLs, "http://"+h.addr)
		}
	}
}

func wsOf(h *testHub) string { return "ws://" + h.addr + "/agent/ws" }

// checkSentOnce checks that every seq 1..n reached the hubs in exactly one batch that a hub
// took in (besides any batch a hub "crashed" on before storing it): nothing stored was sent
// again, nothing was lost.
func (h *testHub) checkSentOnce(t *testing.T, n uint64) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for seq := uint64(1); seq <= n; seq++ {
		if c := h.received[seq] - h.unstored[seq]; c != 1 {
			t.Errorf("seq %d reached the hubs %d times (%d more in a batch a hub crashed on), want once", seq, c, h.unstored[seq])
		}
	}
}

// A crashes mid-batch (stores part of it, never acknowledges) → the link moves to B, which
// is sent only what the shared ledger lacks; then A is back and B goes → the link moves back
// to A. Every confirmation is stored once and none is sent twice.
func TestFailoverMovesOnAndBackWithoutLosingOrRepeating(t *testing.T) {
	a := newHub(t, testSecret)
	b := newReplica(t, a)
	ag := newTestAgent(t, a, testSecret, onHubs(a, b))
	ag.record(5)
	ag.start()
	a.nextConn(t)
	waitFor(t, "the first records acknowledged by A", 10*time.Second, func() bool { return ag.journal.Acked() == 5 })

	a.mu.Lock()
	a.crashAfter = 3 // A stores the first 3 of the next batch and drops the link unanswered
	a.mu.Unlock()
	ag.record(5)
	b.nextConn(t)
	waitFor(t, "the records A never acknowledged, acknowledged by B", 10*time.Second, func() bool { return ag.journal.Acked() == 10 })
	if got := ag.link.Hub(); got != "http://"+b.addr {
		t.Errorf("connected to B, the link's hub is %s", got)
	}
	a.mu.Lock()
	helloB := b.hellos[len(b.hellos)-1]
	a.mu.Unlock()
	if helloB.Journal.Acked != 5 || helloB.Journal.HighWater != 10 {
		t.Errorf("hello to B: journal %+v, want acked 5 (what A acknowledged), high water 10", helloB.Journal)
	}

	addrA := a.addr
	a.stop()
	a.start(addrA)
	b.stop()
	ag.record(5) // plays go on while the link moves
	a.nextConn(t)
	waitFor(t, "the records of B's outage acknowledged by A", 10*time.Second, func() bool { return ag.journal.Acked() == 15 })

	a.checkStoredOnce(t, 15)
	a.checkSentOnce(t, 15)
	moves := map[string]bool{}
	ag.logs.mu.Lock()
	for _, e := range ag.logs.es {
		if e.msg == "moving to the next hub" {
			moves[e.attrs["from"]+" → "+e.attrs["to"]] = true
			if e.attrs["why"] == "" {
				t.Errorf("a move logged without why: %v", e.attrs)
			}
		}
	}
	ag.logs.mu.Unlock()
	for _, want := range []string{wsOf(a) + " → " + wsOf(b), wsOf(b) + " → " + wsOf(a)} {
		if !moves[want] {
			t.Errorf("no move %s logged; moves %v", want, moves)
		}
	}
}

// The first hub does not answer: the link moves to the second, and fetches content from the
// hub it is connected to.
func TestFailoverPastADeadHubFetchesFromTheConnectedOne(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	b := newHub(t, testSecret)
	item := make([]byte, 50_000)
	rand.Read(item)
	ref := content.RefOf(item)
	b.blobs[ref.String()] = item
	ag := newTestAgent(t, b, testSecret, func(c *Config) { c.HubURL, c.HubURLs = "", []string{"http://" + dead, "http://" + b.addr} })
	ag.start()
	b.nextConn(t)
	waitFor(t, "the link to be up", 10*time.Second, ag.link.Connected)
	if u := ag.link.ContentURL(ref); !strings.HasPrefix(u, "http://"+b.addr+"/content/") {
		t.Errorf("content URL %s is not on the connected hub %s", u, b.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ag.link.Fetch(ctx, ref); err != nil {
		t.Fatalf("fetch from the connected hub: %v", err)
	}
	if !ag.store.Has(ref) {
		t.Error("the item is not in the store after the fetch")
	}
	e, ok := ag.logs.find(slog.LevelInfo, "moving to the next hub")
	if !ok || e.attrs["from"] != "ws://"+dead+"/agent/ws" || !strings.Contains(e.attrs["why"], "dialling") {
		t.Errorf("the move past the dead hub was not logged with its URL and why: %+v", e)
	}
}

// Every hub refuses the device's credentials: the link goes round the list once, says so once,
// and then stays with the hub it is at instead of hopping for ever.
func TestEveryHubRefusingTheDeviceStopsTheHopping(t *testing.T) {
	a := newHub(t, testSecret)
	b := newReplica(t, a)
	ag := newTestAgent(t, a, wrongSecret, onHubs(a, b))
	ag.start()
	waitFor(t, "B to refuse the device three times", 20*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return b.authFails >= 3
	})
	ag.stop()
	a.mu.Lock()
	failsA, failsB := a.authFails, b.authFails
	a.mu.Unlock()
	if failsA != 1 {
		t.Errorf("A was asked %d times (B %d); want once: after the round the link stays with B", failsA, failsB)
	}
	if n := ag.logs.count(slog.LevelError, "every hub refused"); n != 1 {
		t.Errorf("the refusal by every hub was logged %d times, want once", n)
	}
	if n := ag.logs.count(slog.LevelInfo, "moving to the next hub"); n != 1 {
		t.Errorf("%d moves logged, want 1 (A to B)", n)
	}
}
