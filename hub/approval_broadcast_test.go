package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// A commune editor's live relay and play-now command where approval is required wait in the
// submissions queue and go out, as the editor asked, when an approver approves them; the
// emergency role's relay goes out at once and waits for its review; where approval is not
// required, and for commands that broadcast nothing (stop), nothing waits.
func TestBroadcastsWaitForApproval(t *testing.T) {
	h := newTestHub(t)
	editor, approver, warner := approvalDistrict(h)
	free := h.staff("mai", "qn/dl", store.RoleOperator)
	live := api.EmergencyRequest{To: "qn/tk/c1", Kind: store.KindLive, Stream: "http://r.example/huyen.mp3", For: "30m"}
	active := func() []api.EmergencyJSON {
		var es []api.EmergencyJSON
		h.mustCall(h.admin, "GET", "/api/emergencies", nil, &es, http.StatusOK)
		return es
	}

	var res api.EmergencyResponse
	h.mustCall(editor, "POST", "/api/emergencies", live, &res, http.StatusAccepted)
	if res.Submission == nil || res.Submission.Kind != store.KindLive || len(res.Submission.Changes) != 1 || len(active()) != 0 {
		t.Fatalf("the editor's relay where approval is required: %+v, active %+v", res.Submission, active())
	}
	relay := res.Submission.ID
	var cmd api.CommandJSON
	h.mustCall(editor, "POST", "/api/commands", api.CommandRequest{To: "qn/tk/c1", Action: "play_now", Stream: "http://r.example/tb.mp3", Title: "Thông báo"}, &cmd, http.StatusAccepted)
	if cmd.Submission == nil || cmd.Submission.Kind != store.SubmitCommand || cmd.ID != "" {
		t.Fatalf("the editor's play-now where approval is required: %+v", cmd)
	}
	play := cmd.Submission.ID
	h.mustCall(editor, "POST", "/api/commands", api.CommandRequest{To: "qn/tk/c1", Action: "stop"}, nil, http.StatusCreated)
	var cmds []api.CommandJSON
	h.mustCall(h.admin, "GET", "/api/commands", nil, &cmds, http.StatusOK)
	if len(cmds) != 1 || cmds[0].Action != "stop" {
		t.Fatalf("commands before the approvals: %+v", cmds)
	}
	var queue []api.SubmissionJSON
	h.mustCall(approver, "GET", "/api/submissions", nil, &queue, http.StatusOK)
	if len(queue) != 2 {
		t.Fatalf("the approver's queue: %+v", queue)
	}

	var dec api.DecideResponse
	h.mustCall(approver, "POST", fmt.Sprintf("/api/submissions/%d/approve", relay), api.DecideRequest{}, &dec, http.StatusOK)
	var sent api.EmergencyResponse
	if err := json.Unmarshal(dec.Broadcast, &sent); err != nil || len(sent.Emergencies) != 1 {
		t.Fatalf("the relay's approval sent %s (%v)", dec.Broadcast, err)
	}
	if es := active(); len(es) != 1 || es[0].Kind != store.KindLive || es[0].CreatedBy != "lan" || es[0].Stream != live.Stream || es[0].ReviewedBy != "hung" {
		t.Fatalf("after the approval, on air: %+v", es)
	}
	h.mustCall(approver, "POST", fmt.Sprintf("/api/submissions/%d/approve", play), api.DecideRequest{}, &dec, http.StatusOK)
	h.mustCall(h.admin, "GET", "/api/commands", nil, &cmds, http.StatusOK)
	if len(cmds) != 2 || cmds[0].Action != "play_now" || cmds[0].IssuedBy != "lan" || cmds[0].Title != "Thông báo" {
		t.Fatalf("commands after the approval: %+v", cmds)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=live.approve", nil, &audit, http.StatusOK)
	if len(audit) != 1 || audit[0].Actor != "hung" {
		t.Fatalf("the relay's approval in the audit log: %+v", audit)
	}

	// The emergency role's relay goes out at once and waits for its review.
	var now api.EmergencyResponse
	h.mustCall(warner, "POST", "/api/emergencies", live, &now, http.StatusCreated)
	if now.Submission != nil || len(now.Emergencies) != 1 {
		t.Fatalf("the emergency role's relay: %+v", now)
	}
	var review []api.EmergencyJSON
	h.mustCall(approver, "GET", "/api/emergencies?review=1", nil, &review, http.StatusOK)
	if len(review) != 1 || review[0].ID != now.Emergencies[0].ID {
		t.Fatalf("the review queue after the emergency role's relay: %+v", review)
	}
	// Where approval is not required, a relay goes out at once and nobody reviews it.
	free1 := live
	free1.To = "qn/dl"
	h.mustCall(free, "POST", "/api/emergencies", free1, &now, http.StatusCreated)
	h.mustCall(h.admin, "GET", "/api/emergencies?review=1", nil, &review, http.StatusOK)
	if len(review) != 1 {
		t.Fatalf("a relay where approval is not required is in the review queue: %+v", review)
	}
}
