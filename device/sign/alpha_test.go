package sign

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var hanoi = time.FixedZone("ICT", 7*3600)

// fakeSign reads frames from the sign end of the pair and, if answer is
// set, answers read-time-of-day requests like a real sign.
type fakeSign struct {
	f      *os.File
	frames chan []byte
	mu     sync.Mutex
	answer bool
}

func openFakeSign(t *testing.T, path string, answer bool) *fakeSign {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open sign end %s: %v", path, err)
	}
	s := &fakeSign{f: f, frames: make(chan []byte, 64), answer: answer}
	t.Cleanup(func() { f.Close() })
	go s.loop()
	return s
}

func (s *fakeSign) setAnswer(v bool) {
	s.mu.Lock()
	s.answer = v
	s.mu.Unlock()
}

func (s *fakeSign) loop() {
	defer close(s.frames)
	buf := make([]byte, 512)
	var frame []byte
	for {
		n, err := s.f.Read(buf)
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			frame = append(frame, b)
			if b != eot {
				continue
			}
			s.frames <- frame
			s.mu.Lock()
			answer := s.answer
			s.mu.Unlock()
			if answer && bytes.Contains(frame, []byte("\x02F \x03")) {
				body := "\x02E 0705\x03"
				s.f.Write([]byte("\x00\x00\x01000" + body + sum16(body) + "\x04"))
			}
			frame = nil
		}
	}
}

// next returns the next frame, skipping time-of-day reads.
func (s *fakeSign) next(t *testing.T) string {
	t.Helper()
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatal("sign end closed while waiting for a frame")
			}
			if bytes.Contains(f, []byte("\x02F ")) {
				continue
			}
			return string(f)
		case <-time.After(20 * time.Second):
			t.Fatal("no frame arrived")
		}
	}
}

func wantFrame(cmd string) string {
	body := "\x02" + cmd + "\x03"
	return "\x00\x00\x00\x00\x00\x01Z00" + body + sum16(body) + "\x04"
}

func openTestAlpha(t *testing.T, cfg AlphaConfig) (*Alpha, *testkit.Buffer) {
	t.Helper()
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// In UTC on purpose: the sign must get its time in the zone SetClock used.
	clk := fixedClock{time.Date(2026, 11, 26, 0, 5, 0, 0, time.UTC)}
	a, err := OpenAlpha(cfg, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return a, logs
}

func TestAlphaFramesOverPty(t *testing.T) {
	p := testkit.NewPty(t)
	sign := openFakeSign(t, p.B, false)
	a, _ := openTestAlpha(t, AlphaConfig{Port: p.A})
	ctx := context.Background()

	if err := a.Show(ctx, Text{Message: "Thông báo lịch tiêm chủng", Position: Middle, Mode: Rotate}); err != nil {
		t.Fatal(err)
	}
	if got, want := sign.next(t), wantFrame("AA\x1b aThong bao lich tiem chung"); got != want {
		t.Fatalf("show:\n got %q\nwant %q", got, want)
	}
	if err := a.SetClock(ctx, time.Date(2026, 11, 26, 7, 5, 0, 0, hanoi)); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"E'M", "E;112626", "E&5", "E 0705"} {
		if got, want := sign.next(t), wantFrame(cmd); got != want {
			t.Fatalf("clock:\n got %q\nwant %q", got, want)
		}
	}
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := sign.next(t), wantFrame("AA\x1b0b"); got != want {
		t.Fatalf("clear:\n got %q\nwant %q", got, want)
	}
	// Control bytes in a bulletin cannot end the frame early.
	if err := a.Show(ctx, Text{Message: "A\x04B\x03C\x1bD\nE"}); err != nil {
		t.Fatal(err)
	}
	if got, want := sign.next(t), wantFrame("AA\x1b0oABCD E"); got != want {
		t.Fatalf("sanitised:\n got %q\nwant %q", got, want)
	}
	if st := a.State(); !st.Connected || st.LastError != "" {
		t.Fatalf("state after good writes: %+v", st)
	}
}

