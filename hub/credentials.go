package hub

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// credentialStore is what rekeying a device and the audit log's scope need beyond Store
// (staff credentials are hub/accounts'); *store.DB has it.
type credentialStore interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	ReplaceSecret(ctx context.Context, id string, secretHash [32]byte) error
}

func (s *Server) credStore(w http.ResponseWriter) (credentialStore, bool) {
	return staffapi.StoreAs[credentialStore](w, s.st, "cannot change credentials")
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
func (s *Server) dropConn(id string) { s.link.Drop(id) }

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
