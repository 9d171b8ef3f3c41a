// Package protocol defines the messages the agent and the hub exchange over their one
// websocket, how they are framed (a versioned JSON envelope), how schedules and commands are
// signed and verified, device secrets, the reconnect policy, and the words both sides share
// (the content reference, ContentRef, with its one parser). It does no I/O: callers hand
// it bytes (or an io.Reader of one websocket frame) and write the bytes it returns.
//
// docs/protocol.md is the reference for the wire format; this package is its implementation.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Version is the protocol version this package speaks. Every message carries it as "v".
const Version = 1

// DefaultMaxMessageBytes bounds one message. Schedule documents ride inside messages (base64
// of a JSON payload), so this leaves room for a schedule document of about 700 kB.
const DefaultMaxMessageBytes = 1 << 20

// DefaultMaxRecords bounds the confirmation records in one batch.
const DefaultMaxRecords = 1000

// Type names a message type on the wire.
type Type string

// The message types of protocol version 1.
const (
	TypeHello         Type = "hello"
	TypeWelcome       Type = "welcome"
	TypeSchedule      Type = "schedule"
	TypeCommand       Type = "command"
	TypeConfirmations Type = "confirmations"
	TypeAck           Type = "ack"
	TypeStatus        Type = "status"
	TypeDelivery      Type = "delivery"
	TypeError         Type = "error"
	TypeTime          Type = "time"
	TypeNeighbours    Type = "neighbours"
	TypeUpgrade       Type = "upgrade"
)

// Types lists every message type of this version, in the order docs/protocol.md presents them.
func Types() []Type {
	return []Type{TypeHello, TypeWelcome, TypeSchedule, TypeCommand, TypeConfirmations,
		TypeAck, TypeStatus, TypeDelivery, TypeError, TypeTime, TypeNeighbours, TypeUpgrade}
}

// newMessage returns an empty message of type t, or nil for an unknown type.
func newMessage(t Type) Message {
	switch t {
	case TypeTime:
		return &Time{}
	case TypeHello:
		return &Hello{}
	case TypeWelcome:
		return &Welcome{}
	case TypeSchedule:
		return &Schedule{}
	case TypeCommand:
		return &Command{}
	case TypeConfirmations:
		return &Confirmations{}
	case TypeAck:
		return &Ack{}
	case TypeStatus:
		return &Status{}
	case TypeDelivery:
		return &Delivery{}
	case TypeError:
		return &ErrorMessage{}
	case TypeNeighbours:
		return &Neighbours{}
	case TypeUpgrade:
		return &Upgrade{}
	}
	return nil
}

// Header is the part of the envelope every message has besides "v" and "type" (which Encode
// writes from the Go type and Decode checks): the message id, and the id of the message this
// one answers, if any.
type Header struct {
	// ID identifies the message for logs and replies; unique per sender and connection.
	ID string `json:"id"`
	// Re is the id of the message this one answers (ack, error, delivery), if any.
	Re string `json:"re,omitempty"`
}

// Envelope returns the header so that code handling any Message can read or set its id.
func (h *Header) Envelope() *Header { return h }

// Message is one of the message types of this package: *Hello, *Welcome, *Schedule, *Command,
// *Confirmations, *Ack, *Status, *Delivery, *ErrorMessage, *Time, *Neighbours or *Upgrade. Decode returns one; use a type
// switch on it.
type Message interface {
	// Type is the wire name of the message type.
	Type() Type
	// Envelope is the message's header (id, re).
	Envelope() *Header
	validate(c *checker)
}

// Limits are the bounds a decoder enforces (and an encoder, so a sender never produces what
// its peer will refuse). The zero value of a field means its default.
type Limits struct {
	// MaxMessageBytes bounds one encoded message; default DefaultMaxMessageBytes. Set the
	// websocket read limit (gorilla's Conn.SetReadLimit) to the same value so an oversized
	// frame is refused before it is buffered.
	MaxMessageBytes int
	// MaxRecords bounds the records of one confirmations batch; default DefaultMaxRecords.
	MaxRecords int
}

