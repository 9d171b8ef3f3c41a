package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// The district's approver opens the queue in Tam Thanh's required-approval district, approves
// one commune editor's schedule (stored as a revision with them as approver) and rejects the
// other with a reason (returned to the editor, listed with it).
func TestApprovalQueuePage(t *testing.T) {
	h := newTestHub(t)
	ctx := context.Background()
	editor, err := hub.AddUser(ctx, h.db, "bien-tap-tt", "Lê Thị Hoa", "qn/tk/tt", "")
	must(t, err)
	must(t, h.db.SetRole(ctx, "bien-tap-tt", store.RoleOperator))
	approverTok, err := hub.AddUser(ctx, h.db, "duyet-tk", "Phạm Văn Hùng", "qn/tk", "")
	must(t, err)
	must(t, h.db.SetRole(ctx, "duyet-tk", store.RoleApprover))
	h.password("duyet-tk", adminPass)
	h.api(h.admin, "PUT", "/api/areas/policy", api.PolicyRequest{Area: "qn/tk", Approval: store.ApprovalRequired}, nil, http.StatusOK)
	h.password("bien-tap-tt", viewerPass)
	doc := func(prog string) string {
		return fmt.Sprintf("version: 1\nid: tt\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: %s\n    title: Bản tin %s\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 15m\n", prog, prog)
	}
	ref := "sha256:" + strings.Repeat("cd", 32)
	// The editor's recording waits for approval too (as uploaded where approval is required).
	_, _, err = h.db.AddContent(ctx, store.Content{Ref: ref, Size: 1000, Duration: 30 * time.Second, MIME: "audio/mpeg", Title: "Bản tin sáng 5/12", UploadedBy: "bien-tap-tt",
		Area: "qn/tk/tt", State: store.StateSubmitted})
	must(t, err)
	ids := map[string]int64{}
	var res api.PushResponse
	morning := strings.Replace(doc("morning"), "stream: http://r.example/n.mp3\n        duration: 15m", "content: "+ref, 1)
	h.api(editor, "POST", "/api/schedules", api.PushRequest{To: "qn/tk/tt", Document: morning}, &res, http.StatusAccepted)
	ids["morning"] = res.Submission.ID
	// The editor's push from the planning page goes to the queue, saying so, and sends nothing.
	ed := h.client()
	ed.signIn("bien-tap-tt", viewerPass)
	code, _, hdr := ed.do("POST", "/console/plan/push", url.Values{"csrf": {ed.csrf}, "to": {"area:qn/tk/tt"}, "yaml": {doc("evening")}})
	loc, _ := url.Parse(hdr.Get("Location"))
	if code != http.StatusSeeOther || loc == nil || loc.Path != "/console/approvals" || !strings.Contains(loc.Query().Get("notice"), "duyet-tk") {
		t.Fatalf("the editor's push on the planning page: %d, to %q", code, hdr.Get("Location"))
	}
	var waiting []api.SubmissionJSON
	h.api(editor, "GET", "/api/submissions", nil, &waiting, http.StatusOK)
	if len(waiting) != 2 {
		t.Fatalf("waiting after two pushes: %+v", waiting)
	}
	ids["evening"] = waiting[0].ID
	// The editor's live relay waits in the same queue.
	var relay api.EmergencyResponse
	h.api(editor, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/tt", Kind: store.KindLive, Stream: "http://r.example/huyen.mp3", For: "30m"}, &relay, http.StatusAccepted)
	ids["relay"] = relay.Submission.ID

	bctx := browser(t)
	signInBrowser(t, bctx, h, "duyet-tk", adminPass)
	do(t, bctx, chromedp.Navigate(h.url+"/console/approvals"), chromedp.WaitVisible(chromedp.CSS(`tr[data-submission]`)))
	// Live updates: a new submission makes the open page say the queue changed; its rejection
	// (the queue as shown again) hides the note.
	h.api(editor, "POST", "/api/schedules", api.PushRequest{To: "qn/tk/tt", Document: doc("noon")}, &res, http.StatusAccepted)
	do(t, bctx, chromedp.WaitVisible(chromedp.CSS(`#queue-live`)))
	h.api(approverTok, "POST", fmt.Sprintf("/api/submissions/%d/reject", res.Submission.ID), api.DecideRequest{Reason: "Thử"}, nil, http.StatusOK)
	do(t, bctx, chromedp.WaitNotVisible(chromedp.CSS(`#queue-live`)))
	if n := run(t, bctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('tr[data-submission="%d"] audio[src$="%s"]').length`, ids["morning"], ref))); n != 1 {
		t.Errorf("the morning submission has %d players for its item", n)
	}
	if n := run(t, bctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('tr[data-submission="%d"] .state-submitted').length`, ids["morning"]))); n != 1 {
		t.Errorf("the morning submission does not say its item waits for approval (%d marks)", n)
	}
	if n := run(t, bctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('tr[data-content="%s"] audio').length`, ref))); n != 1 {
		t.Errorf("the recording waiting for approval has %d players in the queue", n)
	}
	if got := run(t, bctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('tr[data-submission="%d"]').innerText`, ids["relay"]))); !strings.Contains(got, "Phát trực tiếp") || !strings.Contains(got, "huyen.mp3") {
		t.Errorf("the waiting relay's row: %q", got)
	}
	shot(t, bctx, shots(t), "approvals")
	// The week the evening schedule would play, beside the one playing now (none), with no push.
	do(t, bctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-submission="%d"] a.would`, ids["evening"]))), chromedp.WaitVisible(chromedp.CSS(`#approval`)))
	run(t, bctx, chromedp.Poll[bool](`document.readyState === "complete"`)) // the whole calendar, parsed
	if n := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll(".new .seg").length`)); n != 7 {
		t.Errorf("the evening schedule's week shows %d plays, want 7 (one a day)", n)
	}
	if n := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll("#push, form.pushform").length`)); n != 0 {
		t.Errorf("the calendar of a waiting schedule offers a push")
	}
	shot(t, bctx, shots(t), "approvals-calendar")
	do(t, bctx, chromedp.Navigate(h.url+"/console/approvals"), chromedp.WaitVisible(chromedp.CSS(`tr[data-submission]`)))
	submit(t, bctx, fmt.Sprintf(`tr[data-submission="%d"] form[action$="/approve"] button`, ids["relay"]), `document.querySelector('.notice') !== null`)
	var onAir []api.EmergencyJSON
	h.api(editor, "GET", "/api/emergencies", nil, &onAir, http.StatusOK)
	if len(onAir) != 1 || onAir[0].Kind != store.KindLive || onAir[0].CreatedBy != "bien-tap-tt" {
		t.Errorf("on air after the relay's approval: %+v", onAir)
	}
	// The schedule cannot go on air before its recording is approved: the page says why.
	submit(t, bctx, fmt.Sprintf(`tr[data-submission="%d"] form[action$="/approve"] button`, ids["morning"]), `document.body.innerText.includes("`+ref+`")`)
	do(t, bctx, chromedp.Navigate(h.url+"/console/approvals"), chromedp.WaitVisible(chromedp.CSS(`tr[data-content]`)))
	submit(t, bctx, fmt.Sprintf(`tr[data-content="%s"] form[action$="/approve"] button`, ref), `document.querySelector('.notice') !== null`)
	if n := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-content]').length`)); n != 0 {
		t.Errorf("%d recordings still wait after the approval", n)
	}
	submit(t, bctx, fmt.Sprintf(`tr[data-submission="%d"] form[action$="/approve"] button`, ids["morning"]), `document.querySelector('.notice') !== null`)
	do(t, bctx, chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#reason-%d", ids["evening"])), "Trùng giờ với bản tin sáng"))
	submit(t, bctx, fmt.Sprintf(`tr[data-submission="%d"] form[action$="/reject"] button`, ids["evening"]), `document.querySelector('tr[data-rejected]') !== null`)
	if n := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-submission]').length`)); n != 0 {
		t.Errorf("%d submissions still waiting on the page after approving one and rejecting the other", n)
	}

	var revs []api.ScheduleJSON
	h.api(editor, "GET", "/api/schedules?to=qn/tk/tt", nil, &revs, http.StatusOK)
	if len(revs) != 1 || revs[0].ApprovedBy != "duyet-tk" || revs[0].Author != "bien-tap-tt" {
		t.Fatalf("after the approval, Tam Thanh's revisions: %+v", revs)
	}
	// The library shows who approved the recording.
	do(t, bctx, chromedp.Navigate(h.url+"/console/content"), chromedp.WaitVisible(chromedp.CSS(`tr[data-ref]`)))
	if got := run(t, bctx, chromedp.Evaluate[string](`document.querySelector('tr[data-ref="`+ref+`"] td.approval').innerText`)); !strings.Contains(got, "Đã duyệt") || !strings.Contains(got, "duyet-tk") {
		t.Errorf("the library's approval of the recording: %q", got)
	}
	shot(t, bctx, shots(t), "content-approved")
	var rejected []api.SubmissionJSON
	h.api(editor, "GET", "/api/submissions?state=rejected", nil, &rejected, http.StatusOK)
	// Newest submission first: the one rejected while the page was open, then the evening one.
	if len(rejected) != 2 || rejected[1].ID != ids["evening"] || rejected[1].Reason != "Trùng giờ với bản tin sáng" || rejected[1].DecidedBy != "duyet-tk" {
		t.Fatalf("the editor's rejected submissions: %+v", rejected)
	}
}
