package agentlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

const (
	helloTimeout = 30 * time.Second
	writeTimeout = 15 * time.Second
	// helloRetryAfter is the default wait asked of an agent turned away busy (it adds up to
	// as much again at random): 10,000 agents told busy come back over 20–40 s.
	helloRetryAfter = 20 * time.Second
)

// agentConn is one device's live websocket. Writes are serialised by wmu; the handler
// goroutine is the only reader.
type agentConn struct {
	s        *Link
	ws       *websocket.Conn
	device   string
	area     string // the device's area at its hello: which pushes another replica announces reach it, and its neighbours (neighbours.go)
	software string
	limits   protocol.Limits
	wmu      sync.Mutex
	seq      atomic.Uint64
	gen      uint64 // this connection's number (Link.Conn)
	mu       sync.Mutex
	sent     map[string]int64 // schedule message id -> revision, to tie refusals to a push
	maxSent  int64            // the newest revision written to this connection
	// Commands (commands.go): message id -> command id (refusals name only the message), the
	// newest seq written, and whether the connection takes commands from a fan-out yet.
	cmdSent   map[string]string
	maxCmdSeq int64
	cmdOpen   bool
	once      sync.Once
	// ready is closed once the welcome (and the schedule the connection starts with) is
	// written: a push must not reach the device before its welcome, nor before an older
	// revision it would then refuse as replayed.
	ready       chan struct{}
	readyOnce   sync.Once
	contentAddr string     // where it serves content to its neighbours; under Link.mu
	nbMu        sync.Mutex // orders its neighbours messages (neighbours.go)
	titles      Titles     // titles of what the device reports playing; the reader goroutine's
	credited    time.Time  // online time is recorded up to here (the reader goroutine's)
}

// creditOnline records the time connected since the last credit: at each status and at the
// end of the connection, so a hub that stops abruptly loses at most one status interval.
func (c *agentConn) creditOnline(ctx context.Context) {
	now := c.s.clock.Now()
	if c.credited.IsZero() || !now.After(c.credited) {
		return
	}
	if err := c.s.st.AddOnline(ctx, c.device, c.credited, now); err != nil {
		c.s.log.Warn("online time not recorded", "device", c.device, "err", err)
		return
	}
	c.credited = now
}

func (c *agentConn) setReady() { c.readyOnce.Do(func() { close(c.ready) }) }

func (c *agentConn) nextID() string { return "h-" + strconv.FormatUint(c.seq.Add(1), 10) }

func (c *agentConn) close() {
	c.once.Do(func() {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "closed by the hub"), time.Now().Add(time.Second))
		c.ws.Close()
	})
}

