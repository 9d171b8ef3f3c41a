package api

import "time"

// ScreenshotJSON answers a device's screenshot upload (POST /agent/screenshot).
type ScreenshotJSON struct {
	Device  string    `json:"device"`
	Command string    `json:"command"`
	Bytes   int64     `json:"bytes"`
	Width   int       `json:"width"`
	Height  int       `json:"height"`
	TakenAt time.Time `json:"taken_at"` // when the hub stored it
}

// Headers of a screenshot served to staff (GET /api/screenshots/{device}, GET
// /api/commands/{id}/screenshot): whose image it is and which command took it. Last-Modified
// is when the hub stored it.
const (
	ScreenshotDeviceHeader  = "Loa-Device"
	ScreenshotCommandHeader = "Loa-Command"
)
