package amplifier

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/loa-project/loa/internal/testkit"
)

// ptyPair is a serial line (a socat pty pair): the driver opens Driver, the test plays the
// relay board on Board through the serial port board.
type ptyPair struct {
	pty    *testkit.Pty
	t      testing.TB
	Driver string
	Board  string
	board  serial.Port
}

func newPtyPair(t testing.TB) *ptyPair {
	dir := t.TempDir()
	p := &ptyPair{t: t, Driver: filepath.Join(dir, "relay"), Board: filepath.Join(dir, "board")}
	p.pty = testkit.UnpluggedPtyAt(t, p.Driver, p.Board)
	p.plug()
	t.Cleanup(p.unplug)
	return p
}

// plug starts socat (again) with the same link names, as a board coming back on the same
// /dev/serial/by-id name does.
func (p *ptyPair) plug() {
	p.t.Helper()
	p.pty.Plug()
	port, err := serial.Open(p.Board, &serial.Mode{BaudRate: 9600})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		p.t.Fatal(err)
	}
	p.board = port
}

// unplug stops socat: the driver's end of the line vanishes.
func (p *ptyPair) unplug() {
	if p.board == nil {
		return
	}
	_ = p.board.Close()
	p.board = nil
	p.pty.Unplug()
}

// expect reads exactly want from the board's side.
func (p *ptyPair) expect(want []byte) {
	p.t.Helper()
	var got []byte
	buf := make([]byte, 16)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		n, err := p.board.Read(buf)
		if err != nil {
			p.t.Fatalf("reading the board side: %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		p.t.Fatalf("board received % X, want % X", got, want)
	}
}

var (
	lcusOn  = []byte{0xA0, 0x01, 0x01, 0xA2}
	lcusOff = []byte{0xA0, 0x01, 0x00, 0xA1}
)

func TestLCUSFramesOnEveryChannel(t *testing.T) {
	testkit.NeedSocat(t)
	p := newPtyPair(t)
	for _, tc := range []struct {
		ch   int
		on   bool
		want []byte
	}{
		{1, true, lcusOn},
		{1, false, lcusOff},
		{2, true, []byte{0xA0, 0x02, 0x01, 0xA3}},
		{4, false, []byte{0xA0, 0x04, 0x00, 0xA4}},
		{0x60, true, []byte{0xA0, 0x60, 0x01, 0x01}}, // checksum wraps mod 256
	} {
		r := NewLCUS(p.Driver, tc.ch)
		if err := r.Set(tc.on); err != nil {
			t.Fatal(err)
		}
		p.expect(tc.want)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLCUSMissingPortIsAnActionableError(t *testing.T) {
	r := NewLCUS(filepath.Join(t.TempDir(), "ttyUSB9"), 1)
	err := r.Set(true)
	if err == nil || !strings.Contains(err.Error(), "ttyUSB9") || !strings.Contains(err.Error(), "plugged in") {
		t.Fatalf("err = %v, want one naming the port and suggesting the cable", err)
	}
}

// The whole path through real ptys: warm-up and off-delay order, a shared hold, the board
// unplugged while playing (reported, playback calls return), replugged (recovers, right bytes).
func TestLCUSAmplifierUnplugAndReplug(t *testing.T) {
	testkit.NeedSocat(t)
	p := newPtyPair(t)
	clk := newFakeClock()
	logs := &testkit.Buffer{}
	a := New(testConfig(), NewLCUS(p.Driver, 1), clk, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()
	p.expect(lcusOff) // asserted at start
	testkit.WaitFor(t, "relay off", 10*time.Second, func() bool { return a.State().Relay == "off" })

	// Two plays share one switch-on; the warm-up holds both back.
	first, second := acquire(a), acquire(a)
	p.expect(lcusOn)
	testkit.WaitFor(t, "relay on, two plays", 10*time.Second, func() bool { s := a.State(); return s.Relay == "on" && s.Users == 2 })
	if returned(first) || returned(second) {
		t.Fatal("a play went ahead before the warm-up")
	}
	clk.Advance(2 * time.Second)
	waitResult(t, first)
	waitResult(t, second)
	a.Release()

	// Unplugged while the second play is still going.
	p.unplug()
	a.Release() // returns at once: it never touches the port
	clk.Advance(30 * time.Second)
	testkit.WaitFor(t, "failure reported", 10*time.Second, func() bool { return a.State().Error != "" })
	s := a.State()
	if s.Relay != "unknown" || !strings.Contains(s.Error, p.Driver) {
		t.Fatalf("state after unplug = %+v", s)
	}
	if testing.Verbose() {
		t.Logf("after unplug: %+v", s)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("unplug not logged as an error:\n%s", logs)
	}

	// A new play while unplugged still goes ahead after the warm-up.
	res := acquire(a)
	testkit.WaitFor(t, "switch-on attempt failed", 10*time.Second, func() bool { s := a.State(); return s.Failures >= 2 && s.Phase == PhaseWarmingUp })
	clk.Advance(2 * time.Second)
	if err := waitResult(t, res); err != nil {
		t.Fatalf("Acquire failed the play while the relay was unplugged: %v", err)
	}

	// Replugged: the next retry reopens the port and switches the relay on (a replugged board
	// powers up off, so the wanted state must be written again).
	p.plug()
	clk.Advance(testConfig().RetryMax)
	p.expect(lcusOn)
	testkit.WaitFor(t, "recovered", 10*time.Second, func() bool { s := a.State(); return s.Error == "" && s.Relay == "on" })
	if !strings.Contains(logs.String(), "works again") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}

	a.Release()
	clk.Advance(30 * time.Second)
	p.expect(lcusOff)
	testkit.WaitFor(t, "off", 10*time.Second, func() bool { s := a.State(); return s.Phase == PhaseOff && s.Relay == "off" })
}