func (c *agentConn) send(m protocol.Message) error {
	b, err := c.limits.Encode(m)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// sendSchedule sends one effective revision and records it as sent.
func (c *agentConn) sendSchedule(ctx context.Context, e store.EffectiveSchedule) error {
	if err := c.writeSchedule(e); err != nil {
		return err
	}
	c.s.markSent(ctx, c.device, e.Revision)
	return nil
}

var errNotReady = errors.New("the connection did not finish its welcome")

// writeSchedule writes one effective revision to the connection, once it is ready.
func (c *agentConn) writeSchedule(e store.EffectiveSchedule) error {
	select {
	case <-c.ready:
	default:
		t := time.NewTimer(writeTimeout)
		select {
		case <-c.ready:
			t.Stop()
		case <-t.C:
			return errNotReady
		}
	}
	return c.writeScheduleNow(e)
}

// writeScheduleNow writes one effective revision to the connection, unless this connection
// has already carried it or a newer one (a push and the connection's own start can both
// offer the same revision; the agent would refuse the second as replayed). The check and
// the write are under the write lock, so revisions go out in increasing order.
func (c *agentConn) writeScheduleNow(e store.EffectiveSchedule) error {
	id := c.nextID()
	b, err := c.limits.Encode(&protocol.Schedule{Header: protocol.Header{ID: id},
		Signed: &protocol.Signed{KeyID: c.s.signer.KeyID(), Payload: e.Document, Sig: e.Signature}})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if e.Revision <= c.maxSent {
		c.mu.Unlock()
		return nil
	}
	c.maxSent = e.Revision
	c.sent[id] = e.Revision
	c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err = c.ws.WriteMessage(websocket.TextMessage, b)
	c.s.metrics.Pushed(err == nil)
	if err != nil {
		c.s.metrics.WebsocketError("write")
		c.s.log.Warn("schedule send failed", "device", c.device, "revision", e.Revision, "err", err)
		return err
	}
	return nil
}

// signedAt is when an effective schedule was signed (its payload's issued_at).
func signedAt(e store.EffectiveSchedule) time.Time {
	var p struct {
		IssuedAt time.Time `json:"issued_at"`
	}
	json.Unmarshal(e.Document, &p)
	return p.IssuedAt
}

// carried reports whether this connection has written revision rev (or a newer one).
func (c *agentConn) carried(rev int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxSent >= rev
}

func (s *Link) markSent(ctx context.Context, device string, revision int64) {
	if _, err := s.timed.MarkDelivery(ctx, device, revision, store.StateSent, ""); err != nil {
		s.log.Error("delivery state not recorded", "device", device, "revision", revision, "state", "sent", "err", err)
	}
}

// fail answers a message the hub cannot accept with an error and closes the connection.
func (c *agentConn) fail(re string, err error, closeCode int) {
	c.s.log.Warn("closing agent connection", "device", c.device, "err", err)
	c.s.metrics.WebsocketError("refused")
	m := protocol.NewErrorMessage(c.nextID(), re, err)
	var ce *codeError
	if errors.As(err, &ce) {
		m.Code = ce.code // CodeOf knows only protocol's own errors
		m.RetryAfterS = ce.retryAfterS
	}
	if b, e := c.limits.Encode(m); e == nil {
		c.wmu.Lock()
		c.ws.SetWriteDeadline(time.Now().Add(time.Second))
		c.ws.WriteMessage(websocket.TextMessage, b)
		c.wmu.Unlock()
	}
	msg := err.Error()
	if len(msg) > 120 { // a close reason must fit in a control frame
		msg = msg[:120]
	}
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCode, msg), time.Now().Add(time.Second))
}

var errUnexpected = errors.New("unexpected message")

func (s *Link) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{},
		HandshakeTimeout: 10 * time.Second,
		// Agents are not browsers; they authenticate with their secret, not with cookies.
		CheckOrigin: func(*http.Request) bool { return true },
	}
}