// DefaultLimits returns the limits used by Decode and Encode.
func DefaultLimits() Limits {
	return Limits{MaxMessageBytes: DefaultMaxMessageBytes, MaxRecords: DefaultMaxRecords}
}

func (l Limits) orDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	return l
}

// Errors a decoder (or encoder) returns, wrapped in a *MessageError that says where. Test
// with errors.Is.
var (
	ErrTooLarge           = errors.New("message too large")
	ErrBadJSON            = errors.New("bad JSON")
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
	ErrUnknownType        = errors.New("unknown message type")
	ErrMissingField       = errors.New("missing required field")
	ErrInvalidField       = errors.New("invalid field")
)

// MessageError says what is wrong with a message and where: the message type when known, the
// field as a JSON path (records[3].seq) and, for JSON errors, the byte offset.
type MessageError struct {
	Type   Type   // message type, "" when not known yet
	Field  string // JSON path of the faulty field, "" for the whole message
	Offset int64  // byte offset in the message of a JSON error, -1 when not applicable
	Reason string // what is wrong, for a human
	Err    error  // one of the Err* values above
}

func (e *MessageError) Error() string {
	var b strings.Builder
	b.WriteString("protocol: ")
	if e.Type != "" {
		b.WriteString(string(e.Type))
		if !strings.HasSuffix(string(e.Type), " payload") { // signed payloads are not messages
			b.WriteString(" message")
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " (at byte %d)", e.Offset)
	}
	return b.String()
}

func (e *MessageError) Unwrap() error { return e.Err }

// Decode decodes one message with DefaultLimits.
func Decode(b []byte) (Message, error) { return DefaultLimits().Decode(b) }

// Encode encodes one message with DefaultLimits.
func Encode(m Message) ([]byte, error) { return DefaultLimits().Encode(m) }

