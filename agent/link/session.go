package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

const writeTimeout = 30 * time.Second

// session is one websocket connection, from dial to close. Its methods run on Run's
// goroutine only, except the reader.
type session struct {
	l     *Link
	out   func([]byte) error // writes one frame
	n     uint64             // message ids
	sent  uint64             // highest confirmation seq sent on this connection
	acked uint64             // highest seq the hub acknowledged
	batch int
	// holdUntil: the hub could not store confirmations (CodeNotStored); none are sent before
	// this, then everything unacknowledged is sent again.
	holdUntil time.Time
	// clock: the hub answers time messages (welcome.time_samples); filter keeps the samples.
	timeSamples bool
	clock       clockFilter
}

func (s *session) nextID() string {
	s.n++
	return "a-" + strconv.FormatUint(s.n, 10)
}

func (s *session) write(m protocol.Message) error {
	if m.Envelope().ID == "" {
		m.Envelope().ID = s.nextID()
	}
	b, err := s.l.limits.Encode(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", m.Type(), err)
	}
	if err := s.out(b); err != nil {
		return fmt.Errorf("sending %s: %w", m.Type(), err)
	}
	return nil
}

// decodeError is a message from the hub this agent could not decode.
type decodeError struct{ err error }

func (e decodeError) Error() string {
	return "a message from the hub could not be decoded: " + e.err.Error()
}
func (e decodeError) Unwrap() error { return e.err }

