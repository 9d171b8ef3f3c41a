package hub

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// A user's role bounds every token of theirs: a viewer reads, an operator sends commands
// and starts relays but no warning, an emergency user warns but adds no area; an admin does all.
func TestRolesBoundTokens(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.enrol("tk/cl-1", "qn/tk")
	tok := map[store.Role]string{}
	for _, r := range store.Roles {
		tok[r] = h.userToken("u-"+string(r), "qn/tk")
		if err := h.db.SetRole(context.Background(), "u-"+string(r), r); err != nil {
			t.Fatal(err)
		}
	}
	cmd := map[string]any{"to": "qn/tk", "action": "reload"}
	warn := api.EmergencyRequest{To: "qn/tk", Text: "Bão số 9", For: "1h"}
	relay := api.EmergencyRequest{To: "qn/tk", Kind: "live", Stream: "http://radio.example.vn/vov1.mp3", For: "1h"}
	area := api.AreaJSON{ID: "qn/tk/x", Name: "x"}
	for _, c := range []struct {
		role                   store.Role
		list, cmd, relay, warn int
		area                   int
	}{
		{store.RoleViewer, 200, 403, 403, 403, 403},
		{store.RoleOperator, 200, 201, 201, 403, 403},
		{store.RoleApprover, 200, 201, 201, 403, 403},
		{store.RoleEmergency, 200, 201, 201, 201, 403},
		{store.RoleAdmin, 200, 201, 201, 201, 201},
	} {
		got := []int{
			h.call(tok[c.role], "GET", "/api/devices", nil, nil),
			h.call(tok[c.role], "POST", "/api/commands", cmd, nil),
			h.call(tok[c.role], "POST", "/api/emergencies", relay, nil),
			h.call(tok[c.role], "POST", "/api/emergencies", warn, nil),
			h.call(tok[c.role], "POST", "/api/areas", area, nil),
		}
		want := []int{c.list, c.cmd, c.relay, c.warn, c.area}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: call %d (devices, command, relay, warning, area) answered %d, want %d", c.role, i, got[i], want[i])
			}
		}
		if c.area == 201 {
			area.ID += "y"
		}
	}
	// Users: only administrators list and add them; anyone sets their own password, nobody
	// below admin another's; a role above the caller's is not given.
	if code := h.call(tok[store.RoleOperator], "GET", "/api/users", nil, nil); code != http.StatusForbidden {
		t.Errorf("an operator lists users: %d", code)
	}
	if code := h.call(tok[store.RoleViewer], "POST", "/api/users/password", api.UserRequest{Password: "mat-khau-rieng-1"}, nil); code != http.StatusOK {
		t.Errorf("a viewer sets their own password: %d", code)
	}
	if code := h.call(tok[store.RoleEmergency], "POST", "/api/users/password", api.UserRequest{ID: "u-viewer", Password: "mat-khau-rieng-2"}, nil); code != http.StatusNotFound {
		t.Errorf("an emergency user sets another's password: %d", code)
	}
	if code := h.call(tok[store.RoleAdmin], "POST", "/api/users", api.UserRequest{ID: "lan", Scope: "qn/tk", Role: "operator", Password: "short"}, nil); code != http.StatusBadRequest {
		t.Errorf("a user with a 5-character password: %d", code)
	}
	if code := h.call(tok[store.RoleAdmin], "POST", "/api/users", api.UserRequest{ID: "lan", Scope: "qn", Role: "operator"}, nil); code != http.StatusNotFound {
		t.Errorf("a commune admin adds a user to the province: %d", code)
	}
	var users []api.UserJSON
	h.mustCall(tok[store.RoleAdmin], "POST", "/api/users", api.UserRequest{ID: "lan", Scope: "qn/tk", Role: "operator"}, nil, http.StatusCreated)
	h.mustCall(tok[store.RoleAdmin], "GET", "/api/users", nil, &users, http.StatusOK)
	if len(users) != len(store.Roles)+1 || users[0].ID != "lan" || users[0].Role != "operator" {
		t.Errorf("users of qn/tk: %+v", users)
	}
	var e api.Error
	if code := h.call(tok[store.RoleViewer], "POST", "/api/commands", cmd, &e); code != http.StatusForbidden || !strings.Contains(e.Error, "your role viewer") {
		t.Fatalf("a viewer's command: %d %q", code, e.Error)
	}
}
