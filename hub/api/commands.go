package api

import "time"

// CommandRequest is the body of POST /api/commands: a signed command for every device of an
// area (and below) or for one device.
type CommandRequest struct {
	To     string   `json:"to"`     // area id or device id ("area:"/"device:" disambiguate)
	Action string   `json:"action"` // play_now, stop, volume, reload or screenshot
	Volume *float64 `json:"volume,omitempty"`
	// play_now: one of Content (sha256:… in the library) or Stream (http(s) URL).
	Content string `json:"content,omitempty"`
	Stream  string `json:"stream,omitempty"`
	Class   string `json:"class,omitempty"` // play_now: normal, priority (the agent's default) or emergency
	Title   string `json:"title,omitempty"`
	Output  string `json:"output,omitempty"` // speakers, board…; every output when empty
	// ExpiresIn is a Go duration: how long devices that are offline may still get it, and
	// how long a stream plays. Default 10m (1h for a stream); at most 24h.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// CommandJSON is a command with its outcome on each device the caller may see.
type CommandJSON struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Action    string    `json:"action"`
	To        string    `json:"to"` // area:<id> or device:<id>
	Output    string    `json:"output,omitempty"`
	Volume    *float64  `json:"volume,omitempty"`
	Content   string    `json:"content,omitempty"`
	Stream    string    `json:"stream,omitempty"`
	Class     string    `json:"class,omitempty"`
	Title     string    `json:"title,omitempty"`
	IssuedBy  string    `json:"issued_by"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Expired   bool      `json:"expired"`
	// Counts is the number of devices in each state (of Outcomes).
	Counts   map[string]int       `json:"counts"`
	Outcomes []CommandOutcomeJSON `json:"outcomes"`
	// Submission: a play_now to an area that requires approval waits as this submission for
	// one of Approvers (answered 202); nothing was sent.
	Submission *SubmissionJSON `json:"submission,omitempty"`
	Approvers  []string        `json:"approvers,omitempty"`
}

// CommandOutcomeJSON is how far a command got on one device. State is one of pending (not
// sent: the device is offline), sent (no answer yet), executed, failed, refused, received
// (the device had it already; its report was lost with a connection), expired (never reached
// the device before it expired) or unanswered (sent, no answer before it expired).
type CommandOutcomeJSON struct {
	Device     string     `json:"device"`
	Area       string     `json:"area"`
	State      string     `json:"state"`
	Code       string     `json:"code,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Sends      int        `json:"sends"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
	ReportedAt *time.Time `json:"reported_at,omitempty"`
}
