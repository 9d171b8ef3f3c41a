package protocol

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestOverWebsocket runs the framing the hub and agent use over a real loopback websocket:
// the read limit set to Limits.MaxMessageBytes, one message per frame decoded with
// DecodeReader, a malformed message answered with an error message and a 1008 close, an
// oversized one closed with 1009 by gorilla before it is buffered; the server survives all.
func TestOverWebsocket(t *testing.T) {
	limits := Limits{MaxMessageBytes: 64 << 10}
	got := make(chan Message, 10)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(int64(limits.MaxMessageBytes))
		for {
			_, rd, err := c.NextReader()
			if err != nil {
				return // includes websocket.ErrReadLimit: gorilla has sent close 1009
			}
			m, err := limits.DecodeReader(rd)
			if err != nil {
				b, _ := Encode(NewErrorMessage("h-err", "", err))
				c.WriteMessage(websocket.TextMessage, b)
				c.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, CodeOf(err)), time.Now().Add(time.Second))
				return
			}
			got <- m
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	dial := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// A good batch and a signed schedule arrive as sent.
	c := dial()
	for _, m := range samples(t)[2:5] {
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		if r := <-got; r.Type() != m.Type() || r.Envelope().ID != m.Envelope().ID {
			t.Fatalf("sent %s %s, got %s", m.Type(), m.Envelope().ID, r.Type())
		}
	}

	// Malformed: the server answers why and closes with 1008.
	c.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"confirmations","id":"a-9","records":[{"seq":3}]}`))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if e := m.(*ErrorMessage); e.Code != "missing_field" || !strings.Contains(e.Message, "records[0].device: required") {
		t.Errorf("error answer: %+v", e)
	}
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("after a malformed message: %v, want close 1008", err)
	}
	c.Close()

	// Oversized: closed with 1009 by the read limit.
	c = dial()
	big := make([]byte, limits.MaxMessageBytes+1)
	for i := range big {
		big[i] = ' '
	}
	c.WriteMessage(websocket.TextMessage, big)
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("after an oversized message: %v, want close 1009", err)
	}
	c.Close()

	// The server still serves new connections.
	c = dial()
	defer c.Close()
	b, _ = Encode(samples(t)[5])
	c.WriteMessage(websocket.TextMessage, b)
	select {
	case m := <-got:
		if m.Type() != TypeAck {
			t.Errorf("got %s", m.Type())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server stopped serving after bad messages")
	}
}

func TestRefusedDelivery(t *testing.T) {
	signed, _ := exampleSigner(t).SignSchedule(exampleSchedulePayload())
	signed.Sig[0] ^= 1
	_, err := verifier(t, "cl-07", t0).VerifySchedule(signed, nil)
	d := RefusedDelivery("a-5", "h-7", err)
	b, encErr := Encode(d)
	if encErr != nil {
		t.Fatal(encErr)
	}
	m, decErr := Decode(b)
	if decErr != nil {
		t.Fatal(decErr)
	}
	got := m.(*Delivery)
	if got.State != DeliveryRefused || got.Code != "bad_signature" || got.Re != "h-7" ||
		!strings.HasPrefix(got.Reason, "the signature does not match") {
		t.Errorf("report %+v", got)
	}
	if !errors.Is(err, ErrBadSignature) {
		t.Error(err)
	}
	// A push that did not even decode is reported with its decode code.
	_, err = Decode([]byte(`{"v":1,"type":"schedule","id":"h-8"}`))
	if d := RefusedDelivery("a-6", "h-8", err); d.Code != "missing_field" || d.Reason == "" {
		t.Errorf("report %+v", d)
	}
}
