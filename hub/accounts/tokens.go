package accounts

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// accountStore is what listing tokens and moving users need beyond Store; *store.DB has it.
type accountStore interface {
	userStore
	ListTokens(ctx context.Context, area string) ([]store.Token, error)
	TokenUser(ctx context.Context, tokenHash [32]byte) (store.User, error)
	SetScope(ctx context.Context, id, area string) error
}

func (rm *Room) accountStore(w http.ResponseWriter) (accountStore, bool) {
	return staffapi.StoreAs[accountStore](w, rm.o.Store, "cannot list tokens or move users")
}

// ListTokens lists the tokens of the users in the caller's scope (administrators), newest
// first, each named by its hash.
func (rm *Room) ListTokens(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	as, ok := rm.accountStore(w)
	if !ok {
		return
	}
	ts, err := as.ListTokens(r.Context(), p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	now := rm.o.Now()
	out := make([]api.TokenJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, api.TokenJSON{ID: hex.EncodeToString(t.Hash[:]), User: t.User.ID, Name: t.User.Name, Scope: t.User.Scope,
			Role: string(t.User.Role), Label: t.Label, Created: t.CreatedAt, Expires: t.Expires, Revoked: t.Revoked,
			Valid: t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires)) && !t.User.Disabled})
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// tokenByID reads an id of GET /api/tokens (64 hex digits) as the token's hash.
func tokenByID(id string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("token id %q: write the 64 hex digits GET /api/tokens lists", id)
	}
	copy(h[:], b)
	return h, nil
}

// SetUserRole changes a user's role, scope or both (administrators): the user and the new
// scope in the caller's subtree, the role no higher than the caller's own. A user cannot
// change their own (an administrator demoting themselves by mistake would lock the area out).
func (rm *Room) SetUserRole(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	as, ok := rm.accountStore(w)
	if !ok {
		return
	}
	var req api.UserRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	u, err := as.GetUser(r.Context(), req.ID)
	if err != nil || !store.Allowed(p.Scope, u.Scope) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no user %s in your scope %s", req.ID, p.Scope))
		return
	}
	if u.ID == p.User.ID {
		staffapi.Error(w, http.StatusForbidden, "you cannot change your own role or area: ask another administrator")
		return
	}
	if req.Role == "" && req.Scope == "" {
		staffapi.Error(w, http.StatusBadRequest, `say what changes: {"id": "…", "role": "operator", "scope": "area id"}`)
		return
	}
	// Everything is checked before anything changes: no half-made change.
	var role store.Role
	if req.Role != "" {
		if role, err = store.ParseRole(req.Role); err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		if !store.Can(p.User.Role, role) {
			staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("you may give at most your own role, %s", p.User.Role))
			return
		}
	}
	if req.Scope != "" && !staffapi.InScope(w, p, req.Scope) {
		return
	}
	detail := map[string]string{}
	if req.Scope != "" && req.Scope != u.Scope {
		if err := as.SetScope(r.Context(), u.ID, req.Scope); err != nil {
			staffapi.Fail(w, err)
			return
		}
		detail["scope"], detail["was_scope"], u.Scope = req.Scope, u.Scope, req.Scope
	}
	if role != "" && role != u.Role {
		if err := as.SetRole(r.Context(), u.ID, role); err != nil {
			staffapi.Fail(w, err)
			return
		}
		detail["role"], detail["was_role"], u.Role = string(role), string(u.Role), role
	}
	if len(detail) > 0 {
		rm.o.Audit(r.Context(), p, "user.role", "user:"+u.ID, detail)
	}
	staffapi.WriteJSON(w, http.StatusOK, userJSON(u))
}
