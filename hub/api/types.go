// Package api holds the JSON shapes of the hub's staff HTTP API, shared by the hub and its
// clients (the loa CLI) so the CLI does not link the server.
package api

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/protocol"
)

// Error is the body of every error answer: what went wrong and what to do.
type Error struct {
	Error string `json:"error"`
}

// AreaJSON is an area in API answers.
type AreaJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Parent string `json:"parent,omitempty"`
	Depth  int    `json:"depth"`
}

// EnrolRequest is the body of POST /api/devices.
type EnrolRequest struct {
	ID      string   `json:"id"`
	Area    string   `json:"area"`
	Name    string   `json:"name,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
}

// EnrolResponse is the answer of POST /api/devices: the secret is shown this once.
type EnrolResponse struct {
	ID     string `json:"id"`
	Area   string `json:"area"`
	Secret string `json:"secret"`
	KeyID  string `json:"key_id"`
	// PublicKey is the hub's signing key ("ed25519:…"), trusted by agents under KeyID.
	PublicKey string `json:"public_key"`
	// Hub is the URL agents reach the hub at (public_url in the hub's config).
	Hub string `json:"hub_url,omitempty"`
	// Warning says why Hub may not be reachable from a device (public_url unset).
	Warning string `json:"warning,omitempty"`
}

// DeviceJSON is a device in API answers, with what the hub knows of its state.
type DeviceJSON struct {
	ID             string     `json:"id"`
	Name           string     `json:"name,omitempty"`
	Area           string     `json:"area"`
	Kind           string     `json:"kind"`
	Outputs        []string   `json:"outputs,omitempty"`
	EnrolledAt     time.Time  `json:"enrolled_at"`
	Revoked        bool       `json:"revoked,omitempty"`
	Online         bool       `json:"online"`
	LastSeen       *time.Time `json:"last_seen,omitempty"`
	AckedSeq       int64      `json:"acked_seq"`
	Revision       int64      `json:"revision,omitempty"`        // newest composed revision
	Delivery       string     `json:"delivery,omitempty"`        // its delivery state
	RefusedReason  string     `json:"refused_reason,omitempty"`  // when refused
	ActiveRevision int64      `json:"active_revision,omitempty"` // newest the device reported active
	NowPlaying     string     `json:"now_playing,omitempty"`
	Software       string     `json:"software,omitempty"`
	Link           string     `json:"link,omitempty"`
	DiskFreeBytes  int64      `json:"disk_free_bytes,omitempty"`
	TemperatureC   *float64   `json:"temperature_c,omitempty"`
	ClockOffsetS   float64    `json:"clock_offset_s,omitempty"`
	// ClockErrorS bounds the device's clock error as its NTP client (ClockSource) says.
	ClockErrorS float64  `json:"clock_error_s,omitempty"`
	ClockSource string   `json:"clock_source,omitempty"`
	Volume      *float64 `json:"volume,omitempty"` // the device volume its last heartbeat gave
	// Relay, Sign, Screen and Audio (the speakers' sound: dead air) are the parts the last
	// heartbeat reported (absent: the device has none, or its agent does not report them);
	// Faults names the faulty ones with what is wrong.
	Relay  *PartJSON `json:"relay,omitempty"`
	Sign   *PartJSON `json:"sign,omitempty"`
	Screen *PartJSON `json:"screen,omitempty"`
	Audio  *PartJSON `json:"audio,omitempty"`
	Faults []string  `json:"faults,omitempty"`
	// Arch is the agent's Debian architecture and Upgrades whether it installs upgrades, as
	// its last hello said; Upgrade is its part in the newest rollout that named it, Rollbacks
	// how many rollouts it rolled back from (docs/upgrades.md).
	Arch      string       `json:"arch,omitempty"`
	Upgrades  bool         `json:"upgrades,omitempty"`
	Upgrade   *UpgradeJSON `json:"upgrade,omitempty"`
	Rollbacks int          `json:"rollbacks,omitempty"`
}

// The alarms a technician acts on: the hub counts them (GET /api/overview, the device list's
// state "alarm") and the console words them, by these thresholds.
const (
	AlarmOfflineAfter = 24 * time.Hour  // offline this long (or never seen this long after enrolment)
	AlarmLowDisk      = 200 << 20       // bytes free below which a device's content may not fit
	AlarmClockSkew    = 5 * time.Second // off the hub's clock: plays start at the wrong time
)

// OverviewJSON is GET /api/overview: the devices of a scope counted per area, and the first
// of those on the air and of those with alarms.
type OverviewJSON struct {
	Counts      []AreaCountJSON `json:"counts"`
	OnAir       []DeviceJSON    `json:"on_air"`
	MoreOnAir   int             `json:"more_on_air,omitempty"` // on the air beyond those listed
	Alarmed     []DeviceJSON    `json:"alarmed"`
	MoreAlarmed int             `json:"more_alarmed,omitempty"`
}

// AreaCountJSON counts the devices of one kind in one area itself (not the areas below it);
// revoked devices are not counted.
type AreaCountJSON struct {
	Area    string `json:"area"`
	Kind    string `json:"kind"`
	Online  int    `json:"online"`
	Offline int    `json:"offline"`
	Playing int    `json:"playing"`
	Alarms  int    `json:"alarms"`
}

// DeviceListJSON is one page of GET /api/device-list.
type DeviceListJSON struct {
	Devices  []DeviceJSON `json:"devices"`
	Total    int          `json:"total"` // devices matching the filters, on all pages
	Page     int          `json:"page"`
	PerPage  int          `json:"per_page"`
	Versions []string     `json:"versions"` // software versions reported in the area, for a filter
}

// NamedPart is one part of a device by its name in reports and alarms.
type NamedPart struct {
	Name string // relay, sign, screen, audio
	Part *PartJSON
}

// Parts lists the device's parts in the order staff see them (those it does not report are
// nil).
func (d DeviceJSON) Parts() []NamedPart {
	return []NamedPart{{"relay", d.Relay}, {"sign", d.Sign}, {"screen", d.Screen}, {"audio", d.Audio}}
}

// PartJSON is the state of a device's amplifier relay, LED sign, screen or speakers' sound.
type PartJSON struct {
	State string     `json:"state"`           // relay: on, off, unknown; sign: connected, down; screen: running, down; audio: sound, dead_air
	Error string     `json:"error,omitempty"` // what is wrong now; "" when it works
	Since *time.Time `json:"since,omitempty"` // when the fault began
}

// PushRequest is the body of POST /api/schedules.
type PushRequest struct {
	// To is an area id or a device id; "area:" or "device:" makes it explicit.
	To       string `json:"to"`
	Name     string `json:"name,omitempty"` // file name, for error messages
	Document string `json:"document"`
	// DryRun checks the document and says what would change, storing and sending nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Submit asks for approval even where the area does not require it (`loa submit`).
	Submit bool `json:"submit,omitempty"`
}

// PushResponse says what a push did.
type PushResponse struct {
	Target   string   `json:"target"`
	Revision int64    `json:"revision"`
	Devices  int      `json:"devices"` // devices whose effective schedule changed
	Sent     int      `json:"sent"`    // of those, connected ones it was sent to
	Failures []string `json:"failures,omitempty"`
	// Unchanged: the document is the target's newest revision already (revision numbers
	// aside); nothing was stored or sent and Revision is that one.
	Unchanged bool `json:"unchanged,omitempty"`
	// DryRun: nothing was stored; Revision is what it would be, Devices how many devices are
	// under the target, Changes what differs from the stored revision by programme.
	DryRun  bool     `json:"dry_run,omitempty"`
	Changes []string `json:"changes,omitempty"`
	// Submission: the area requires approval, so the schedule was stored as this submission
	// waiting for one of Approvers (answered 202); nothing was composed or sent.
	Submission *SubmissionJSON `json:"submission,omitempty"`
	Approvers  []string        `json:"approvers,omitempty"`
	// WouldSubmit (a dry run): the area requires approval, so a push would be submitted for
	// one of Approvers rather than stored as Revision.
	WouldSubmit bool `json:"would_submit,omitempty"`
	// Unapproved (a dry run): library items it plays that are not approved; a push going on
	// air would be refused until they are.
	Unapproved []string `json:"unapproved,omitempty"`
}

// ScheduleJSON is one stored revision of a schedule attached to an area or a device.
type ScheduleJSON struct {
	Target     string    `json:"target"` // area:ID or device:ID
	Revision   int64     `json:"revision"`
	ScheduleID string    `json:"schedule_id"`
	Programs   int       `json:"programs"`
	Author     string    `json:"author"`
	CreatedAt  time.Time `json:"created_at"`
	Document   string    `json:"document,omitempty"` // GET /api/schedules/show only
	// ApprovedBy is who approved a revision that waited for approval ("" where none was needed).
	ApprovedBy string     `json:"approved_by,omitempty"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
}

