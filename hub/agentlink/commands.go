package agentlink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// Commands (play_now, stop, volume, reload) are signed orders for every device of an area or
// for one device. One command has one id and one seq; it is signed in parts naming at most
// CommandPartDevices devices each, so the message a device gets stays small however large the
// area (a single payload naming every device of a province would be hundreds of kB per device,
// and past the 1 MiB message limit for a large one). Agents check their own id against the
// part's devices, the expiry, and the id and seq against their replay memory.

const (
	CommandPartDevices = 50
	DefaultCommandLife = 10 * time.Minute
	defaultStreamLife  = time.Hour
	minCommandLife     = 5 * time.Second
	maxCommandWriters  = 8 // connections written to at once by a fan-out
)

// commandState orders commands on every connection. Issuing a command (its seq, its row, the
// fan-out) holds mu exclusively; a connection's start (its pending commands written, then
// open to new ones) holds it shared. So each device gets its commands in seq order, none
// twice on one connection and none missed: a command stored before a connection's start is
// among its pending ones, one stored after finds it open.
type commandState struct {
	mu      sync.RWMutex
	lastSeq int64 // highest seq signed; 0: read from the store first
}

// CommandStore is what commands need of the store (embedded in Store).
type CommandStore interface {
	AddCommand(ctx context.Context, c store.Command) error
	LastCommandSeq(ctx context.Context) (int64, error)
	PendingCommands(ctx context.Context, deviceID string, now time.Time) ([]store.PendingCommand, error)
	MarkCommandsSent(ctx context.Context, sends []store.CommandSend) error
	CommandDeviceState(ctx context.Context, commandID, deviceID string) (store.CommandDevice, error)
	ReportCommand(ctx context.Context, commandID, deviceID string, state store.CommandState, code, reason string) error
	GetCommand(ctx context.Context, id, area string) (store.Command, error)
	ListCommands(ctx context.Context, f store.CommandFilter) ([]store.Command, error)
}

var outputName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// commandTemplate checks a request and returns the payload every part shares, and its
// lifetime. The error is for staff: it says what to change.
func commandTemplate(req api.CommandRequest) (protocol.CommandPayload, time.Duration, error) {
	pl := protocol.CommandPayload{Action: req.Action, Output: req.Output}
	bad := func(format string, a ...any) (protocol.CommandPayload, time.Duration, error) {
		return pl, 0, fmt.Errorf(format, a...)
	}
	if req.Output != "" && !outputName.MatchString(req.Output) {
		return bad("output %q: name one output of the devices, e.g. speakers, screen or board", req.Output)
	}
	if req.Volume != nil && req.Action != protocol.ActionVolume {
		return bad("volume is given only with the volume action (to play at another volume, set the volume first)")
	}
	if req.Action != protocol.ActionPlayNow && (req.Content != "" || req.Stream != "" || req.Class != "" || req.Title != "") {
		return bad("content, stream, class and title belong to play_now, not to %s", req.Action)
	}
	life := DefaultCommandLife
	switch req.Action {
	case protocol.ActionVolume:
		if req.Volume == nil {
			return bad("volume needs a level from 0 to 1, e.g. 0.6")
		}
		if v := *req.Volume; math.IsNaN(v) || v < 0 || v > 1 {
			return bad("volume %g: give a level from 0 (silent) to 1 (full)", v)
		}
		pl.Volume = req.Volume
	case protocol.ActionStop:
	case protocol.ActionScreenshot:
		if req.Output != "" && req.Output != "screen" {
			return bad("screenshot takes an image of the screen output; leave out the output or give screen")
		}
	case protocol.ActionReload:
		if req.Output != "" {
			return bad("reload applies to the whole device; leave out the output")
		}
	case protocol.ActionPlayNow:
		switch {
		case (req.Content == "") == (req.Stream == ""):
			return bad("play_now needs one of content (sha256:… from `loa content add`) or stream (an http(s) URL), not both")
		case req.Content != "":
			if _, _, err := store.ParseRef(req.Content); err != nil {
				return bad("content %q: give the sha256:… reference `loa content add` printed", req.Content)
			}
		default:
			u, err := url.Parse(req.Stream)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return bad("stream %q: give the http:// or https:// URL of the stream", req.Stream)
			}
			life = defaultStreamLife
		}
		switch req.Class {
		case "", "normal", "priority", "emergency":
		default:
			return bad("class %q: use normal, priority (the default) or emergency", req.Class)
		}
		if len(req.Title) > 200 || !utf8.ValidString(req.Title) {
			return bad("title: at most 200 bytes of UTF-8 text")
		}
		pl.Content, pl.Stream, pl.Class, pl.Title = req.Content, req.Stream, req.Class, req.Title
	case "":
		return bad("a command needs an action: play_now, stop, volume, reload or screenshot")
	default:
		return bad("unknown action %q: use play_now, stop, volume, reload or screenshot", req.Action)
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d < minCommandLife || d > protocol.MaxCommandLifetime {
			return bad("expires_in %q: give a duration from %s to %s, e.g. 30m", req.ExpiresIn, minCommandLife, protocol.MaxCommandLifetime)
		}
		life = d
	}
	return pl, life, nil
}

