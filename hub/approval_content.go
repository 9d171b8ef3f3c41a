package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/library"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/scheduler"
)

// Content items under editorial approval (issue 22): an item uploaded where approval is
// required waits for an approver of the uploader's area; no schedule goes on air with an
// item that is not approved.

// contentDecider is the store's part that approves and rejects content items.
type contentDecider interface {
	DecideContent(ctx context.Context, ref, by string, approve bool, reason string) (store.Content, error)
}

// uploadApproval is the library's Approval hook: an upload starts as a push to the uploader's
// area would (pushRuleFor).
func (s *Server) uploadApproval(ctx context.Context, p staffapi.Caller) (library.Approval, error) {
	if _, ok := s.st.(contentDecider); !ok {
		return library.Approval{}, nil // a store without content approval: as before
	}
	rule, err := s.pushRuleFor(ctx, p, p.Scope, false)
	if err != nil {
		return library.Approval{}, err
	}
	a := library.Approval{Submitted: !rule.atOnce, Approvers: rule.approvers}
	if rule.selfApproved {
		a.By = p.User.ID
	}
	return a, nil
}

// unapprovedContent names the library items doc plays that are not approved, each once:
// `"Title" (sha256:…): chờ duyệt`. Items not in the library are checkContent's to refuse.
func (s *Server) unapprovedContent(ctx context.Context, doc *scheduler.Document) []string {
	var out []string
	seen := map[string]bool{}
	for _, pr := range doc.Programs {
		for _, it := range pr.Items {
			if it.Content == "" || seen[it.Content] {
				continue
			}
			seen[it.Content] = true
			c, err := s.st.GetContent(ctx, it.Content)
			if err != nil || c.State == "" || c.State == store.StateApproved {
				continue
			}
			what := "waits for approval (chờ duyệt)"
			if c.State == store.StateRejected {
				what = fmt.Sprintf("was rejected by %s (bị từ chối): %s", c.DecidedBy, c.Reason)
			}
			out = append(out, fmt.Sprintf("%q (%s) %s", c.Title, c.Ref, what))
		}
	}
	return out
}

// errUnapproved is the refusal of a schedule going on air with items not approved.
func errUnapproved(items []string) error {
	return staffapi.Refuse(http.StatusConflict, fmt.Sprintf("the schedule plays content not approved for broadcast: %s; an approver of the area it was uploaded in approves it first (`loa approve content REF`, or the console's Duyệt page)",
		strings.Join(items, "; ")))
}

// apiApproveContent approves a content item waiting in the caller's scope.
func (s *Server) apiApproveContent(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	s.decideContent(w, r, p, true)
}

// apiRejectContent rejects a content item with a reason for its uploader.
func (s *Server) apiRejectContent(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	s.decideContent(w, r, p, false)
}

func (s *Server) decideContent(w http.ResponseWriter, r *http.Request, p staffapi.Caller, approve bool) {
	var req api.DecideRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	cd, ok := s.st.(contentDecider)
	as, err := s.apStore()
	if !ok || err != nil {
		staffapi.Fail(w, errNoApproval)
		return
	}
	ctx, ref := r.Context(), r.PathValue("ref")
	c, err := s.st.GetContent(ctx, ref)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		staffapi.Fail(w, err)
		return
	}
	// An item uploaded before approvals existed has no area: the whole tree's approvers decide.
	if err != nil || !store.Allowed(p.Scope, c.Area) && c.Area != "" {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no content %s waiting in your scope %s; `loa content list --state submitted` shows what waits", ref, p.Scope))
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if !approve && req.Reason == "" {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("rejecting %s needs a reason for whoever uploaded it: use --reason \"…\"", c.Ref))
		return
	}
	if approve && c.UploadedBy == p.User.ID && c.Area != "" {
		pol, err := as.PolicyOf(ctx, c.Area)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		if !pol.SelfApproval {
			staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("you uploaded %s yourself and %s's policy does not allow approving one's own work: another approver must approve it", c.Ref, c.Area))
			return
		}
	}
	c, err = cd.DecideContent(ctx, c.Ref, p.User.ID, approve, req.Reason)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	action, detail := "content.approve", map[string]any{"title": c.Title, "uploaded_by": c.UploadedBy}
	if !approve {
		action, detail["reason"] = "content.reject", c.Reason
	}
	s.audit(ctx, p, action, "content:"+c.Ref, detail)
	staffapi.WriteJSON(w, http.StatusOK, s.lib.ItemJSON(ctx, c))
}
