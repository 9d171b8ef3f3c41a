package hub

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// Failed credentials are limited per source address: past the limit the address gets 429 with
// Retry-After (even with a good token, until the minute ends), and the failures are logged
// once, not one line each.
func TestFailedCredentialsAreLimitedAndSampled(t *testing.T) {
	h := newTestHub(t)
	var logs testkit.Buffer
	h.srv.authLimit = newAuthLimiter(5, 60e9, slog.New(slog.NewTextHandler(&logs, nil)))
	for i := range 5 {
		if code := h.call("loa-st1-guess"+strings.Repeat("x", i), "GET", "/api/whoami", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d", i, code)
		}
	}
	req, _ := http.NewRequest("GET", h.http.URL+"/api/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+h.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, resp, _ := h.dial("c1/cl-01", "loa-ds1-x"); resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a device secret from the same address: %v", resp)
	}
	if n := strings.Count(logs.String(), "refused"); n != 1 {
		t.Fatalf("%d log lines for 5 failures, want 1:\n%s", n, logs.String())
	}
}

// Agents beyond the hub's welcome capacity are told busy, with retry_after_s, and close 1013.
func TestHelloBusy(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	release := h.srv.link.HoldWelcomes() // every slot taken by welcomes in progress
	ws, _, err := h.dial("c1/cl-01", secret)
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{t: t, id: "c1/cl-01", ws: ws, msgs: make(chan protocol.Message, 10), errc: make(chan error, 1)}
	a.send(&protocol.Hello{Header: protocol.Header{ID: "a-hello"}, DeviceID: "c1/cl-01", SoftwareVersion: "fake-agent 0"})
	go a.readLoop()
	msgs, err := a.closed()
	if len(msgs) != 1 {
		t.Fatalf("answers %v, want one error", msgs)
	}
	e, ok := msgs[0].(*protocol.ErrorMessage)
	if !ok || e.Code != protocol.CodeBusy || e.RetryAfterS <= 0 || closeCode(err) != websocket.CloseTryAgainLater {
		t.Fatalf("answer %+v, close %v; want busy with retry_after_s and close 1013", msgs[0], err)
	}
	release()
	h.connect("c1/cl-01", secret, protocol.Hello{})
}
