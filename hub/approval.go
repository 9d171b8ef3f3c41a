package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/scheduler"
)

// approvalStore is what editorial approval (issue 22) needs of the store.
type approvalStore interface {
	SetPolicy(ctx context.Context, area string, p store.Policy) error
	PolicyOf(ctx context.Context, area string) (store.EffectivePolicy, error)
	Submit(ctx context.Context, area string, s store.Schedule) (store.Submission, error)
	GetSubmission(ctx context.Context, id int64) (store.Submission, error)
	ListSubmissions(ctx context.Context, area, state string, limit int) ([]store.Submission, error)
	Decide(ctx context.Context, id int64, by string, approve bool, reason string) (store.Submission, error)
	Review(ctx context.Context, id int64, by, note string) (store.Emergency, error)
	ListUsers(ctx context.Context, area string) ([]store.User, error)
}

var errNoApproval = staffapi.Refuse(http.StatusNotImplemented, "this hub's store keeps no approvals")

func (s *Server) apStore() (approvalStore, error) {
	as, ok := s.st.(approvalStore)
	if !ok {
		return nil, errNoApproval
	}
	return as, nil
}

// pushRule is how the area's policy treats a push: on air at once (and whether that is an
// approver approving their own, where the policy allows it), or waiting for one of approvers.
type pushRule struct {
	atOnce, selfApproved bool
	approvers            []string
}

// pushRuleFor decides whether p's push to area goes on air at once: where the area's policy
// requires approval, only an approver whom the policy lets approve their own work may. submit
// (`loa submit`) asks for approval wherever the push is.
func (s *Server) pushRuleFor(ctx context.Context, p staffapi.Caller, area string, submit bool) (pushRule, error) {
	as, err := s.apStore()
	if err != nil {
		if submit {
			return pushRule{}, err
		}
		return pushRule{atOnce: true}, nil // a store without approvals: as before
	}
	pol, err := as.PolicyOf(ctx, area)
	if err != nil {
		return pushRule{}, err
	}
	if !pol.Required && !submit {
		return pushRule{atOnce: true}, nil
	}
	if store.Can(p.User.Role, store.RoleApprover) && pol.SelfApproval && !submit {
		return pushRule{atOnce: true, selfApproved: true}, nil
	}
	users, err := as.ListUsers(ctx, "")
	if err != nil {
		return pushRule{}, err
	}
	var who []string
	for _, u := range users {
		if !u.Disabled && store.Allowed(u.Scope, area) && store.Can(u.Role, store.RoleApprover) && (u.ID != p.User.ID || pol.SelfApproval) {
			who = append(who, u.ID)
		}
	}
	return pushRule{approvers: who}, nil
}

// submitSchedule stores a push that waits for approval and answers 202.
func (s *Server) submitSchedule(w http.ResponseWriter, r *http.Request, p staffapi.Caller, target store.Target, area string, doc *scheduler.Document, text string, approvers []string) {
	as, err := s.apStore()
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	sub, err := as.Submit(r.Context(), area, store.Schedule{Target: target, ID: doc.ID, Document: []byte(text), Author: p.User.ID})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "schedule.submit", target.String(), map[string]any{"submission": sub.ID, "schedule_id": doc.ID, "programs": len(doc.Programs)})
	j := s.submissionJSON(r.Context(), sub, false)
	staffapi.WriteJSON(w, http.StatusAccepted, api.PushResponse{Target: target.String(), Submission: &j, Approvers: approvers})
}

