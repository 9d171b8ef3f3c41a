package protocol

import (
	"math"
	"reflect"
	"time"
)

// Result is the outcome of a play.
type Result string

// Results of a play. The journal writes Playing while a play goes on; an agent sends only
// closed records, so the wire carries the others.
const (
	ResultPlaying     Result = "playing"     // open: the play is going on (or the agent died during it)
	ResultCompleted   Result = "completed"   // played to its end
	ResultPreempted   Result = "preempted"   // cut by a higher-class or higher-priority program
	ResultInterrupted Result = "interrupted" // cut by a crash, power loss or shutdown
	ResultFailed      Result = "failed"      // could not play (missing content, output error…)
	ResultMissed      Result = "missed"      // start passed while off or unsynced, beyond the grace window
	ResultSuppressed  Result = "suppressed"  // not played on purpose (quiet hours, policy)
)

// Closed reports whether r is the result of a play that ended (any result but Playing).
func (r Result) Closed() bool {
	switch r {
	case ResultCompleted, ResultPreempted, ResultInterrupted, ResultFailed, ResultMissed, ResultSuppressed:
		return true
	}
	return false
}

// ClockState is what the agent knew about its wall clock when it recorded a play.
type ClockState string

// Clock states.
const (
	ClockSynced   ClockState = "synced"   // NTP (or the hub's time) agrees
	ClockUnsynced ClockState = "unsynced" // never synchronised since boot: times may be far off
	ClockStepped  ClockState = "stepped"  // the clock was stepped during the play
)

// MinDBFS is the floor of recorded levels: digital silence (-Inf dBFS) and NaN are sent as
// this, because JSON has no infinity.
const MinDBFS = -120.0

// Confirmation is a play's proof: what was actually played, where and when. It is the one
// definition from the agent's journal (which stores it, plus its local fields) over the wire
// to the hub's store (which embeds it) and the staff API and CSV (which serve it): a new field
// here, with its JSON name, reaches all of them. Durations are seconds (float64, names
// ending in _s, S in Go), the unit the wire has always used. See docs/protocol.md.
type Confirmation struct {
	Device     string `json:"device"`
	Seq        uint64 `json:"seq"`
	Output     string `json:"output,omitempty"` // speakers | screen | board
	ScheduleID string `json:"schedule_id,omitempty"`
	Revision   uint64 `json:"revision,omitempty"` // the effective schedule revision it was played from
	Program    string `json:"program,omitempty"`
	CommandID  string `json:"command_id,omitempty"` // set when a play_now command caused the play
	ItemIndex  int    `json:"item_index"`
	Item       string `json:"item,omitempty"` // sha256:…, a stream URL or file:…
	// Scheduled is when the timeline planned the item; Start when its first sample (or frame)
	// reached the output, zero when nothing did (missed, suppressed, failed); End when it left.
	Scheduled time.Time `json:"scheduled,omitzero"`
	Start     time.Time `json:"start,omitzero"`
	End       time.Time `json:"end,omitzero"`
	Proof
	Volume    float64    `json:"volume,omitempty"`    // gain given: programme volume × device volume
	Amplifier string     `json:"amplifier,omitempty"` // relay state at the start: on, or what is wrong
	Result    Result     `json:"result"`
	Error     string     `json:"error,omitempty"`
	Clock     ClockState `json:"clock,omitempty"`
}

// Proof is what an output measured of a play: the figures a new kind of measurement joins.
type Proof struct {
	// FromS is how far into the item the play began: non-zero when it joined the item
	// mid-way (resumed after a higher programme, or after a crash where the timeline was then).
	FromS   float64 `json:"from_s,omitempty"`
	PlayedS float64 `json:"played_s"` // measured from the samples (frames) the output consumed
	// Levels after gain in dBFS, at least MinDBFS; absent when nothing was measured. Every
	// *float64 field of the proof is such a level (the journal and the hub treat them so).
	PeakDBFS  *float64 `json:"peak_dbfs,omitempty"`
	RMSDBFS   *float64 `json:"rms_dbfs,omitempty"`
	SilenceS  float64  `json:"silence_s"` // total time below the silence threshold
	Gaps      int      `json:"gaps"`      // silent stretches long enough to count as dead air
	Underruns int      `json:"underruns"` // times the output ran dry
	// Relayed streams: connections lost after audio came, connections that brought it back,
	// and the time of the item's window with none of its audio heard.
	Dropouts      int     `json:"dropouts,omitempty"`
	Reconnects    int     `json:"reconnects,omitempty"`
	MissingS      float64 `json:"missing_s,omitempty"`
	FramesDropped int     `json:"frames_dropped,omitempty"` // screens: video frames dropped
	// Speakers held to the clock (docs/sync.md): how late (negative: early) the item was
	// heard against its time, as the agent measures it a second in, and how fast the sound
	// card consumes samples against the system clock, in ppm off its nominal rate.
	StartErrorS float64 `json:"start_error_s,omitempty"`
	RatePPM     float64 `json:"rate_ppm,omitempty"`
}

// Duration converts the confirmation's unit back to a duration (to the nanosecond).
func Duration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Finite returns p with every level JSON cannot carry (±Inf, NaN: the hub keeps digital
// silence as -Inf) absent, as not measured.
func (p Proof) Finite() Proof {
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		if f, ok := v.Field(i).Interface().(*float64); ok && f != nil && (math.IsInf(*f, 0) || math.IsNaN(*f)) {
			v.Field(i).SetZero()
		}
	}
	return p
}