// DecodeReader reads one message (one websocket frame: gorilla's Conn.NextReader) and decodes
// it. It reads at most MaxMessageBytes+1 bytes, so an oversized frame costs no more memory.
func (l Limits) DecodeReader(r io.Reader) (Message, error) {
	l = l.orDefaults()
	b, err := io.ReadAll(io.LimitReader(r, int64(l.MaxMessageBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("protocol: reading message: %w", err)
	}
	return l.Decode(b)
}

// canonicalPrefix is how Encode starts every message. When a message starts so, its version
// and type are read from the prefix and the message is parsed once; otherwise a first pass
// (probe) finds them. (A key repeated in the envelope is undefined JSON; here the first "v"
// and "type" count when they lead the object, the last otherwise.)
const canonicalPrefix = `{"v":1,"type":"`

func canonicalType(b []byte) (Type, bool) {
	if !bytes.HasPrefix(b, []byte(canonicalPrefix)) {
		return "", false
	}
	rest := b[len(canonicalPrefix):]
	for i, c := range rest {
		switch {
		case c == '"' && i > 0:
			return Type(rest[:i]), true
		case c < 'a' || c > 'z':
			return "", false // an escape, or not a type name: take the slow path
		}
	}
	return "", false
}

// probe is the first pass of Decode: just enough to choose the message type.
type probe struct {
	V    *int    `json:"v"`
	Type *string `json:"type"`
}

// Decode checks the size, the JSON, the version and the type of b, decodes it into the
// matching message and checks its required fields. Unknown fields are ignored (see the
// versioning rules in docs/protocol.md). It never panics; every error is a *MessageError.
func (l Limits) Decode(b []byte) (Message, error) {
	l = l.orDefaults()
	if len(b) > l.MaxMessageBytes {
		return nil, &MessageError{Offset: -1, Err: ErrTooLarge,
			Reason: fmt.Sprintf("message is %d bytes, the limit is %d", len(b), l.MaxMessageBytes)}
	}
	t, ok := canonicalType(b)
	if !ok {
		var p probe
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, jsonError("", b, err)
		}
		if p.V == nil {
			return nil, &MessageError{Field: "v", Offset: -1, Err: ErrMissingField,
				Reason: fmt.Sprintf("required (the protocol version, %d)", Version)}
		}
		if *p.V != Version {
			return nil, &MessageError{Field: "v", Offset: -1, Err: ErrUnsupportedVersion,
				Reason: fmt.Sprintf("version %d is not supported; this side speaks version %d", *p.V, Version)}
		}
		if p.Type == nil || *p.Type == "" {
			return nil, &MessageError{Field: "type", Offset: -1, Err: ErrMissingField, Reason: "required"}
		}
		t = Type(*p.Type)
	}
	m := newMessage(t)
	if m == nil {
		return nil, &MessageError{Field: "type", Offset: -1, Err: ErrUnknownType,
			Reason: fmt.Sprintf("unknown message type %q (known: %s)", clip(string(t)), typeList())}
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, jsonError(t, b, err)
	}
	c := &checker{t: t, limits: l}
	m.validate(c)
	if c.err != nil {
		return nil, c.err
	}
	return m, nil
}

// Encode checks m as Decode would and returns its bytes: the envelope's "v" and "type"
// followed by the message's fields. It does not modify m, so one message may be encoded by
// many goroutines at once (a push to many devices).
func (l Limits) Encode(m Message) ([]byte, error) {
	l = l.orDefaults()
	if m == nil {
		return nil, &MessageError{Offset: -1, Err: ErrInvalidField, Reason: "nil message"}
	}
	t := m.Type()
	c := &checker{t: t, limits: l}
	m.validate(c)
	if c.err != nil {
		return nil, c.err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, &MessageError{Type: t, Offset: -1, Err: ErrInvalidField, Reason: err.Error()}
	}
	// body is a JSON object with at least "id" (checked above): splice the envelope in front.
	var out bytes.Buffer
	out.Grow(len(body) + 32 + len(t))
	fmt.Fprintf(&out, `{"v":%d,"type":%q,`, Version, t)
	out.Write(body[1:])
	if out.Len() > l.MaxMessageBytes {
		return nil, &MessageError{Type: t, Offset: -1, Err: ErrTooLarge,
			Reason: fmt.Sprintf("message is %d bytes, the limit is %d", out.Len(), l.MaxMessageBytes)}
	}
	return out.Bytes(), nil
}

// jsonError turns an encoding/json error into a MessageError that says where.
func jsonError(t Type, b []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &MessageError{Type: t, Offset: syn.Offset, Err: ErrBadJSON, Reason: "bad JSON: " + syn.Error()}
	case errors.As(err, &typ) && typ.Type != nil:
		if typ.Field == "" {
			return &MessageError{Type: t, Offset: typ.Offset, Err: ErrBadJSON,
				Reason: fmt.Sprintf("a message must be a JSON object, not %s", typ.Value)}
		}
		field, off := typ.Field, typ.Offset
		if p, start, ok := locateOffset(b, typ.Offset); ok && p != "" {
			field, off = p, start
		}
		return &MessageError{Type: t, Field: field, Offset: off, Err: ErrInvalidField,
			Reason: fmt.Sprintf("expected %s, got JSON %s", goTypeName(typ.Type.String()), typ.Value)}
	default:
		// Errors from UnmarshalJSON methods (time.Time, base64 []byte) and unexpected EOF.
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if p, off, reason, ok := locateBadValue(b); ok {
			return &MessageError{Type: t, Field: p, Offset: off, Err: ErrInvalidField, Reason: reason}
		}
		return &MessageError{Type: t, Offset: -1, Err: ErrBadJSON, Reason: "bad JSON: " + msg}
	}
}

// goTypeName names a Go type in words a technician knows.
func goTypeName(s string) string {
	switch s {
	case "int", "int64", "int32":
		return "an integer"
	case "uint64", "uint32", "uint":
		return "a non-negative integer"
	case "float64", "float32":
		return "a number"
	case "string", "protocol.Type":
		return "a string"
	case "bool":
		return "true or false"
	}
	if strings.HasPrefix(s, "[]") {
		return "an array"
	}
	return "an object"
}

func typeList() string {
	var s []string
	for _, t := range Types() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

// clip shortens outside text quoted back in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
