package sign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/loa-project/loa/device/serialio"
)

// AlphaConfig configures an Alpha sign on a serial line. Zero values take
// the defaults noted.
type AlphaConfig struct {
	Port       string // e.g. /dev/ttyUSB0 (required)
	Baud       int    // 9600
	DataBits   int    // 7
	Parity     string // "even" (none, odd, even, mark, space)
	StopBits   int    // 1 (1 or 2)
	Type       byte   // TypeAllSigns ('Z')
	Address    string // Broadcast ("00")
	Label      byte   // TEXT file label, 'A'
	NoChecksum bool   // send frames without ETX + checksum (checksums are on by default)

	// Verify makes every command followed by a read of the sign's time of
	// day; a sign that does not answer within ReplyTimeout is reported
	// away. Only for signs wired with a return line.
	Verify       bool
	ReplyTimeout time.Duration // 2s

	Timeout    time.Duration // for calls whose context has no deadline: 5s
	RetryFirst time.Duration // first reopen delay after a failure: 1s
	RetryMax   time.Duration // backoff cap: 1m
}

func (c *AlphaConfig) defaults() error {
	if c.Port == "" {
		return errors.New("alpha sign: no serial port configured (e.g. port: /dev/ttyUSB0)")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Baud, 9600)
	def(&c.DataBits, 7)
	def(&c.StopBits, 1)
	defd(&c.ReplyTimeout, 2*time.Second)
	defd(&c.Timeout, 5*time.Second)
	defd(&c.RetryFirst, time.Second)
	defd(&c.RetryMax, time.Minute)
	if c.Parity == "" {
		c.Parity = "even"
	}
	if c.Type == 0 {
		c.Type = TypeAllSigns
	}
	if c.Address == "" {
		c.Address = Broadcast
	}
	if c.Label == 0 {
		c.Label = 'A'
	}
	if _, err := c.mode(); err != nil {
		return err
	}
	if _, err := Frame(c.Type, c.Address, false, []byte{'A'}); err != nil {
		return fmt.Errorf("alpha sign %s: %w", c.Port, err)
	}
	if _, err := WriteText(c.Label, Text{}); err != nil {
		return fmt.Errorf("alpha sign %s: %w", c.Port, err)
	}
	return nil
}

func (c *AlphaConfig) mode() (*serial.Mode, error) {
	m := &serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits}
	switch c.Parity {
	case "none":
		m.Parity = serial.NoParity
	case "odd":
		m.Parity = serial.OddParity
	case "even":
		m.Parity = serial.EvenParity
	case "mark":
		m.Parity = serial.MarkParity
	case "space":
		m.Parity = serial.SpaceParity
	default:
		return nil, fmt.Errorf("alpha sign %s: parity %q is not one of none, odd, even, mark, space", c.Port, c.Parity)
	}
	switch c.StopBits {
	case 1:
		m.StopBits = serial.OneStopBit
	case 2:
		m.StopBits = serial.TwoStopBits
	default:
		return nil, fmt.Errorf("alpha sign %s: stop bits %d must be 1 or 2", c.Port, c.StopBits)
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		return nil, fmt.Errorf("alpha sign %s: data bits %d must be 5..8", c.Port, c.DataBits)
	}
	return m, nil
}

// Alpha is a sign speaking the Alpha Sign Communications Protocol. One
// goroutine owns the port: it opens it, writes frames, notices when it goes
// away (read/write errors, missing replies) and reopens it with backoff.
// Calls never wait for a reopen: while the sign is away they return an
// ErrUnavailable error at once, and the last text and the clock are sent
// again as soon as the sign is back.
type Alpha struct {
	cfg  AlphaConfig
	mode *serial.Mode
	clk  Clock
	log  *slog.Logger

	reqs chan request
	done chan struct{}
	quit chan struct{} // closed when the worker has returned

	mu        sync.Mutex
	state     State
	port      serial.Port    // for Close to unblock a stuck write
	lastText  []byte         // command to re-send on reconnect
	clockZone *time.Location // set by SetClock: re-send the time on reconnect
	closed    bool
}

type request struct {
	commands [][]byte
	reply    chan error
	// What the sign should keep showing once this is handled; recorded by
	// the worker (not the caller) so a request queued during a reconnect is
	// not sent twice.
	text     []byte
	setText  bool
	setClock *time.Location // zone of the clock the sign shows
}

var _ Sign = (*Alpha)(nil)

// OpenAlpha starts the driver. It does not fail when the port is absent (the
// sign may be plugged in later): that shows in State and is retried.
func OpenAlpha(cfg AlphaConfig, clk Clock, log *slog.Logger) (*Alpha, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, _ := cfg.mode()
	a := &Alpha{
		cfg: cfg, mode: m, clk: clk,
		log:  log.With("sign", cfg.Port),
		reqs: make(chan request),
		done: make(chan struct{}),
		quit: make(chan struct{}),
	}
	a.state = State{Port: cfg.Port, DownSince: clk.Now()}
	go a.run()
	return a, nil
}