// PlanJSON is what a device (or any device of an area without a schedule of its own) will
// play over a time range, from the hub's composed document.
type PlanJSON struct {
	Target   string        `json:"target"`
	Device   string        `json:"device,omitempty"`
	Revision int64         `json:"revision,omitempty"` // the signed effective revision; 0 when composed for an area
	Timezone string        `json:"timezone"`
	From     time.Time     `json:"from"`
	Until    time.Time     `json:"until"`
	Segments []PlanSegment `json:"segments"`
	// QuietHours are the document's daily quiet spans ("22:00", "05:00"), for calendars to shade.
	QuietHours []PlanQuiet `json:"quiet_hours,omitempty"`
}

// PlanQuiet is one daily quiet span, times of day in the plan's time zone.
type PlanQuiet struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PlanSegment is one stretch of one output playing one item.
type PlanSegment struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Scheduled time.Time `json:"scheduled"`
	Output    string    `json:"output"`
	Class     string    `json:"class"`
	Program   string    `json:"program"`
	Title     string    `json:"title,omitempty"`
	Item      string    `json:"item"`
	ItemTitle string    `json:"item_title,omitempty"`
	Status    string    `json:"status"`
}

// ConfirmationJSON is one confirmation in API answers: the device's protocol.Confirmation
// with the hub's additions (area, titles, when it arrived). Its proof is protocol.Proof
// itself, so a new field of a play's proof is served, and exported as CSV, as it is.
type ConfirmationJSON struct {
	Device     string     `json:"device"`
	Seq        int64      `json:"seq"`
	Area       string     `json:"area"`
	Output     string     `json:"output,omitempty"`
	ScheduleID string     `json:"schedule_id,omitempty"`
	Revision   int64      `json:"revision,omitempty"`
	Program    string     `json:"program,omitempty"`
	Title      string     `json:"title,omitempty"`      // the programme's, when the hub still knows it
	ItemTitle  string     `json:"item_title,omitempty"` // the library content's
	CommandID  string     `json:"command_id,omitempty"` // the play_now command that caused it
	ItemIndex  int        `json:"item_index"`
	Item       string     `json:"item,omitempty"`
	Scheduled  *time.Time `json:"scheduled,omitempty"`
	Start      *time.Time `json:"start,omitempty"`
	End        *time.Time `json:"end,omitempty"`
	protocol.Proof
	Result    string   `json:"result"`
	Error     string   `json:"error,omitempty"`
	Clock     string   `json:"clock,omitempty"`
	Volume    *float64 `json:"volume,omitempty"`    // gain given: programme × device volume
	Amplifier string   `json:"amplifier,omitempty"` // relay when the play began: on, or what was wrong
	// ApprovedBy is who approved the schedule revision the programme came from, where its area
	// required approval (issue 22); "" otherwise, and for commands and broadcasts.
	ApprovedBy string    `json:"approved_by,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// AuditJSON is one audit entry in API answers.
type AuditJSON struct {
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// ContentJSON is a library item in API answers.
type ContentJSON struct {
	Ref       string  `json:"ref"`
	Size      int64   `json:"size"`
	DurationS float64 `json:"duration_s"`
	MIME      string  `json:"mime"`
	Title     string  `json:"title"`
	Theme     string  `json:"theme,omitempty"`
	Language  string  `json:"language,omitempty"`
	Format    string  `json:"format,omitempty"`
	Unit      string  `json:"unit,omitempty"`
	// The labels of the codes above, from the hub's lists (empty when not in a list).
	LanguageLabel string    `json:"language_label,omitempty"`
	ThemeLabel    string    `json:"theme_label,omitempty"`
	FormatLabel   string    `json:"format_label,omitempty"`
	UnitLabel     string    `json:"unit_label,omitempty"`
	By            string    `json:"uploaded_by,omitempty"`
	At            time.Time `json:"uploaded_at"`
	Created       bool      `json:"created"`
	URL           string    `json:"url,omitempty"`
	Note          string    `json:"note,omitempty"` // an upload of bytes already there: what was kept
	// ServedBytes is what the hub sent of the item to devices since it started (GET /api/content).
	ServedBytes int64 `json:"served_bytes,omitempty"`
	// Editorial approval (issue 22): where it was uploaded, submitted (chờ duyệt), approved or
	// rejected (with Reason), by whom and when ("" and no time for one approved at once).
	Area      string     `json:"area,omitempty"`
	State     string     `json:"state"`
	DecidedBy string     `json:"decided_by,omitempty"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	// Approvers: an upload that waits for approval, who can give it.
	Approvers []string `json:"approvers,omitempty"`
}

