// Package accounts is the hub's staff accounts and their credentials: users (their role,
// scope and console password, disabling one) and staff tokens (made, hashed, issued, listed
// and revoked). Checking a token on each request is the hub's (it counts failures per source);
// this package keeps what is checked against.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// TokenAdder stores the hash of a new staff token.
type TokenAdder interface {
	AddToken(ctx context.Context, userID string, tokenHash [32]byte, label string, expires time.Time) error
}

// Store is what the accounts routes need of the hub's storage; the rest (listing, roles,
// passwords) is asserted as the smaller interfaces below, and *store.DB has them all.
type Store interface {
	TokenAdder
	Authenticate(ctx context.Context, tokenHash [32]byte) (store.User, string, error)
	AddUser(ctx context.Context, u store.User) (store.User, error)
}

// Options configure a Room. Every field is required.
type Options struct {
	Store Store
	Now   func() time.Time
	// Audit records a staff action in the hub's audit log.
	Audit func(ctx context.Context, p staffapi.Caller, action, target string, detail any)
}

// Room serves the accounts routes (the hub mounts them).
type Room struct{ o Options }

// New returns a room over o.
func New(o Options) *Room { return &Room{o: o} }

// HashToken is what the store keeps of a staff token.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// NewToken makes a staff token: 32 random bytes, "loa-st1-" and base32.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "loa-st1-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// DefaultTokenLifetime is how long a staff token is valid unless told otherwise: a year, so a
// token copied onto a laptop that is lost or handed on stops working by itself.
const DefaultTokenLifetime = 365 * 24 * time.Hour

// MaxTokenLifetime bounds what may be asked for.
const MaxTokenLifetime = 5 * 365 * 24 * time.Hour

// IssueToken makes a new token for an existing user, valid for validFor (0: the default),
// stores its hash and returns it (shown once).
func IssueToken(ctx context.Context, st TokenAdder, userID, label string, validFor time.Duration, now time.Time) (string, time.Time, error) {
	if validFor == 0 {
		validFor = DefaultTokenLifetime
	}
	if validFor < time.Minute || validFor > MaxTokenLifetime {
		return "", time.Time{}, fmt.Errorf("a token may be valid from a minute to %d days, not %v", MaxTokenLifetime/(24*time.Hour), validFor)
	}
	tok, err := NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	expires := now.Add(validFor)
	if err := st.AddToken(ctx, userID, HashToken(tok), label, expires); err != nil {
		return "", time.Time{}, err
	}
	return tok, expires, nil
}

// credentialStore is what revoking tokens and disabling users need beyond Store; *store.DB
// has it.
type credentialStore interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	DisableUser(ctx context.Context, id string) error
	RevokeToken(ctx context.Context, tokenHash [32]byte) error
}

func (rm *Room) credStore(w http.ResponseWriter) (credentialStore, bool) {
	return staffapi.StoreAs[credentialStore](w, rm.o.Store, "cannot change credentials")
}

// Issue is POST /api/tokens: it issues the caller a new token (rotation: then revoke the old one).
func (rm *Room) Issue(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.TokenRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	var validFor time.Duration
	if req.ValidFor != "" {
		d, err := time.ParseDuration(req.ValidFor)
		if err != nil {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("valid_for %q: write a duration like 720h", req.ValidFor))
			return
		}
		validFor = d
	}
	label := req.Label
	if label == "" {
		label = "POST /api/tokens"
	}
	tok, expires, err := IssueToken(r.Context(), rm.o.Store, p.User.ID, label, validFor, rm.o.Now())
	if err != nil {
		if errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "may be valid") {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "token.add", "user:"+p.User.ID, map[string]any{"label": label, "expires": expires})
	staffapi.WriteJSON(w, http.StatusCreated, api.TokenResponse{User: p.User.ID, Token: tok, Expires: expires})
}

// Revoke is POST /api/tokens/revoke: it revokes a token, given as its value: the caller's own, or one of a user in
// the caller's scope. An unknown token, and one of a user outside the scope, answer 404 alike.
func (rm *Room) Revoke(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cs, ok := rm.credStore(w)
	if !ok {
		return
	}
	var req api.TokenRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	tok, id := strings.TrimSpace(req.Token), strings.TrimSpace(req.ID)
	var hash [32]byte
	var u store.User
	var err error
	switch {
	case tok != "":
		hash = HashToken(tok)
		u, _, err = rm.o.Store.Authenticate(r.Context(), hash)
	case id != "":
		// By the id GET /api/tokens lists (the console's list): the token may be expired.
		if hash, err = tokenByID(id); err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		as, ok := rm.accountStore(w)
		if !ok {
			return
		}
		u, err = as.TokenUser(r.Context(), hash)
	default:
		staffapi.Error(w, http.StatusBadRequest, "say which token: {\"token\": \"loa-st1-…\"} or {\"id\": \"<hex from GET /api/tokens>\"}")
		return
	}
	// Anyone may revoke their own token; another user's takes an administrator of the scope.
	if err != nil || !store.Allowed(p.Scope, u.Scope) || (u.ID != p.User.ID && !store.Can(p.User.Role, store.RoleAdmin)) {
		staffapi.Error(w, http.StatusNotFound, "no valid token like that in your scope (already revoked or expired, or another area's)")
		return
	}
	if err := cs.RevokeToken(r.Context(), hash); err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "token.revoke", "user:"+u.ID, nil)
	staffapi.WriteJSON(w, http.StatusOK, api.TokenResponse{User: u.ID, Revoked: true})
}

// DisableUser disables a user of the caller's scope: none of their tokens works any more.
func (rm *Room) DisableUser(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cs, ok := rm.credStore(w)
	if !ok {
		return
	}
	var req api.UserRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	u, err := cs.GetUser(r.Context(), req.ID)
	if err != nil || !store.Allowed(p.Scope, u.Scope) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no user %s in your scope %s", req.ID, p.Scope))
		return
	}
	if err := cs.DisableUser(r.Context(), u.ID); err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "user.disable", "user:"+u.ID, map[string]string{"scope": u.Scope})
	staffapi.WriteJSON(w, http.StatusOK, api.UserJSON{ID: u.ID, Name: u.Name, Scope: u.Scope, Disabled: true})
}
