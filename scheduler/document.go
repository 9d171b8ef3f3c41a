// Package scheduler owns schedule documents: it parses and validates them, compiles them to a
// timeline of plays for each output, and runs that timeline against a clock. It touches no
// audio, files or network; the agent feeds it documents and acts on its events.
package scheduler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SchemaVersion is the only document version this build understands.
const SchemaVersion = 1

// Class is a bulletin class of Circular 39/2020: normal < priority < emergency.
type Class int

const (
	Normal Class = iota
	Priority
	Emergency
)

var classNames = [...]string{"normal", "priority", "emergency"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "class(" + strconv.Itoa(int(c)) + ")"
	}
	return classNames[c]
}

// ParseClass reads a class name as written in a schedule.
func ParseClass(s string) (Class, error) {
	for i, n := range classNames {
		if s == n {
			return Class(i), nil
		}
	}
	return 0, fmt.Errorf("class %q is not one of normal, priority, emergency", s)
}

func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// InterruptPolicy says what a programme does once a higher one has taken its output.
type InterruptPolicy string

const (
	Resume  InterruptPolicy = "resume"  // continue where it stopped, inside its window
	Restart InterruptPolicy = "restart" // start again from its first item, inside its window
	Skip    InterruptPolicy = "skip"    // give up the rest of this occurrence
)

// Duration is a time.Duration written as "15m", "1h30m" or "45s" in documents.
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: write it like 90s, 15m or 1h30m", s)
	}
	*d = Duration(v)
	return nil
}

// Date is a calendar day in the schedule's time zone, written 2026-11-01.
type Date struct{ Year, Month, Day int }

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Date) UnmarshalText(b []byte) error {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("date %q: write it as YYYY-MM-DD", string(b))
	}
	*d = Date{t.Year(), int(t.Month()), t.Day()}
	return nil
}

// before reports whether d is an earlier day than o.
func (d Date) before(o Date) bool {
	if d.Year != o.Year {
		return d.Year < o.Year
	}
	if d.Month != o.Month {
		return d.Month < o.Month
	}
	return d.Day < o.Day
}

func dateOf(t time.Time) Date { return Date{t.Year(), int(t.Month()), t.Day()} }

// ClockTime is a time of day, "22:00" or "05:30:15", in the schedule's time zone.
type ClockTime struct{ Seconds int }

func (c ClockTime) String() string {
	h, m, s := c.Seconds/3600, c.Seconds/60%60, c.Seconds%60
	if s != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", h, m)
}

func (c ClockTime) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

func (c *ClockTime) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			c.Seconds = t.Hour()*3600 + t.Minute()*60 + t.Second()
			return nil
		}
	}
	if s == "24:00" {
		c.Seconds = 24 * 3600
		return nil
	}
	return fmt.Errorf("time of day %q: write it as HH:MM, e.g. 22:00", s)
}

// QuietHours is a daily span in which normal and priority audio is suppressed. A span whose
// end is earlier than its start runs across midnight.
type QuietHours struct {
	From ClockTime `yaml:"from" json:"from"`
	To   ClockTime `yaml:"to" json:"to"`
}

// Repeat plays a programme again after it ends: Count more times, each Gap after the previous
// play's end, or Every apart from start to start.
type Repeat struct {
	Count int      `yaml:"count" json:"count"`
	Gap   Duration `yaml:"gap,omitempty" json:"gap,omitempty"`
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
}

// Item is one thing a programme plays: exactly one of Content (a store reference
// "sha256:…"), File (a local path), Stream (an HTTP relay URL) or Text (for boards and screens).
type Item struct {
	Content string `yaml:"content,omitempty" json:"content,omitempty"`
	File    string `yaml:"file,omitempty" json:"file,omitempty"`
	Stream  string `yaml:"stream,omitempty" json:"stream,omitempty"`
	// Stamped, beside a Stream, is the path on the hub that serves the same stream read once
	// by the hub and time-stamped, so that every cluster plays it in step (docs/sync.md). The
	// hub writes it; a device without the hub, or whose hub cannot reach the stream, plays
	// Stream itself.
	Stamped string `yaml:"stamped,omitempty" json:"stamped,omitempty"`
	Text    string `yaml:"text,omitempty" json:"text,omitempty"`
	// Duration is how long the item plays. Required for streams and text; for content and
	// files it is the length of the media when known (the hub fills it in), or a cut.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	Title    string   `yaml:"title,omitempty" json:"title,omitempty"`
	// Fallback is spoken (text to speech) on the speakers in place of a content or file item
	// that is not on the device when it is due, so an emergency is never silent; and in place
	// of a content, file or stream item that turns out to be dead air (docs/agent.md).
	Fallback string `yaml:"fallback_text,omitempty" json:"fallback_text,omitempty"`
	// Ticker is a line that scrolls along the bottom of the screen while the item is shown
	// (screens only; ignored by speakers and boards).
	Ticker string `yaml:"ticker,omitempty" json:"ticker,omitempty"`
}

// Ref names the item the way confirmations do: its content reference, path, URL or text.
func (it Item) Ref() string {
	switch {
	case it.Content != "":
		return it.Content
	case it.File != "":
		return "file:" + it.File
	case it.Stream != "":
		return it.Stream
	default:
		return "text:" + it.Text
	}
}