func (s *Link) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dev, ok := s.deviceAuth(w, r)
	if !ok {
		return
	}
	ws, err := s.upgrader().Upgrade(w, r, nil)
	if err != nil {
		s.metrics.WebsocketError("upgrade")
		return // Upgrade has answered
	}
	s.wg.Add(1)
	defer s.wg.Done()
	lim := s.opts.Limits
	if lim.MaxMessageBytes == 0 {
		lim.MaxMessageBytes = protocol.DefaultMaxMessageBytes
	}
	ws.SetReadLimit(int64(lim.MaxMessageBytes))
	c := &agentConn{s: s, ws: ws, device: dev.ID, area: dev.Area, limits: lim, sent: map[string]int64{}, ready: make(chan struct{}),
		gen: s.gens.Add(1)}
	defer c.close()
	defer c.setReady() // a push waiting on a connection that failed its welcome gives up at once
	ctx := r.Context()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	ws.SetReadDeadline(time.Now().Add(helloTimeout))
	m, err := c.read()
	if err != nil {
		c.readFailed("", err)
		return
	}
	hello, ok := m.(*protocol.Hello)
	if !ok {
		c.fail(m.Envelope().ID, &codeError{code: protocol.CodeHelloFirst, msg: fmt.Sprintf("send hello first, not %s", m.Type())}, websocket.ClosePolicyViolation)
		return
	}
	t1 := s.clock.Now()
	if hello.DeviceID != dev.ID {
		c.fail(hello.ID, &codeError{code: protocol.CodeUnauthorized, msg: fmt.Sprintf("hello names device %q but the connection authenticated as %q", hello.DeviceID, dev.ID)}, websocket.ClosePolicyViolation)
		return
	}
	// Welcoming is the costly part of a reconnect storm (composition, the store): at most
	// MaxHellos at once; the rest are told busy and come back after retry_after_s plus jitter.
	release := func() {}
	if s.hellos != nil {
		select {
		case s.hellos <- struct{}{}:
			var once sync.Once
			release = func() { once.Do(func() { <-s.hellos }) }
			defer release() // a welcome that fails half-way
		default:
			s.log.Warn("agent told to come back later: too many welcomes at once", "device", dev.ID, "max_hellos", cap(s.hellos))
			c.fail(hello.ID, &codeError{code: protocol.CodeBusy, msg: "the hub is welcoming many devices at once; come back later", retryAfterS: int(max(s.opts.BusyRetryAfter/time.Second, 1))},
				websocket.CloseTryAgainLater)
			return
		}
	}
	c.software = hello.SoftwareVersion
	s.mu.Lock()
	old := s.conns[dev.ID]
	s.conns[dev.ID] = c
	s.mu.Unlock()
	if old != nil {
		old.close() // the device reconnected before the hub noticed it was gone
	}
	defer func() {
		s.mu.Lock()
		if s.conns[dev.ID] == c {
			delete(s.conns, dev.ID)
		}
		s.mu.Unlock()
	}()
	// A revocation between the secret check and now found this connection in no map to close:
	// now that it is registered, ask the store again (a revocation from here on closes it).
	if d, err := s.st.GetDevice(ctx, dev.ID); err != nil || d.Revoked {
		s.log.Warn("agent refused at hello: revoked after it authenticated", "device", dev.ID, "err", err)
		c.fail(hello.ID, &codeError{code: protocol.CodeUnauthorized, msg: fmt.Sprintf("device %s was revoked; ask district staff to enrol it again", dev.ID)}, websocket.ClosePolicyViolation)
		return
	}
	log := s.log.With("device", dev.ID)
	log.Info("agent connected", "remote", r.RemoteAddr, "software", hello.SoftwareVersion)
	if err := s.st.Seen(ctx, dev.ID); err != nil {
		log.Error("last seen not recorded", "err", err)
	}
	// What the agent is (for rollouts): written only when it changed, so a reconnect storm of
	// agents that did not change adds no writes.
	if dev.Status.SoftwareVersion != hello.SoftwareVersion || dev.Arch != hello.Arch || dev.Upgrades != hello.Upgrades {
		if err := s.st.SetAgent(ctx, dev.ID, hello.SoftwareVersion, hello.Arch, hello.Upgrades); err != nil {
			log.Error("agent version and architecture not recorded", "err", err)
		}
	}
	s.touched(dev.ID)
	c.credited = s.clock.Now()
	defer c.creditOnline(context.WithoutCancel(ctx))

	// What the device holds of its own lineage.
	var held int64
	for _, ref := range []*protocol.ScheduleRef{hello.ActiveSchedule, hello.PendingSchedule} {
		if ref != nil && ref.ID == ScheduleIDFor(dev.ID) && ref.Revision <= math.MaxInt64 {
			held = max(held, int64(ref.Revision))
		}
	}
	// Compose if anything changed while it was away; never below what it already holds, or
	// it would refuse the new revision as replayed.
	e, _, err := s.composeDevice(ctx, dev.ID, 0)
	if err != nil {
		log.Error("effective schedule not composed", "err", err)
	} else if e.Revision > 0 && e.Revision < held {
		// The device holds a revision the hub does not know as newer (a hub restored from a
		// backup): compose above it.
		if e2, _, err := s.composeDevice(ctx, dev.ID, held+1); err == nil {
			e = e2
		}
	} else if e.Revision > held && signedAt(e).Before(s.clock.Now().Add(-protocol.MaxScheduleAge/2)) {
		// Agents refuse a schedule signed more than protocol.MaxScheduleAge ago (a capture
		// must not be replayable for ever): one that waited this long for its device is
		// signed again, as a new revision.
		if e2, _, err := s.composeDevice(ctx, dev.ID, e.Revision+1); err == nil {
			e = e2
		}
	}
	if restarted, oldAck, err := s.st.SeeJournal(ctx, dev.ID, hello.Journal.ID); err != nil {
		log.Error("journal id not recorded", "err", err)
	} else if restarted {
		log.Warn("the device's journal restarted (damaged file set aside or replaced): its new records follow the old ones; any of the old journal not received by now are lost",
			"old_journal_acked", oldAck, "journal", hello.Journal.ID)
	}
	acked, err := s.st.AckedSeq(ctx, dev.ID)
	if err != nil {
		log.Error("acked sequence not read", "err", err)
		c.fail(hello.ID, &codeError{code: protocol.CodeInternal, msg: "the hub cannot read its store; retry later"}, websocket.CloseInternalServerErr)
		return
	}
	welcome := &protocol.Welcome{Header: protocol.Header{ID: c.nextID(), Re: hello.ID}, HelloReceivedAt: t1,
		ResendFrom: uint64(acked) + 1, StatusIntervalS: int(s.opts.StatusInterval / time.Second), TimeSamples: true}
	if e.Revision > held {
		welcome.LatestSchedule = &protocol.ScheduleRef{ID: ScheduleIDFor(dev.ID), Revision: uint64(e.Revision)}
	}
	cmdStart := s.beginCommands(ctx, c) // what it has not answered (commands.go)
	defer cmdStart.release()
	welcome.HubTime = s.clock.Now()
	if err := c.send(welcome); err != nil {
		log.Warn("welcome not sent", "err", err)
		return
	}
	if e.Revision > held && c.writeScheduleNow(e) == nil {
		s.markSent(ctx, dev.ID, e.Revision)
	}
	cmdStart.finish(ctx)
	c.setReady()
	release() // welcomed: the slot is for the next one
	if s.opts.Upgrades != nil {
		s.opts.Upgrades.Connected(dev.ID)
	}

	idle := 3*s.opts.StatusInterval + 30*time.Second
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(idle))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		ws.SetReadDeadline(time.Now().Add(idle))
		m, err := c.read()
		if err != nil {
			c.readFailed("", err)
			log.Info("agent disconnected", "reason", err)
			return
		}
		if err := s.handleAgentMessage(ctx, c, m); err != nil {
			var ce *codeError
			if errors.As(err, &ce) && ce.code == protocol.CodeInternal {
				c.fail(m.Envelope().ID, err, websocket.CloseInternalServerErr)
			} else {
				c.fail(m.Envelope().ID, err, websocket.ClosePolicyViolation)
			}
			return
		}
	}
}

