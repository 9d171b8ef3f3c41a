package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/console"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// userStore is what managing users needs beyond Store; *store.DB has it.
type userStore interface {
	credentialStore
	ListUsers(ctx context.Context, area string) ([]store.User, error)
	SetPassword(ctx context.Context, id, hash string) error
	SetRole(ctx context.Context, id string, role store.Role) error
}

func (rm *Room) userStore(w http.ResponseWriter) (userStore, bool) {
	return staffapi.StoreAs[userStore](w, rm.o.Store, "cannot manage users")
}

func userJSON(u store.User) api.UserJSON {
	return api.UserJSON{ID: u.ID, Name: u.Name, Scope: u.Scope, Role: string(u.Role), Disabled: u.Disabled}
}

// ListUsers lists the accounts scoped to the caller's subtree.
func (rm *Room) ListUsers(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	us, ok := rm.userStore(w)
	if !ok {
		return
	}
	users, err := us.ListUsers(r.Context(), p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := make([]api.UserJSON, 0, len(users))
	for _, u := range users {
		out = append(out, userJSON(u))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// AddUser adds a staff account in the caller's subtree, with a role no higher than the
// caller's own and optionally a console password. No token is made: the user signs in to the
// console, or an administrator makes one on the server (loa-hub user token).
func (rm *Room) AddUser(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	us, ok := rm.userStore(w)
	if !ok {
		return
	}
	var req api.UserRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if req.Scope == "" {
		req.Scope = p.Scope
	}
	if !staffapi.InScope(w, p, req.Scope) {
		return
	}
	role, err := store.ParseRole(req.Role)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if !store.Can(p.User.Role, role) {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("you may give at most your own role, %s", p.User.Role))
		return
	}
	var hash string
	if req.Password != "" {
		if hash, err = console.HashPassword(req.Password); err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if req.Name == "" {
		req.Name = req.ID
	}
	u, err := rm.o.Store.AddUser(r.Context(), store.User{ID: req.ID, Name: req.Name, Scope: req.Scope, Role: role})
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			staffapi.Error(w, http.StatusConflict, fmt.Sprintf("a user %s exists already: pick another name", req.ID))
			return
		}
		staffapi.Fail(w, err)
		return
	}
	if hash != "" {
		if err := us.SetPassword(r.Context(), u.ID, hash); err != nil {
			staffapi.Fail(w, err)
			return
		}
	}
	rm.o.Audit(r.Context(), p, "user.add", "user:"+u.ID, map[string]any{"scope": u.Scope, "role": u.Role, "password": hash != ""})
	staffapi.WriteJSON(w, http.StatusCreated, userJSON(u))
}

// SetPassword sets a user's console password: the caller's own, or (administrators) one of
// a user in the scope. It ends their sessions and lifts a lockout.
func (rm *Room) SetPassword(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	us, ok := rm.userStore(w)
	if !ok {
		return
	}
	var req api.UserRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if req.ID == "" {
		req.ID = p.User.ID
	}
	u, err := us.GetUser(r.Context(), req.ID)
	if err != nil || !store.Allowed(p.Scope, u.Scope) || (u.ID != p.User.ID && !store.Can(p.User.Role, store.RoleAdmin)) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no user %s in your scope %s", req.ID, p.Scope))
		return
	}
	hash, err := console.HashPassword(req.Password)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := us.SetPassword(r.Context(), u.ID, hash); err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "user.password", "user:"+u.ID, nil)
	staffapi.WriteJSON(w, http.StatusOK, userJSON(u))
}
