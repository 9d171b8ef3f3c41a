package protocol

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ScheduleRef names one revision of one schedule.
type ScheduleRef struct {
	ID       string `json:"id"`
	Revision uint64 `json:"revision"`
}

func (c *checker) scheduleRef(field string, r *ScheduleRef) {
	if r == nil {
		return
	}
	c.id(field+".id", r.ID)
	if r.Revision == 0 {
		c.fail(field+".revision", ErrMissingField, "required (revisions start at 1)")
	}
	c.counter(field+".revision", r.Revision)
}

// JournalState is where the agent's journal of confirmations stands.
type JournalState struct {
	// HighWater is the highest sequence number written (0: none yet).
	HighWater uint64 `json:"high_water"`
	// Acked is the highest sequence the agent knows the hub holds (0: none).
	Acked uint64 `json:"acked"`
	// ID names this journal (random, made with the journal file). A new id means the journal
	// restarted its numbering at 1 (its file was damaged and set aside, or replaced); the hub
	// then shifts the new numbers past what it holds. Empty: not told (older agents).
	ID string `json:"id,omitempty"`
}

// StoreSummary describes the agent's content store.
type StoreSummary struct {
	Items     int64 `json:"items"`
	Bytes     int64 `json:"bytes"`
	FreeBytes int64 `json:"free_bytes"`
}

// Hello is the agent's first message on every connection.
type Hello struct {
	Header
	DeviceID        string `json:"device_id"`
	SoftwareVersion string `json:"software_version"`
	// Versions lists the protocol versions the agent speaks; absent means [1]. A hub that
	// speaks a higher common version answers in it (see versioning in docs/protocol.md).
	Versions []int `json:"versions,omitempty"`
	// SentAt is the agent's clock when it sent the hello (informational: the agent keeps its
	// own monotonic reading for ClockOffset).
	SentAt time.Time `json:"sent_at,omitzero"`
	// ActiveSchedule is the revision playing now; PendingSchedule one received and waiting
	// for its content. Either is absent when there is none.
	ActiveSchedule  *ScheduleRef `json:"active_schedule,omitempty"`
	PendingSchedule *ScheduleRef `json:"pending_schedule,omitempty"`
	Journal         JournalState `json:"journal"`
	Store           StoreSummary `json:"store"`
	// Arch is the agent's Debian architecture (amd64, arm64, armhf), for the release a rollout
	// sends it. Upgrades: the agent trusts a release key and installs upgrade messages; the
	// hub never sends one to an agent without it (an older agent closes on an unknown type).
	Arch     string `json:"arch,omitempty"`
	Upgrades bool   `json:"upgrades,omitempty"`
}

func (*Hello) Type() Type { return TypeHello }

func (m *Hello) validate(c *checker) {
	c.header(&m.Header)
	c.id("device_id", m.DeviceID)
	if m.SoftwareVersion == "" {
		c.fail("software_version", ErrMissingField, "required")
	}
	for i, v := range m.Versions {
		if v < 1 {
			c.fail(fmt.Sprintf("versions[%d]", i), ErrInvalidField, "%d is not a protocol version", v)
		}
	}
	c.scheduleRef("active_schedule", m.ActiveSchedule)
	c.scheduleRef("pending_schedule", m.PendingSchedule)
	c.counter("journal.high_water", m.Journal.HighWater)
	c.counter("journal.acked", m.Journal.Acked)
	c.optID("journal.id", m.Journal.ID)
	if m.Arch != "" && !isReleaseArch(m.Arch) {
		c.fail("arch", ErrInvalidField, "%q is not one of %v", clip(m.Arch), ReleaseArches)
	}
	if m.Upgrades && m.Arch == "" {
		c.fail("arch", ErrMissingField, "required when upgrades is true")
	}
}

