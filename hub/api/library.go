package api

import "time"

// ContentUseJSON is one place a library item is used (GET /api/content/usage answers a map
// from content ref to these): a programme of the newest schedule of an area or device.
type ContentUseJSON struct {
	Target     string `json:"target"` // area:ID or device:ID
	ScheduleID string `json:"schedule_id"`
	Revision   int64  `json:"revision"`
	Program    string `json:"program"`
	Title      string `json:"title,omitempty"`
}

// CAPAlertJSON is one CAP alert the hub received (GET /api/cap/alerts) and what it decided:
// create, replace, cancel, ignore or refused, and why.
type CAPAlertJSON struct {
	At       time.Time `json:"at"`
	By       string    `json:"by"` // the sender's user, or cap-feed
	Message  string    `json:"message,omitempty"`
	Decision string    `json:"decision"`
	Series   string    `json:"series,omitempty"`
	Areas    []string  `json:"areas,omitempty"`
	Class    string    `json:"class,omitempty"`
	Status   string    `json:"status,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}