func (s *Server) submissionJSON(ctx context.Context, sub store.Submission, withDoc bool) api.SubmissionJSON {
	j := api.SubmissionJSON{ID: sub.ID, Target: sub.Target.String(), Area: sub.Area, ScheduleID: sub.ScheduleID,
		SubmittedBy: sub.SubmittedBy, SubmittedAt: sub.SubmittedAt, State: sub.State, DecidedBy: sub.DecidedBy,
		DecidedAt: staffapi.TimePtr(sub.DecidedAt), Reason: sub.Reason, Revision: sub.Revision}
	if sub.Kind != "" && sub.Kind != store.SubmitSchedule {
		what, ref := describeBroadcast(sub)
		j.Kind, j.Changes = sub.Kind, []string{what}
		if ref != "" {
			item := api.ItemRef{Ref: ref, Title: newTitler(ctx, s).item(ref)}
			if c, err := s.st.GetContent(ctx, ref); err == nil {
				item.State = c.State
			}
			j.Items = []api.ItemRef{item}
		}
		if withDoc {
			j.Document = string(sub.Document)
		}
		return j
	}
	doc, err := scheduler.Parse("submission "+strconv.FormatInt(sub.ID, 10), sub.Document)
	if err == nil {
		j.Programs = len(doc.Programs)
		titles, seen := newTitler(ctx, s), map[string]bool{}
		for _, pr := range doc.Programs {
			for _, it := range pr.Items {
				if it.Content != "" && !seen[it.Content] {
					seen[it.Content] = true
					ref := api.ItemRef{Ref: it.Content, Title: titles.item(it.Content)}
					if c, err := s.st.GetContent(ctx, it.Content); err == nil {
						ref.State = c.State
					}
					j.Items = append(j.Items, ref)
				}
			}
		}
		if sub.State == store.StateSubmitted {
			if latest, err := s.st.LatestSchedule(ctx, sub.Target); err == nil {
				j.Changes = scheduleChanges(&latest, doc)
			} else {
				j.Changes = scheduleChanges(nil, doc)
			}
		}
	}
	if withDoc {
		j.Document = string(sub.Document)
	}
	return j
}

// submission reads the submission named by the path's {id}, answering 404 for one outside
// p's scope as for one that does not exist.
func (s *Server) submission(w http.ResponseWriter, r *http.Request, p staffapi.Caller) (approvalStore, store.Submission, bool) {
	as, err := s.apStore()
	if err != nil {
		staffapi.Fail(w, err)
		return nil, store.Submission{}, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%q is not a submission id: `loa submissions` shows them", r.PathValue("id")))
		return nil, store.Submission{}, false
	}
	sub, err := as.GetSubmission(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		staffapi.Fail(w, err)
		return nil, store.Submission{}, false
	}
	if err != nil || !store.Allowed(p.Scope, sub.Area) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no submission %d in your scope %s; `loa submissions --all` shows them", id, p.Scope))
		return nil, store.Submission{}, false
	}
	return as, sub, true
}

// apiListSubmissions lists the submissions in the caller's scope: ?state= submitted (the
// default), approved, rejected or all.
func (s *Server) apiListSubmissions(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	as, err := s.apStore()
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "":
		state = store.StateSubmitted
	case "all":
		state = ""
	case store.StateSubmitted, store.StateApproved, store.StateRejected:
	default:
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("state %q: use submitted, approved, rejected or all", state))
		return
	}
	subs, err := as.ListSubmissions(r.Context(), p.Scope, state, 500)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := []api.SubmissionJSON{}
	for _, sub := range subs {
		out = append(out, s.submissionJSON(r.Context(), sub, false))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) apiShowSubmission(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	if _, sub, ok := s.submission(w, r, p); ok {
		staffapi.WriteJSON(w, http.StatusOK, s.submissionJSON(r.Context(), sub, true))
	}
}

// apiApprove approves a submission in the caller's scope: its schedule becomes the target's
// next revision, recorded with the approver, and is pushed as a push is.
func (s *Server) apiApprove(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	s.decide(w, r, p, true)
}