// Welcome is the hub's answer to Hello: its clock, and what the agent lacks.
type Welcome struct {
	Header
	// HelloReceivedAt (t1) and HubTime (t2, when the welcome was sent) are the hub's clock;
	// with the agent's own send and receive times they give its clock offset: ClockOffset.
	HelloReceivedAt time.Time `json:"hello_received_at"`
	HubTime         time.Time `json:"hub_time"`
	// LatestSchedule is the newest revision the hub holds for this device when it is newer
	// than what the hello reported; the hub sends it in a schedule message next.
	LatestSchedule *ScheduleRef `json:"latest_schedule,omitempty"`
	// ResendFrom is the first confirmation sequence the hub lacks: its highest contiguous
	// stored sequence + 1. The agent sends its journal from there. It is also an ack of
	// everything below it.
	ResendFrom uint64 `json:"resend_from"`
	// StatusIntervalS is how often the hub wants a status message, in seconds (0: agent's
	// default).
	StatusIntervalS int `json:"status_interval_s,omitempty"`
	// TimeSamples: the hub answers time messages, so the agent may measure its clock offset
	// during the session, not only at the welcome (an older hub omits it: the agent does not
	// send them, as such a hub would close the connection on an unknown type).
	TimeSamples bool `json:"time_samples,omitempty"`
	// ReconnectBaseS, when set, is the Backoff.Base the agent uses after it loses this
	// connection, in seconds. The hub sets it from its fleet size so that its devices return
	// from a hub restart at a rate it can take (10,000 devices with 20 s: about 500 a second).
	ReconnectBaseS int `json:"reconnect_base_s,omitempty"`
}

func (*Welcome) Type() Type { return TypeWelcome }

func (m *Welcome) validate(c *checker) {
	c.header(&m.Header)
	c.time("hello_received_at", m.HelloReceivedAt)
	c.time("hub_time", m.HubTime)
	c.scheduleRef("latest_schedule", m.LatestSchedule)
	if m.ResendFrom == 0 {
		c.fail("resend_from", ErrMissingField, "required (sequences start at 1)")
	}
	c.counter("resend_from", m.ResendFrom)
	if m.StatusIntervalS < 0 {
		c.fail("status_interval_s", ErrInvalidField, "%d is negative", m.StatusIntervalS)
	}
	if m.ReconnectBaseS < 0 {
		c.fail("reconnect_base_s", ErrInvalidField, "%d is negative", m.ReconnectBaseS)
	}
}

// Schedule carries a signed schedule document (SchedulePayload) from the hub to an agent.
// Decoding checks only that "signed" is there; Verifier.VerifySchedule decides trust.
type Schedule struct {
	Header
	Signed *Signed `json:"signed"`
}

func (*Schedule) Type() Type { return TypeSchedule }

func (m *Schedule) validate(c *checker) {
	c.header(&m.Header)
	if m.Signed == nil {
		c.fail("signed", ErrMissingField, "required (the signed schedule document)")
	}
}

// Command carries a signed command (CommandPayload) from the hub to an agent.
type Command struct {
	Header
	Signed *Signed `json:"signed"`
}

func (*Command) Type() Type { return TypeCommand }

func (m *Command) validate(c *checker) {
	c.header(&m.Header)
	if m.Signed == nil {
		c.fail("signed", ErrMissingField, "required (the signed command)")
	}
}

// Confirmations is a batch of journal records from an agent. Records are refused only for
// structural faults; odd values (an end before its start after a clock step) are carried as
// they are, because refusing a record would stall the journal behind it for ever.
type Confirmations struct {
	Header
	Records []Confirmation `json:"records"`
}

func (*Confirmations) Type() Type { return TypeConfirmations }

func (m *Confirmations) validate(c *checker) {
	c.header(&m.Header)
	if len(m.Records) == 0 {
		c.fail("records", ErrMissingField, "required (at least one record)")
		return
	}
	if len(m.Records) > c.limits.MaxRecords {
		c.fail("records", ErrTooLarge, "%d records, at most %d per batch", len(m.Records), c.limits.MaxRecords)
		return
	}
	for i := range m.Records {
		// Field names are built only on failure: a 500-record batch is checked on every
		// delivery and most batches are good.
		rc := checker{t: c.t, limits: c.limits}
		rc.record(&m.Records[i])
		if rc.err != nil {
			me := rc.err.(*MessageError)
			me.Field = "records[" + strconv.Itoa(i) + "]." + me.Field
			c.err = me
			return
		}
	}
}

