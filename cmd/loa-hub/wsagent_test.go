package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/protocol"
)

// wsAgent is a minimal device on the hub's websocket (gorilla + protocol), for tests that
// need confirmations at the hub without a playing agent.
type wsAgent struct {
	t  *testing.T
	ws *websocket.Conn
	id string
	n  int
}

// enrolAgent enrols id in area with the CLI and connects it; the welcome is read.
func enrolAgent(t *testing.T, h *hubProc, id, area string) *wsAgent {
	t.Helper()
	out := h.loaOK(t, "device", "enroll", id, "--area", area)
	secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(out)[1]
	u := "ws" + strings.TrimPrefix(h.base, "http") + "/agent/ws"
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	a := &wsAgent{t: t, ws: ws, id: id}
	a.send(&protocol.Hello{Header: protocol.Header{ID: "hello"}, DeviceID: id, SoftwareVersion: "test"})
	if _, ok := a.recv().(*protocol.Welcome); !ok {
		t.Fatal("no welcome")
	}
	return a
}

func (a *wsAgent) send(m protocol.Message) {
	a.t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		a.t.Fatal(err)
	}
	a.ws.WriteMessage(websocket.TextMessage, b)
}

func (a *wsAgent) recv() protocol.Message {
	a.t.Helper()
	a.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := a.ws.ReadMessage()
	if err != nil {
		a.t.Fatal(err)
	}
	m, err := protocol.Decode(b)
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

// schedule reads messages until a schedule comes and returns its payload (unverified).
func (a *wsAgent) schedule() *protocol.SchedulePayload {
	a.t.Helper()
	for range 20 {
		if s, ok := a.recv().(*protocol.Schedule); ok {
			var p protocol.SchedulePayload
			if err := json.Unmarshal(s.Signed.Payload, &p); err != nil {
				a.t.Fatal(err)
			}
			return &p
		}
	}
	a.t.Fatal("no schedule came")
	return nil
}

// confirm sends records (seq numbered from first) and waits for their ack.
func (a *wsAgent) confirm(recs ...protocol.Confirmation) {
	a.t.Helper()
	a.n++
	a.send(&protocol.Confirmations{Header: protocol.Header{ID: fmt.Sprintf("c-%d", a.n)}, Records: recs})
	last := recs[len(recs)-1].Seq
	for range 20 {
		if ack, ok := a.recv().(*protocol.Ack); ok && ack.Seq >= last {
			return
		}
	}
	a.t.Fatalf("no ack for %d", last)
}
