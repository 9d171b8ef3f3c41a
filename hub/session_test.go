package hub

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// A device revoked after its websocket authenticated but before its hello gets no welcome and
// no schedule, and the store takes no confirmations from it any more.
func TestRevokedBeforeHelloGetsNoSession(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	if code, _, msg := h.push(h.admin, "area:qn/c1", relayDoc); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, msg)
	}
	ws, _, err := h.dial("c1/cl-01", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	h.mustCall(h.admin, "DELETE", "/api/devices/c1/cl-01", nil, nil, http.StatusOK)

	a := &fakeAgent{t: t, id: "c1/cl-01", ws: ws, msgs: make(chan protocol.Message, 10), errc: make(chan error, 1)}
	a.send(&protocol.Hello{Header: protocol.Header{ID: "a-hello"}, DeviceID: "c1/cl-01", SoftwareVersion: "fake-agent 0"})
	go a.readLoop()
	msgs, err := a.closed()
	for _, m := range msgs {
		switch m := m.(type) {
		case *protocol.Welcome, *protocol.Schedule:
			t.Fatalf("a revoked device got a %s", m.Type())
		case *protocol.ErrorMessage:
			if m.Code != protocol.CodeUnauthorized {
				t.Errorf("refusal code %q, want %q", m.Code, protocol.CodeUnauthorized)
			}
		}
	}
	if closeCode(err) != websocket.ClosePolicyViolation {
		t.Errorf("connection ended with %v, want close %d", err, websocket.ClosePolicyViolation)
	}
	if _, err := h.db.AddConfirmations(context.Background(), "c1/cl-01", []store.Confirmation{{Confirmation: confirmation("c1/cl-01", 1)}}); !errors.Is(err, store.ErrUnauthorized) {
		t.Fatalf("confirmations of a revoked device: %v, want ErrUnauthorized", err)
	}
}

