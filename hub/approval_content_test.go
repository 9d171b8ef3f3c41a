package hub

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// itemDoc is a schedule playing one library item.
func itemDoc(ref string) string {
	return fmt.Sprintf("version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: news\n    cron: \"0 30 6 * * *\"\n    items:\n      - content: %s\n", ref)
}

// A commune editor's upload where approval is required waits for an approver of the area: no
// push goes on air with it (even where approval is not required), a submission playing it
// waits and its approval is refused until the item is approved; a rejection needs a reason,
// an approver of another district cannot decide; an upload where approval is not required
// is approved at once. Every decision is kept on the item and in the audit log.
func TestContentWaitsForApproval(t *testing.T) {
	needTools(t, "sox", "ffmpeg", "ffprobe")
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.addArea("qn/tk/c1")
	h.addArea("qn/dl")
	editor := h.staff("lan", "qn/tk/c1", store.RoleOperator)
	approver := h.staff("hung", "qn/tk", store.RoleApprover)
	other := h.staff("mai", "qn/dl", store.RoleApprover)
	h.setPolicy("qn/tk", store.ApprovalRequired, "")
	tone := func(hz int) string {
		wav := filepath.Join(t.TempDir(), fmt.Sprintf("t%d.wav", hz))
		if out, err := exec.Command("sox", "-D", "-n", "-r", "48000", "-c", "1", "-b", "16", wav, "synth", "1", "sine", fmt.Sprint(hz), "vol", "0.1").CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
		return wav
	}

	code, news, msg := uploadAs(t, h, editor, tone(440), map[string]string{"title": "Bản tin xã"})
	if code != http.StatusCreated || news.State != store.StateSubmitted || news.Area != "qn/tk/c1" || news.DecidedAt != nil ||
		strings.Join(news.Approvers, ",") != "admin,hung" {
		t.Fatalf("the editor's upload where approval is required: %d %q %+v", code, msg, news)
	}
	code, song, msg := uploadAs(t, h, other, tone(660), map[string]string{"title": "Dân ca"})
	if code != http.StatusCreated || song.State != store.StateApproved || song.DecidedBy != "" {
		t.Fatalf("an upload where approval is not required: %d %q %+v", code, msg, song)
	}

	// Not on air where approval is not required either: the item is not approved.
	code, _, msg = h.push(h.admin, "qn/dl", itemDoc(news.Ref))
	if code != http.StatusConflict || !strings.Contains(msg, `"Bản tin xã" (`+news.Ref+`) waits for approval`) {
		t.Fatalf("a push playing an item waiting for approval: %d %q", code, msg)
	}
	// The editor's schedule playing it waits; its approval waits for the item's.
	code, res, msg := h.push(editor, "qn/tk/c1", itemDoc(news.Ref))
	if code != http.StatusAccepted || res.Submission == nil || len(res.Submission.Items) != 1 || res.Submission.Items[0].State != store.StateSubmitted {
		t.Fatalf("the editor's schedule: %d %q %+v", code, msg, res.Submission)
	}
	approve := fmt.Sprintf("/api/submissions/%d/approve", res.Submission.ID)
	var e api.Error
	if code := h.call(approver, "POST", approve, api.DecideRequest{}, &e); code != http.StatusConflict || !strings.Contains(e.Error, news.Ref) {
		t.Fatalf("approving a schedule whose item waits: %d %q", code, e.Error)
	}

	path := "/api/content/" + news.Ref + "/"
	if code := h.call(other, "POST", path+"approve", api.DecideRequest{}, nil); code != http.StatusNotFound {
		t.Errorf("an approver of another district approves: %d, want 404", code)
	}
	if code := h.call(editor, "POST", path+"approve", api.DecideRequest{}, nil); code != http.StatusForbidden {
		t.Errorf("the editor approves their own upload: %d, want 403", code)
	}
	if code := h.call(approver, "POST", path+"reject", api.DecideRequest{}, nil); code != http.StatusBadRequest {
		t.Errorf("a rejection without a reason: %d, want 400", code)
	}
	var c api.ContentJSON
	h.mustCall(approver, "POST", path+"reject", api.DecideRequest{Reason: "Sai tên thôn"}, &c, http.StatusOK)
	if c.State != store.StateRejected || c.Reason != "Sai tên thôn" || c.DecidedBy != "hung" {
		t.Fatalf("the rejection: %+v", c)
	}
	if code := h.call(approver, "POST", approve, api.DecideRequest{}, &e); code != http.StatusConflict || !strings.Contains(e.Error, "rejected by hung") {
		t.Fatalf("approving a schedule whose item was rejected: %d %q", code, e.Error)
	}
	c = api.ContentJSON{}
	h.mustCall(approver, "POST", path+"approve", api.DecideRequest{}, &c, http.StatusOK)
	if c.State != store.StateApproved || c.DecidedBy != "hung" || c.DecidedAt == nil || c.Reason != "" {
		t.Fatalf("the approval: %+v", c)
	}
	if code := h.call(approver, "POST", path+"approve", api.DecideRequest{}, nil); code != http.StatusConflict {
		t.Errorf("approving twice: %d, want 409", code)
	}
	var dec api.DecideResponse
	h.mustCall(approver, "POST", approve, api.DecideRequest{}, &dec, http.StatusOK)
	if dec.Submission.State != store.StateApproved {
		t.Fatalf("the schedule's approval once its item is approved: %+v", dec.Submission)
	}
	if code, _, msg := h.push(h.admin, "qn/dl", itemDoc(news.Ref)); code != http.StatusOK {
		t.Fatalf("a push of the approved item: %d %q", code, msg)
	}

	var list []api.ContentJSON
	h.mustCall(editor, "GET", "/api/content", nil, &list, http.StatusOK)
	states := map[string]string{}
	for _, x := range list {
		states[x.Title] = x.State + " " + x.DecidedBy
	}
	if states["Bản tin xã"] != "approved hung" || states["Dân ca"] != "approved " {
		t.Fatalf("the library's states: %q", states)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=content.reject", nil, &audit, http.StatusOK)
	if len(audit) != 1 || audit[0].Actor != "hung" || audit[0].Target != "content:"+news.Ref {
		t.Fatalf("the rejection in the audit log: %+v", audit)
	}
	h.mustCall(h.admin, "GET", "/api/audit?action=content.approve", nil, &audit, http.StatusOK)
	if len(audit) != 1 || audit[0].Actor != "hung" {
		t.Fatalf("the approval in the audit log: %+v", audit)
	}
}
