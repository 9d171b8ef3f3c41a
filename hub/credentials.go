package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// DefaultTokenLifetime is how long a staff token is valid unless told otherwise: a year, so a
// token copied onto a laptop that is lost or handed on stops working by itself.
const DefaultTokenLifetime = 365 * 24 * time.Hour

// MaxTokenLifetime bounds what may be asked for.
const MaxTokenLifetime = 5 * 365 * 24 * time.Hour

// IssueToken makes a new token for an existing user, valid for validFor (0: the default),
// stores its hash and returns it (shown once).
func IssueToken(ctx context.Context, st Store, userID, label string, validFor time.Duration, now time.Time) (string, time.Time, error) {
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

// credentialStore is what the credential routes need beyond Store; *store.DB has it.
type credentialStore interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	DisableUser(ctx context.Context, id string) error
	RevokeToken(ctx context.Context, tokenHash [32]byte) error
	ReplaceSecret(ctx context.Context, id string, secretHash [32]byte) error
}

func (s *Server) credStore(w http.ResponseWriter) (credentialStore, bool) {
	cs, ok := s.st.(credentialStore)
	if !ok {
		staffapi.Error(w, http.StatusNotImplemented, "this hub's store cannot change credentials")
	}
	return cs, ok
}

// apiNewToken issues the caller a new token (rotation: then revoke the old one).
func (s *Server) apiNewToken(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
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
	tok, expires, err := IssueToken(r.Context(), s.st, p.User.ID, label, validFor, s.clock.Now())
	if err != nil {
		if errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "may be valid") {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "token.add", "user:"+p.User.ID, map[string]any{"label": label, "expires": expires})
	staffapi.WriteJSON(w, http.StatusCreated, api.TokenResponse{User: p.User.ID, Token: tok, Expires: expires})
}

// apiRevokeToken revokes a token, given as its value: the caller's own, or one of a user in
// the caller's scope. An unknown token, and one of a user outside the scope, answer 404 alike.
func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cs, ok := s.credStore(w)
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
		u, _, err = s.st.Authenticate(r.Context(), hash)
	case id != "":
		// By the id GET /api/tokens lists (the console's list): the token may be expired.
		if hash, err = tokenByID(id); err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		as, ok := s.accountStore(w)
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
	s.audit(r.Context(), p, "token.revoke", "user:"+u.ID, nil)
	staffapi.WriteJSON(w, http.StatusOK, api.TokenResponse{User: u.ID, Revoked: true})
}

// apiDisableUser disables a user of the caller's scope: none of their tokens works any more.
func (s *Server) apiDisableUser(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cs, ok := s.credStore(w)
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
	s.audit(r.Context(), p, "user.disable", "user:"+u.ID, map[string]string{"scope": u.Scope})
	staffapi.WriteJSON(w, http.StatusOK, api.UserJSON{ID: u.ID, Name: u.Name, Scope: u.Scope, Disabled: true})
}

// apiRekeyDevice replaces a device's secret (a box replaced, a secret leaked): the old one
// stops working at once, its live connection is closed, and the new one is shown this once.
func (s *Server) apiRekeyDevice(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cs, ok := s.credStore(w)
	if !ok {
		return
	}
	var req api.RekeyRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	d, ok := s.lookupDevice(w, r, p, req.ID)
	if !ok {
		return
	}
	if d.Revoked {
		staffapi.Error(w, http.StatusConflict, fmt.Sprintf("device %s is revoked: a new secret would not bring it back; enrol it under a new id", d.ID))
		return
	}
	secret, err := protocol.NewDeviceSecret(rand.Reader)
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	h, err := secretHash(secret)
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := cs.ReplaceSecret(r.Context(), d.ID, h); err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "device.rekey", "device:"+d.ID, nil)
	s.dropConn(d.ID)
	// The whole enrolment, public key too: the console shows it as the agent's config block.
	staffapi.WriteJSON(w, http.StatusOK, api.EnrolResponse{ID: d.ID, Area: d.Area, Secret: secret, KeyID: s.signer.KeyID(),
		PublicKey: protocol.FormatPublicKey(s.signer.PublicKey()), Hub: s.opts.PublicURL, Warning: publicURLWarning(s.opts.PublicURL)})
}

// dropConn closes a device's live connection, if any.
func (s *Server) dropConn(id string) {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// deviceAuth checks the Loa-Device header of a request and answers 401 when it fails.
func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) (store.Device, bool) {
	if s.authLimit.refuse(w, r, s.clock.Now()) {
		return store.Device{}, false
	}
	id, secret, err := protocol.ParseDeviceAuth(r.Header.Get("Authorization"))
	if err != nil {
		s.authLimit.failed(r, s.clock.Now(), "device credentials", "err", err)
		staffapi.Error(w, http.StatusUnauthorized, "device authentication required: "+err.Error())
		return store.Device{}, false
	}
	h, err := secretHash(secret)
	if err != nil {
		s.authLimit.failed(r, s.clock.Now(), "device secret", "device", id, "err", "malformed")
		staffapi.Error(w, http.StatusUnauthorized, "device "+id+": malformed secret")
		return store.Device{}, false
	}
	d, err := s.st.CheckSecret(r.Context(), id, h)
	if err != nil {
		s.authLimit.failed(r, s.clock.Now(), "device secret", "device", id, "err", err)
		staffapi.Error(w, http.StatusUnauthorized, "device "+id+": unknown, revoked, or wrong secret")
		return store.Device{}, false
	}
	return d, true
}
