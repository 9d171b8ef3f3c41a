package hub

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/broadcast"
	"github.com/loa-project/loa/hub/store"
)

// GET /api/cap/alerts lists each alert received with the hub's decision and reason, to staff
// whose scope the alert's areas touch.
func TestCAPAlertsListed(t *testing.T) {
	h, _, tok := capHub(t)
	off := false
	if err := h.srv.ConfigureCAP(broadcast.CAPConfig{AreaMap: filepath.Join("cap", "testdata", "quang-nam-areas.yaml"), FetchAudio: &off}); err != nil {
		t.Fatal(err)
	}
	if code, _, msg := h.postCAP(tok, capFile(t, "quang-nam-storm.xml")); code != http.StatusOK {
		t.Fatalf("storm alert: %d %s", code, msg)
	}
	if code, _, msg := h.postCAP(tok, capFile(t, "oasis-a1-homeland-security.xml")); code != http.StatusOK {
		t.Fatalf("an alert the hub does not broadcast: %d %s", code, msg)
	}
	var all []api.CAPAlertJSON
	h.mustCall(tok, "GET", "/api/cap/alerts", nil, &all, http.StatusOK)
	if len(all) != 2 || all[1].Decision != "create" || len(all[1].Areas) != 2 || all[1].Class != "emergency" || all[1].By != "vndma" ||
		all[0].Decision != "ignore" || all[0].Reason == "" {
		t.Fatalf("the province's list: %+v", all)
	}
	for scope, want := range map[string]int{"quang-nam/hoi-an/cam-thanh": 1, "quang-nam/tam-ky": 0} {
		id := "xem-" + filepath.Base(scope)
		vt := h.userToken(id, scope)
		if err := h.db.SetRole(context.Background(), id, store.RoleViewer); err != nil {
			t.Fatal(err)
		}
		var got []api.CAPAlertJSON
		h.mustCall(vt, "GET", "/api/cap/alerts", nil, &got, http.StatusOK)
		if len(got) != want {
			t.Errorf("a viewer of %s sees %d alerts, want %d: %+v", scope, len(got), want, got)
		}
	}
}
