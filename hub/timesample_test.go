package hub

import (
	"testing"
	"time"

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