// TermJSON is one entry of a metadata list (GET/POST /api/terms): a language, theme, format
// or producing unit, its code (stored on content; ISO 639-3 for languages where one exists)
// and the Vietnamese label staff read and may type.
type TermJSON struct {
	Dimension string `json:"dimension"`
	Code      string `json:"code"`
	Label     string `json:"label"`
}

// ContentEdit is the body of PATCH /api/content/{ref}: absent fields are kept, "" clears one.
// Metadata may be given by code or label.
type ContentEdit struct {
	Title    *string `json:"title,omitempty"`
	Language *string `json:"language,omitempty"`
	Theme    *string `json:"theme,omitempty"`
	Format   *string `json:"format,omitempty"`
	Unit     *string `json:"unit,omitempty"`
}

// WriteContentCSV writes library items as CSV, one row each, codes and labels both.
func WriteContentCSV(w io.Writer, cs []ContentJSON) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"ref", "title", "duration_s", "mime", "language", "language_label", "theme", "theme_label",
		"format", "format_label", "unit", "unit_label", "uploaded_by", "uploaded_at", "size", "area", "state", "decided_by", "decided_at", "reason"})
	for _, c := range cs {
		decided := ""
		if c.DecidedAt != nil {
			decided = c.DecidedAt.Format(time.RFC3339)
		}
		cw.Write([]string{c.Ref, c.Title, strconv.FormatFloat(c.DurationS, 'f', -1, 64), c.MIME, c.Language, c.LanguageLabel,
			c.Theme, c.ThemeLabel, c.Format, c.FormatLabel, c.Unit, c.UnitLabel, c.By, c.At.Format(time.RFC3339), strconv.FormatInt(c.Size, 10),
			c.Area, c.State, c.DecidedBy, decided, c.Reason})
	}
	cw.Flush()
	return cw.Error()
}