func (c *checker) record(r *Confirmation) {
	c.id("device", r.Device)
	if r.Seq == 0 {
		c.fail("seq", ErrMissingField, "required (sequences start at 1)")
	}
	c.counter("seq", r.Seq)
	c.counter("revision", r.Revision)
	c.optID("schedule_id", r.ScheduleID)
	c.optID("command_id", r.CommandID)
	c.word("result", string(r.Result))
	c.optWord("clock", string(r.Clock))
	c.seconds("played_s", r.PlayedS)
	c.seconds("silence_s", r.SilenceS)
	c.optFinite("peak_dbfs", r.PeakDBFS)
	c.optFinite("rms_dbfs", r.RMSDBFS)
	if r.Gaps < 0 || r.Underruns < 0 || r.Dropouts < 0 || r.Reconnects < 0 {
		c.fail("gaps", ErrInvalidField, "gaps, underruns, dropouts and reconnects are counts, not negative")
	}
	c.count("gaps", r.Gaps)
	c.count("underruns", r.Underruns)
	c.count("dropouts", r.Dropouts)
	c.count("reconnects", r.Reconnects)
	c.count("frames_dropped", r.FramesDropped)
	if r.ItemIndex < -1 || int64(r.ItemIndex) > MaxCounter {
		c.fail("item_index", ErrInvalidField, "%d is not an item index", r.ItemIndex)
	}
	c.seconds("missing_s", r.MissingS)
	c.finite("volume", r.Volume)
}

// Ack tells the agent the highest contiguous confirmation sequence the hub has stored; the
// agent may delete its records up to it.
type Ack struct {
	Header
	Seq uint64 `json:"seq"`
}

func (*Ack) Type() Type { return TypeAck }

func (m *Ack) validate(c *checker) {
	c.header(&m.Header)
	c.counter("seq", m.Seq)
}

// NowPlaying is what one output is playing.
type NowPlaying struct {
	Output     string    `json:"output"`
	ScheduleID string    `json:"schedule_id,omitempty"`
	Revision   uint64    `json:"revision,omitempty"`
	Program    string    `json:"program,omitempty"`
	Class      string    `json:"class,omitempty"`
	Item       string    `json:"item,omitempty"`
	Since      time.Time `json:"since,omitzero"`
}

// LinkQuality is what the agent knows of its uplink; every field is optional.
type LinkQuality struct {
	Kind      string   `json:"kind,omitempty"` // ethernet | wifi | cellular
	SignalDBM *float64 `json:"signal_dbm,omitempty"`
	Quality   *float64 `json:"quality,omitempty"` // 0..1
	RTTMS     *float64 `json:"rtt_ms,omitempty"`  // websocket ping round trip
}

// Part is the state of one part of the device beside the sound card: the amplifier relay, the
// LED sign, the screen. Error is what is wrong now ("" when it works): a part with an error
// is faulty, whatever State says.
type Part struct {
	State string    `json:"state"`           // relay: on, off, unknown; sign: connected, down; screen: running, down
	Error string    `json:"error,omitempty"` // the current failure, for a technician
	Since time.Time `json:"since,omitzero"`  // when the current failure began
}

// Status is the agent's heartbeat. Fields the device cannot know are absent.
type Status struct {
	Header
	At            time.Time    `json:"at"` // the agent's clock
	NowPlaying    []NowPlaying `json:"now_playing,omitempty"`
	Volume        *float64     `json:"volume,omitempty"` // 0..1
	Amplifier     *bool        `json:"amplifier,omitempty"`
	ClockOffsetS  *float64     `json:"clock_offset_s,omitempty"` // hub minus agent
	ClockState    ClockState   `json:"clock_state,omitempty"`
	DiskFreeBytes *int64       `json:"disk_free_bytes,omitempty"`
	TemperatureC  *float64     `json:"temperature_c,omitempty"`
	UptimeS       float64      `json:"uptime_s"`
	Link          *LinkQuality `json:"link,omitempty"`
	// Relay, Sign, Screen and Audio are present when the device has that part (an older
	// agent sends none of them). Audio is the speakers' sound: "sound", or "dead_air" while
	// what plays has been silent too long (docs/agent.md).
	Relay  *Part `json:"relay,omitempty"`
	Sign   *Part `json:"sign,omitempty"`
	Screen *Part `json:"screen,omitempty"`
	Audio  *Part `json:"audio,omitempty"`
	// ContentAddr is where the agent serves its content store to its neighbours (IP:port,
	// CheckContentAddr), absent when it does not. The hub tells the commune's other agents.
	ContentAddr string `json:"content_addr,omitempty"`
	// Upgrade is where the agent is in the last upgrade it was sent (docs/upgrades.md).
	Upgrade *UpgradeStatus `json:"upgrade,omitempty"`
	// ClockErrorS bounds how far the system clock may be from true time, as the device's NTP
	// client says (ClockSource: "chrony" or "timesyncd"); absent where none says. The hub's
	// own measure, ClockOffsetS, cannot tell milliseconds over 3G (docs/sync.md).
	ClockErrorS *float64 `json:"clock_error_s,omitempty"`
	ClockSource string   `json:"clock_source,omitempty"`
}

