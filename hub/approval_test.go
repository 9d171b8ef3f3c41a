package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// staff adds a user with a role in scope and returns their token.
func (h *testHub) staff(id, scope string, role store.Role) string {
	h.t.Helper()
	tok := h.userToken(id, scope)
	if err := h.db.SetRole(context.Background(), id, role); err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *testHub) setPolicy(area, approval, self string) {
	h.t.Helper()
	h.mustCall(h.admin, "PUT", "/api/areas/policy", api.PolicyRequest{Area: area, Approval: approval, SelfApproval: self}, nil, http.StatusOK)
}

func approvalDoc(prog string) string {
	return fmt.Sprintf("version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: %s\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 15m\n", prog)
}

// A commune editor's schedule waits for an approver of the area: the connected device gets
// nothing until the approval, then the schedule; an approver of another commune cannot see
// it; the approver is kept on the revision and in the audit log.
func TestScheduleWaitsForApproval(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.addArea("qn/tk/c1")
	h.addArea("qn/tk/c2")
	secret := h.enrol("c1/a", "qn/tk/c1")
	editor := h.staff("lan", "qn/tk/c1", store.RoleOperator)
	approver := h.staff("hung", "qn/tk", store.RoleApprover)
	other := h.staff("mai", "qn/tk/c2", store.RoleApprover)
	h.setPolicy("qn/tk", store.ApprovalRequired, "")
	a, _ := h.connect("c1/a", secret, protocol.Hello{})

	code, res, msg := h.push(editor, "qn/tk/c1", approvalDoc("news"))
	if code != http.StatusAccepted || res.Submission == nil || res.Submission.State != store.StateSubmitted || res.Sent != 0 {
		t.Fatalf("an editor's push where approval is required: %d %+v %s", code, res, msg)
	}
	if strings.Join(res.Approvers, ",") != "admin,hung" {
		t.Errorf("who can approve it: %v, want admin (province) and hung (district), not mai (another commune)", res.Approvers)
	}
	id := res.Submission.ID
	var revs []api.ScheduleJSON
	h.mustCall(h.admin, "GET", "/api/schedules?to=qn/tk/c1", nil, &revs, http.StatusOK)
	if len(revs) != 0 {
		t.Fatalf("a submission made a schedule revision: %+v", revs)
	}
	// Messages on one connection keep their order: a command sent now arrives before anything
	// pushed later, and after anything the submission would have sent.
	h.issue(h.admin, api.CommandRequest{To: "c1/a", Action: "reload"})
	if m := a.next(); m.Type() != "command" {
		t.Fatalf("before the approval the device got %s, want only the command", m.Type())
	}

	var subs []api.SubmissionJSON
	h.mustCall(approver, "GET", "/api/submissions", nil, &subs, http.StatusOK)
	if len(subs) != 1 || subs[0].ID != id || subs[0].SubmittedBy != "lan" || len(subs[0].Changes) == 0 {
		t.Fatalf("the approver's queue: %+v", subs)
	}
	h.mustCall(other, "GET", "/api/submissions", nil, &subs, http.StatusOK)
	if len(subs) != 0 {
		t.Errorf("another commune's approver sees %+v", subs)
	}
	path := fmt.Sprintf("/api/submissions/%d/", id)
	if code := h.call(other, "POST", path+"approve", api.DecideRequest{}, nil); code != http.StatusNotFound {
		t.Errorf("an approver outside the area approves: %d, want 404", code)
	}
	if code := h.call(editor, "POST", path+"approve", api.DecideRequest{}, nil); code != http.StatusForbidden {
		t.Errorf("an operator approves: %d, want 403", code)
	}

	var dec api.DecideResponse
	h.mustCall(approver, "POST", path+"approve", api.DecideRequest{}, &dec, http.StatusOK)
	if dec.Submission.State != store.StateApproved || dec.Submission.DecidedBy != "hung" || dec.Push == nil || dec.Push.Sent != 1 || dec.Push.Revision != 1 {
		t.Fatalf("the approval: %+v %+v", dec.Submission, dec.Push)
	}
	pl, d := verifySchedule(t, h, "c1/a", a.next(), 0)
	if d.Programs[0].ID != "qn/tk/c1/news" {
		t.Fatalf("after the approval the device got %+v", d.Programs)
	}
	// The proof of play names the approver of what was played.
	rec := confirmation("c1/a", 1)
	rec.Program, rec.ScheduleID, rec.Revision = "qn/tk/c1/news", pl.ScheduleID, pl.Revision
	if _, err := h.db.AddConfirmations(context.Background(), "c1/a", []store.Confirmation{{Confirmation: rec}}); err != nil {
		t.Fatal(err)
	}
	var plays []api.ConfirmationJSON
	h.mustCall(editor, "GET", "/api/confirmations", nil, &plays, http.StatusOK)
	if len(plays) != 1 || plays[0].ApprovedBy != "hung" {
		t.Fatalf("the play's approver: %+v", plays)
	}
	if code := h.call(approver, "POST", path+"approve", api.DecideRequest{}, nil); code != http.StatusConflict {
		t.Errorf("approving twice: %d, want 409", code)
	}
	h.mustCall(editor, "GET", "/api/schedules?to=qn/tk/c1", nil, &revs, http.StatusOK)
	if len(revs) != 1 || revs[0].Author != "lan" || revs[0].ApprovedBy != "hung" || revs[0].ApprovedAt == nil {
		t.Fatalf("the revision's creator and approver: %+v", revs)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=schedule.approve", nil, &audit, http.StatusOK)
	var detail struct {
		SubmittedBy string `json:"submitted_by"`
		Revision    int64
	}
	if len(audit) == 1 {
		json.Unmarshal(audit[0].Detail, &detail)
	}
	if len(audit) != 1 || audit[0].Actor != "hung" || audit[0].Target != "area:qn/tk/c1" || detail.SubmittedBy != "lan" || detail.Revision != 1 {
		t.Fatalf("the audit log of the approval: %+v %+v", audit, detail)
	}
}

// A rejection needs a reason and returns the submission to its author, listed as rejected
// with the reason; nothing is stored or sent.
func TestRejectWithReason(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	editor := h.staff("lan", "qn/c1", store.RoleOperator)
	approver := h.staff("hung", "qn/c1", store.RoleApprover)
	h.setPolicy("qn/c1", store.ApprovalRequired, "")
	ref := "sha256:" + strings.Repeat("cd", 32)
	if _, _, err := h.db.AddContent(context.Background(), store.Content{Ref: ref, Size: 1000, Duration: 30 * time.Second, MIME: "audio/mpeg",
		Title: "Bản tin sáng", UploadedBy: "lan"}); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(approvalDoc("news"), "stream: http://r.example/n.mp3\n        duration: 15m", "content: "+ref, 1)
	code, res, msg := h.push(editor, "qn/c1", doc)
	if code != http.StatusAccepted || res.Submission == nil {
		t.Fatalf("no submission: %d %+v %s", code, res, msg)
	}
	// The approver listens to what it plays first.
	if it := res.Submission.Items; len(it) != 1 || it[0].Ref != ref || it[0].Title != "Bản tin sáng" {
		t.Errorf("the submission's items: %+v", it)
	}
	path := fmt.Sprintf("/api/submissions/%d/reject", res.Submission.ID)
	var e api.Error
	if code := h.call(approver, "POST", path, api.DecideRequest{Reason: "  "}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "reason") {
		t.Errorf("a rejection without a reason: %d %q", code, e.Error)
	}
	h.mustCall(approver, "POST", path, api.DecideRequest{Reason: "Sai giờ phát bản tin sáng"}, nil, http.StatusOK)
	var subs []api.SubmissionJSON
	h.mustCall(editor, "GET", "/api/submissions?state=rejected", nil, &subs, http.StatusOK)
	if len(subs) != 1 || subs[0].DecidedBy != "hung" || subs[0].Reason != "Sai giờ phát bản tin sáng" || subs[0].Revision != 0 {
		t.Fatalf("the editor's rejected list: %+v", subs)
	}
	h.mustCall(editor, "GET", "/api/submissions", nil, &subs, http.StatusOK)
	if len(subs) != 0 {
		t.Errorf("still waiting after the rejection: %+v", subs)
	}
	if code := h.call(approver, "POST", fmt.Sprintf("/api/submissions/%d/approve", res.Submission.ID), api.DecideRequest{}, nil); code != http.StatusConflict {
		t.Errorf("approving a rejected submission: %d, want 409", code)
	}
}

// An approver's own push waits for another approver unless the area's policy allows
// self-approval; then it goes out at once, recorded as approved by them. The policy is
// inherited from the area above and its changes are audited.
func TestSelfApprovalFollowsPolicy(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	approver := h.staff("hung", "qn/c1", store.RoleApprover)
	h.setPolicy("qn", store.ApprovalRequired, "")
	code, res, msg := h.push(approver, "qn/c1", approvalDoc("news"))
	if code != http.StatusAccepted || res.Submission == nil || strings.Join(res.Approvers, ",") != "admin" {
		t.Fatalf("an approver's push where self-approval is not allowed: %d %+v %s", code, res, msg)
	}
	var e api.Error
	path := fmt.Sprintf("/api/submissions/%d/approve", res.Submission.ID)
	if code := h.call(approver, "POST", path, api.DecideRequest{}, &e); code != http.StatusForbidden || !strings.Contains(e.Error, "self-approval") {
		t.Fatalf("approving one's own submission: %d %q", code, e.Error)
	}
	h.setPolicy("qn/c1", "", store.SelfAllowed)
	var pol api.PolicyJSON
	h.mustCall(approver, "GET", "/api/areas/policy?area=qn/c1", nil, &pol, http.StatusOK)
	if !pol.Required || !pol.SelfApproval {
		t.Fatalf("qn/c1's policy (approval from qn, self-approval its own): %+v", pol)
	}
	h.mustCall(approver, "POST", path, api.DecideRequest{}, nil, http.StatusOK)
	code, res, msg = h.push(approver, "qn/c1", approvalDoc("evening"))
	if code != http.StatusOK || res.Submission != nil || res.Revision != 2 {
		t.Fatalf("an approver's push where self-approval is allowed: %d %+v %s", code, res, msg)
	}
	var revs []api.ScheduleJSON
	h.mustCall(approver, "GET", "/api/schedules?to=qn/c1", nil, &revs, http.StatusOK)
	if len(revs) != 2 || revs[0].ApprovedBy != "hung" || revs[1].ApprovedBy != "hung" {
		t.Fatalf("revisions: %+v", revs)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=area.policy", nil, &audit, http.StatusOK)
	if len(audit) != 2 || audit[0].Actor != "admin" {
		t.Fatalf("the policy changes in the audit log: %+v", audit)
	}
	if code := h.call(approver, "PUT", "/api/areas/policy", api.PolicyRequest{Area: "qn/c1", SelfApproval: store.SelfNotAllowed}, nil); code != http.StatusForbidden {
		t.Errorf("an approver sets the policy: %d, want 403 (administrators only)", code)
	}
	if code := h.call(h.admin, "PUT", "/api/areas/policy", api.PolicyRequest{Area: "qn/c1", Approval: "maybe"}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "approval \"maybe\"") {
		t.Errorf("a policy of maybe: %d %q", code, e.Error)
	}
}

// An emergency warning goes out at once where approval is required, waits in the review
// queue, and its review is recorded and audited.
func TestEmergencyReviewedAfterwards(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.addArea("qn/tk/c1")
	secret := h.enrol("tk/a", "qn/tk")
	warner := h.staff("binh", "qn/tk", store.RoleEmergency)
	approver := h.staff("hung", "qn/tk", store.RoleApprover)
	h.setPolicy("qn", store.ApprovalRequired, "")
	a, _ := h.connect("tk/a", secret, protocol.Hello{})
	var res api.EmergencyResponse
	h.mustCall(warner, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 9", For: "1h"}, &res, http.StatusCreated)
	verifySchedule(t, h, "tk/a", a.next(), 0)
	var queue []api.EmergencyJSON
	commune := h.staff("mai", "qn/tk/c1", store.RoleApprover)
	h.mustCall(commune, "GET", "/api/emergencies?review=1", nil, &queue, http.StatusOK)
	if len(queue) != 0 {
		t.Errorf("a commune's approver's review queue holds the district's warning: %+v", queue)
	}
	h.mustCall(approver, "GET", "/api/emergencies?review=1", nil, &queue, http.StatusOK)
	if len(queue) != 1 || queue[0].ID != res.Emergencies[0].ID || queue[0].CreatedBy != "binh" || queue[0].ReviewedAt != nil {
		t.Fatalf("the review queue: %+v", queue)
	}
	var e api.EmergencyJSON
	h.mustCall(approver, "POST", fmt.Sprintf("/api/emergencies/%d/review", queue[0].ID), api.ReviewRequest{Note: "Đúng quy trình"}, &e, http.StatusOK)
	if e.ReviewedBy != "hung" || e.ReviewNote != "Đúng quy trình" || e.ReviewedAt == nil {
		t.Fatalf("the review: %+v", e)
	}
	h.mustCall(approver, "GET", "/api/emergencies?review=1", nil, &queue, http.StatusOK)
	if len(queue) != 0 {
		t.Errorf("the review queue after the review: %+v", queue)
	}
	if code := h.call(approver, "POST", fmt.Sprintf("/api/emergencies/%d/review", e.ID), api.ReviewRequest{}, nil); code != http.StatusConflict {
		t.Errorf("reviewing twice: %d, want 409", code)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=emergency.review", nil, &audit, http.StatusOK)
	if len(audit) != 1 || audit[0].Actor != "hung" {
		t.Fatalf("the review in the audit log: %+v", audit)
	}
}
