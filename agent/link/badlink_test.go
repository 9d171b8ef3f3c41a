package link

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/faultnet"
	"github.com/loa-project/loa/protocol"
)

// Bad links (issue 17): the test agent talks to the test hub through internal/faultnet.

// viaProxy puts a fault proxy in front of h and returns it with a Config change pointing the
// agent at it.
func viaProxy(t *testing.T, h *testHub) (*faultnet.Proxy, func(*Config)) {
	t.Helper()
	p, err := faultnet.New(h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, func(c *Config) {
		c.HubURL = "http://" + p.Addr()
		c.Ping = 100 * time.Millisecond
		c.PingDeadline = time.Second
		c.HandshakeTimeout = time.Second
	}
}

// checkStoredOnce checks that the hub stored seq 1..n, each once, and nothing else.
func (h *testHub) checkStoredOnce(t *testing.T, n uint64) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for seq := uint64(1); seq <= n; seq++ {
		if !h.stored[seq] {
			t.Errorf("the hub never stored seq %d", seq)
		}
	}
	if uint64(len(h.stored)) != n || h.contig != n {
		t.Errorf("hub stored %d records, contiguous to %d; want %d", len(h.stored), h.contig, n)
	}
}

// A link that goes silent without closing (half-open) is noticed by the ping deadline and
// dialled again; what was sent on it and never acknowledged is sent again on the new
// connection, and the hub ends with every record once.
func TestSilentLinkIsDroppedAndUnacknowledgedResent(t *testing.T) {
	h := newHub(t, testSecret)
	p, via := viaProxy(t, h)
	a := newTestAgent(t, h, testSecret, via)
	a.record(50)
	a.start()
	h.nextConn(t)
	waitFor(t, "journal acked to 50", 10*time.Second, func() bool { return a.journal.Acked() == 50 })

	p.Silence(true)
	silent := time.Now()
	a.record(20) // sent into the silent link: never arrives, never acknowledged
	a.link.Notify()
	waitFor(t, "the link to notice the silence", 10*time.Second, func() bool {
		return a.logs.count(slog.LevelWarn, "hub link lost") > 0
	})
	t.Logf("silent link noticed after %s (ping every 100 ms, deadline 1 s)", time.Since(silent).Round(10*time.Millisecond))
	e, _ := a.logs.find(slog.LevelWarn, "hub link lost")
	if !strings.Contains(e.attrs["err"], "timeout") {
		t.Errorf("the link was dropped for %q; want the ping deadline (a read timeout)", e.attrs["err"])
	}
	// The half-open connection never recovers (its peer reset it): what it held is gone.
	p.Down()
	p.Silence(false)
	p.Up()
	h.nextConn(t)
	waitFor(t, "journal acked to 70", 10*time.Second, func() bool { return a.journal.Acked() == 70 })
	h.checkStoredOnce(t, 70)
	h.mu.Lock()
	defer h.mu.Unlock()
	for seq := uint64(51); seq <= 70; seq++ {
		if h.received[seq] != 1 {
			t.Errorf("seq %d reached the hub %d times; want once, by the resend on the new connection", seq, h.received[seq])
		}
	}
}

// A hub that accepts the connection and never answers is given up on after the handshake
// timeout and dialled again, and a connection cut in the middle of a frame (either way)
// loses nothing.
func TestMuteHubAndCutsMidFrame(t *testing.T) {
	h := newHub(t, testSecret)
	p, via := viaProxy(t, h)
	p.Mute(true)
	a := newTestAgent(t, h, testSecret, via)
	a.record(300) // three batches of 100, about 60 kB
	a.start()
	waitFor(t, "the agent to give up on a mute hub", 10*time.Second, func() bool {
		return a.logs.count(slog.LevelWarn, "cannot reach the hub") > 0
	})
	if st := p.Stats(); st.Conns == 0 {
		t.Fatal("the agent never dialled the mute hub")
	}
	// The next connection is cut inside the first confirmations batch the agent sends, the
	// one after inside the hub's answers.
	p.CutNext(faultnet.ToTarget, 5000)
	p.CutNext(faultnet.ToClient, 300)
	p.Mute(false)
	h.nextConn(t)
	waitFor(t, "journal acked to 300", 20*time.Second, func() bool { return a.journal.Acked() == 300 })
	h.checkStoredOnce(t, 300)
	if st := p.Stats(); st.CutsTaken != 2 {
		t.Errorf("%d connections cut, want 2 (the test did not test what it says)", st.CutsTaken)
	}
}