// read reads and decodes one message.
func (c *agentConn) read() (protocol.Message, error) {
	mt, rd, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if mt != websocket.TextMessage {
		return nil, &codeError{code: "bad_json", msg: "binary frame: messages are JSON text frames"}
	}
	return c.limits.DecodeReader(rd)
}

// readFailed answers a malformed message; transport errors just end the connection.
func (c *agentConn) readFailed(re string, err error) {
	var me *protocol.MessageError
	var ce *codeError
	switch {
	case errors.As(err, &me):
		code := websocket.ClosePolicyViolation
		if errors.Is(err, protocol.ErrTooLarge) {
			code = websocket.CloseMessageTooBig
		}
		c.fail(re, err, code)
	case errors.As(err, &ce):
		c.fail(re, err, websocket.CloseUnsupportedData)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent close 1009.
		c.s.log.Warn("agent message over the size limit", "device", c.device, "limit", c.limits.MaxMessageBytes)
	}
}

// codeError is a connection-handling error with a wire code (and, for busy, the wait).
type codeError struct {
	code, msg   string
	retryAfterS int
}

func (e *codeError) Error() string { return e.msg }

func (s *Link) handleAgentMessage(ctx context.Context, c *agentConn, m protocol.Message) error {
	switch m := m.(type) {
	case *protocol.Confirmations:
		recs := make([]store.Confirmation, 0, len(m.Records))
		for i, r := range m.Records {
			if r.Device != c.device {
				return &codeError{code: protocol.CodeUnauthorized, msg: fmt.Sprintf("records[%d].device is %q; this connection is device %q", i, r.Device, c.device)}
			}
			if r.Seq == 0 || r.Seq > math.MaxInt64 {
				return &codeError{code: protocol.CodeInvalidField, msg: fmt.Sprintf("records[%d].seq %d is out of range", i, r.Seq)}
			}
			recs = append(recs, store.Confirmation{Confirmation: r})
		}
		ack, err := s.timed.AddConfirmations(ctx, c.device, recs)
		if err != nil {
			if errors.Is(err, store.ErrInvalid) {
				return &codeError{code: protocol.CodeInvalidField, msg: err.Error()}
			}
			if errors.Is(err, store.ErrUnauthorized) {
				return &codeError{code: protocol.CodeUnauthorized, msg: err.Error()}
			}
			// Not acknowledged, so nothing is lost; the connection stays up so the device is
			// still served (schedules, commands) while the hub's technician makes space.
			s.notStored.log(s.log, c.device, len(recs), err)
			s.metrics.Confirmed("not_stored", len(recs))
			return c.send(&protocol.ErrorMessage{Header: protocol.Header{ID: c.nextID(), Re: m.ID}, Code: protocol.CodeNotStored,
				Message:     "the hub could not store these confirmations: " + err.Error() + "; they stay in your journal, send them again later",
				RetryAfterS: notStoredRetryS})
		}
		s.countConfirmations(ctx, c.device, m.Records)
		return c.send(&protocol.Ack{Header: protocol.Header{ID: c.nextID(), Re: m.ID}, Seq: uint64(ack)})
	case *protocol.Delivery:
		return s.recordDelivery(ctx, c, m)
	case *protocol.Status:
		if c.titles == nil {
			c.titles = s.newTitles(ctx)
		}
		st := storeStatus(m, c.device, c.software, c.titles)
		if err := s.st.UpdateStatus(ctx, c.device, st); err != nil {
			s.log.Warn("status not stored", "device", c.device, "err", err)
		}
		s.touched(c.device)
		c.creditOnline(ctx)
		s.notePartFaults(c.device, st.Parts)
		s.noteContentAddr(c, m.ContentAddr)
		if m.Upgrade != nil && s.opts.Upgrades != nil {
			s.opts.Upgrades.Report(ctx, c.device, *m.Upgrade)
		}
		return nil
	case *protocol.Time:
		if !m.HubTime.IsZero() {
			return nil // an answer: the hub asks nothing
		}
		t1 := s.clock.Now()
		return c.send(&protocol.Time{Header: protocol.Header{ID: c.nextID(), Re: m.ID}, SentAt: m.SentAt, ReceivedAt: t1, HubTime: s.clock.Now()})
	case *protocol.ErrorMessage:
		s.log.Warn("agent reported an error", "device", c.device, "code", m.Code, "message", m.Message, "re", m.Re)
		return nil
	default:
		return &codeError{code: "unknown_type", msg: fmt.Sprintf("a hub does not accept %s messages from agents", m.Type())}
	}
}