// Show writes t (sanitised to printable ASCII) to the TEXT file.
func (a *Alpha) Show(ctx context.Context, t Text) error {
	t.Message = Sanitize(t.Message)
	cmd, err := WriteText(a.cfg.Label, t)
	if err != nil {
		return err
	}
	return a.do(ctx, request{commands: [][]byte{cmd}, text: cmd, setText: true})
}

// Clear blanks the display by writing an empty TEXT file (memory and file
// configuration stay as they are).
func (a *Alpha) Clear(ctx context.Context) error {
	cmd, err := WriteText(a.cfg.Label, Text{Mode: Hold})
	if err != nil {
		return err
	}
	return a.do(ctx, request{commands: [][]byte{cmd}, text: cmd, setText: true})
}

// ClearMemory deletes every file on the sign ('E' '$'): for a technician
// resetting a sign, not for routine blanking.
func (a *Alpha) ClearMemory(ctx context.Context) error {
	return a.do(ctx, request{commands: [][]byte{ClearMemory()}, setText: true})
}

// SetClock sets 24-hour format, date, weekday and time of day, in the
// location of now (pass local time).
func (a *Alpha) SetClock(ctx context.Context, now time.Time) error {
	return a.do(ctx, request{commands: clockCommands(now), setClock: now.Location()})
}

func clockCommands(now time.Time) [][]byte {
	return [][]byte{SetTimeFormat24(), SetDate(now), SetDayOfWeek(now), SetTimeOfDay(now)}
}

// State reports reachability and the last failure.
func (a *Alpha) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Close stops the worker and releases the port.
func (a *Alpha) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	p := a.port
	a.mu.Unlock()
	close(a.done)
	if p != nil {
		p.Close() // unblocks a write stuck on a wedged line
	}
	select {
	case <-a.quit:
	case <-time.After(a.cfg.Timeout):
		return fmt.Errorf("alpha sign %s: driver did not stop within %s (serial write stuck in the kernel)", a.cfg.Port, a.cfg.Timeout)
	}
	return nil
}

func (a *Alpha) do(ctx context.Context, r request) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.Timeout)
		defer cancel()
	}
	r.reply = make(chan error, 1)
	select {
	case a.reqs <- r:
	case <-a.done:
		return fmt.Errorf("alpha sign %s: closed", a.cfg.Port)
	case <-ctx.Done():
		return fmt.Errorf("alpha sign %s: busy (previous write still pending): %w", a.cfg.Port, ctx.Err())
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("alpha sign %s: no completion of the write: %w", a.cfg.Port, ctx.Err())
	}
}

// conn is one open period of the port.
type conn struct {
	port    serial.Port
	packets chan []byte // complete packets read from the sign
	dead    chan error  // the reader's fatal error (buffered 1)
}

func (a *Alpha) run() {
	defer close(a.quit)
	backoff := a.cfg.RetryFirst
	var c *conn
	for {
		if c == nil {
			select {
			case <-a.done: // Close while the line was down or a write failed
				return
			default:
			}
			var err error
			c, err = a.open()
			if err == nil {
				err = a.restore(c)
				if err != nil {
					a.drop(c)
					c = nil
				}
			}
			if err != nil {
				a.failed(err)
				if !a.wait(backoff) {
					return
				}
				backoff = min(backoff*2, a.cfg.RetryMax)
				continue
			}
			backoff = a.cfg.RetryFirst
			a.recovered()
		}
		select {
		case <-a.done:
			a.drop(c)
			return
		case err := <-c.dead:
			a.drop(c)
			c = nil
			a.failed(fmt.Errorf("line lost: %w", err))
		case r := <-a.reqs:
			a.remember(r)
			err := a.send(c, r.commands)
			if err != nil {
				a.drop(c)
				c = nil
				a.failed(err)
				err = fmt.Errorf("%w: %s: %v (kept; it is sent again when the sign is back)", ErrUnavailable, a.cfg.Port, err)
			}
			r.reply <- err
		}
	}
}

func (a *Alpha) remember(r request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.setText {
		a.lastText = r.text
	}
	if r.setClock != nil {
		a.clockZone = r.setClock
	}
}

// wait sleeps d while answering requests at once with ErrUnavailable.
func (a *Alpha) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return false
		case <-t.C:
			return true
		case r := <-a.reqs:
			a.remember(r)
			st := a.State()
			r.reply <- fmt.Errorf("%w: %s: %s (kept; it is sent again when the sign is back)", ErrUnavailable, a.cfg.Port, st.LastError)
		}
	}
}

func (a *Alpha) open() (*conn, error) {
	p, err := serial.Open(a.cfg.Port, a.mode)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", a.cfg.Port, err)
	}
	c := &conn{port: p, packets: make(chan []byte, 16), dead: make(chan error, 1)}
	a.mu.Lock()
	a.port = p
	a.mu.Unlock()
	go a.read(c)
	return c, nil
}

