package link

import (
	"context"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// benchLink builds a link over j; run starts it, and the stop it returns ends it and waits.
func benchLink(b *testing.B, cfg Config, j Journal, seed uint64) (run func() (stop func())) {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := content.Open(filepath.Join(b.TempDir(), "content"), content.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	cfg.DeviceID, cfg.Secret = testDevice, testSecret
	l, err := New(cfg, Deps{Logger: log, Clock: clock.NewSystem(), Rand: mrand.New(mrand.NewPCG(seed, 2)), Journal: j, Store: st,
		Schedules: &testSchedules{store: st, held: map[string]uint64{}}, Commands: &testCommands{},
		CommandMemory: FileCommandMemory{Path: filepath.Join(b.TempDir(), "c.json")}, Status: testStatus{}})
	if err != nil {
		b.Fatal(err)
	}
	return func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		return func() { cancel(); <-done; st.Close() }
	}
}

// BenchmarkMove: how long a link is without a hub when the hub it is connected to goes away
// (its connections closed, as when the process is killed): from the close until a hub has
// welcomed it again. "next_hub" moves to the second hub of its list; "same_hub" is the plain
// reconnect of a one-hub link to its hub, back at once. Both use the default backoff (1 s
// base), a new link per iteration (the first step of the backoff: a wait uniform in 0..1 s)
// and the same jitter draws (iteration i seeds the link's random source with i), so they
// differ only in the move. The _1ms variants have a 1 ms base: dial and handshake alone. Run with -benchtime=40x: one iteration takes about half a second.
func BenchmarkMove(b *testing.B) {
	for _, c := range []struct {
		name    string
		several bool
		base    time.Duration
	}{{"next_hub", true, time.Second}, {"same_hub", false, time.Second},
		{"next_hub_1ms", true, time.Millisecond}, {"same_hub_1ms", false, time.Millisecond}} {
		b.Run(c.name, func(b *testing.B) {
			var total, worst time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				a := newHub(b, testSecret)
				next, urls := a, []string{"http://" + a.addr}
				if c.several {
					next = newReplica(b, a)
					urls = append(urls, "http://"+next.addr)
				}
				stop := benchLink(b, Config{HubURLs: urls, TrustedKeys: protocol.TrustedKeys{testKeyID: a.pub},
					Backoff: protocol.Backoff{Base: c.base}}, &memJournal{}, uint64(i))()
				waitConn(b, a)
				b.StartTimer()
				start := time.Now()
				addr := a.addr
				a.stop()
				if !c.several {
					a.start(addr)
				}
				waitConn(b, next)
				d := time.Since(start)
				b.StopTimer()
				total, worst = total+d, max(worst, d)
				stop()
				a.stop()
				next.stop()
			}
			b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/move")
			b.ReportMetric(worst.Seconds()*1000, "max-ms")
		})
	}
}

func waitConn(b *testing.B, h *testHub) {
	b.Helper()
	select {
	case <-h.connected:
	case <-time.After(30 * time.Second):
		b.Fatal("the link did not connect within 30 s")
	}
}