func (l *Link) session(ctx context.Context) sessionEnd {
	conn, end := l.dial(ctx)
	if conn == nil {
		return end
	}
	s := &session{l: l, batch: l.cfg.Batch, out: func(b []byte) error {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return conn.WriteMessage(websocket.TextMessage, b)
	}}
	conn.SetReadLimit(int64(l.limits.MaxMessageBytes))
	idle := l.cfg.PingDeadline

	// Watch ctx during the handshake too: closing the connection unblocks the read.
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopWatch()
	defer conn.Close()

	t0 := l.d.Clock.Now()
	hello := &protocol.Hello{
		DeviceID:        l.cfg.DeviceID,
		SoftwareVersion: l.cfg.SoftwareVersion,
		Versions:        []int{protocol.Version},
		SentAt:          t0,
		ActiveSchedule:  l.d.Schedules.Active(),
		PendingSchedule: l.d.Schedules.Pending(),
		Journal:         protocol.JournalState{HighWater: l.d.Journal.HighWater(), Acked: l.d.Journal.Acked(), ID: l.d.Journal.ID()},
		Store:           l.storeSummary(),
		Arch:            l.cfg.Arch,
		Upgrades:        l.cfg.Upgrades && l.d.Upgrades != nil,
	}
	if err := s.write(hello); err != nil {
		return sessionEnd{err: err}
	}
	conn.SetReadDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	_, r, err := conn.NextReader()
	if err != nil {
		return sessionEnd{err: fmt.Errorf("waiting for the welcome: %w", err)}
	}
	m, err := l.limits.DecodeReader(r)
	if err != nil {
		return sessionEnd{err: decodeError{err}}
	}
	t3 := l.d.Clock.Now()
	var w *protocol.Welcome
	switch m := m.(type) {
	case *protocol.Welcome:
		w = m
	case *protocol.ErrorMessage:
		end := sessionEnd{err: errRefusedByHub{m}, authRefused: m.Code == protocol.CodeUnauthorized}
		if m.RetryAfterS > 0 {
			end.retryAfter = time.Duration(m.RetryAfterS) * time.Second
		}
		return end
	default:
		return sessionEnd{err: fmt.Errorf("%w (got %s)", errNoWelcome, m.Type())}
	}
	offset, rtt := protocol.ClockOffset(t0, w.HelloReceivedAt, w.HubTime, t3)
	s.timeSamples = w.TimeSamples
	s.clock.add(clockSample{offset: offset, rtt: rtt, at: time.Now()})
	l.offsetNS.Store(int64(offset))
	l.offsetErr.Store(int64(rtt / 2))
	l.hasOffset.Store(true)
	l.rttNS.Store(int64(rtt))
	l.connected.Store(true)
	l.logUp(w, offset, rtt)
	welcomedAt := time.Now()
	end = sessionEnd{welcomed: true}
	if w.ReconnectBaseS > 0 {
		end.baseHint = time.Duration(w.ReconnectBaseS) * time.Second
	}
	finish := func(err error) sessionEnd {
		end.err = err
		end.lasted = time.Since(welcomedAt)
		return end
	}

	s.welcomeJournal(w)

	// Reader: decodes frames and hands them over; any read error ends the session.
	msgs := make(chan protocol.Message)
	errc := make(chan error, 1)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	var pingSent time.Time
	pingAt := make(chan time.Time, 1) // ping send times, read by the pong handler
	conn.SetPongHandler(func(string) error {
		select {
		case t := <-pingAt:
			pingSent = t
		default:
		}
		if !pingSent.IsZero() {
			l.rttNS.Store(int64(time.Since(pingSent)))
		}
		return conn.SetReadDeadline(time.Now().Add(idle))
	})
	conn.SetReadDeadline(time.Now().Add(idle))
	go func() {
		defer close(readerDone)
		for {
			_, r, err := conn.NextReader()
			if err != nil {
				errc <- err
				return
			}
			pr := &aliveReader{r: r, alive: func() { conn.SetReadDeadline(time.Now().Add(idle)) }}
			m, err := l.limits.DecodeReader(pr)
			if pr.err != nil {
				errc <- pr.err // the link failed inside a message: not the hub's fault
				return
			}
			if err != nil {
				errc <- decodeError{err}
				return
			}
			conn.SetReadDeadline(time.Now().Add(idle))
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		conn.Close()
		<-readerDone
	}()

	interval := l.cfg.Heartbeat
	if w.StatusIntervalS > 0 {
		interval = time.Duration(w.StatusIntervalS) * time.Second
	}
	statusT := time.NewTicker(interval)
	defer statusT.Stop()
	pingT := time.NewTicker(l.cfg.Ping)
	defer pingT.Stop()
	pollT := time.NewTicker(l.cfg.Poll)
	defer pollT.Stop()

	if err := s.sendStatus(); err != nil {
		return finish(err)
	}
	if err := s.sampleClock(); err != nil {
		return finish(err)
	}
	if err := s.flushOutbox(); err != nil {
		return finish(err)
	}
	if err := s.sendJournal(); err != nil {
		return finish(err)
	}
	// A revision left pending (by a restart, or a fetch that failed) is looked at again.
	if p := l.d.Schedules.Pending(); p != nil {
		l.fetchFor(*p, nil)
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "agent stopping"), time.Now().Add(time.Second))
			return finish(ctx.Err())
		case err = <-errc:
			var de decodeError
			if errors.As(err, &de) {
				// The protocol's answer to garbage: say what was wrong, then close.
				s.write(protocol.NewErrorMessage("", "", de.err))
			}
		case m := <-msgs:
			err = s.handle(ctx, m, &end)
		case <-pollT.C:
			err = s.sendJournal()
		case <-l.notify:
			err = s.sendJournal()
		case <-l.status:
			err = s.sendStatus()
		case <-l.wake:
			err = s.flushOutbox()
		case <-statusT.C:
			if err = s.sendStatus(); err == nil {
				err = s.sampleClock()
			}
		case <-pingT.C:
			now := time.Now()
			select {
			case <-pingAt:
			default:
			}
			pingAt <- now
			err = conn.WriteControl(websocket.PingMessage, nil, now.Add(writeTimeout))
		}
		if err != nil {
			return finish(err)
		}
	}
}

// welcomeJournal applies the welcome's resend_from: everything below it is acknowledged.
func (s *session) welcomeJournal(w *protocol.Welcome) {
	j := s.l.d.Journal
	s.acked = j.Acked()
	if w.ResendFrom == 0 {
		s.sent = s.acked
		return
	}
	hubHas := w.ResendFrom - 1
	high := j.HighWater()
	if hubHas > high {
		// The hub holds sequences this journal never wrote: the journal was lost or replaced.
		// New records will reuse sequences the hub already holds and be taken as duplicates.
		s.l.log.Error("the hub holds more confirmations than this device's journal has written: the journal was lost or replaced; new confirmations will be taken for duplicates until the journal passes the hub's sequence",
			"hub_resend_from", w.ResendFrom, "journal_high_water", high)
		hubHas = high
	}
	if hubHas > s.acked {
		if err := j.Ack(hubHas); err != nil {
			s.l.log.Error("cannot record the hub's acknowledgement in the journal", "seq", hubHas, "err", err)
		} else {
			s.acked = hubHas
		}
	}
	s.sent = max(s.acked, hubHas)
}

