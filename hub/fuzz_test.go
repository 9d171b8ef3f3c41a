package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/protocol"
)

// FuzzAgentFrame sends one arbitrary frame after a hello over a real websocket: the hub must
// answer or close, never crash, and keep serving.
func FuzzAgentFrame(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"confirmations","id":"a","records":[{"device":"c1/cl-01","seq":1,"result":"completed"}]}`,
		`{"v":1,"type":"delivery","id":"a","re":"h-9","state":"refused","code":"x","reason":"y"}`,
		`{"v":1,"type":"status","id":"a","at":"2026-11-26T06:00:00Z","uptime_s":1,"volume":2,"temperature_c":1e308}`,
		`{"v":1,"type":"confirmations","id":"a","records":[{"device":"c1/cl-01","seq":18446744073709551615,"result":"completed"}]}`,
		`{"v":1,"type":"hello","id":"a"}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	h := newTestHub(f)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	f.Fuzz(func(t *testing.T, frame []byte) {
		h.t = t
		a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})
		a.ws.WriteMessage(websocket.TextMessage, frame)
		select {
		case <-a.msgs:
		case <-time.After(200 * time.Millisecond):
		}
		a.ws.Close()
		a2, w := h.connect("c1/cl-01", secret, protocol.Hello{})
		if w.ResendFrom == 0 {
			t.Fatal("welcome without resend_from")
		}
		a2.ws.Close()
	})
}

// FuzzPlayCursor: the play log's cursor from a URL is refused with its words or read back to
// what it names, never a crash.
func FuzzPlayCursor(f *testing.F) {
	for _, s := range []string{"c1/cl-01:7", "tt/cl-1:9223372036854775807", ":5", "c1:", "c1:-1", "a:b:3", "", ":", "c1:0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parsePlayCursor(s)
		if err != nil {
			return
		}
		if k.Device == "" || k.Seq <= 0 || !strings.HasPrefix(s, k.Device+":") || strings.Contains(s[len(k.Device)+1:], ":") {
			t.Fatalf("%q read as %+v", s, k)
		}
	})
}
