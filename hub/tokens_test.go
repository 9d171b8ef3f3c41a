package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// An administrator of one commune lists and revokes the tokens of their commune's users only,
// and changes their users' role and area within it; nothing outside the scope, not their own
// role, nothing half-done when a request is refused.
func TestTokensAndRolesByScope(t *testing.T) {
	h := newTestHub(t)
	ctx := context.Background()
	h.addArea("qn/a")
	h.addArea("qn/a/x")
	h.addArea("qn/b")
	admA, userA, userB := h.userToken("adm-a", "qn/a"), h.userToken("u-a", "qn/a/x"), h.userToken("u-b", "qn/b")
	for _, id := range []string{"u-a", "u-b"} {
		if err := h.db.SetRole(ctx, id, store.RoleViewer); err != nil {
			t.Fatal(err)
		}
	}
	idOf := func(tok string) string { s := sha256.Sum256([]byte(tok)); return hex.EncodeToString(s[:]) }

	var ts []api.TokenJSON
	h.mustCall(admA, "GET", "/api/tokens", nil, &ts, http.StatusOK)
	var seen []string
	for _, x := range ts {
		seen = append(seen, x.User)
		if x.ID == idOf(userA) && (!x.Valid || x.Scope != "qn/a/x" || x.Role != "viewer") {
			t.Errorf("u-a's token as listed: %+v", x)
		}
	}
	if strings.Join(seen, " ") != "adm-a u-a" && strings.Join(seen, " ") != "u-a adm-a" {
		t.Errorf("commune a's administrator sees the tokens of %v, want adm-a and u-a", seen)
	}
	h.mustCall(userA, "GET", "/api/tokens", nil, nil, http.StatusForbidden)

	var e api.Error
	if code := h.call(admA, "POST", "/api/tokens/revoke", api.TokenRequest{ID: idOf(userB)}, &e); code != http.StatusNotFound {
		t.Errorf("revoking another commune's token: %d %+v", code, e)
	}
	if code := h.call(admA, "POST", "/api/tokens/revoke", api.TokenRequest{ID: "abc"}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "64 hex digits") {
		t.Errorf("a malformed token id: %d %+v", code, e)
	}
	h.mustCall(userB, "GET", "/api/whoami", nil, nil, http.StatusOK)
	h.mustCall(admA, "POST", "/api/tokens/revoke", api.TokenRequest{ID: idOf(userA)}, nil, http.StatusOK)
	h.mustCall(userA, "GET", "/api/whoami", nil, nil, http.StatusUnauthorized)
	h.mustCall(admA, "GET", "/api/tokens", nil, &ts, http.StatusOK)
	for _, x := range ts {
		if x.ID == idOf(userA) && (x.Valid || x.Revoked.IsZero()) {
			t.Errorf("u-a's revoked token as listed: %+v", x)
		}
	}

	for _, tc := range []struct {
		req  api.UserRequest
		want int
		msg  string
	}{
		{api.UserRequest{ID: "u-b", Role: "operator"}, http.StatusNotFound, "no user u-b in your scope"},
		{api.UserRequest{ID: "u-a", Scope: "qn/b"}, http.StatusNotFound, "no area qn/b in your scope"},
		{api.UserRequest{ID: "adm-a", Role: "viewer"}, http.StatusForbidden, "your own role"},
		{api.UserRequest{ID: "u-a", Scope: "qn/a", Role: "boss"}, http.StatusBadRequest, "boss"},
		{api.UserRequest{ID: "u-a"}, http.StatusBadRequest, "say what changes"},
	} {
		if code := h.call(admA, "POST", "/api/users/role", tc.req, &e); code != tc.want || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%+v: %d %q, want %d %q", tc.req, code, e.Error, tc.want, tc.msg)
		}
	}
	if u, _ := h.db.GetUser(ctx, "u-a"); u.Scope != "qn/a/x" || u.Role != store.RoleViewer {
		t.Fatalf("a refused change changed u-a: %+v", u)
	}
	var u api.UserJSON
	h.mustCall(admA, "POST", "/api/users/role", api.UserRequest{ID: "u-a", Scope: "qn/a", Role: "operator"}, &u, http.StatusOK)
	if got, _ := h.db.GetUser(ctx, "u-a"); got.Scope != "qn/a" || got.Role != store.RoleOperator || u.Role != "operator" || u.Scope != "qn/a" {
		t.Errorf("after the change: store %+v, answer %+v", got, u)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=user.role", nil, &audit, http.StatusOK)
	if len(audit) != 1 || audit[0].Actor != "adm-a" || !strings.Contains(strings.Join(strings.Fields(string(audit[0].Detail)), ""), `"was_role":"viewer"`) {
		t.Errorf("audit of the change: %+v", audit)
	}
}
