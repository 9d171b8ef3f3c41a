package hub

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/protocol"
)

// TestDeadAirAlarm: an agent's heartbeat saying its speakers are in dead air shows at the hub
// as the device's fault (the device, its faults, the alarm count of the overview), and the
// next heartbeat with sound clears it.
func TestDeadAirAlarm(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})
	since := time.Now().Add(-40 * time.Second).UTC().Truncate(time.Second)
	a.send(&protocol.Status{At: time.Now(), UptimeS: 60, Audio: &protocol.Part{State: "dead_air",
		Error: "dead air: programme qn/c1/news item 0 (file:media/silent.wav) was silent", Since: since}})
	var d api.DeviceJSON
	for deadline := time.Now().Add(10 * time.Second); d.Audio == nil || d.Audio.Error == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dead-air status did not reach the device within 10 s: %+v", d)
		}
		h.mustCall(h.admin, "GET", "/api/devices/c1/cl-01", nil, &d, http.StatusOK)
	}
	if d.Audio.State != "dead_air" || d.Audio.Since == nil || !d.Audio.Since.Equal(since) {
		t.Errorf("audio part %+v, want dead_air since %s", d.Audio, since)
	}
	if len(d.Faults) != 1 || !strings.HasPrefix(d.Faults[0], "audio: dead air") {
		t.Errorf("faults %q, want the dead air", d.Faults)
	}
	var ov api.OverviewJSON
	for deadline := time.Now().Add(10 * time.Second); len(ov.Alarmed) != 1 || ov.Alarmed[0].ID != "c1/cl-01"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the overview's alarm list %+v, want the device in dead air", ov.Alarmed)
		}
		h.mustCall(h.admin, "GET", "/api/overview", nil, &ov, http.StatusOK)
	}

	a.send(&protocol.Status{At: time.Now(), UptimeS: 70, Audio: &protocol.Part{State: "sound"}})
	for deadline := time.Now().Add(10 * time.Second); d.Audio == nil || d.Audio.Error != ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sound back: the device still shows %+v", d.Audio)
		}
		d = api.DeviceJSON{} // decoding into the old value would keep its error
		h.mustCall(h.admin, "GET", "/api/devices/c1/cl-01", nil, &d, http.StatusOK)
	}
	if len(d.Faults) != 0 {
		t.Errorf("sound back: faults %q", d.Faults)
	}
}