// sendJournal sends closed records after the last sent, keeping at most two batches
// unacknowledged so a slow hub is not flooded.
func (s *session) sendJournal() error {
	if time.Now().Before(s.holdUntil) {
		return nil
	}
	for s.sent-s.acked < uint64(2*s.batch) {
		recs, err := s.l.d.Journal.Since(s.sent, s.batch)
		if err != nil {
			s.l.log.Error("cannot read the journal to send confirmations", "after", s.sent, "err", err)
			return nil // the link is fine; try again at the next poll
		}
		if len(recs) == 0 {
			return nil
		}
		msg := &protocol.Confirmations{Records: make([]protocol.Confirmation, len(recs))}
		for i := range recs {
			msg.Records[i] = recs[i].Confirmation // the journal stores the wire's confirmation
		}
		msg.ID = s.nextID()
		_, err = s.l.limits.Encode(msg)
		switch {
		case err == nil:
		case s.batch > 1:
			// Too large (long error texts), or one record the wire refuses: send fewer at a
			// time, down to the one at fault.
			s.batch /= 2
			continue
		case !errors.Is(err, protocol.ErrTooLarge) && s.repair(msg, err):
			// A record the wire refuses would hold back every record after it for ever: it
			// goes with its measurements dropped and the reason in its error, keeping seq.
		default:
			s.l.log.Error("a journal record cannot be sent to the hub", "from_seq", recs[0].Seq, "err", err)
			return nil
		}
		if err := s.write(msg); err != nil {
			return err
		}
		s.sent = recs[len(recs)-1].Seq
		s.batch = s.l.cfg.Batch
	}
	return nil
}

// repair makes msg's one record acceptable to the wire when only its measurements were at
// fault (a duration gone negative over a clock step): the proof is dropped and the reason
// written into its error, so the play stays confirmed in order with what it was.
func (s *session) repair(msg *protocol.Confirmations, cause error) bool {
	r := &msg.Records[0]
	was := r.Proof
	r.Proof = protocol.Proof{}
	r.Error = strings.TrimSpace(r.Error + " (measurements dropped: " + cause.Error() + ")")
	if _, err := s.l.limits.Encode(msg); err != nil {
		r.Proof = was
		return false
	}
	s.l.log.Error("a journal record's measurements were refused by the wire: sent without them", "seq", r.Seq, "err", cause)
	return true
}