// confirmationCSVOrder keeps the CSV's first columns where they have always been (scripts
// and spreadsheets read them by place); every other field of ConfirmationJSON follows in the
// struct's order, so a new field is a new last column without a change here.
var confirmationCSVOrder = []string{"device", "seq", "area", "output", "schedule_id", "revision", "program",
	"item_index", "item", "scheduled", "start", "end", "played_s", "peak_dbfs", "rms_dbfs", "silence_s",
	"gaps", "underruns", "result", "error", "clock", "received_at", "command_id", "volume",
	"amplifier", "dropouts", "reconnects", "missing_s", "frames_dropped", "title", "item_title", "from_s"}

// csvColumn is one column of a CSV export: its header (the field's JSON name) and the index
// of the field.
type csvColumn struct {
	name  string
	index []int
}

// confirmationCSV are the CSV export's columns, derived from ConfirmationJSON's JSON names
// (one definition: the API's JSON and its CSV cannot drift apart).
var confirmationCSV = csvColumns(reflect.TypeFor[ConfirmationJSON](), confirmationCSVOrder)

// csvColumns lists t's JSON fields (embedded structs flattened), those named in first first.
func csvColumns(t reflect.Type, first []string) []csvColumn {
	var all []csvColumn
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous || !f.IsExported() || name == "" || name == "-" {
			continue
		}
		all = append(all, csvColumn{name, f.Index})
	}
	rank := func(name string) int {
		if i := slices.Index(first, name); i >= 0 {
			return i
		}
		return len(first)
	}
	slices.SortStableFunc(all, func(a, b csvColumn) int { return rank(a.name) - rank(b.name) })
	return all
}

// csvCell writes one field: numbers as Go writes them, times in RFC 3339, nil as empty.
func csvCell(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.String:
		return v.String()
	}
	panic("api: no CSV form for a " + v.Type().String())
}