// A large fetch cut mid-file resumes with Range where it stopped: the bytes that crossed the
// link are the file once plus the HTTP headers, and the stored item hashes to its name.
func TestFetchCutMidFileResumesWithRange(t *testing.T) {
	h := newHub(t, testSecret)
	p, via := viaProxy(t, h)
	item := make([]byte, 2<<20)
	rand.Read(item)
	ref := content.RefOf(item)
	h.blobs[ref.String()] = item
	a := newTestAgent(t, h, testSecret, via)
	p.CutNext(faultnet.ToClient, 700_000) // the HEAD, then about a third of the body
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.link.Fetch(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := a.store.Verify(ref); err != nil {
		t.Fatalf("the fetched item does not verify: %v", err)
	}
	h.mu.Lock()
	ranges := append([]string(nil), h.ranges...)
	h.mu.Unlock()
	if len(ranges) != 1 || !strings.HasPrefix(ranges[0], "bytes=6") {
		t.Errorf("ranges asked %q; want one resume from about byte 700,000", ranges)
	}
	st := p.Stats()
	// Each request's answer carries headers (under 1 KiB here): HEAD, the cut GET, the resume
	// (a HEAD again if the connection was not reused).
	overhead := st.ToClient - int64(len(item))
	if overhead < 0 || overhead > 4<<10 {
		t.Errorf("%d bytes crossed the link for a %d-byte item (%d over): want the item once plus headers", st.ToClient, len(item), overhead)
	}
	t.Logf("fetch of %d bytes cut at 700,000: %d bytes crossed the link, %d over, in %d connections", len(item), st.ToClient, overhead, st.Conns)
}

// The 2G link of issue 17 (64 kbit/s, 600 ms round trip, 5% loss): a push with its content
// arrives and the revision becomes active. How long that takes is a figure (BENCHMARKS.md,
// scripts/bench-links), beside the same push over the undisturbed link and PushTime's
// formula (docs/reliability.md); the test asserts arrival only.
func TestPushOver2GLink(t *testing.T) {
	h := newHub(t, testSecret)
	p, via := viaProxy(t, h)
	a := newTestAgent(t, h, testSecret, func(c *Config) {
		via(c)
		c.Ping, c.PingDeadline, c.HandshakeTimeout = 2*time.Second, 10*time.Second, 10*time.Second
	})
	a.start()
	hc := h.nextConn(t)
	push := func(rev uint64, link string, shape faultnet.Shape) {
		p.SetShape(shape)
		item := make([]byte, 16_000)
		rand.Read(item)
		ref := content.RefOf(item)
		h.mu.Lock()
		h.blobs[ref.String()] = item
		h.mu.Unlock()
		sched := &protocol.Schedule{Header: protocol.Header{ID: fmt.Sprint("h-", rev)}, Signed: h.signSchedule(t, "dev-cl-07", rev, scheduleDoc("dev-cl-07", rev, ref))}
		b, _ := protocol.Encode(sched)
		t0 := time.Now()
		hc.send(t, sched)
		for _, want := range []string{protocol.DeliveryReceived, protocol.DeliveryContentReady, protocol.DeliveryActive} {
			if d := h.nextDelivery(t); d.State != want || d.Revision != rev {
				t.Fatalf("%s: delivery %+v, want %s of revision %d", link, d, want, rev)
			}
		}
		took := time.Since(t0)
		if err := a.store.Verify(ref); err != nil {
			t.Fatalf("%s: the item does not verify: %v", link, err)
		}
		formula := "-"
		if shape.Rate > 0 {
			formula = PushTime(shape.Rate, 2*shape.Delay, len(b), len(item)).Round(time.Millisecond).String()
		}
		t.Logf("push over %s: %d-byte message + %d-byte item active after %s; formula (no loss) %s",
			link, len(b), len(item), took.Round(time.Millisecond), formula)
	}
	push(3, "the undisturbed link", faultnet.Shape{})
	push(4, "2G (64 kbit/s, 600 ms RTT, 5% loss)", faultnet.Shape{Rate: 8000, Delay: 300 * time.Millisecond, Loss: 0.05})
}

// PushTime is how long a push of a msg-byte schedule message naming one item-byte item takes
// to become active over a link of rate bytes/s and round trip rtt, with no loss: the bytes
// that cross the link toward the agent (the message, the item, about 2 kB of HTTP headers
// and delivery reports) at the link's rate, plus three round trips (the push out and its
// report back, the HEAD asking the size, the GET). A real link adds one round trip for the
// download's TCP connection and one for TLS 1.3 (the proxy accepts on loopback at once);
// docs/reliability.md states both. Each lost segment adds about a retransmission timeout.
func PushTime(rate int64, rtt time.Duration, msg, item int) time.Duration {
	return time.Duration(int64(msg+item+2048)*int64(time.Second)/rate) + 3*rtt
}
