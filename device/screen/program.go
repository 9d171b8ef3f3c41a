package screen

// What a caller hands Show (a program of items) and gets back (a proof per item, a result).

import "time"

// Item is one entry of a program: a file (video or still image, told apart by its content),
// or a text bulletin. A ticker line can run along the bottom of a bulletin or a video.
type Item struct {
	// Path of a local video or image file.
	Path string `json:"path,omitempty"`
	// Text is a bulletin shown full screen (when Path is empty). Line breaks are kept.
	Text string `json:"text,omitempty"`
	// Ticker scrolls right to left along the bottom, over a bulletin or a video.
	Ticker string `json:"ticker,omitempty"`
	// Duration: how long a bulletin or image shows (required for a bulletin; images default
	// to Config.ImageDuration); for a video, 0 plays it whole and more than 0 cuts it.
	Duration time.Duration `json:"duration,omitempty"`
	// Background overrides Config.Background for this bulletin (#RRGGBB), e.g. red for an
	// emergency.
	Background string `json:"background,omitempty"`
}

func (it Item) String() string {
	if it.Path != "" {
		return it.Path
	}
	if it.Text == "" {
		return "ticker:" + it.Ticker
	}
	return "text:" + it.Text
}

// Program is what Show shows.
type Program struct {
	Items []Item
	// Until is a hard end (the scheduler's cut); zero means none.
	Until time.Time
	// StartItem and StartAt resume a program: the first item shown and, for a video, the
	// position inside it.
	StartItem int
	StartAt   time.Duration
	// OnItemStart is called when an item's first frame is up; OnItemEnd with its proof when
	// it has left the screen (or failed, or was never reached). They run on the event
	// goroutine and must return quickly.
	OnItemStart func(index int, at time.Time)
	OnItemEnd   func(index int, proof Proof)
}

// How an item or a program ended (the same words as the audio player's).
const (
	EndCompleted = "completed" // shown to its end (a still or bulletin: for its duration)
	EndStopped   = "stopped"   // Stop was called, or another Show took the screen (preemption)
	EndUntil     = "until"     // the program's hard end time came
	EndCancelled = "cancelled" // the context given to Show ended
	EndFailed    = "failed"    // could not be shown (see Error)
	EndSkipped   = "skipped"   // not reached: the program ended before it
)

// Proof is what the screen showed for one item, from mpv's events.
type Proof struct {
	Item   int    `json:"item"`
	Source string `json:"source"`
	Kind   string `json:"kind"` // video | image | text
	// Start is when mpv had the first frame up (its playback-restart event); zero if never.
	Start time.Time `json:"start"`
	// End is when the item left the screen (mpv's end-file event).
	End time.Time `json:"end"`
	// ShownS is End minus Start: how long the item was on screen.
	ShownS float64 `json:"shown_s"`
	// PositionS is the media time reached (mpv's playback-time): for a video, how much of it
	// was played; 0 for a still image.
	PositionS float64 `json:"position_s"`
	// FramesDropped by the video output and the decoder while the item played (mpv's
	// frame-drop-count and decoder-frame-drop-count).
	FramesDropped int64  `json:"frames_dropped"`
	Ended         string `json:"ended"`
	Error         string `json:"error,omitempty"`
}

// Result is a finished program.
type Result struct {
	Items []Proof `json:"items"`
	Ended string  `json:"ended"`
	// Item and At are where the program stopped, to resume it later (on_interrupt: resume).
	Item int           `json:"item"`
	At   time.Duration `json:"at"`
}

// State is what status reports for the screen.
type State struct {
	Running     bool      // mpv is up and answering
	PID         int       // mpv's process id
	Restarts    int       // times mpv was started again after it died
	Showing     string    // the item on screen, "" when idle
	LastError   string    // the most recent failure, "" if none since start
	LastErrorAt time.Time // when it happened (injected clock)
}