// WriteConfirmationsCSV writes confirmations as CSV with a header row.
func WriteConfirmationsCSV(w io.Writer, cs []ConfirmationJSON) error {
	cw := csv.NewWriter(w)
	row := make([]string, len(confirmationCSV))
	for k, col := range confirmationCSV {
		row[k] = col.name
	}
	cw.Write(row)
	for i := range cs {
		v := reflect.ValueOf(&cs[i]).Elem()
		for k, col := range confirmationCSV {
			row[k] = csvCell(v.FieldByIndex(col.index))
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// EmergencyRequest is the body of POST /api/emergencies: an emergency broadcast (`loa
// emergency`), a priority bulletin at the next session (`loa bulletin`) or a live relay
// (`loa live start`) for every device of an area.
type EmergencyRequest struct {
	To string `json:"to"` // area or device ids, separated by commas ("area:"/"device:" says which)
	// ReplaceAreas lets a broadcast of an existing series end it in areas it does not name.
	// Without it such a request is refused (409) naming them: a warning is never narrowed
	// by accident.
	ReplaceAreas bool   `json:"replace_areas,omitempty"`
	Kind         string `json:"kind,omitempty"` // emergency (default), bulletin or live
	// Class is emergency (default for kind emergency) or priority; bulletins and relays are
	// always priority.
	Class   string `json:"class,omitempty"`
	Content string `json:"content,omitempty"` // sha256:… from the library
	Text    string `json:"text,omitempty"`    // spoken and shown; the recording's fallback
	Stream  string `json:"stream,omitempty"`  // live: the http(s) stream URL
	Title   string `json:"title,omitempty"`
	Series  string `json:"series,omitempty"` // a newer broadcast of the same series replaces the older
	// RepeatEvery is a Go duration ("2h"); empty: play once.
	RepeatEvery string `json:"repeat_every,omitempty"`
	// Until is when it expires: RFC 3339, or a duration from now ("6h"). Default: 12 h for a
	// repeating emergency, 1 h for a one-off, the relay's length for a relay.
	Until string `json:"until,omitempty"`
	// For is a relay's length (a Go duration, default 1h).
	For    string   `json:"for,omitempty"`
	Volume *float64 `json:"volume,omitempty"` // 0..1, default 1
	// NextSession places a bulletin at the start of the next normal session of the area's
	// devices (required for kind bulletin).
	NextSession bool `json:"next_session,omitempty"`
}

// EmergencyJSON is one emergency, bulletin or relay in API answers.
type EmergencyJSON struct {
	ID          int64      `json:"id"`
	Series      string     `json:"series"`
	Kind        string     `json:"kind"`
	Area        string     `json:"area"`
	Device      string     `json:"device,omitempty"` // set when it plays on this one device only
	Class       string     `json:"class"`
	Title       string     `json:"title,omitempty"`
	Text        string     `json:"text,omitempty"`
	Content     string     `json:"content,omitempty"`
	Stream      string     `json:"stream,omitempty"`
	IssuedAt    time.Time  `json:"issued_at"`
	Start       time.Time  `json:"start"`
	RepeatEvery string     `json:"repeat_every,omitempty"`
	Plays       int        `json:"plays"` // how many times it is scheduled to start
	Until       time.Time  `json:"until"`
	Volume      float64    `json:"volume"`
	Source      string     `json:"source"`
	CreatedBy   string     `json:"created_by"`
	Active      bool       `json:"active"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	EndReason   string     `json:"end_reason,omitempty"`
	ReplacedBy  int64      `json:"replaced_by,omitempty"`
	Program     string     `json:"program"` // the programme id devices play it under (journal, confirmations)
	// An emergency warning goes out without approval and is reviewed afterwards.
	ReviewedBy string     `json:"reviewed_by,omitempty"`
	ReviewedAt *time.Time `json:"reviewed_at,omitempty"`
	ReviewNote string     `json:"review_note,omitempty"`
}

// EmergencyResponse says what creating or ending broadcasts did.
type EmergencyResponse struct {
	Emergencies []EmergencyJSON `json:"emergencies"` // created, or ended
	Replaced    []int64         `json:"replaced,omitempty"`
	Devices     int             `json:"devices"` // devices whose effective schedule changed
	Sent        int             `json:"sent"`    // of those, connected ones it was sent to at once
	Failures    []string        `json:"failures,omitempty"`
	Warnings    []string        `json:"warnings,omitempty"`
	// Submission: a bulletin or relay to an area that requires approval waits as this
	// submission for one of Approvers (answered 202); nothing was sent.
	Submission *SubmissionJSON `json:"submission,omitempty"`
	Approvers  []string        `json:"approvers,omitempty"`
}

// CancelRequest is the body of POST /api/emergencies/cancel: every active broadcast of a
// series, or (kind live) every active relay of an area and below.
type CancelRequest struct {
	Series string `json:"series,omitempty"`
	Kind   string `json:"kind,omitempty"`
	To     string `json:"to,omitempty"`
}

// CAPResponse is the answer of POST /api/cap: the mapping decision and what the hub did.
type CAPResponse struct {
	Decision json.RawMessage   `json:"decision"`
	Result   EmergencyResponse `json:"result"`
	Applied  bool              `json:"applied"` // false for ignore, or a message already applied
	Note     string            `json:"note,omitempty"`
}

// TokenRequest is the body of POST /api/tokens (a new token for the caller: label and
// valid_for optional) and of POST /api/tokens/revoke (token, or id as GET /api/tokens lists it).
type TokenRequest struct {
	Label    string `json:"label,omitempty"`
	ValidFor string `json:"valid_for,omitempty"` // Go duration; default a year
	Token    string `json:"token,omitempty"`
	ID       string `json:"id,omitempty"`
}

// TokenJSON is a token in GET /api/tokens: never its value. ID is the hex SHA-256 of the
// value, which names the token without letting anyone use it.
type TokenJSON struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Role    string    `json:"role"`
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked time.Time `json:"revoked,omitzero"`
	// Valid is false when the token no longer authenticates (revoked, expired, user disabled).
	Valid bool `json:"valid"`
}

// TokenResponse answers them: the new token is shown this once.
type TokenResponse struct {
	User    string    `json:"user"`
	Token   string    `json:"token,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked bool      `json:"revoked,omitempty"`
}

// UserRequest is the body of POST /api/users/disable.
type UserRequest struct {
	ID string `json:"id"`
	// For POST /api/users (add) and /api/users/password: the rest of the account. Password is
	// the console password (at least 10 characters); absent: the user signs in with tokens only.
	Name     string `json:"name,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Role     string `json:"role,omitempty"`
	Password string `json:"password,omitempty"`
}

// UserJSON is a staff account in API answers.
type UserJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Scope    string `json:"scope"`
	Role     string `json:"role,omitempty"`
	Disabled bool   `json:"disabled"`
}

// RekeyRequest is the body of POST /api/devices/rekey; the answer is an EnrolResponse with
// the new secret.
type RekeyRequest struct {
	ID string `json:"id"`
}

// TemplateRequest is the body of POST /api/schedule-templates: a schedule document saved
// under a name for an area, to push later to the areas below it.
type TemplateRequest struct {
	Area     string `json:"area"`
	Name     string `json:"name"`
	Document string `json:"document"`
}

// TemplateJSON is a saved template.
type TemplateJSON struct {
	Area      string    `json:"area"`
	Name      string    `json:"name"`
	Programs  int       `json:"programs"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	Document  string    `json:"document,omitempty"` // with ?name= only
}

// WriteAgentConfig prints an enrolment as agent.yaml lines: everything it writes is YAML (the prose
// is comments), so a technician can paste all of it into the agent's config as it is.
func (r EnrolResponse) WriteAgentConfig(w io.Writer) {
	fmt.Fprintf(w, "# device %s enrolled in %s. Its secret is shown only now (the hub keeps only a hash).\n", r.ID, r.Area)
	fmt.Fprintf(w, "# Paste these lines into the device's /etc/loa/agent.yaml in place of its device_id: line\n")
	fmt.Fprintf(w, "# and its hub: block (docs/install.md, step 6):\n")
	fmt.Fprintf(w, "device_id: %q\n", r.ID)
	fmt.Fprintf(w, "hub:\n  url: %q\n", r.Hub)
	// Unquoted: scripts and tests find it with `secret: (loa-ds1-[a-z0-9]+)`; it is plain YAML.
	fmt.Fprintf(w, "  secret: %s\n", r.Secret)
	key := r.KeyID
	if strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		key = strconv.Quote(key) // a key id with YAML's special characters
	}
	fmt.Fprintf(w, "  trusted_keys:\n    %s: %q\n", key, r.PublicKey)
}
