package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/scheduler"
)

// The approval queue (issue 22): the schedules waiting for approval in the signed-in user's
// areas with approve and reject, and the emergency warnings waiting for their review. Every
// action is the API's (POST /api/submissions/{id}/approve|reject, /api/emergencies/{id}/review)
// as the user, so the scope, the role and the area's self-approval policy are checked there.
func (c *Console) approvalRoutes(m *http.ServeMux) error {
	t, err := template.New("approvals").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/approvals.html")
	if err != nil {
		return err
	}
	c.pages["approvals"] = t
	m.HandleFunc("GET /console/approvals", c.signedIn(c.approvals))
	m.HandleFunc("POST /console/approvals/{id}/{action}", c.signedIn(c.approvalAction))
	m.HandleFunc("POST /console/approvals/content/{action}", c.signedIn(c.contentAction))
	m.HandleFunc("GET /console/approvals/{id}/calendar", c.signedIn(c.submissionCalendar))
	return nil
}

type approvalsData struct {
	Waiting  []api.SubmissionJSON
	Rejected []api.SubmissionJSON // the latest returned to their authors, with the reason
	Review   []api.EmergencyJSON
	Content  []api.ContentJSON // library items waiting for approval in the user's areas
	Notice   string
	Key      string // what waits, as the live updates compare it (queueSource)
}

func (c *Console) approvals(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.queueOf(r.Context(), s)
	if err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	d.Notice = r.URL.Query().Get("notice")
	if err := c.call(r.Context(), s, "GET", "/api/submissions?state=rejected", nil, &d.Rejected); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if len(d.Rejected) > 10 {
		d.Rejected = d.Rejected[:10]
	}
	d.Key = d.key()
	c.render(w, r, http.StatusOK, "approvals", s, d)
}

// queueOf reads what waits for the user's decision.
func (c *Console) queueOf(ctx context.Context, s *session) (approvalsData, error) {
	var d approvalsData
	for _, q := range []struct {
		path string
		into any
	}{
		{"/api/submissions", &d.Waiting},
		{"/api/emergencies?review=1", &d.Review},
		{"/api/content?state=submitted&area=" + url.QueryEscape(s.User.Scope), &d.Content},
	} {
		if err := c.call(ctx, s, "GET", q.path, nil, q.into); err != nil {
			return d, err
		}
	}
	return d, nil
}

// approvalAction approves or rejects a submission, or records an emergency's review.
func (c *Console) approvalAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	lang := langOf(r)
	var path, notice string
	var body any
	switch r.PathValue("action") {
	case "approve":
		path, body, notice = fmt.Sprintf("/api/submissions/%d/approve", id), api.DecideRequest{}, tr(lang, "appr.approved", id)
	case "reject":
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if reason == "" {
			c.fail(w, r, s, http.StatusBadRequest, "appr.noreason")
			return
		}
		path, body, notice = fmt.Sprintf("/api/submissions/%d/reject", id), api.DecideRequest{Reason: reason}, tr(lang, "appr.rejected", id)
	case "review":
		path, body, notice = fmt.Sprintf("/api/emergencies/%d/review", id), api.ReviewRequest{Note: strings.TrimSpace(r.PostFormValue("note"))}, tr(lang, "appr.reviewed", id)
	default:
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	if err := c.call(r.Context(), s, "POST", path, body, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/approvals?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// contentAction approves or rejects a library item (POST /api/content/{ref}/approve|reject).
func (c *Console) contentAction(w http.ResponseWriter, r *http.Request, s *session) {
	ref, title := r.PostFormValue("ref"), r.PostFormValue("title")
	req := api.DecideRequest{Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	action, notice := r.PathValue("action"), tr(langOf(r), "appr.c.approved", title)
	switch {
	case action == "reject" && req.Reason == "":
		c.fail(w, r, s, http.StatusBadRequest, "appr.noreason")
		return
	case action == "reject":
		notice = tr(langOf(r), "appr.c.rejected", title)
	case action != "approve":
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	if err := c.call(r.Context(), s, "POST", "/api/content/"+url.PathEscape(ref)+"/"+action, req, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/approvals?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// submissionCalendar shows the week a waiting schedule would play beside the one playing now:
// the planning page's preview (planPreviewOf), without its push.
func (c *Console) submissionCalendar(w http.ResponseWriter, r *http.Request, s *session) {
	var sub api.SubmissionJSON
	if err := c.call(r.Context(), s, "GET", "/api/submissions/"+url.PathEscape(r.PathValue("id")), nil, &sub); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	doc, err := scheduler.Parse(fmt.Sprintf("submission %d", sub.ID), []byte(sub.Document))
	if sub.Kind != "" || err != nil { // a bulletin, relay or command has no week to show
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	c.planPreviewOf(w, r, s, sub.Target, []byte(sub.Document), doc, sub.ID)
}

// queueSource returns what the event stream sends to an open approval queue (?queue=1): each
// check, what waits in the user's areas (schedules, broadcasts, library items, warnings to
// review) as one key, when it changed, so the page offers to reload. Nil for other pages.
func (c *Console) queueSource(r *http.Request, s *session) func(ctx context.Context, buf *bytes.Buffer) error {
	if r.URL.Query().Get("queue") != "1" {
		return nil
	}
	last := ""
	return func(ctx context.Context, buf *bytes.Buffer) error {
		d, err := c.queueOf(ctx, s)
		if err != nil {
			return err
		}
		if key := d.key(); key != last {
			last = key
			b, _ := json.Marshal(map[string]any{"key": key, "waiting": len(d.Waiting) + len(d.Content) + len(d.Review)})
			fmt.Fprintf(buf, "event: queue\ndata: %s\n\n", b)
		}
		return nil
	}
}

// key names what waits on the page: it changes when anything arrives or is decided.
func (d approvalsData) key() string {
	var k []string
	for _, x := range d.Waiting {
		k = append(k, "s"+strconv.FormatInt(x.ID, 10))
	}
	for _, x := range d.Content {
		k = append(k, "c"+x.Ref)
	}
	for _, x := range d.Review {
		k = append(k, "e"+strconv.FormatInt(x.ID, 10))
	}
	return strings.Join(k, " ")
}

// toQueue sends the browser to the queue saying that what it sent waits for approval.
func (c *Console) toQueue(w http.ResponseWriter, r *http.Request, sub *api.SubmissionJSON, approvers []string) {
	notice := submittedNotice(langOf(r), api.PushResponse{Target: sub.Target, Submission: sub, Approvers: approvers})
	http.Redirect(w, r, "/console/approvals?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// submittedNotice says that a push waits for approval, and who can give it.
func submittedNotice(lang string, res api.PushResponse) string {
	who := strings.Join(res.Approvers, ", ")
	if who == "" {
		who = "—"
	}
	return tr(lang, "appr.submitted", res.Target, res.Submission.ID, who)
}
