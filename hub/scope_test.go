package hub

import (
	"net/http"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
)

// Area and device ids are one namespace: a commune cannot enrol a device under another
// commune's area id (after which that commune's own pushes and commands to its area failed
// with 409), nor add an area with a device's id.
func TestAreaAndDeviceIDsAreOneNamespace(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2"} {
		h.addArea(a)
	}
	h.enrol("c2/cl-01", "qn/tk/c2")
	c1 := h.userToken("c1-staff", "qn/tk/c1")
	c2 := h.userToken("c2-staff", "qn/tk/c2")
	var e api.Error
	if code := h.call(c1, "POST", "/api/devices", api.EnrolRequest{ID: "qn/tk/c2", Area: "qn/tk/c1"}, &e); code != http.StatusConflict {
		t.Fatalf("enrol a device named like another commune's area: %d %q, want 409", code, e.Error)
	}
	if strings.Contains(e.Error, "area") && strings.Contains(e.Error, "qn/tk/c2 is already the id of an area") {
		t.Errorf("the refusal tells another commune's staff what holds the id: %q", e.Error)
	}
	if code, res, msg := h.push(c2, "qn/tk/c2", relayDoc); code != http.StatusOK || res.Devices != 1 {
		t.Fatalf("c2's push to its own area: %d %+v %q", code, res, msg)
	}
	if code := h.call(c2, "POST", "/api/commands", api.CommandRequest{To: "qn/tk/c2", Action: "stop"}, &e); code/100 != 2 {
		t.Fatalf("c2's command to its own area: %d %q", code, e.Error)
	}
	h.enrol("qn/tk/c1/cl-01", "qn/tk/c1")
	if code := h.call(h.admin, "POST", "/api/areas", api.AreaJSON{ID: "qn/tk/c1/cl-01", Name: "x"}, &e); code != http.StatusConflict ||
		!strings.Contains(e.Error, "already the id of device qn/tk/c1/cl-01") {
		t.Fatalf("an area with a device's id: %d %q, want 409 naming the device", code, e.Error)
	}
}

// Everything outside the caller's scope answers exactly as an unknown id does (404, same
// words), so another commune's areas and devices cannot be probed.
func TestOutsideScopeAnswersAsUnknown(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2"} {
		h.addArea(a)
	}
	h.enrol("c2/cl-01", "qn/tk/c2")
	c1 := h.userToken("c1-staff", "qn/tk/c1")
	type call struct {
		name, method, path string
		body               func(id string) any
	}
	calls := []call{
		{"push to an area", "POST", "/api/schedules", func(id string) any { return api.PushRequest{To: "area:" + id, Document: relayDoc} }},
		{"push to a bare id", "POST", "/api/schedules", func(id string) any { return api.PushRequest{To: id, Document: relayDoc} }},
		{"enrol in an area", "POST", "/api/devices", func(id string) any { return api.EnrolRequest{ID: "c1/new", Area: id} }},
		{"command to an area", "POST", "/api/commands", func(id string) any { return api.CommandRequest{To: "area:" + id, Action: "stop"} }},
		{"emergency to an area", "POST", "/api/emergencies", func(id string) any { return api.EmergencyRequest{To: id, Text: "x"} }},
		{"list an area", "GET", "/api/areas?area=", nil},
		{"confirmations of an area", "GET", "/api/confirmations?area=", nil},
		{"overview of an area", "GET", "/api/overview?area=", nil},
		{"device list of an area", "GET", "/api/device-list?area=", nil},
	}
	devCalls := []call{
		{"push to a device", "POST", "/api/schedules", func(id string) any { return api.PushRequest{To: "device:" + id, Document: relayDoc} }},
		{"push to a bare device id", "POST", "/api/schedules", func(id string) any { return api.PushRequest{To: id, Document: relayDoc} }},
		{"command to a device", "POST", "/api/commands", func(id string) any { return api.CommandRequest{To: id, Action: "stop"} }},
		{"show a device", "GET", "/api/devices/", nil},
		{"revoke a device", "DELETE", "/api/devices/", nil},
		{"commands of a device", "GET", "/api/commands?device=", nil},
		{"plays after a device's play", "GET", "/api/confirmations?limit=5&after=", nil},
	}
	try := func(c call, id string) (int, string) {
		var e api.Error
		path := c.path
		var body any
		if c.body != nil {
			body = c.body(id)
		} else {
			path += id
			if strings.HasSuffix(c.path, "after=") {
				path += ":1"
			}
		}
		code := h.call(c1, c.method, path, body, &e)
		return code, strings.ReplaceAll(e.Error, id, "ID")
	}
	check := func(calls []call, existing, unknown string) {
		for _, c := range calls {
			code1, msg1 := try(c, existing)
			code2, msg2 := try(c, unknown)
			if code1 != http.StatusNotFound || code1 != code2 || msg1 != msg2 {
				t.Errorf("%s: another commune's %s answers %d %q; an unknown %s answers %d %q", c.name, existing, code1, msg1, unknown, code2, msg2)
			}
		}
	}
	check(calls, "qn/tk/c2", "qn/tk/c9")
	check(devCalls, "c2/cl-01", "c2/cl-99")
}

// A series name another commune uses is refused without saying where it is on the air.
func TestSeriesOfAnotherCommuneNotLocated(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2"} {
		h.addArea(a)
	}
	h.enrol("c2/cl-01", "qn/tk/c2")
	h.mustCall(h.userToken("c2-staff", "qn/tk/c2"), "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/c2", Text: "lũ", Series: "flood"}, nil, http.StatusCreated)
	var e api.Error
	c1 := h.userToken("c1-staff", "qn/tk/c1")
	if code := h.call(c1, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/c1", Text: "x", Series: "flood"}, &e); code != http.StatusConflict || strings.Contains(e.Error, "qn/tk/c2") {
		t.Fatalf("another commune's series name: %d %q", code, e.Error)
	}
	if code := h.call(c1, "POST", "/api/emergencies/cancel", api.CancelRequest{Series: "flood"}, &e); code == http.StatusOK || strings.Contains(e.Error, "qn/tk/c2") {
		t.Fatalf("cancelling another commune's series: %d %q", code, e.Error)
	}
}
