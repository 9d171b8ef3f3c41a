package hub

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/cli"
	"github.com/loa-project/loa/protocol"
)

// TestHubAnswersTimeSamples: the welcome offers time samples, and a time request is answered
// with its own sent_at, when the hub received it and when it answered, on the hub's clock.
func TestHubAnswersTimeSamples(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	a, w := h.connect("c1/cl-01", secret, protocol.Hello{})
	if !w.TimeSamples {
		t.Fatal("the welcome does not offer time samples")
	}
	sent := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC) // a Pi before NTP: the hub answers anyway
	before := time.Now()
	a.send(&protocol.Time{Header: protocol.Header{ID: "a-time"}, SentAt: sent})
	for {
		m, ok := a.next().(*protocol.Time)
		if !ok {
			continue
		}
		after := time.Now()
		if m.Re != "a-time" || !m.SentAt.Equal(sent) {
			t.Errorf("answer re %q sent_at %s, want a-time and the request's %s", m.Re, m.SentAt, sent)
		}
		if m.ReceivedAt.Before(before) || m.HubTime.Before(m.ReceivedAt) || m.HubTime.After(after) {
			t.Errorf("received_at %s hub_time %s: not within the exchange [%s, %s] in order", m.ReceivedAt, m.HubTime, before, after)
		}
		if off, _ := protocol.ClockOffset(m.SentAt, m.ReceivedAt, m.HubTime, sent.Add(after.Sub(before))); off < time.Duration(before.Unix()-10)*time.Second {
			t.Errorf("offset %s from the answer: want the hub about %d s ahead of 1970", off, before.Unix())
		}
		return
	}
}

// TestClockErrorReported: the NTP client's error bound a heartbeat carries is kept with the
// device and shown by `loa device show`; a heartbeat without one (no chrony or timesyncd
// answering) clears it rather than showing an old figure.
func TestClockErrorReported(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})
	bound := 0.0142
	a.send(&protocol.Status{At: time.Now(), UptimeS: 60, ClockErrorS: &bound, ClockSource: "chrony"})
	var d api.DeviceJSON
	for deadline := time.Now().Add(10 * time.Second); d.ClockSource == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the clock error did not reach the device within 10 s: %+v", d)
		}
		h.mustCall(h.admin, "GET", "/api/devices/c1/cl-01", nil, &d, http.StatusOK)
	}
	if d.ClockSource != "chrony" || d.ClockErrorS < 0.01419 || d.ClockErrorS > 0.01421 {
		t.Errorf("device clock error %v s from %q, want 0.0142 s from chrony", d.ClockErrorS, d.ClockSource)
	}
	var out strings.Builder
	if err := cli.DeviceDetail(&out, d, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "±14.2 ms (as chrony says)") {
		t.Errorf("loa device show does not give the clock error:\n%s", out.String())
	}
	a.send(&protocol.Status{At: time.Now(), UptimeS: 70})
	for deadline := time.Now().Add(10 * time.Second); d.ClockSource != ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a heartbeat without a bound left %v s from %q", d.ClockErrorS, d.ClockSource)
		}
		d = api.DeviceJSON{}
		h.mustCall(h.admin, "GET", "/api/devices/c1/cl-01", nil, &d, http.StatusOK)
	}
}
