package api

import (
	"encoding/json"
	"time"
)

// SubmissionJSON is a schedule waiting for approval, or approved or rejected.
type SubmissionJSON struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind,omitempty"` // a bulletin, live or command waits too; "" is a schedule
	Target      string     `json:"target"`         // area:ID or device:ID
	Area        string     `json:"area"`
	ScheduleID  string     `json:"schedule_id"`
	Programs    int        `json:"programs"`
	SubmittedBy string     `json:"submitted_by"`
	SubmittedAt time.Time  `json:"submitted_at"`
	State       string     `json:"state"` // submitted, approved, rejected
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Revision    int64      `json:"revision,omitempty"` // the schedule revision an approval made
	Changes     []string   `json:"changes,omitempty"`  // what it changes from the target's newest revision
	Items       []ItemRef  `json:"items,omitempty"`    // the library content it plays, to listen to first
	Document    string     `json:"document,omitempty"` // GET /api/submissions/{id} only
}

// DecideRequest approves or rejects a submission (POST /api/submissions/{id}/approve|reject).
type DecideRequest struct {
	Reason string `json:"reason,omitempty"` // required to reject
}

// DecideResponse says what a decision did: for an approval, the push it made.
type DecideResponse struct {
	Submission SubmissionJSON `json:"submission"`
	Push       *PushResponse  `json:"push,omitempty"`
	// Broadcast: an approved bulletin, relay or play-now command was sent; its answer as
	// POST /api/emergencies or /api/commands gives it.
	Broadcast json.RawMessage `json:"broadcast,omitempty"`
}

// PolicyRequest sets an area's approval policy (PUT /api/areas/policy); an empty field is
// left as it is, "inherit" follows the area above.
type PolicyRequest struct {
	Area         string `json:"area"`
	Approval     string `json:"approval,omitempty"`      // required, not_required, inherit
	SelfApproval string `json:"self_approval,omitempty"` // allowed, not_allowed, inherit
}

// PolicyJSON is the approval policy that applies in an area.
type PolicyJSON struct {
	Area         string `json:"area"`
	Required     bool   `json:"approval_required"`
	SelfApproval bool   `json:"self_approval_allowed"`
}

// ReviewRequest records the review of an emergency warning (POST /api/emergencies/{id}/review).
type ReviewRequest struct {
	Note string `json:"note,omitempty"`
}

// ItemRef is a library item a submission plays.
type ItemRef struct {
	Ref   string `json:"ref"`
	Title string `json:"title,omitempty"`
	State string `json:"state,omitempty"` // the item's approval: submitted, approved, rejected
}
