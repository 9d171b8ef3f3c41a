package hub

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"

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
	if _, err := h.db.AddConfirmations(context.Background(), "c1/cl-01", []store.Confirmation{storeConfirmation(confirmation("c1/cl-01", 1))}); !errors.Is(err, store.ErrUnauthorized) {
		t.Fatalf("confirmations of a revoked device: %v, want ErrUnauthorized", err)
	}
}
