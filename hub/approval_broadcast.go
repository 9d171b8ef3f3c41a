package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// Bulletins, live relays and play-now commands under editorial approval (issue 22): sent to
// an area that requires approval by someone without the emergency role, they wait in the
// submissions queue as a schedule does, and the approval sends them as their sender asked.
// The emergency role's go out at once; a bulletin or relay is then flagged for review.

// broadcastStore is the store's part this needs.
type broadcastStore interface {
	SubmitBroadcast(ctx context.Context, area string, target store.Target, kind, by string, request []byte) (store.Submission, error)
	FlagForReview(ctx context.Context, ids []int64) error
	Review(ctx context.Context, id int64, by, note string) (store.Emergency, error)
	GetUser(ctx context.Context, id string) (store.User, error)
}

// approvedKey marks the request an approval replays: it passes the gate.
type approvedKey struct{}

// Where each kind of request is sent when its approval replays it.
var broadcastPaths = map[string]string{store.KindBulletin: "/api/emergencies", store.KindLive: "/api/emergencies", store.SubmitCommand: "/api/commands"}

// emergencyKind says whether a POST /api/emergencies body is a bulletin or relay (gated) and
// its targets; a warning is not gated (it is reviewed afterwards).
func emergencyKind(body []byte) (kind, to string, gated bool) {
	var req api.EmergencyRequest
	if json.Unmarshal(body, &req) != nil || (req.Kind != store.KindBulletin && req.Kind != store.KindLive) {
		return "", "", false // the handler answers a body it cannot read
	}
	return req.Kind, req.To, true
}

// commandKind gates POST /api/commands' play_now; stop, volume, reload and screenshot are
// not broadcasts.
func commandKind(body []byte) (kind, to string, gated bool) {
	var req api.CommandRequest
	if json.Unmarshal(body, &req) != nil || req.Action != "play_now" {
		return "", "", false
	}
	return store.SubmitCommand, req.To, true
}

// gated puts h behind the approval of the areas the request names (kindOf reads it).
func (s *Server) gated(kindOf func(body []byte) (kind, to string, gated bool), h func(http.ResponseWriter, *http.Request, staffapi.Caller)) func(http.ResponseWriter, *http.Request, staffapi.Caller) {
	return func(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
		bs, ok := s.st.(broadcastStore)
		if !ok {
			h(w, r, p)
			return
		}
		if by, ok := r.Context().Value(approvedKey{}).(string); ok {
			// An approval sending it: the bulletin or relay records its approver (the
			// reports name them) as a reviewed warning records its reviewer.
			s.sendThen(w, r, p, h, func(ids []int64) error {
				for _, id := range ids {
					if _, err := bs.Review(r.Context(), id, by, "approved before broadcast"); err != nil {
						return err
					}
				}
				return nil
			})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			staffapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request could not be read whole (at most 1 MiB of JSON): %v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		kind, to, gate := kindOf(body)
		if !gate {
			h(w, r, p)
			return
		}
		// The first named target whose area requires approval decides; unknown targets are
		// the handler's to refuse.
		var target store.Target
		var rule pushRule
		area := ""
		for _, id := range strings.Split(to, ",") {
			t, a, err := s.findTarget(r.Context(), p, strings.TrimSpace(id))
			if err != nil {
				continue
			}
			rl, err := s.pushRuleFor(r.Context(), p, a, false)
			if err == nil && (!rl.atOnce || rl.selfApproved) { // the area requires approval
				target, area, rule = t, a, rl
				break
			}
		}
		switch {
		case area == "" || rule.atOnce: // not required, or an approver approving their own
			h(w, r, p)
		case store.Can(p.User.Role, store.RoleEmergency):
			// At once, and flagged for review afterwards (a command is in the audit log).
			s.sendThen(w, r, p, h, func(ids []int64) error { return bs.FlagForReview(r.Context(), ids) })
		default:
			sub, err := bs.SubmitBroadcast(r.Context(), area, target, kind, p.User.ID, body)
			if err != nil {
				staffapi.Fail(w, err)
				return
			}
			s.audit(r.Context(), p, kind+".submit", target.String(), map[string]any{"submission": sub.ID})
			j := s.submissionJSON(r.Context(), sub, false)
			staffapi.WriteJSON(w, http.StatusAccepted, api.PushResponse{Target: target.String(), Submission: &j, Approvers: rule.approvers})
		}
	}
}

// sendThen sends the request through h and hands after the broadcasts it made (none for a
// command); the answer goes back as h gave it.
func (s *Server) sendThen(w http.ResponseWriter, r *http.Request, p staffapi.Caller, h func(http.ResponseWriter, *http.Request, staffapi.Caller), after func(ids []int64) error) {
	rec := httptest.NewRecorder()
	h(rec, r, p)
	var res api.EmergencyResponse
	if rec.Code == http.StatusCreated && json.Unmarshal(rec.Body.Bytes(), &res) == nil && len(res.Emergencies) > 0 {
		var ids []int64
		for _, e := range res.Emergencies {
			ids = append(ids, e.ID)
		}
		if err := after(ids); err != nil {
			s.log.Error("a broadcast's approval or review flag was not recorded; record its review by hand (`loa review ID`)", "ids", ids, "err", err)
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// sendApproved sends an approved bulletin, relay or command as its submitter asked, and
// returns the answer (JSON) or why it could not be sent.
func (s *Server) sendApproved(ctx context.Context, sub store.Submission) (json.RawMessage, error) {
	bs, ok := s.st.(broadcastStore)
	path := broadcastPaths[sub.Kind]
	if !ok || path == "" {
		return nil, fmt.Errorf("submission %d is a %q, which this hub cannot send", sub.ID, sub.Kind)
	}
	u, err := bs.GetUser(ctx, sub.SubmittedBy)
	if err != nil {
		return nil, fmt.Errorf("its sender %s: %w", sub.SubmittedBy, err)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, approvedKey{}, sub.DecidedBy), "POST", path, bytes.NewReader(sub.Document))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeAs(rec, req, u)
	if rec.Code/100 != 2 {
		var e api.Error
		json.Unmarshal(rec.Body.Bytes(), &e)
		return nil, fmt.Errorf("sending it was refused (%d): %s", rec.Code, e.Error)
	}
	return rec.Body.Bytes(), nil
}

// describeBroadcast is what a waiting bulletin, relay or command does, for the queue, and the
// library item it plays.
func describeBroadcast(sub store.Submission) (what, content string) {
	var req struct {
		api.EmergencyRequest
		Action    string `json:"action"`
		ExpiresIn string `json:"expires_in"`
	}
	json.Unmarshal(sub.Document, &req)
	say := firstNonEmpty(req.Title, req.Text, req.Stream, req.Content)
	switch sub.Kind {
	case store.KindBulletin:
		return fmt.Sprintf("bulletin at the next session: %s", say), req.Content
	case store.KindLive:
		return fmt.Sprintf("live relay of %s for %s", req.Stream, firstNonEmpty(req.For, "1h")), ""
	}
	return fmt.Sprintf("play now (%s): %s", firstNonEmpty(req.Class, "priority"), say), req.Content
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