// helloRefused dials, sends a raw hello frame (protocol.Encode would refuse to write it) and
// returns the hub's error before it closed.
func (h *testHub) helloRefused(t *testing.T, id, secret, helloJSON string) *protocol.ErrorMessage {
	t.Helper()
	ws, _, err := h.dial(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	a := &fakeAgent{t: t, id: id, ws: ws, msgs: make(chan protocol.Message, 10), errc: make(chan error, 1)}
	ws.WriteMessage(websocket.TextMessage, []byte(helloJSON))
	go a.readLoop()
	msgs, _ := a.closed()
	for _, m := range msgs {
		if e, ok := m.(*protocol.ErrorMessage); ok {
			return e
		}
	}
	t.Fatalf("hello %s: no error before the close (got %d messages)", helloJSON, len(msgs))
	return nil
}

// Numbers a device sends are bounded before the hub does arithmetic with them: a hello
// claiming a revision near the end of int64 is refused (it no longer stops every later push to
// the device), and so is a sequence number there (it no longer makes a journal restart shift
// every later record out of reach).
func TestDeviceCountersAreBounded(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	const id = "c1/cl-01"
	secret := h.enrol(id, "qn/c1")

	e := h.helloRefused(t, id, secret, `{"v":1,"type":"hello","id":"a-hello","device_id":"c1/cl-01","software_version":"x",`+
		`"active_schedule":{"id":"dev-c1/cl-01","revision":9223372036854775806},"journal":{"high_water":0,"acked":0}}`)
	if !strings.Contains(e.Message, "active_schedule.revision") {
		t.Fatalf("refusal %q does not name the field", e.Message)
	}
	if code, _, msg := h.push(h.admin, "area:qn/c1", relayDoc); code != http.StatusOK {
		t.Fatalf("push after the hello: %d %s", code, msg)
	}
	if code, _, msg := h.push(h.admin, "area:qn/c1", strings.Replace(relayDoc, "revision: 1", "revision: 2", 1)); code != http.StatusOK {
		t.Fatalf("second push after the hello: %d %s", code, msg)
	}

	a, _ := h.connect(id, secret, protocol.Hello{Journal: protocol.JournalState{ID: "old-journal"}})
	a.next() // the schedule
	rec, _ := json.Marshal(confirmation(id, math.MaxInt64))
	a.ws.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"confirmations","id":"a-c","records":[`+string(rec)+`]}`))
	for {
		m := a.next()
		if ack, ok := m.(*protocol.Ack); ok {
			t.Fatalf("seq 2^63-1 acknowledged: %d", ack.Seq)
		}
		if _, ok := m.(*protocol.ErrorMessage); ok {
			break
		}
	}
	a.ws.Close()
	a, w := h.connect(id, secret, protocol.Hello{Journal: protocol.JournalState{ID: "new-journal", HighWater: 1}})
	if w.ResendFrom != 1 {
		t.Fatalf("resend_from %d, want 1", w.ResendFrom)
	}
	a.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation(id, 1)}})
	for {
		if ack, ok := a.next().(*protocol.Ack); ok {
			if ack.Seq != 1 {
				t.Fatalf("the new journal's first record acked as %d, want 1", ack.Seq)
			}
			break
		}
	}
}

// A schedule every agent would refuse (a cron firing every second is more plays than an agent
// compiles) is refused at the push, with the agent's reason, and nothing is stored or sent.
func TestPushRefusesWhatAgentsWouldRefuse(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	h.enrol("c1/cl-01", "qn/c1")
	doc := "version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: tick\n    cron: \"* * * * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 1s\n"
	code, _, msg := h.push(h.admin, "area:qn/c1", doc)
	if code != http.StatusBadRequest || !strings.Contains(msg, "would be refused by every device") || !strings.Contains(msg, "plays") {
		t.Fatalf("push of a cron every second: %d %q", code, msg)
	}
	if _, err := h.db.LatestSchedule(context.Background(), store.AreaTarget("qn/c1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused schedule was stored: %v", err)
	}
}

// A status whose now-playing list is long and not ASCII is stored (cut on a character), not
// refused by the store as invalid UTF-8.
func TestLongNowPlayingStatusIsStored(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})
	var np []protocol.NowPlaying
	for shift := 0; ; shift++ { // until the hub's 1000-byte cut falls inside a character
		np = np[:0]
		for i := range 40 {
			p := "bản-tin-sáng-thứ-hai"
			if i == 0 {
				p = strings.Repeat("x", shift) + p
			}
			np = append(np, protocol.NowPlaying{Output: "speakers", Program: p})
		}
		var parts []string
		for _, p := range np {
			parts = append(parts, p.Output+": "+p.Program)
		}
		if !utf8.ValidString(strings.Join(parts, "; ")[:1000]) {
			break
		}
	}
	a.send(&protocol.Status{At: time.Now(), NowPlaying: np, UptimeS: 5})
	var d api.DeviceJSON
	for range 100 {
		h.mustCall(h.admin, "GET", "/api/devices/c1/cl-01", nil, &d, http.StatusOK)
		if d.NowPlaying != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(d.NowPlaying, "speakers: x") && !strings.HasPrefix(d.NowPlaying, "speakers: bản") {
		t.Fatalf("now playing %q: the status was not stored", d.NowPlaying)
	}
}

// Agents refuse a schedule signed more than protocol.MaxScheduleAge ago; a device that comes
// back after a long time offline gets its schedule signed again, as a new revision, not the
// old signature it would refuse.
func TestOldScheduleResignedAtWelcome(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Add(-protocol.MaxScheduleAge)}
	h.srv.clock = clk
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	if code, _, msg := h.push(h.admin, "area:qn/c1", relayDoc); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, msg)
	}
	clk.Advance(protocol.MaxScheduleAge) // the device was offline all that time
	a, w := h.connect("c1/cl-01", secret, protocol.Hello{})
	if w.LatestSchedule == nil || w.LatestSchedule.Revision != 2 {
		t.Fatalf("welcome names %+v, want revision 2 (signed again)", w.LatestSchedule)
	}
	p, _ := verifySchedule(t, h, "c1/cl-01", a.next(), 0)
	if age := clk.Now().Sub(p.IssuedAt); age > time.Minute {
		t.Fatalf("the schedule sent was signed %v before the hub's now", age)
	}
}
