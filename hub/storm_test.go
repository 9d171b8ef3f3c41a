package hub

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/protocol"
)

// A reconnection storm is shed and converges (issue 17, item 4; scripts/bench-storm measures
// 10,000): agents arriving while the hub's welcomes are all taken are told busy with a
// retry_after_s, none is refused for good, each agent that waits as told (the hint plus jitter,
// protocol.RetryAfter, as loa-agent's link does) is welcomed with its schedule within a few
// tries, and none dials in a tight loop.
func TestReconnectStormIsShed(t *testing.T) {
	h := newTestHubWithOptions(t, t.TempDir(), nil, func(o *Options) { o.MaxHellos, o.BusyRetryAfter = 2, time.Second })
	h.addArea("qn/tk")
	const n = 60
	secrets := make([]string, n)
	for i := range n {
		secrets[i] = h.enrol(fmt.Sprintf("tk/cl-%02d", i), "qn/tk")
	}
	if code, _, msg := h.push(h.admin, "qn/tk", "version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: news, cron: \"0 30 6 * * *\", items: [{stream: \"http://radio.example/news.mp3\", duration: 15m}]}\n"); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("push: %d %s", code, msg)
	}
	// The storm arrives while both welcomes are taken (a hub just restarted, composing for
	// the first agents): everyone in this first wave is told busy.
	release := time.AfterFunc(500*time.Millisecond, h.srv.link.HoldWelcomes())
	defer release.Stop()

	u := "ws" + h.http.URL[len("http"):] + "/agent/ws"
	var busy atomic.Int64
	dials := make([]int, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("tk/cl-%02d", i)
			rng := rand.New(rand.NewPCG(uint64(i), 17))
			for dials[i] = 1; dials[i] <= 10; dials[i]++ {
				hint, err := stormDial(u, id, secrets[i])
				if err != nil {
					errs <- fmt.Errorf("%s, dial %d: %w", id, dials[i], err)
					return
				}
				if hint == 0 {
					return // welcomed, schedule received
				}
				busy.Add(1)
				time.Sleep(protocol.RetryAfter(hint, rng))
			}
			errs <- fmt.Errorf("%s: not welcomed in 10 dials", id)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if busy.Load() < n {
		t.Errorf("%d busy answers; every agent of the first wave (%d) should have been told busy", busy.Load(), n)
	}
	most := 0
	for _, d := range dials {
		most = max(most, d)
	}
	t.Logf("%d agents, %d busy answers, at most %d dials for one agent", n, busy.Load(), most)
}

// stormDial connects as a device and says hello: a welcome followed by the device's schedule
// answers 0; a busy refusal its retry_after_s (which must be given).
func stormDial(u, id, secret string) (time.Duration, error) {
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}})
	if err != nil {
		return 0, err
	}
	defer ws.Close()
	b, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "a-1"}, DeviceID: id, SoftwareVersion: "storm"})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return 0, err
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	next := func() (protocol.Message, error) {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		return protocol.Decode(b)
	}
	m, err := next()
	if err != nil {
		return 0, err
	}
	switch m := m.(type) {
	case *protocol.ErrorMessage:
		if m.Code != protocol.CodeBusy || m.RetryAfterS < 1 {
			return 0, fmt.Errorf("refused %s %q, retry_after_s %d: want busy with a retry time", m.Code, m.Message, m.RetryAfterS)
		}
		return time.Duration(m.RetryAfterS) * time.Second, nil
	case *protocol.Welcome:
		s, err := next()
		if err != nil {
			return 0, err
		}
		if _, ok := s.(*protocol.Schedule); !ok {
			return 0, fmt.Errorf("after the welcome %s, want its schedule", s.Type())
		}
		return 0, nil
	}
	return 0, fmt.Errorf("first answer %s", m.Type())
}