// Issue is POST /api/commands.
func (s *Link) Issue(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ctx := r.Context()
	cst := s.st
	var req api.CommandRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if req.To == "" {
		staffapi.Error(w, http.StatusBadRequest, "a command needs a target: use --to AREA or --to DEVICE")
		return
	}
	tmpl, life, err := commandTemplate(req)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	// One command may name several areas and devices ("--to A,B,device:C"): one id and seq,
	// signed for the union of their devices.
	var targets []store.Target
	var area string
	for _, part := range strings.Split(req.To, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		t, a, ok := s.resolveTarget(w, r, p, part)
		if !ok {
			return
		}
		if !slices.Contains(targets, t) {
			targets = append(targets, t)
			area = commonArea(area, a)
		}
	}
	if len(targets) == 0 {
		staffapi.Error(w, http.StatusBadRequest, "a command needs a target: use --to AREA or --to DEVICE (several separated by commas)")
		return
	}
	if tmpl.Content != "" {
		if _, err := s.st.GetContent(ctx, tmpl.Content); err != nil {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("content %s is not in the hub's library: upload the file with `loa content add FILE` (or give FILE to `loa play`) and use the sha256 it prints", tmpl.Content))
			return
		}
	}
	var devices []string
	for _, target := range targets {
		if target.Kind == store.TargetDevice {
			d, err := s.st.GetDevice(ctx, target.ID)
			if err != nil {
				staffapi.Fail(w, err)
				return
			}
			if d.Revoked {
				staffapi.Error(w, http.StatusConflict, fmt.Sprintf("device %s is revoked: it can no longer connect, so it cannot be given commands", d.ID))
				return
			}
			devices = append(devices, d.ID)
			continue
		}
		ds, err := s.st.ListDevices(ctx, target.ID)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		n := 0
		for _, d := range ds {
			if !d.Revoked {
				devices = append(devices, d.ID)
				n++
			}
		}
		if n == 0 {
			staffapi.Error(w, http.StatusConflict, fmt.Sprintf("no enrolled device in area %s (or below): enrol devices with `loa device enroll` first", target.ID))
			return
		}
	}
	slices.Sort(devices)
	devices = slices.Compact(devices) // a device named and also in a named area gets it once
	tmpl.IssuedBy = p.User.ID
	c, err := s.IssueCommand(ctx, cst, targets, area, tmpl, life, devices)
	if err != nil {
		s.log.Error("command not issued", "to", targetsText(targets), "action", tmpl.Action, "err", err)
		staffapi.Fail(w, fmt.Errorf("the command was not issued: %w", err))
		return
	}
	detail := map[string]any{"id": c.ID, "seq": c.Seq, "devices": len(devices), "expires_at": c.ExpiresAt}
	for k, v := range map[string]string{"output": c.Output, "content": c.Content, "stream": c.Stream, "class": c.Class, "title": c.Title} {
		if v != "" {
			detail[k] = v
		}
	}
	if c.Volume != nil {
		detail["volume"] = *c.Volume
	}
	if len(targets) > 1 {
		detail["targets"] = targetsText(targets)
	}
	for _, t := range targets { // an entry per target, so each area's staff see it in their audit
		s.audit(ctx, p, "command."+c.Action, t.String(), detail)
	}
	got, err := cst.GetCommand(ctx, c.ID, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusCreated, commandJSON(got, s.clock.Now()))
}