// notStoredRetryS is how long an agent waits before sending confirmations the hub could not
// store: long enough that a thousand agents do not hammer a full disk, short enough that
// their plays reach the hub within minutes of the space coming back.
const notStoredRetryS = 30

// notStoredLog logs confirmations the store refused: the first failure at once, then one line
// a minute with how many were refused meanwhile, so a full disk under a thousand agents makes
// a few lines a technician reads, not a flood that fills what is left of the disk.
type notStoredLog struct {
	mu      sync.Mutex
	last    time.Time
	batches int
	records int
	devices map[string]bool
}

func (l *notStoredLog) log(log *slog.Logger, device string, records int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.devices == nil {
		l.devices = map[string]bool{}
	}
	l.batches++
	l.records += records
	l.devices[device] = true
	if now := time.Now(); now.Sub(l.last) >= time.Minute {
		hint := "agents keep them in their journals and send them again"
		if errors.Is(err, store.ErrFull) {
			hint = "free space on the hub's disk (its data directory); " + hint
		}
		log.Error("confirmations not stored: "+hint, "err", err, "batches", l.batches, "records", l.records, "devices", len(l.devices),
			"retry_after_s", notStoredRetryS)
		l.last, l.batches, l.records, l.devices = now, 0, 0, nil
	}
}

