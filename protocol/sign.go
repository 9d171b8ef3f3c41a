package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Signed is a payload and an ed25519 signature over exactly its bytes. On the wire payload and
// sig are base64 (standard alphabet, padded): the receiver verifies the decoded bytes as they
// are and only then parses them, so nothing is ever re-serialised before verification.
type Signed struct {
	KeyID   string `json:"key_id"`
	Payload []byte `json:"payload"`
	Sig     []byte `json:"sig"`
}

// Payload kinds. The kind is inside the signed bytes, so a signed command can never be taken
// for a schedule or the other way round.
const (
	KindSchedule = "schedule"
	KindCommand  = "command"
)

// Schedule document formats.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// SchedulePayload is the signed content of a schedule message: the schedule document exactly
// as authored (the bytes the agent stores), with the id and revision it claims and the
// devices it is for. The agent must also check that the document itself says the same id and
// revision (the scheduler parses it).
type SchedulePayload struct {
	Kind       string    `json:"kind"`
	ScheduleID string    `json:"schedule_id"`
	Revision   uint64    `json:"revision"`
	Devices    []string  `json:"devices"`
	IssuedAt   time.Time `json:"issued_at"`
	Format     string    `json:"format"`
	Document   string    `json:"document"`
}

func (p *SchedulePayload) check() error {
	c := &checker{t: "schedule payload"}
	if p.Kind != KindSchedule {
		c.fail("kind", ErrInvalidField, "%q, want %q", clip(p.Kind), KindSchedule)
	}
	c.id("schedule_id", p.ScheduleID)
	if p.Revision == 0 {
		c.fail("revision", ErrMissingField, "required (revisions start at 1)")
	}
	c.devices(p.Devices)
	c.time("issued_at", p.IssuedAt)
	if p.Format != FormatYAML && p.Format != FormatJSON {
		c.fail("format", ErrInvalidField, "%q, want %q or %q", clip(p.Format), FormatYAML, FormatJSON)
	}
	if p.Document == "" {
		c.fail("document", ErrMissingField, "required")
	} else if !utf8.ValidString(p.Document) {
		c.fail("document", ErrInvalidField, "not valid UTF-8 (a schedule document is UTF-8 text)")
	}
	return c.err
}

// Command actions.
const (
	ActionPlayNow = "play_now"
	ActionStop    = "stop"
	ActionVolume  = "volume"
	ActionReload  = "reload"
	// ActionScreenshot asks the device for an image of its screen now; the agent uploads it
	// to the hub (POST /agent/screenshot?command=ID) before it reports the command executed.
	ActionScreenshot = "screenshot"
)

// CommandProgram prefixes the programme id an agent gives a play_now (command:<id>), so its
// confirmations name the command (Confirmation.CommandID).
const CommandProgram = "command:"

// CommandOf is the command id a play_now's programme id carries ("" for a scheduled one).
func CommandOf(program string) string {
	id, ok := strings.CutPrefix(program, CommandProgram)
	if !ok {
		return ""
	}
	return id
}

// MaxCommandLifetime bounds expires_at - issued_at. A command is an immediate act; a bounded
// lifetime also bounds how long the agent must remember command ids against replay.
const MaxCommandLifetime = 24 * time.Hour

