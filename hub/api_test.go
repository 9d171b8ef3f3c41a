package hub

import (
	"context"
	"github.com/loa-project/loa/hub/api"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/store"
)

const relayDoc = `version: 1
id: province
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - id: relay
    cron: "0 0 11 * * MON-FRI"
    items:
      - stream: http://radio.example/qnr.mp3
        duration: 30m
`

func TestStaffTokenRequired(t *testing.T) {
	h := newTestHub(t)
	var e api.Error
	if code := h.call("", "GET", "/api/devices", nil, &e); code != http.StatusUnauthorized || !strings.Contains(e.Error, "LOA_TOKEN") {
		t.Fatalf("no token: %d %q, want 401 naming LOA_TOKEN", code, e.Error)
	}
	if code := h.call("loa-st1-forged", "GET", "/api/devices", nil, &e); code != http.StatusUnauthorized {
		t.Fatalf("forged token: %d, want 401", code)
	}
	var who map[string]any
	h.mustCall(h.admin, "GET", "/api/whoami", nil, &who, http.StatusOK)
	if who["user"] != "admin" || who["scope"] != "qn" {
		t.Fatalf("whoami = %v", who)
	}
}

// A commune's staff cannot act on another commune: not push, not enrol, not list, not see.
func TestCommuneScope(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tam-ky", "qn/tam-ky/tam-thanh", "qn/tam-ky/an-son"} {
		h.addArea(a)
	}
	h.enrol("tam-thanh/cl-07", "qn/tam-ky/tam-thanh")
	h.enrol("an-son/cl-01", "qn/tam-ky/an-son")
	lan := h.userToken("lan", "qn/tam-ky/tam-thanh")

	if code, _, msg := h.push(lan, "qn/tam-ky/an-son", relayDoc); code != http.StatusNotFound || !strings.Contains(msg, "in your scope qn/tam-ky/tam-thanh") {
		t.Fatalf("push to another commune: %d %q, want 404 naming the scope", code, msg)
	}
	if code, _, msg := h.push(lan, "an-son/cl-01", relayDoc); code != http.StatusNotFound || !strings.Contains(msg, "an-son/cl-01") {
		t.Fatalf("push to another commune's device: %d %q, want 404", code, msg)
	}
	if code, _, msg := h.push(lan, "qn/tam-ky", relayDoc); code != http.StatusNotFound {
		t.Fatalf("push to the district above: %d %q, want 404", code, msg)
	}
	var e api.Error
	if code := h.call(lan, "POST", "/api/devices", api.EnrolRequest{ID: "an-son/cl-02", Area: "qn/tam-ky/an-son"}, &e); code != http.StatusNotFound {
		t.Fatalf("enrol in another commune: %d %q", code, e.Error)
	}
	if code := h.call(lan, "GET", "/api/devices/an-son/cl-01", nil, &e); code != http.StatusNotFound {
		t.Fatalf("show another commune's device: %d, want 404 (not even its existence)", code)
	}
	if code := h.call(lan, "DELETE", "/api/devices/an-son/cl-01", nil, &e); code != http.StatusNotFound {
		t.Fatalf("revoke another commune's device: %d, want 404", code)
	}
	if code := h.call(lan, "GET", "/api/confirmations?area=qn/tam-ky/an-son", nil, &e); code != http.StatusNotFound {
		t.Fatalf("confirmations of another commune: %d, want 404", code)
	}
	var ds []api.DeviceJSON
	h.mustCall(lan, "GET", "/api/devices", nil, &ds, http.StatusOK)
	if len(ds) != 1 || ds[0].ID != "tam-thanh/cl-07" {
		t.Fatalf("lan sees devices %v, want only tam-thanh/cl-07", ds)
	}
	// Their own commune and device: allowed.
	if code, res, msg := h.push(lan, "qn/tam-ky/tam-thanh", relayDoc); code != http.StatusOK || res.Devices != 1 {
		t.Fatalf("push to own commune: %d %+v %q", code, res, msg)
	}
	if code, _, msg := h.push(lan, "tam-thanh/cl-07", relayDoc); code != http.StatusOK {
		t.Fatalf("push to own device: %d %q", code, msg)
	}
	// Nothing was stored for the refused pushes.
	if _, err := h.db.LatestSchedule(context.Background(), store.AreaTarget("qn/tam-ky/an-son")); err == nil {
		t.Fatal("a refused push left a schedule on an-son")
	}
}

