package api

import "time"

// ReleaseJSON is a signed agent package the hub holds (GET /api/releases, POST /api/releases).
type ReleaseJSON struct {
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	Arch       string    `json:"arch"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	KeyID      string    `json:"key_id"`
	UploadedBy string    `json:"uploaded_by"`
	UploadedAt time.Time `json:"uploaded_at"`
	URL        string    `json:"url"` // the path devices and staff download it from
	Created    bool      `json:"created,omitempty"`
}

// RolloutRequest is the body of POST /api/rollouts; absent fields take their defaults
// (canary 10%, healthy for 30 min, healthy within 10 min, at most 20% failures, any time).
type RolloutRequest struct {
	Area              string `json:"area"`
	Version           string `json:"version"`
	CanaryPercent     *int   `json:"canary_percent,omitempty"`
	Window            string `json:"window,omitempty"` // HH:MM-HH:MM in the devices' local time
	HealthyForS       *int   `json:"healthy_for_s,omitempty"`
	HealthyWithinS    *int   `json:"healthy_within_s,omitempty"`
	MaxFailurePercent *int   `json:"max_failure_percent,omitempty"`
}

// RolloutStopRequest is the body of POST /api/rollouts/{id}/stop.
type RolloutStopRequest struct {
	Reason string `json:"reason"`
}

// RolloutJSON is a rollout with, per device stage (canary, rest, none), how many devices are
// in each state, and (GET /api/rollouts/{id}) each device.
type RolloutJSON struct {
	ID                string                    `json:"id"`
	Area              string                    `json:"area"`
	Version           string                    `json:"version"`
	CanaryPercent     int                       `json:"canary_percent"`
	Window            string                    `json:"window,omitempty"`
	HealthyForS       int                       `json:"healthy_for_s"`
	HealthyWithinS    int                       `json:"healthy_within_s"`
	MaxFailurePercent int                       `json:"max_failure_percent"`
	Stage             string                    `json:"stage"` // canary, rest, done, stopped
	Reason            string                    `json:"reason,omitempty"`
	CreatedBy         string                    `json:"created_by"`
	CreatedAt         time.Time                 `json:"created_at"`
	StageAt           time.Time                 `json:"stage_at"`
	Counts            map[string]map[string]int `json:"counts"`
	Devices           []RolloutDeviceJSON       `json:"devices,omitempty"`
}

// RolloutDeviceJSON is one device of a rollout.
type RolloutDeviceJSON struct {
	Device string    `json:"device"`
	Stage  string    `json:"stage"` // canary, rest, none (cannot upgrade or already current)
	Arch   string    `json:"arch,omitempty"`
	From   string    `json:"from,omitempty"`
	State  string    `json:"state"`
	Error  string    `json:"error,omitempty"`
	Since  time.Time `json:"since"`
	Online bool      `json:"online"`
}

// UpgradeJSON is a device's part in the newest rollout that named it.
type UpgradeJSON struct {
	Rollout string    `json:"rollout"`
	Version string    `json:"version"`
	State   string    `json:"state"`
	Error   string    `json:"error,omitempty"`
	Since   time.Time `json:"since"`
}