// CommandPayload is the signed content of a command message.
type CommandPayload struct {
	Kind string `json:"kind"`
	// ID is unique per command; Seq increases strictly with every command the hub signs with
	// one key. The agent refuses an id it has seen, or a seq not above the highest it accepted.
	ID        string    `json:"id"`
	Seq       uint64    `json:"seq"`
	Devices   []string  `json:"devices"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IssuedBy  string    `json:"issued_by,omitempty"` // the staff account, for the agent's log
	Action    string    `json:"action"`
	Output    string    `json:"output,omitempty"`  // all outputs when absent
	Volume    *float64  `json:"volume,omitempty"`  // volume: 0..1
	Content   string    `json:"content,omitempty"` // play_now: sha256:… from the store
	Stream    string    `json:"stream,omitempty"`  // play_now: a stream URL instead
	Class     string    `json:"class,omitempty"`   // play_now: normal | priority | emergency
	Title     string    `json:"title,omitempty"`   // play_now: shown and journalled as the program
}

func (p *CommandPayload) check() error {
	c := &checker{t: "command payload"}
	if p.Kind != KindCommand {
		c.fail("kind", ErrInvalidField, "%q, want %q", clip(p.Kind), KindCommand)
	}
	c.id("id", p.ID)
	if p.Seq == 0 {
		c.fail("seq", ErrMissingField, "required (sequences start at 1)")
	}
	c.devices(p.Devices)
	c.time("issued_at", p.IssuedAt)
	c.time("expires_at", p.ExpiresAt)
	if c.err == nil {
		if life := p.ExpiresAt.Sub(p.IssuedAt); life <= 0 {
			c.fail("expires_at", ErrInvalidField, "expires_at %s is not after issued_at %s",
				p.ExpiresAt.Format(time.RFC3339), p.IssuedAt.Format(time.RFC3339))
		} else if life > MaxCommandLifetime {
			c.fail("expires_at", ErrInvalidField, "lifetime %s exceeds the maximum %s", life, MaxCommandLifetime)
		}
	}
	switch p.Action {
	case ActionPlayNow:
		if (p.Content == "") == (p.Stream == "") {
			c.fail("content", ErrMissingField, "play_now needs exactly one of content or stream")
		}
		c.optWord("class", p.Class)
	case ActionVolume:
		if p.Volume == nil {
			c.fail("volume", ErrMissingField, "required for the volume action")
		}
		c.unit("volume", p.Volume)
	case ActionStop, ActionReload, ActionScreenshot:
	case "":
		c.fail("action", ErrMissingField, "required")
	default:
		c.fail("action", ErrInvalidField, "unknown action %q (known: play_now, stop, volume, reload, screenshot)", clip(p.Action))
	}
	return c.err
}

func (c *checker) devices(ds []string) {
	if len(ds) == 0 {
		c.fail("devices", ErrMissingField, "required (the devices this is for)")
	}
	for i, d := range ds {
		c.id(fmt.Sprintf("devices[%d]", i), d)
	}
}

// Verification refusals, each wrapped in a *RefusedError. Test with errors.Is.
var (
	ErrUnsigned     = errors.New("unsigned")
	ErrUnknownKey   = errors.New("unknown signing key")
	ErrBadSignature = errors.New("bad signature")
	ErrBadPayload   = errors.New("bad signed payload")
	ErrWrongDevice  = errors.New("not addressed to this device")
	ErrExpired      = errors.New("expired")
	ErrReplayed     = errors.New("replayed")
)

// RefusedError is why a schedule or command was refused: Code for the hub's tables, Reason
// for a human, and the sentinel (ErrUnsigned, …) for errors.Is.
type RefusedError struct {
	Code   string
	Reason string
	Err    error
}

func (e *RefusedError) Error() string { return "refused (" + e.Code + "): " + e.Reason }
func (e *RefusedError) Unwrap() error { return e.Err }

func refuse(sentinel error, format string, a ...any) error {
	return &RefusedError{Code: codes[sentinel], Reason: fmt.Sprintf(format, a...), Err: sentinel}
}

// codes maps every sentinel of this package to its wire code (ErrorMessage.Code,
// Delivery.Code). It is never modified.
var codes = map[error]string{
	ErrTooLarge:           CodeTooLarge,
	ErrBadJSON:            CodeBadJSON,
	ErrUnsupportedVersion: CodeUnsupportedVersion,
	ErrUnknownType:        CodeUnknownType,
	ErrMissingField:       CodeMissingField,
	ErrInvalidField:       CodeInvalidField,
	ErrUnsigned:           CodeUnsigned,
	ErrUnknownKey:         CodeUnknownKey,
	ErrBadSignature:       CodeBadSignature,
	ErrBadPayload:         CodeBadPayload,
	ErrWrongDevice:        CodeWrongDevice,
	ErrExpired:            CodeExpired,
	ErrReplayed:           CodeReplayed,
}

// CodeOf returns the wire code for an error of this package ("bad_signature", "too_large",
// …), or "internal" for any other error.
func CodeOf(err error) string {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Code
	}
	// A MessageError's sentinel is checked last so that a refusal wrapping a message fault
	// (a bad payload) keeps its refusal code.
	for _, s := range []error{ErrTooLarge, ErrBadJSON, ErrUnsupportedVersion, ErrUnknownType,
		ErrMissingField, ErrInvalidField} {
		if errors.Is(err, s) {
			return codes[s]
		}
	}
	return CodeInternal
}

// Signer signs schedules and commands on the hub.
type Signer struct {
	keyID string
	priv  ed25519.PrivateKey
}

// NewSigner returns a signer for a private key known to agents under keyID.
func NewSigner(keyID string, priv ed25519.PrivateKey) (*Signer, error) {
	if err := checkID(keyID); err != nil || keyID == "" {
		return nil, fmt.Errorf("protocol: signing key id %q: must be 1-%d printable bytes without spaces", keyID, MaxIDBytes)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("protocol: signing key %s: %d bytes, an ed25519 private key has %d", keyID, len(priv), ed25519.PrivateKeySize)
	}
	return &Signer{keyID: keyID, priv: priv}, nil
}

// KeyID is the id agents know this signer's public key by.
func (s *Signer) KeyID() string { return s.keyID }

// PublicKey is the key agents list under KeyID in their trusted_keys.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign signs payload as it is. The payload is not copied: do not modify it afterwards.
func (s *Signer) Sign(payload []byte) *Signed {
	return &Signed{KeyID: s.keyID, Payload: payload, Sig: ed25519.Sign(s.priv, payload)}
}

// SignSchedule checks p, encodes it and signs the encoding. Kind is set for the caller.
func (s *Signer) SignSchedule(p SchedulePayload) (*Signed, error) {
	p.Kind = KindSchedule
	if err := p.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding schedule payload: %w", err)
	}
	return s.Sign(b), nil
}

// SignCommand checks p, encodes it and signs the encoding. Kind is set for the caller.
func (s *Signer) SignCommand(p CommandPayload) (*Signed, error) {
	p.Kind = KindCommand
	if err := p.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding command payload: %w", err)
	}
	return s.Sign(b), nil
}

// Clock is the verifier's source of time. On the agent it should be the clock corrected by
// the offset learned at welcome, so a Pi booting with a wrong clock still judges expiry right.
type Clock interface{ Now() time.Time }

// Verifier checks pushes on the agent against the trusted keys of its config.
type Verifier struct {
	keys   TrustedKeys
	device string
	clock  Clock
	// maxScheduleAge, when set, bounds how long ago a schedule may have been signed.
	maxScheduleAge time.Duration
}

// MaxScheduleAge is how long after its signing an agent still accepts a schedule. A schedule
// has no expiry of its own, and an agent that lost its state holds no revision to refuse a
// replay by: without this, any schedule ever captured for its id would be accepted. The hub
// re-signs what it resends once it is half this old, so a device offline for months still
// gets its schedule.
const MaxScheduleAge = 60 * 24 * time.Hour

// SetMaxScheduleAge makes VerifySchedule refuse a schedule signed longer ago than d by the
// verifier's clock (0: no limit).
func (v *Verifier) SetMaxScheduleAge(d time.Duration) { v.maxScheduleAge = d }

// NewVerifier returns a verifier for device deviceID trusting keys.
func NewVerifier(keys TrustedKeys, deviceID string, clock Clock) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("protocol: no trusted keys: every push would be refused; add the hub's public key to the agent config")
	}
	for _, id := range keys.IDs() {
		// ed25519.Verify panics on a key of the wrong size: refuse it here, once.
		if len(keys[id]) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("protocol: trusted key %s: %d bytes, an ed25519 public key has %d", id, len(keys[id]), ed25519.PublicKeySize)
		}
	}
	if deviceID == "" {
		return nil, errors.New("protocol: verifier needs the device id")
	}
	if clock == nil {
		return nil, errors.New("protocol: verifier needs a clock")
	}
	return &Verifier{keys: keys, device: deviceID, clock: clock}, nil
}

// Verify checks that s is signed by a trusted key and returns the payload bytes it covers.
func (v *Verifier) Verify(s *Signed) ([]byte, error) {
	if s == nil || len(s.Sig) == 0 || s.KeyID == "" {
		return nil, refuse(ErrUnsigned, "no signature: only pushes signed by a trusted key are accepted")
	}
	if len(s.Payload) == 0 {
		return nil, refuse(ErrUnsigned, "nothing signed: the payload is empty")
	}
	pub, ok := v.keys[s.KeyID]
	if !ok {
		return nil, refuse(ErrUnknownKey, "signed with key %q, which is not among the trusted keys (%s); add it to the agent config if it is the hub's new key",
			clip(s.KeyID), strings.Join(v.keys.IDs(), ", "))
	}
	if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, s.Payload, s.Sig) {
		return nil, refuse(ErrBadSignature, "the signature does not match the payload for key %q: altered in transit or signed with another key", s.KeyID)
	}
	return s.Payload, nil
}

// decodeSigned parses verified payload bytes strictly: an unknown field in a signed payload
// may carry a meaning this agent would miss, so it is refused rather than ignored.
func decodeSigned(b []byte, dst any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// HeldRevision reports the highest revision of a schedule id the agent has ever accepted
// (pending or active, including revisions since replaced), and whether it has any.
type HeldRevision func(scheduleID string) (revision uint64, ok bool)

// VerifySchedule verifies a schedule push: signature, payload, that it is addressed to this
// device, and that its revision is newer than held reports. It does not record the revision:
// the agent does that when it stores the document.
func (v *Verifier) VerifySchedule(s *Signed, held HeldRevision) (*SchedulePayload, error) {
	b, err := v.Verify(s)
	if err != nil {
		return nil, err
	}
	var p SchedulePayload
	if err := decodeSigned(b, &p); err != nil {
		return nil, refuse(ErrBadPayload, "signed schedule payload: %v", err)
	}
	if err := p.check(); err != nil {
		return nil, refuse(ErrBadPayload, "%v", err)
	}
	if !slices.Contains(p.Devices, v.device) {
		return nil, refuse(ErrWrongDevice, "schedule %s revision %d is for %s, not for this device %s",
			p.ScheduleID, p.Revision, listClip(p.Devices), v.device)
	}
	if v.maxScheduleAge > 0 {
		if now := v.clock.Now(); now.Sub(p.IssuedAt) > v.maxScheduleAge {
			return nil, refuse(ErrExpired, "schedule %s revision %d was signed at %s, more than %d days before this device's time %s: a captured old schedule is not accepted; the hub re-signs it when it sends it again (upgrade a hub that does not)",
				p.ScheduleID, p.Revision, p.IssuedAt.UTC().Format(time.RFC3339), int(v.maxScheduleAge/(24*time.Hour)), now.UTC().Format(time.RFC3339))
		}
	}
	if held != nil {
		if r, ok := held(p.ScheduleID); ok && p.Revision <= r {
			return nil, refuse(ErrReplayed, "schedule %s revision %d is not newer than revision %d already received",
				p.ScheduleID, p.Revision, r)
		}
	}
	return &p, nil
}

// VerifyCommand verifies a command push: signature, payload, device, expiry by the
// verifier's clock, and replay against log. When it succeeds the command is recorded in log,
// so the same command is refused next time; persist log.State() before acting on it.
func (v *Verifier) VerifyCommand(s *Signed, log *CommandLog) (*CommandPayload, error) {
	b, err := v.Verify(s)
	if err != nil {
		return nil, err
	}
	var p CommandPayload
	if err := decodeSigned(b, &p); err != nil {
		return nil, refuse(ErrBadPayload, "signed command payload: %v", err)
	}
	if err := p.check(); err != nil {
		return nil, refuse(ErrBadPayload, "%v", err)
	}
	if !slices.Contains(p.Devices, v.device) {
		return nil, refuse(ErrWrongDevice, "command %s is for %s, not for this device %s",
			p.ID, listClip(p.Devices), v.device)
	}
	now := v.clock.Now()
	if !now.Before(p.ExpiresAt) {
		return nil, refuse(ErrExpired, "command %s (%s) expired at %s; device time is %s",
			p.ID, p.Action, p.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if log == nil {
		return nil, errors.New("protocol: VerifyCommand needs a CommandLog")
	}
	if err := log.accept(s.KeyID, &p, now); err != nil {
		return nil, err
	}
	return &p, nil
}

func listClip(ds []string) string {
	if len(ds) > 3 {
		return strings.Join(ds[:3], ", ") + fmt.Sprintf(" and %d more", len(ds)-3)
	}
	return strings.Join(ds, ", ")
}

// CommandLog is the agent's memory of accepted commands, against replay: per signing key the
// highest sequence accepted, and every command id until it expires. The agent persists
// State() and restores it with NewCommandLog, so a reboot does not reopen the window.
type CommandLog struct {
	mu      sync.Mutex
	highest map[string]uint64
	seen    map[string]time.Time
}

// CommandLogState is the persistent form of a CommandLog.
type CommandLogState struct {
	// HighestSeq is, per key id, the highest command sequence accepted.
	HighestSeq map[string]uint64 `json:"highest_seq"`
	// Seen maps the ids of accepted commands to their expiry.
	Seen map[string]time.Time `json:"seen"`
}

// NewCommandLog returns a log holding state (the zero state for a new device).
func NewCommandLog(state CommandLogState) *CommandLog {
	l := &CommandLog{highest: map[string]uint64{}, seen: map[string]time.Time{}}
	for k, v := range state.HighestSeq {
		l.highest[k] = v
	}
	for k, v := range state.Seen {
		l.seen[k] = v
	}
	return l
}

// State returns a copy of the log for persistence.
func (l *CommandLog) State() CommandLogState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := CommandLogState{HighestSeq: make(map[string]uint64, len(l.highest)), Seen: make(map[string]time.Time, len(l.seen))}
	for k, v := range l.highest {
		s.HighestSeq[k] = v
	}
	for k, v := range l.seen {
		s.Seen[k] = v
	}
	return s
}

func (l *CommandLog) accept(keyID string, p *CommandPayload, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.seen[p.ID]; dup {
		return refuse(ErrReplayed, "command id %s was already received", p.ID)
	}
	if h := l.highest[keyID]; p.Seq <= h {
		return refuse(ErrReplayed, "command %s has sequence %d, not above %d already accepted from key %s",
			p.ID, p.Seq, h, keyID)
	}
	l.highest[keyID] = p.Seq
	// An expired command is refused anyway, so its id need not be remembered any longer.
	for id, exp := range l.seen {
		if !now.Before(exp) {
			delete(l.seen, id)
		}
	}
	l.seen[p.ID] = p.ExpiresAt
	return nil
}

// TrustedKeys are the public keys an agent accepts pushes from, by key id.
type TrustedKeys map[string]ed25519.PublicKey

// IDs returns the key ids, sorted.
func (k TrustedKeys) IDs() []string {
	ids := make([]string, 0, len(k))
	for id := range k {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ParseTrustedKeys parses the trusted keys of an agent config: key id -> public key in any
// form ParsePublicKey accepts. Errors name the key id.
func ParseTrustedKeys(m map[string]string) (TrustedKeys, error) {
	if len(m) == 0 {
		return nil, errors.New("protocol: no trusted keys given")
	}
	keys := make(TrustedKeys, len(m))
	for _, id := range sortedKeys(m) {
		if err := checkID(id); err != nil || id == "" {
			return nil, fmt.Errorf("protocol: trusted key id %q: must be 1-%d printable bytes without spaces", id, MaxIDBytes)
		}
		pub, err := ParsePublicKey(m[id])
		if err != nil {
			return nil, fmt.Errorf("protocol: trusted key %s: %w", id, err)
		}
		keys[id] = pub
	}
	return keys, nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