func (s *session) handle(ctx context.Context, m protocol.Message, end *sessionEnd) error {
	l := s.l
	switch m := m.(type) {
	case *protocol.Ack:
		if m.Seq <= s.acked {
			return nil
		}
		if err := l.d.Journal.Ack(m.Seq); err != nil {
			l.log.Error("the hub acknowledged confirmations the journal refuses to mark", "seq", m.Seq, "err", err)
			return nil
		}
		s.acked = m.Seq
		s.sent = max(s.sent, s.acked)
		return s.sendJournal()
	case *protocol.Schedule:
		return s.schedule(ctx, m)
	case *protocol.Command:
		return s.command(ctx, m)
	case *protocol.Time:
		if m.HubTime.IsZero() {
			return nil // the hub asks nothing of the kind
		}
		offset, rtt := protocol.ClockOffset(m.SentAt, m.ReceivedAt, m.HubTime, l.d.Clock.Now())
		best := s.clock.add(clockSample{offset: offset, rtt: rtt, at: time.Now()})
		l.offsetNS.Store(int64(best.offset))
		l.offsetErr.Store(int64(best.rtt / 2))
		l.log.Debug("clock sample", "offset", offset.Round(time.Millisecond), "rtt", rtt.Round(time.Millisecond),
			"kept_offset", best.offset.Round(time.Millisecond), "kept_rtt", best.rtt.Round(time.Millisecond))
		return nil
	case *protocol.Neighbours:
		if l.d.Neighbours != nil {
			l.d.Neighbours.Hint(m)
		}
		return nil
	case *protocol.Upgrade:
		if l.d.Upgrades == nil || !l.cfg.Upgrades {
			l.log.Warn("ignoring an upgrade: this agent trusts no release key (upgrade.release_keys), and its hello said so",
				"rollout", m.Rollout, "version", m.Package.Version)
			return nil
		}
		l.d.Upgrades.Upgrade(m)
		return nil
	case *protocol.ErrorMessage:
		if m.Code == protocol.CodeNotStored {
			// Kept in the journal, unacknowledged: sent again from the first unacknowledged
			// record once the hub had time to recover. The session goes on meanwhile.
			wait := time.Duration(max(m.RetryAfterS, 1)) * time.Second
			l.log.Warn("the hub could not store confirmations; they stay in the journal and are sent again", "message", m.Message,
				"unacknowledged_from", s.acked+1, "retry_in", wait)
			s.holdUntil, s.sent = time.Now().Add(wait), s.acked
			return nil
		}
		l.log.Warn("the hub reported an error", "code", m.Code, "message", m.Message, "re", m.Re)
		if m.RetryAfterS > 0 {
			end.retryAfter = time.Duration(m.RetryAfterS) * time.Second
		}
		if m.Code == protocol.CodeBusy || m.Code == protocol.CodeUnauthorized {
			end.authRefused = m.Code == protocol.CodeUnauthorized
			return errRefusedByHub{m}
		}
		return nil
	default:
		l.log.Warn("ignoring a message the hub should not send", "type", m.Type(), "id", m.Envelope().ID)
		return nil
	}
}

// refuse logs a refused push and reports it.
func (s *session) refuse(kind, re, code, reason string) error {
	s.l.log.Warn(kind+" push from the hub refused", "push", re, "code", code, "reason", reason)
	return s.write(&protocol.Delivery{Header: protocol.Header{Re: re}, State: protocol.DeliveryRefused, Code: code, Reason: reason})
}

func refusal(err error) (code, reason string) {
	d := protocol.RefusedDelivery("", "", err)
	return d.Code, d.Reason
}

func (s *session) schedule(ctx context.Context, m *protocol.Schedule) error {
	l := s.l
	p, err := l.verifier.VerifySchedule(m.Signed, l.d.Schedules.HeldRevision)
	if err != nil {
		code, reason := refusal(err)
		return s.refuse("schedule", m.ID, code, reason)
	}
	name := fmt.Sprintf("schedule %s revision %d from the hub", p.ScheduleID, p.Revision)
	doc, err := scheduler.Parse(name, []byte(p.Document))
	if err != nil {
		return s.refuse("schedule", m.ID, protocol.CodeInvalidDocument, err.Error())
	}
	if doc.ID != p.ScheduleID || doc.Revision < 0 || uint64(doc.Revision) != p.Revision {
		return s.refuse("schedule", m.ID, protocol.CodeInvalidDocument, fmt.Sprintf(
			"the signed payload names schedule %q revision %d but the document says id %q revision %d",
			p.ScheduleID, p.Revision, doc.ID, doc.Revision))
	}
	ref := protocol.ScheduleRef{ID: p.ScheduleID, Revision: p.Revision}
	prog, err := l.d.Schedules.Offer(ctx, p)
	if err != nil {
		code := protocol.CodeInternal
		if errors.Is(err, ErrInvalidDocument) {
			code = protocol.CodeInvalidDocument
		}
		return s.refuse("schedule", m.ID, code, err.Error())
	}
	l.log.Info("schedule received from the hub", "schedule", ref.ID, "revision", ref.Revision, "state", prog.State, "missing_items", len(prog.Missing))
	if err := s.write(&protocol.Delivery{Header: protocol.Header{Re: m.ID}, ScheduleID: ref.ID, Revision: ref.Revision, State: protocol.DeliveryReceived}); err != nil {
		return err
	}
	for _, st := range progressStates(prog.State) {
		if err := s.write(&protocol.Delivery{Header: protocol.Header{Re: m.ID}, ScheduleID: ref.ID, Revision: ref.Revision, State: st}); err != nil {
			return err
		}
	}
	if len(prog.Missing) > 0 {
		l.fetchFor(ref, prog.Missing)
	}
	return nil
}