func (s *Link) recordDelivery(ctx context.Context, c *agentConn, d *protocol.Delivery) error {
	if s.commandDelivery(ctx, c, d) {
		return nil
	}
	rev := int64(-1)
	if d.ScheduleID == ScheduleIDFor(c.device) && d.Revision > 0 && d.Revision <= math.MaxInt64 {
		rev = int64(d.Revision)
	} else {
		c.mu.Lock()
		if r, ok := c.sent[d.Re]; ok {
			rev = r
		}
		c.mu.Unlock()
	}
	if rev < 0 {
		s.log.Warn("delivery report for an unknown push", "device", c.device, "re", d.Re, "schedule", d.ScheduleID, "revision", d.Revision, "state", d.State)
		return nil
	}
	var st store.DeliveryState
	reason := ""
	switch d.State {
	case protocol.DeliveryReceived:
		st = store.StateReceived
	case protocol.DeliveryContentReady:
		st = store.StateContentReady
	case protocol.DeliveryActive:
		st = store.StateActive
	case protocol.DeliveryRefused:
		st = store.StateRefused
		reason = strings.TrimSpace(d.Code + ": " + d.Reason)
		s.log.Warn("device refused its schedule", "device", c.device, "revision", rev, "code", d.Code, "reason", d.Reason)
	default:
		s.log.Info("delivery state not tracked", "device", c.device, "state", d.State)
		return nil
	}
	dl, err := s.timed.MarkDelivery(ctx, c.device, rev, st, reason)
	if err != nil {
		s.log.Warn("delivery state not recorded", "device", c.device, "revision", rev, "state", st, "err", err)
		return nil
	}
	s.observeDelivery(st, dl)
	s.touched(c.device) // a refusal is an alarm
	return nil
}

// notePartFaults logs a WARN when a device's relay, sign or screen becomes faulty or its fault
// changes, and an INFO when they work again: once per change, not at every heartbeat.
func (s *Link) notePartFaults(device string, parts store.Parts) {
	now := strings.Join(parts.Faults(), "; ")
	prev, seen := s.partFaults.Swap(device, now)
	switch {
	case seen && prev.(string) == now, !seen && now == "":
	case now != "":
		s.log.Warn("device reports a faulty part: a technician should look (loa device show)", "device", device, "faults", now)
	default:
		s.log.Info("device parts work again", "device", device, "was", prev)
	}
}

func storePart(p *protocol.Part) *store.Part {
	if p == nil {
		return nil
	}
	return &store.Part{State: p.State, Error: p.Error, Since: p.Since}
}

// storeStatus is what the hub keeps of a status message; what plays is kept by title where
// titles knows it (staff read `loa status`), by id and reference otherwise.
func storeStatus(m *protocol.Status, device, software string, titles Titles) store.Status {
	st := store.Status{TemperatureC: math.NaN(), Uptime: time.Duration(m.UptimeS * float64(time.Second)), SoftwareVersion: software}
	var np []string
	for _, p := range m.NowPlaying {
		prog, item := p.Program, p.Item
		if titles != nil {
			if t := titles.ProgramOf(device, int64(p.Revision), p.Program); t != "" {
				prog = t
			}
			if t := titles.Item(p.Item); t != "" {
				item = t
			}
		}
		s := p.Output + ": " + prog
		if item != "" {
			s += " (" + item + ")"
		}
		np = append(np, s)
	}
	st.NowPlaying = strings.Join(np, "; ")
	if len(st.NowPlaying) > 1000 {
		// Cut on a character boundary: the store refuses invalid UTF-8, and the whole status
		// would be lost for a long Vietnamese programme name.
		st.NowPlaying = strings.ToValidUTF8(st.NowPlaying[:1000], "")
	}
	if m.Volume != nil {
		st.Volume = *m.Volume
	}
	st.Parts = store.Parts{Relay: storePart(m.Relay), Sign: storePart(m.Sign), Screen: storePart(m.Screen), Audio: storePart(m.Audio)}
	if m.ClockOffsetS != nil {
		st.ClockOffset = -time.Duration(*m.ClockOffsetS * float64(time.Second)) // store: device minus hub
	}
	if m.ClockErrorS != nil {
		st.ClockError, st.ClockSource = time.Duration(*m.ClockErrorS*float64(time.Second)), m.ClockSource
	}
	if m.DiskFreeBytes != nil {
		st.DiskFreeBytes = *m.DiskFreeBytes
	}
	if m.TemperatureC != nil {
		st.TemperatureC = *m.TemperatureC
	}
	if l := m.Link; l != nil {
		st.Link = l.Kind
		if l.SignalDBM != nil {
			st.Link += fmt.Sprintf(" %.0fdBm", *l.SignalDBM)
		}
		if l.RTTMS != nil {
			st.Link += fmt.Sprintf(" rtt %.0fms", *l.RTTMS)
		}
		st.Link = strings.TrimSpace(st.Link)
	}
	return st
}