// IssueCommand signs, stores and sends a command. See commandState for the ordering.
func (s *Link) IssueCommand(ctx context.Context, cst CommandStore, targets []store.Target, area string,
	tmpl protocol.CommandPayload, life time.Duration, devices []string) (store.Command, error) {
	s.cmds.mu.Lock()
	defer s.cmds.mu.Unlock()
	if s.cmds.lastSeq == 0 {
		last, err := cst.LastCommandSeq(ctx)
		if err != nil {
			return store.Command{}, err
		}
		s.cmds.lastSeq = last
	}
	now := s.clock.Now().UTC()
	// The clock in milliseconds is a floor under the stored sequence: a hub restored from an
	// older backup still signs above what its agents accepted (they would refuse the rest as
	// replayed) unless its clock went back too.
	seq := max(s.cmds.lastSeq+1, now.UnixMilli())
	id := "cmd-" + strconv.FormatInt(seq, 10)
	c := store.Command{ID: id, Seq: seq, KeyID: s.signer.KeyID(), Target: targets[0], Also: targets[1:], Area: area, Action: tmpl.Action,
		Output: tmpl.Output, Volume: tmpl.Volume, Content: tmpl.Content, Stream: tmpl.Stream, Class: tmpl.Class,
		Title: tmpl.Title, IssuedBy: tmpl.IssuedBy, IssuedAt: now, ExpiresAt: now.Add(life)}
	for start := 0; start < len(devices); start += CommandPartDevices {
		part := devices[start:min(start+CommandPartDevices, len(devices))]
		pl := tmpl
		pl.ID, pl.Seq, pl.Devices, pl.IssuedAt, pl.ExpiresAt = id, uint64(seq), part, c.IssuedAt, c.ExpiresAt
		signed, err := s.signer.SignCommand(pl)
		if err != nil {
			return store.Command{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
		n := len(c.Parts)
		c.Parts = append(c.Parts, store.CommandPart{Payload: signed.Payload, Signature: signed.Sig})
		for _, d := range part {
			c.Devices = append(c.Devices, store.CommandDevice{DeviceID: d, Part: n})
		}
	}
	if err := cst.AddCommand(ctx, c); err != nil {
		s.cmds.lastSeq = 0 // read it again: another writer may have moved it
		return store.Command{}, err
	}
	s.cmds.lastSeq = seq
	s.log.Info("command issued", "id", id, "action", c.Action, "to", targetsText(targets), "devices", len(devices), "by", c.IssuedBy,
		"expires_at", c.ExpiresAt)
	// The other replicas send it to their devices; told before this one's fan-out, so they
	// work at the same time (the store holds the command already).
	s.announce(ctx, topicCommand, id)

	// Fan-out to the devices connected now; the others get it when they connect.
	type job struct {
		conn *agentConn
		pc   store.PendingCommand
	}
	var jobs []job
	s.mu.Lock()
	for _, d := range c.Devices {
		if conn := s.conns[d.DeviceID]; conn != nil {
			p := c.Parts[d.Part]
			jobs = append(jobs, job{conn, store.PendingCommand{ID: id, Seq: seq, KeyID: c.KeyID, ExpiresAt: c.ExpiresAt,
				Payload: p.Payload, Signature: p.Signature}})
		}
	}
	s.mu.Unlock()
	var mu sync.Mutex
	var sent []store.CommandSend
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxCommandWriters)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if j.conn.writeCommand(j.pc, false) == nil {
				mu.Lock()
				sent = append(sent, store.CommandSend{CommandID: id, DeviceID: j.conn.device})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := cst.MarkCommandsSent(ctx, sent); err != nil {
		s.log.Error("command sends not recorded", "id", id, "err", err)
	}
	return c, nil
}

// commandStart is a connecting device's pending commands, read before its welcome (so
// nothing of the server is read after the welcome unless there is something to send) and
// written after it, oldest first; then the connection takes new commands from the fan-out.
// It holds the commands' shared lock from begin to release (see commandState).
type commandStart struct {
	s    *Link
	c    *agentConn
	st   CommandStore
	pend []store.PendingCommand
	once sync.Once
}

// beginCommands reads what the device has not answered. Call finish, or release on failure.
func (s *Link) beginCommands(ctx context.Context, c *agentConn) *commandStart {
	s.cmds.mu.RLock()
	cs := &commandStart{s: s, c: c, st: s.st}
	var err error
	if cs.pend, err = cs.st.PendingCommands(ctx, c.device, s.clock.Now()); err != nil {
		s.log.Error("pending commands not read; they are sent at the next connection", "device", c.device, "err", err)
	}
	return cs
}

func (cs *commandStart) release() { cs.once.Do(cs.s.cmds.mu.RUnlock) }

// finish writes the pending commands and opens the connection to new ones.
func (cs *commandStart) finish(ctx context.Context) {
	defer cs.release()
	c := cs.c
	var sent []store.CommandSend
	for _, p := range cs.pend {
		if err := c.writeCommand(p, true); err != nil {
			break // the connection failed; the rest wait for the next one
		}
		sent = append(sent, store.CommandSend{CommandID: p.ID, DeviceID: c.device})
	}
	c.mu.Lock()
	c.cmdOpen = true
	c.mu.Unlock()
	if len(sent) > 0 {
		cs.s.log.Info("pending commands sent", "device", c.device, "commands", len(sent))
		if err := cs.st.MarkCommandsSent(ctx, sent); err != nil {
			cs.s.log.Error("command sends not recorded", "device", c.device, "err", err)
		}
	}
}

var errCommandsNotOpen = errors.New("the connection is not open to commands yet")

// writeCommand writes one command unless this connection has carried it or a later one
// (the agent would refuse it as replayed). starting is set by startCommands, which writes
// before the connection is open to the fan-out.
func (c *agentConn) writeCommand(p store.PendingCommand, starting bool) error {
	id := c.nextID()
	b, err := c.limits.Encode(&protocol.Command{Header: protocol.Header{ID: id},
		Signed: &protocol.Signed{KeyID: p.KeyID, Payload: p.Payload, Sig: p.Signature}})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if !c.cmdOpen && !starting {
		c.mu.Unlock()
		return errCommandsNotOpen
	}
	if p.Seq <= c.maxCmdSeq {
		c.mu.Unlock()
		return errAlreadySent
	}
	c.maxCmdSeq = p.Seq
	if c.cmdSent == nil {
		c.cmdSent = map[string]string{}
	}
	c.cmdSent[id] = p.ID
	c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.s.log.Warn("command send failed", "device", c.device, "command", p.ID, "err", err)
		return err
	}
	return nil
}

var errAlreadySent = errors.New("the connection carried this command or a later one")

// commandDelivery records a device's answer to a command and reports whether d was one. A
// refusal names no command id (the agent trusts nothing of a payload it refused), so the
// message it answers (re) ties it to the command.
func (s *Link) commandDelivery(ctx context.Context, c *agentConn, d *protocol.Delivery) bool {
	c.mu.Lock()
	id, viaRe := c.cmdSent[d.Re]
	if viaRe {
		delete(c.cmdSent, d.Re)
	}
	c.mu.Unlock()
	if d.CommandID == "" && !viaRe {
		return false
	}
	if d.CommandID != "" {
		id = d.CommandID
	}
	cst := s.st
	log := s.log.With("device", c.device, "command", id)
	var state store.CommandState
	reason := d.Reason
	switch d.State {
	case protocol.DeliveryExecuted:
		state = store.CommandExecuted
	case protocol.DeliveryFailed:
		state = store.CommandFailed
	case protocol.DeliveryRefused:
		state = store.CommandRefused
		// A resend after a lost answer: the agent remembers the id and refuses it again.
		if d.Code == "replayed" { // protocol's code for ErrReplayed
			if cd, err := cst.CommandDeviceState(ctx, id, c.device); err == nil && cd.Sends > 1 {
				state = store.CommandReceived
				reason = "the device had received it on an earlier connection, whose answer was lost: " + d.Reason
			}
		}
	default:
		log.Info("command delivery state not tracked", "state", d.State)
		return true
	}
	switch err := cst.ReportCommand(ctx, id, c.device, state, d.Code, reason); {
	case err == nil:
		level := "command executed"
		if state != store.CommandExecuted {
			level = "command not carried out"
		}
		log.Info(level, "state", state, "code", d.Code, "reason", d.Reason)
	case errors.Is(err, store.ErrExists):
		log.Info("a second answer to a command ignored", "state", state, "code", d.Code, "reason", d.Reason)
	default:
		log.Warn("answer to a command not recorded", "state", state, "err", err)
	}
	return true
}

// commandJSON is a command in API answers; a device that has not answered by the expiry is
// shown expired (never sent) or unanswered.
func commandJSON(c store.Command, now time.Time) api.CommandJSON {
	j := api.CommandJSON{ID: c.ID, Seq: c.Seq, Action: c.Action, To: targetsText(c.Targets()), Output: c.Output, Volume: c.Volume,
		Content: c.Content, Stream: c.Stream, Class: c.Class, Title: c.Title, IssuedBy: c.IssuedBy, IssuedAt: c.IssuedAt,
		ExpiresAt: c.ExpiresAt, Expired: !now.Before(c.ExpiresAt), Counts: map[string]int{}, Outcomes: []api.CommandOutcomeJSON{}}
	for _, d := range c.Devices {
		st := string(d.State)
		if j.Expired && !d.State.Final() {
			st = "unanswered"
			if d.State == store.CommandPending {
				st = "expired"
			}
		}
		j.Counts[st]++
		j.Outcomes = append(j.Outcomes, api.CommandOutcomeJSON{Device: d.DeviceID, Area: d.Area, State: st, Code: d.Code,
			Reason: d.Reason, Sends: d.Sends, SentAt: staffapi.TimePtr(d.SentAt), ReportedAt: staffapi.TimePtr(d.ReportedAt)})
	}
	return j
}

// ListCommands is GET /api/commands[?area=&device=&limit=]: newest first, each with its
// devices in the caller's scope.
func (s *Link) ListCommands(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cst := s.st
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.CommandFilter{Area: area, Limit: 20}
	if l := q.Get("limit"); l != "" {
		var err error
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 || f.Limit > 1000 {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("limit %q: write a whole number from 1 to 1000", l))
			return
		}
	}
	if id := q.Get("device"); id != "" {
		d, ok := s.lookupDevice(w, r, p, id)
		if !ok {
			return
		}
		f.Device = d.ID
	}
	cs, err := cst.ListCommands(r.Context(), f)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	now := s.clock.Now()
	out := make([]api.CommandJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, commandJSON(c, now))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// ShowCommand is GET /api/commands/{id}.
func (s *Link) ShowCommand(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cst := s.st
	id := r.PathValue("id")
	c, err := cst.GetCommand(r.Context(), id, p.Scope)
	if errors.Is(err, store.ErrNotFound) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no command %s reaching your scope %s; `loa commands` lists them", id, p.Scope))
		return
	}
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, commandJSON(c, s.clock.Now()))
}

// targetsText is how a command's targets are shown: separated by commas, as staff type them.
func targetsText(ts []store.Target) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, t.String())
	}
	return strings.Join(parts, ",")
}

// commonArea is the nearest area holding both a and b ("" a: b).
func commonArea(a, b string) string {
	if a == "" {
		return b
	}
	for a != "" && !store.Allowed(a, b) {
		a = store.ParentArea(a)
	}
	return a
}