// apiReject returns a submission to its author with a reason.
func (s *Server) apiReject(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	s.decide(w, r, p, false)
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, p staffapi.Caller, approve bool) {
	var req api.DecideRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	as, sub, ok := s.submission(w, r, p)
	if !ok {
		return
	}
	ctx := r.Context()
	req.Reason = strings.TrimSpace(req.Reason)
	if !approve && req.Reason == "" {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("rejecting submission %d needs a reason for its author: use --reason \"…\"", sub.ID))
		return
	}
	if approve && sub.SubmittedBy == p.User.ID {
		pol, err := as.PolicyOf(ctx, sub.Area)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		if !pol.SelfApproval {
			staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("you submitted %d yourself and %s's policy does not allow approving one's own submission: another approver must approve it (an administrator can allow it with `loa area policy %s --self-approval allowed`)",
				sub.ID, sub.Area, sub.Area))
			return
		}
	}
	if approve {
		// Its items may have left the library, or been rejected, since it was submitted.
		if doc, err := scheduler.Parse(fmt.Sprintf("submission %d", sub.ID), sub.Document); err == nil {
			if err := s.checkContent(ctx, doc); err != nil {
				staffapi.Error(w, http.StatusConflict, fmt.Sprintf("submission %d cannot go on air: %v", sub.ID, err))
				return
			}
			if items := s.unapprovedContent(ctx, doc); len(items) > 0 {
				staffapi.Fail(w, errUnapproved(items))
				return
			}
		}
	}
	before := s.link.HeadsBefore(ctx, sub.Target)
	sub, err := as.Decide(ctx, sub.ID, p.User.ID, approve, req.Reason)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	res := api.DecideResponse{Submission: s.submissionJSON(ctx, sub, false)}
	kind := sub.Kind
	if kind == "" {
		kind = store.SubmitSchedule
	}
	if approve && kind != store.SubmitSchedule {
		s.audit(ctx, p, kind+".approve", sub.Target.String(), map[string]any{"submission": sub.ID, "submitted_by": sub.SubmittedBy})
		sent, err := s.sendApproved(ctx, sub)
		if err != nil {
			s.log.Error("an approved broadcast was not sent", "submission", sub.ID, "err", err)
			staffapi.Error(w, http.StatusBadGateway, fmt.Sprintf("submission %d is approved but was not sent: %v; send it again yourself", sub.ID, err))
			return
		}
		res.Broadcast = sent
	} else if approve {
		s.audit(ctx, p, "schedule.approve", sub.Target.String(), map[string]any{"submission": sub.ID, "revision": sub.Revision, "submitted_by": sub.SubmittedBy})
		push := s.link.PushSince(ctx, sub.Target, before)
		push.Target, push.Revision = sub.Target.String(), sub.Revision
		res.Push = &push
	} else {
		s.audit(ctx, p, kind+".reject", sub.Target.String(), map[string]any{"submission": sub.ID, "reason": sub.Reason, "submitted_by": sub.SubmittedBy})
	}
	staffapi.WriteJSON(w, http.StatusOK, res)
}

// apiGetPolicy answers the approval policy that applies in ?area= (default the caller's scope).
func (s *Server) apiGetPolicy(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	as, err := s.apStore()
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	if area == "" {
		staffapi.Error(w, http.StatusBadRequest, "name the area: ?area=ID (`loa area policy AREA`)")
		return
	}
	pol, err := as.PolicyOf(r.Context(), area)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, api.PolicyJSON{Area: area, Required: pol.Required, SelfApproval: pol.SelfApproval})
}

// apiSetPolicy sets an area's approval policy (administrators of the area; audited).
func (s *Server) apiSetPolicy(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	as, err := s.apStore()
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	var req api.PolicyRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if req.Area == "" || !store.Allowed(p.Scope, req.Area) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no area %q in your scope %s", req.Area, p.Scope))
		return
	}
	if req.Approval == "" && req.SelfApproval == "" {
		staffapi.Error(w, http.StatusBadRequest, "say what to set: --approval required|not_required|inherit and/or --self-approval allowed|not_allowed|inherit")
		return
	}
	if err := as.SetPolicy(r.Context(), req.Area, store.Policy{Approval: req.Approval, SelfApproval: req.SelfApproval}); err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "area.policy", "area:"+req.Area, map[string]any{"approval": req.Approval, "self_approval": req.SelfApproval})
	pol, err := as.PolicyOf(r.Context(), req.Area)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, api.PolicyJSON{Area: req.Area, Required: pol.Required, SelfApproval: pol.SelfApproval})
}

// dryRunApproval says in a dry run what the approval rule would do with the push: submit it
// for approval (and to whom), and which of its items are not approved.
func (s *Server) dryRunApproval(ctx context.Context, p staffapi.Caller, area string, submit bool, doc *scheduler.Document, res *api.PushResponse) error {
	rule, err := s.pushRuleFor(ctx, p, area, submit)
	if err != nil {
		return err
	}
	if !rule.atOnce {
		res.WouldSubmit, res.Approvers = true, rule.approvers
	}
	res.Unapproved = s.unapprovedContent(ctx, doc)
	return nil
}