func (*Status) Type() Type { return TypeStatus }

func (m *Status) validate(c *checker) {
	c.header(&m.Header)
	c.time("at", m.At)
	for i, p := range m.NowPlaying {
		if p.Output == "" {
			c.fail(fmt.Sprintf("now_playing[%d].output", i), ErrMissingField, "required")
		}
		c.counter(fmt.Sprintf("now_playing[%d].revision", i), p.Revision)
	}
	c.unit("volume", m.Volume)
	if o := m.ClockOffsetS; o != nil {
		c.finite("clock_offset_s", *o)
		if math.Abs(*o) > MaxSeconds {
			c.fail("clock_offset_s", ErrInvalidField, "%v s is more than a century", *o)
		}
	}
	c.optWord("clock_state", string(m.ClockState))
	c.optFinite("temperature_c", m.TemperatureC)
	c.seconds("uptime_s", m.UptimeS)
	for _, p := range []struct {
		name string
		part *Part
	}{{"relay", m.Relay}, {"sign", m.Sign}, {"screen", m.Screen}, {"audio", m.Audio}} {
		if p.part != nil {
			c.word(p.name+".state", p.part.State)
			if len(p.part.Error) > 1024 {
				c.fail(p.name+".error", ErrInvalidField, "longer than 1024 bytes")
			}
		}
	}
	if m.ContentAddr != "" {
		if err := CheckContentAddr(m.ContentAddr); err != nil {
			c.fail("content_addr", ErrInvalidField, "%v", err)
		}
	}
	c.upgradeStatus(m.Upgrade)
	if e := m.ClockErrorS; e != nil {
		c.finite("clock_error_s", *e)
		if *e < 0 || *e > MaxSeconds {
			c.fail("clock_error_s", ErrInvalidField, "%v s is not a bound (0 to a century)", *e)
		}
	}
	c.optWord("clock_source", m.ClockSource)
	if m.Link != nil {
		c.optFinite("link.signal_dbm", m.Link.SignalDBM)
		c.unit("link.quality", m.Link.Quality)
		c.optFinite("link.rtt_ms", m.Link.RTTMS)
	}
}

// Delivery states: how far a pushed schedule revision or command got on the agent.
const (
	DeliveryReceived     = "received"      // verified and stored, content not all there yet
	DeliveryContentReady = "content_ready" // every item it needs is in the store
	DeliveryActive       = "active"        // it is the schedule playing now
	DeliveryRefused      = "refused"       // refused: Code and Reason say why
	DeliveryExecuted     = "executed"      // a command was carried out
	DeliveryFailed       = "failed"        // accepted but could not be carried out: Reason
)

// Delivery reports how far a schedule revision or a command got. Re is the id of the schedule
// or command message; for a refusal the agent may not know the schedule id or command id
// (the payload was not trusted), so Re is what ties it to the push.
type Delivery struct {
	Header
	ScheduleID string `json:"schedule_id,omitempty"`
	Revision   uint64 `json:"revision,omitempty"`
	CommandID  string `json:"command_id,omitempty"`
	State      string `json:"state"`
	Code       string `json:"code,omitempty"` // refusal code: see CodeOf
	Reason     string `json:"reason,omitempty"`
}

func (*Delivery) Type() Type { return TypeDelivery }

func (m *Delivery) validate(c *checker) {
	c.header(&m.Header)
	c.word("state", m.State)
	c.optID("schedule_id", m.ScheduleID)
	c.optID("command_id", m.CommandID)
	if m.ScheduleID != "" && m.Revision == 0 {
		c.fail("revision", ErrMissingField, "required with schedule_id")
	}
	c.counter("revision", m.Revision)
	if m.State == DeliveryRefused {
		c.word("code", m.Code)
		if m.Reason == "" {
			c.fail("reason", ErrMissingField, "required when state is refused")
		}
		return
	}
	c.optWord("code", m.Code)
	if m.ScheduleID == "" && m.CommandID == "" {
		c.fail("schedule_id", ErrMissingField, "a delivery names a schedule_id and revision, or a command_id")
	}
}