// read collects bytes into packets (ending at EOT) and reports the first
// read error, which on Linux is how a vanished USB adapter or closed pty
// shows up.
func (a *Alpha) read(c *conn) {
	buf := make([]byte, 256)
	var pkt []byte
	for {
		n, err := c.port.Read(buf)
		if err == nil && n == 0 {
			err = errors.New("end of file (device gone)")
		}
		if err != nil {
			c.dead <- err
			return
		}
		for _, b := range buf[:n] {
			if len(pkt) == 0 && b != nul && b != soh {
				continue // noise between packets
			}
			pkt = append(pkt, b)
			if b == eot || len(pkt) > 4096 {
				select {
				case c.packets <- pkt:
				default: // nobody waiting for replies: drop
				}
				pkt = nil
			}
		}
	}
}

func (a *Alpha) drop(c *conn) {
	a.mu.Lock()
	if a.port == c.port {
		a.port = nil
	}
	a.mu.Unlock()
	c.port.Close()
}

// restore re-sends the clock and the last text after a (re)connect, so the
// sign shows what it should even if it lost power meanwhile.
func (a *Alpha) restore(c *conn) error {
	a.mu.Lock()
	var cmds [][]byte
	if a.clockZone != nil {
		cmds = append(cmds, clockCommands(a.clk.Now().In(a.clockZone))...)
	}
	if a.lastText != nil {
		cmds = append(cmds, a.lastText)
	}
	a.mu.Unlock()
	if len(cmds) == 0 && !a.cfg.Verify {
		return nil
	}
	return a.send(c, cmds)
}

func (a *Alpha) send(c *conn, cmds [][]byte) error {
	for _, cmd := range cmds {
		f, err := Frame(a.cfg.Type, a.cfg.Address, !a.cfg.NoChecksum, cmd)
		if err != nil {
			return err
		}
		if err := serialio.WriteAll(c.port, f); err != nil {
			return fmt.Errorf("write to %s failed: %w", a.cfg.Port, err)
		}
	}
	if a.cfg.Verify {
		return a.verify(c)
	}
	return nil
}

// verify asks for the time of day and waits for a well-formed answer.
func (a *Alpha) verify(c *conn) error {
	for len(c.packets) > 0 { // stale answers
		<-c.packets
	}
	f, err := Frame(a.cfg.Type, a.cfg.Address, !a.cfg.NoChecksum, ReadTimeOfDay())
	if err != nil {
		return err
	}
	if err := serialio.WriteAll(c.port, f); err != nil {
		return fmt.Errorf("write to %s failed: %w", a.cfg.Port, err)
	}
	t := time.NewTimer(a.cfg.ReplyTimeout)
	defer t.Stop()
	var last error
	for {
		select {
		case p := <-c.packets:
			r, err := ParseReply(p)
			if err != nil {
				last = err
				continue
			}
			if r.Command == cmdWriteSpecial && bytes.HasPrefix(r.Data, []byte{fnTimeOfDay}) {
				return nil
			}
		case err := <-c.dead:
			c.dead <- err // let run see it too
			return fmt.Errorf("line lost: %w", err)
		case <-t.C:
			if last != nil {
				return fmt.Errorf("sign sent no valid answer within %s (last: %v): check baud rate/parity and the sign address %s", a.cfg.ReplyTimeout, last, a.cfg.Address)
			}
			return fmt.Errorf("sign did not answer within %s: check that it is powered, the cable (TX/RX) and the sign address %s", a.cfg.ReplyTimeout, a.cfg.Address)
		}
	}
}

// failed records a failure; the first of an outage is logged as a warning,
// the rest only at debug so a sign unplugged for a week does not fill logs.
func (a *Alpha) failed(err error) {
	now := a.clk.Now()
	a.mu.Lock()
	first := a.state.Connected || a.state.Failures == 0
	if a.state.Connected || a.state.DownSince.IsZero() {
		a.state.DownSince = now // a new outage starts
	}
	a.state.LastError = err.Error()
	a.state.LastErrorAt = now
	a.state.Failures++
	a.state.Connected = false
	a.mu.Unlock()
	if first {
		a.log.Warn("LED sign unreachable; retrying in the background (check the USB/serial cable, the sign's power and the port name in the config)", "err", err)
	} else {
		a.log.Debug("LED sign still unreachable", "err", err)
	}
}

func (a *Alpha) recovered() {
	now := a.clk.Now()
	a.mu.Lock()
	was := a.state.Failures > 0
	since := a.state.DownSince
	a.state.Connected = true
	a.state.DownSince = time.Time{}
	a.mu.Unlock()
	if was {
		a.log.Info("LED sign back; last text and clock re-sent", "down", now.Sub(since).String())
	}
}