func TestAlphaNoChecksumOption(t *testing.T) {
	p := testkit.NewPty(t)
	sign := openFakeSign(t, p.B, false)
	a, _ := openTestAlpha(t, AlphaConfig{Port: p.A, NoChecksum: true, Type: TypeAny, Address: "0A", Label: '0'})
	if err := a.Show(context.Background(), Text{Message: "HELLO", Mode: Hold, Position: Top}); err != nil {
		t.Fatal(err)
	}
	if got, want := sign.next(t), "\x00\x00\x00\x00\x00\x01?0A\x02A0\x1b\"bHELLO\x04"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestAlphaUnplugReplug(t *testing.T) {
	p := testkit.NewPty(t)
	sign := openFakeSign(t, p.B, false)
	a, logs := openTestAlpha(t, AlphaConfig{Port: p.A, RetryFirst: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	ctx := context.Background()
	if err := a.Show(ctx, Text{Message: "one"}); err != nil {
		t.Fatal(err)
	}
	if got := sign.next(t); got != wantFrame("AA\x1b0oone") {
		t.Fatalf("got %q", got)
	}
	if err := a.SetClock(ctx, time.Date(2026, 11, 26, 6, 0, 0, 0, hanoi)); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		sign.next(t)
	}

	p.Unplug()
	testkit.WaitFor(t, "the outage to be reported", 20*time.Second, func() bool { return !a.State().Connected && a.State().Failures >= 3 })
	st := a.State()
	if st.LastError == "" || st.DownSince.IsZero() {
		t.Fatalf("state during outage: %+v", st)
	}
	// The caller gets an answer, not a hang: ErrUnavailable, well before
	// this (generous) deadline.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := a.Show(cctx, Text{Message: "two"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Show while unplugged: %v, want ErrUnavailable", err)
	}
	if cctx.Err() != nil {
		t.Fatal("Show waited for its deadline instead of failing fast")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one outage (want 1):\n%s", n, logs)
	}

	p.Plug()
	sign = openFakeSign(t, p.B, false)
	testkit.WaitFor(t, "the sign to be back", 20*time.Second, func() bool { return a.State().Connected })
	// On reconnect the clock (now, in the zone SetClock used) and the text
	// the sign should show are sent again.
	for _, cmd := range []string{"E'M", "E;112626", "E&5", "E 0705"} {
		if got, want := sign.next(t), wantFrame(cmd); got != want {
			t.Fatalf("restored clock:\n got %q\nwant %q", got, want)
		}
	}
	if got := sign.next(t); got != wantFrame("AA\x1b0otwo") {
		t.Fatalf("restored frame %q", got)
	}
	if err := a.Show(ctx, Text{Message: "three"}); err != nil {
		t.Fatal(err)
	}
	if got := sign.next(t); got != wantFrame("AA\x1b0othree") {
		t.Fatalf("after replug %q", got)
	}
	if !strings.Contains(logs.String(), "LED sign back") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
}

func TestAlphaVerifyNoAnswer(t *testing.T) {
	p := testkit.NewPty(t)
	sign := openFakeSign(t, p.B, true)
	a, logs := openTestAlpha(t, AlphaConfig{Port: p.A, Verify: true, ReplyTimeout: 300 * time.Millisecond,
		RetryFirst: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	ctx := context.Background()
	testkit.WaitFor(t, "the sign to answer", 20*time.Second, func() bool { return a.State().Connected })
	if err := a.Show(ctx, Text{Message: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := sign.next(t); got != wantFrame("AA\x1b0ook") {
		t.Fatalf("got %q", got)
	}

	sign.setAnswer(false) // powered off, cable cut on the sign's TX…
	err := a.Show(ctx, Text{Message: "lost"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("Show to a silent sign: %v", err)
	}
	if st := a.State(); st.Connected || !strings.Contains(st.LastError, "did not answer") {
		t.Fatalf("state: %+v", st)
	}
	sign.setAnswer(true)
	testkit.WaitFor(t, "the sign to answer again", 20*time.Second, func() bool { return a.State().Connected })
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one outage:\n%s", n, logs)
	}
}

func TestAlphaMissingPort(t *testing.T) {
	a, logs := openTestAlpha(t, AlphaConfig{Port: filepath.Join(t.TempDir(), "ttyUSB9"), RetryFirst: 10 * time.Millisecond})
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Show(cctx, Text{Message: "x"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "ttyUSB9") {
		t.Fatalf("err %v", err)
	}
	testkit.WaitFor(t, "the failure to be logged", 20*time.Second, func() bool { return strings.Contains(logs.String(), "cannot open") })
	if st := a.State(); st.Connected || !strings.Contains(st.LastError, "cannot open") {
		t.Fatalf("state %+v", st)
	}
}

func TestOpenProtocols(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := Open(Config{Protocol: "daktronics"}, fixedClock{}, log); err == nil || !strings.Contains(err.Error(), "daktronics") {
		t.Fatalf("unknown protocol: %v", err)
	}
	s, err := Open(Config{Alpha: AlphaConfig{Port: filepath.Join(t.TempDir(), "tty")}}, fixedClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Alpha); !ok {
		t.Fatalf("default protocol gave %T", s)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAlphaConfigErrors(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	clk := fixedClock{}
	for _, c := range []struct {
		cfg  AlphaConfig
		want string
	}{
		{AlphaConfig{}, "no serial port"},
		{AlphaConfig{Port: "/dev/x", Parity: "evn"}, "parity"},
		{AlphaConfig{Port: "/dev/x", StopBits: 3}, "stop bits"},
		{AlphaConfig{Port: "/dev/x", DataBits: 9}, "data bits"},
		{AlphaConfig{Port: "/dev/x", Address: "100"}, "address"},
		{AlphaConfig{Port: "/dev/x", Label: 0x7F}, "file label"},
	} {
		_, err := OpenAlpha(c.cfg, clk, log)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
	}
}