// Wire error codes (ErrorMessage.Code, Delivery.Code): every code either side sends is
// defined here. CodeOf gives the code of this package's errors.
const (
	CodeTooLarge           = "too_large"
	CodeBadJSON            = "bad_json"
	CodeUnsupportedVersion = "unsupported_version"
	CodeUnknownType        = "unknown_type"
	CodeMissingField       = "missing_field"
	CodeInvalidField       = "invalid_field"
	CodeUnsigned           = "unsigned"
	CodeUnknownKey         = "unknown_key"
	CodeBadSignature       = "bad_signature"
	CodeBadPayload         = "bad_payload"
	CodeWrongDevice        = "wrong_device"
	CodeExpired            = "expired"
	CodeReplayed           = "replayed"
	// CodeInvalidDocument refuses a schedule whose signature and payload are fine but whose
	// document the agent cannot use (the runner's own check).
	CodeInvalidDocument = "invalid_document"
	CodeHelloFirst      = "hello_first"  // a message before hello
	CodeBusy            = "busy"         // the hub sheds load: reconnect after RetryAfterS
	CodeUnauthorized    = "unauthorized" // device unknown, revoked, or not the one authenticated
	CodeInternal        = "internal"     // the receiver failed; not the sender's fault
	// CodeNotStored answers confirmations the hub could not store (its disk is full, its
	// database failing): they are not acknowledged, the connection stays up, and the agent
	// sends them again after RetryAfterS.
	CodeNotStored = "not_stored"
)

// NewErrorMessage builds the error message answering message re (may be "") that failed
// with err: its code is CodeOf(err) and its message err's text.
func NewErrorMessage(id, re string, err error) *ErrorMessage {
	return &ErrorMessage{Header: Header{ID: id, Re: re}, Code: CodeOf(err), Message: err.Error()}
}

// RefusedDelivery builds the delivery report of a push that Verifier refused (or that did not
// decode): state refused, the code of err, and its reason. re is the id of the push message.
func RefusedDelivery(id, re string, err error) *Delivery {
	reason := err.Error()
	var r *RefusedError
	if errors.As(err, &r) {
		reason = r.Reason
	}
	return &Delivery{Header: Header{ID: id, Re: re}, State: DeliveryRefused, Code: CodeOf(err), Reason: reason}
}

// ErrorMessage reports a fault to the peer: a message it could not accept, or the hub being
// too busy. Code is machine-readable (CodeOf gives it for this package's errors).
type ErrorMessage struct {
	Header
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfterS asks the agent to wait at least this long before reconnecting (load
	// shedding after an outage); it adds jitter of up to the same again.
	RetryAfterS int `json:"retry_after_s,omitempty"`
}

func (*ErrorMessage) Type() Type { return TypeError }

func (m *ErrorMessage) validate(c *checker) {
	c.header(&m.Header)
	c.word("code", m.Code)
	if m.Message == "" {
		c.fail("message", ErrMissingField, "required")
	}
	if m.RetryAfterS < 0 {
		c.fail("retry_after_s", ErrInvalidField, "%d is negative", m.RetryAfterS)
	}
}

// Time measures the agent's clock against the hub's during a session, as NTP does: the agent
// sends SentAt (t0, its clock); the hub answers with a time message whose Re is the request's
// id, the same SentAt, ReceivedAt (t1) and HubTime (t2, when it answered), and the agent notes
// when the answer came (t3): ClockOffset(t0, t1, t2, t3). The agent keeps the sample of the
// shortest round trip among its last few (a slow round trip is an unequal one).
type Time struct {
	Header
	SentAt     time.Time `json:"sent_at"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	HubTime    time.Time `json:"hub_time,omitzero"`
}

func (*Time) Type() Type { return TypeTime }

func (m *Time) validate(c *checker) {
	c.header(&m.Header)
	c.time("sent_at", m.SentAt)
	if m.ReceivedAt.IsZero() != m.HubTime.IsZero() {
		c.fail("hub_time", ErrMissingField, "an answer gives both received_at and hub_time; a request neither")
	}
}