// ItemKind is what an item is; outputs switch on it rather than on the prefixes of its Ref.
type ItemKind string

const (
	KindContent ItemKind = "content" // Content: a sha256 reference into the content store
	KindFile    ItemKind = "file"    // File: a path on the device
	KindStream  ItemKind = "stream"  // Stream: an HTTP(S)/Icecast URL relayed live
	KindText    ItemKind = "text"    // Text: said on the speakers, shown on boards and screens
)

// Kind says which of its fields the item uses.
func (it Item) Kind() ItemKind {
	switch {
	case it.Content != "":
		return KindContent
	case it.File != "":
		return KindFile
	case it.Stream != "":
		return KindStream
	default:
		return KindText
	}
}

// Program is one entry of the schedule: what plays, when, on which outputs, at which class.
type Program struct {
	ID          string          `yaml:"id" json:"id"`
	Title       string          `yaml:"title,omitempty" json:"title,omitempty"`
	Class       Class           `yaml:"class" json:"class"`
	Priority    int             `yaml:"priority,omitempty" json:"priority,omitempty"`
	Cron        string          `yaml:"cron,omitempty" json:"cron,omitempty"`
	At          string          `yaml:"at,omitempty" json:"at,omitempty"`
	ValidFrom   *Date           `yaml:"valid_from,omitempty" json:"valid_from,omitempty"`
	ValidUntil  *Date           `yaml:"valid_until,omitempty" json:"valid_until,omitempty"`
	MaxDuration Duration        `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	Volume      *float64        `yaml:"volume,omitempty" json:"volume,omitempty"`
	OnInterrupt InterruptPolicy `yaml:"on_interrupt,omitempty" json:"on_interrupt,omitempty"`
	Repeat      *Repeat         `yaml:"repeat,omitempty" json:"repeat,omitempty"`
	Outputs     []string        `yaml:"outputs,omitempty" json:"outputs,omitempty"`
	Items       []Item          `yaml:"items" json:"items"`

	line int // where the programme starts in the source, for error messages
}

// Gain is the programme's volume, 1 when not given.
func (p *Program) Gain() float64 {
	if p.Volume == nil {
		return 1
	}
	return *p.Volume
}

// Document is one schedule: the same shape on the hub, on the wire and on disk.
type Document struct {
	Version    int          `yaml:"version" json:"version"`
	ID         string       `yaml:"id" json:"id"`
	Revision   int64        `yaml:"revision" json:"revision"`
	Timezone   string       `yaml:"timezone" json:"timezone"`
	QuietHours []QuietHours `yaml:"quiet_hours,omitempty" json:"quiet_hours,omitempty"`
	Programs   []Program    `yaml:"programs" json:"programs"`

	loc   *time.Location
	plans []programPlan // compiled start rules, one per programme, in document order
}

// Location is the document's time zone; valid only after Parse.
func (d *Document) Location() *time.Location { return d.loc }

// MaxDocumentBytes bounds what Parse reads: a schedule of thousands of programmes fits easily.
const MaxDocumentBytes = 8 << 20

// Parse reads a schedule document (YAML, or JSON which is YAML too), validates it and
// prepares it for compiling. On any error nothing is returned: a document is whole or refused.
// name is used in error messages (a file name, or "push from hub").
func Parse(name string, data []byte) (*Document, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%s: schedule is %d bytes, more than the %d allowed", name, len(data), MaxDocumentBytes)
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, fmt.Errorf("%s: schedule is empty", name)
	}
	var doc Document
	if err := decodeStrict(data, &doc); err != nil {
		// Say what is wrong in the words of a schedule, not of the decoder, where we can.
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, fmt.Errorf("%s: not valid YAML or JSON: %v", name, cleanYAMLError(err))
		}
		if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: a schedule must be a mapping with version, id, revision, timezone and programs", name)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if err := doc.prepare(); err != nil {
		// Errors name the line of each programme: find them now (parsing for lines costs as
		// much as decoding, so it is done only when there is something to report).
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil && len(root.Content) > 0 {
			recordProgramLines(root.Content[0], &doc)
			err = doc.prepare()
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &doc, nil
}

// decodeStrict decodes refusing unknown fields, so a misspelt "max_duraton" is an error rather
// than a silently ignored limit. (yaml.v3 offers that only on a Decoder.)
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%v", cleanYAMLError(err))
	}
	return nil
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n  ")
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.ReplaceAll(s, "\n  ", "; ")
	s = strings.ReplaceAll(s, " in type scheduler.Program", " in a program")
	s = strings.ReplaceAll(s, " in type scheduler.Document", " in the schedule")
	s = strings.ReplaceAll(s, " in type scheduler.Item", " in an item")
	return s
}

func recordProgramLines(m *yaml.Node, doc *Document) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "programs" || m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, p := range m.Content[i+1].Content {
			if j < len(doc.Programs) {
				doc.Programs[j].line = p.Line
			}
		}
	}
}

// Encode writes the document as JSON, the form the hub signs and sends.
func (d *Document) Encode() ([]byte, error) { return json.Marshal(d) }