// progressStates lists the delivery states to report after received for a progress state.
func progressStates(state string) []string {
	switch state {
	case protocol.DeliveryContentReady:
		return []string{protocol.DeliveryContentReady}
	case protocol.DeliveryActive:
		return []string{protocol.DeliveryContentReady, protocol.DeliveryActive}
	}
	return nil
}

func (s *session) command(ctx context.Context, m *protocol.Command) error {
	l := s.l
	c, err := l.verifier.VerifyCommand(m.Signed, l.cmdLog)
	if err != nil {
		code, reason := refusal(err)
		return s.refuse("command", m.ID, code, reason)
	}
	// Persist the replay memory before acting, so a crash right after cannot reopen it.
	if err := l.d.CommandMemory.SaveCommandLog(l.cmdLog.State()); err != nil {
		l.log.Error("cannot save the command replay memory; command not executed", "command", c.ID, "err", err)
		return s.write(&protocol.Delivery{Header: protocol.Header{Re: m.ID}, CommandID: c.ID, State: protocol.DeliveryFailed,
			Reason: "the device could not save its command replay memory: " + err.Error()})
	}
	l.log.Info("command from the hub", "command", c.ID, "action", c.Action, "issued_by", c.IssuedBy)
	// Carried out beside the session, which must keep reading (pings) meanwhile: a play_now
	// fetch or a screenshot upload over a slow uplink can outlast the link's idle deadline. The
	// outcome goes through the outbox by command id, on this connection or the next.
	l.commands.Go(func() {
		state, reason := protocol.DeliveryExecuted, ""
		if err := l.d.Commands.Execute(ctx, c); err != nil {
			l.log.Warn("command failed", "command", c.ID, "action", c.Action, "err", err)
			state, reason = protocol.DeliveryFailed, err.Error()
		}
		l.queue(&protocol.Delivery{Header: protocol.Header{Re: m.ID}, CommandID: c.ID, State: state, Reason: reason})
	})
	return nil
}

func (s *session) flushOutbox() error {
	ds := s.l.takeOutbox()
	for i, d := range ds {
		d.ID = ""
		if err := s.write(d); err != nil {
			s.l.requeue(ds[i:])
			return err
		}
	}
	return nil
}

func (s *session) sendStatus() error {
	l := s.l
	st := l.d.Status.Status()
	st.Header = protocol.Header{}
	if st.At.IsZero() {
		st.At = l.d.Clock.Now()
	}
	if off, ok := l.ClockOffset(); ok && st.ClockOffsetS == nil {
		v := off.Seconds()
		st.ClockOffsetS = &v
	}
	if rtt := time.Duration(l.rttNS.Load()); rtt > 0 {
		ms := float64(rtt) / float64(time.Millisecond)
		if st.Link == nil {
			st.Link = &protocol.LinkQuality{}
		} else {
			lq := *st.Link
			st.Link = &lq
		}
		if st.Link.RTTMS == nil {
			st.Link.RTTMS = &ms
		}
	}
	return s.write(&st)
}

func (l *Link) storeSummary() protocol.StoreSummary {
	u := l.d.Store.Usage()
	return protocol.StoreSummary{Items: int64(u.Items), Bytes: u.Bytes, FreeBytes: freeBytes(l.d.Store.Dir())}
}

// aliveReader reads one message, counting every byte that arrives as a sign of life: over a
// slow link a big push takes longer than the ping deadline, and the hub's pongs wait behind it
// in the same TCP stream. It keeps the read error, which is the link's, not a decoding fault.
type aliveReader struct {
	r     io.Reader
	alive func()
	err   error
}

func (a *aliveReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	if n > 0 {
		a.alive()
	}
	if err != nil && err != io.EOF && !errors.Is(err, websocket.ErrReadLimit) { // too large: the hub's fault
		a.err = err
	}
	return n, err
}

// sampleClock asks the hub for its time, when it answers such requests: each answer is a
// sample of the clock offset (handle).
func (s *session) sampleClock() error {
	if !s.timeSamples {
		return nil
	}
	return s.write(&protocol.Time{SentAt: s.l.d.Clock.Now()})
}