// Every mutating call is attributed in the audit log.
func TestAuditLog(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/duy-hai")
	h.enrol("duy-hai/cl-01", "qn/duy-hai")
	lan := h.userToken("lan", "qn/duy-hai")
	if code, _, msg := h.push(lan, "qn/duy-hai", relayDoc); code != http.StatusOK {
		t.Fatal(code, msg)
	}
	h.mustCall(h.admin, "DELETE", "/api/devices/duy-hai/cl-01", nil, nil, http.StatusOK)
	es, err := h.db.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"area.add": "admin", "device.enrol": "admin", "schedule.push": "lan", "device.revoke": "admin"}
	got := map[string]bool{}
	for _, e := range es {
		got[e.Action+" by "+e.Actor] = true
	}
	for action, actor := range want {
		if !got[action+" by "+actor] {
			t.Errorf("audit: no %s by %q (log: %v)", action, actor, got)
		}
	}
	var list []api.AuditJSON
	h.mustCall(lan, "GET", "/api/audit", nil, &list, http.StatusOK)
	for _, e := range list {
		if !strings.Contains(e.Target, "duy-hai") {
			t.Errorf("lan sees an audit entry outside her scope: %+v", e)
		}
	}
}

func TestPushErrorsSayWhatToDo(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tam-thanh")
	h.enrol("tam-thanh/cl-07", "qn/tam-thanh")
	code, _, msg := h.push(h.admin, "cl-07", relayDoc)
	if code != http.StatusNotFound || !strings.Contains(msg, "use --to tam-thanh/cl-07") {
		t.Fatalf("short device id: %d %q, want a hint to use tam-thanh/cl-07", code, msg)
	}
	code, _, msg = h.push(h.admin, "tam-thanh", relayDoc)
	if code != http.StatusNotFound || !strings.Contains(msg, "qn/tam-thanh") {
		t.Fatalf("short area id: %d %q, want a hint naming qn/tam-thanh", code, msg)
	}
	bad := strings.Replace(relayDoc, `cron: "0 0 11 * * MON-FRI"`, `cron: "0 0 25 * * MON-FRI"`, 1)
	code, _, msg = h.push(h.admin, "qn/tam-thanh", bad)
	if code != http.StatusBadRequest || !strings.Contains(msg, "relay") {
		t.Fatalf("bad cron: %d %q, want the parser's error naming the program", code, msg)
	}
	missing := strings.Replace(relayDoc, "- stream: http://radio.example/qnr.mp3\n        duration: 30m", "- content: sha256:"+strings.Repeat("0", 64), 1)
	code, _, msg = h.push(h.admin, "qn/tam-thanh", missing)
	if code != http.StatusBadRequest || !strings.Contains(msg, "loa content add") {
		t.Fatalf("unknown content: %d %q, want a hint to upload it", code, msg)
	}
	var e api.Error
	if code := h.call(h.admin, "POST", "/api/areas", map[string]string{"id": "qn/x", "colour": "red"}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "colour") {
		t.Fatalf("unknown JSON field: %d %q", code, e.Error)
	}
	if code := h.call(h.admin, "POST", "/api/areas", api.AreaJSON{ID: "qn/a/b"}, &e); code != http.StatusNotFound || !strings.Contains(e.Error, "add the parent area qn/a first") {
		t.Fatalf("missing parent: %d %q", code, e.Error)
	}
	if code := h.call(h.admin, "POST", "/api/areas", api.AreaJSON{ID: "hue"}, &e); code != http.StatusForbidden {
		t.Fatalf("area outside scope: %d %q", code, e.Error)
	}
}
