package client

import (
	"context"
	"fmt"
	"net/url"

	"github.com/loa-project/loa/hub/api"
)

// ListSubmissions lists the schedules waiting for approval in the caller's scope; state
// "approved", "rejected" or "all" lists those instead.
func (c *Client) ListSubmissions(ctx context.Context, state string) ([]api.SubmissionJSON, error) {
	var out []api.SubmissionJSON
	return out, c.do(ctx, "GET", "/api/submissions"+query("state", state), nil, &out)
}

// ShowSubmission returns one submission with its document.
func (c *Client) ShowSubmission(ctx context.Context, id int64) (api.SubmissionJSON, error) {
	var out api.SubmissionJSON
	return out, c.do(ctx, "GET", fmt.Sprintf("/api/submissions/%d", id), nil, &out)
}

// Approve approves a submission: its schedule is stored and pushed.
func (c *Client) Approve(ctx context.Context, id int64) (api.DecideResponse, error) {
	var out api.DecideResponse
	return out, c.do(ctx, "POST", fmt.Sprintf("/api/submissions/%d/approve", id), api.DecideRequest{}, &out)
}

// Reject returns a submission to its author with a reason.
func (c *Client) Reject(ctx context.Context, id int64, reason string) (api.DecideResponse, error) {
	var out api.DecideResponse
	return out, c.do(ctx, "POST", fmt.Sprintf("/api/submissions/%d/reject", id), api.DecideRequest{Reason: reason}, &out)
}

// Policy returns the approval policy that applies in area.
func (c *Client) Policy(ctx context.Context, area string) (api.PolicyJSON, error) {
	var out api.PolicyJSON
	return out, c.do(ctx, "GET", "/api/areas/policy"+query("area", area), nil, &out)
}

// SetPolicy sets an area's approval policy.
func (c *Client) SetPolicy(ctx context.Context, req api.PolicyRequest) (api.PolicyJSON, error) {
	var out api.PolicyJSON
	return out, c.do(ctx, "PUT", "/api/areas/policy", req, &out)
}

// ReviewQueue lists the emergency warnings in the caller's scope waiting for their review.
func (c *Client) ReviewQueue(ctx context.Context) ([]api.EmergencyJSON, error) {
	var out []api.EmergencyJSON
	return out, c.do(ctx, "GET", "/api/emergencies?review=1", nil, &out)
}

// Review records the review of an emergency warning that went out without approval.
func (c *Client) Review(ctx context.Context, id int64, note string) (api.EmergencyJSON, error) {
	var out api.EmergencyJSON
	return out, c.do(ctx, "POST", fmt.Sprintf("/api/emergencies/%d/review", id), api.ReviewRequest{Note: note}, &out)
}

// SubmitSchedule stores a schedule for approval, even where the area does not require it.
func (c *Client) SubmitSchedule(ctx context.Context, to, name string, doc []byte) (api.PushResponse, error) {
	var out api.PushResponse
	return out, c.do(ctx, "POST", "/api/schedules", api.PushRequest{To: to, Name: name, Document: string(doc), Submit: true}, &out)
}

// DecideContent approves (approve) or rejects with a reason a content item waiting for
// approval, and returns the item after the decision.
func (c *Client) DecideContent(ctx context.Context, ref string, approve bool, reason string) (api.ContentJSON, error) {
	verb := "reject"
	if approve {
		verb = "approve"
	}
	var out api.ContentJSON
	return out, c.do(ctx, "POST", "/api/content/"+url.PathEscape(ref)+"/"+verb, api.DecideRequest{Reason: reason}, &out)
}
