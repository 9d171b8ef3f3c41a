package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestPoll(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	WaitFor(t, "three increments", 10*time.Second, func() bool { return n.Load() == 3 })
	if Poll(20*time.Millisecond, time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never holds as held")
	}
	calls := 0
	if !Poll(time.Second, time.Millisecond, func() bool { calls++; return calls == 4 }) || calls != 4 {
		t.Fatalf("Poll stopped after %d checks, want 4", calls)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("FreeAddr = %q, want 127.0.0.1 and a port", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on the free address %s: %v", addr, err)
	}
	l.Close()
}

// Bytes written on one end arrive at the other; unplugged, the ends are gone; plugged again,
// the same names work.
func TestPtyCarriesBytesAndUnplugs(t *testing.T) {
	p := NewPty(t)
	roundTrip := func(msg string) {
		t.Helper()
		b, err := os.OpenFile(p.B, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		a, err := os.OpenFile(p.A, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := a.WriteString(msg); err != nil {
			t.Fatal(err)
		}
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 0, len(msg))
		buf := make([]byte, 64)
		for len(got) < len(msg) {
			n, err := b.Read(buf)
			if err != nil {
				t.Fatalf("reading end B after %q: %v", got, err)
			}
			got = append(got, buf[:n]...)
		}
		if string(got) != msg {
			t.Fatalf("end B read %q, want %q", got, msg)
		}
	}
	roundTrip("hello sign")
	p.Unplug()
	for _, end := range []string{p.A, p.B} {
		if _, err := os.Lstat(end); !os.IsNotExist(err) {
			t.Fatalf("after Unplug %s is still there (%v)", end, err)
		}
	}
	p.Plug()
	roundTrip("again")
}

// A program is built once per flags: the second call returns the same file, and it runs.
func TestBinaryIsBuiltOnce(t *testing.T) {
	bin := Binary(t, "loa")
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if again := Binary(t, "loa"); again != bin {
		t.Fatalf("second Binary = %s, want the first build %s", again, bin)
	}
	if fi2, err := os.Stat(bin); err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the program was built again (%v)", err)
	}
	if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "loa") {
		t.Fatalf("built loa --help: %v\n%s", err, out)
	}
}

func TestBufferTakesConcurrentWrites(t *testing.T) {
	var b Buffer
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				b.Write([]byte("ab"))
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := b.String(); len(got) != 800 || strings.Count(got, "ab") != 400 {
		t.Fatalf("Buffer holds %d bytes, want 800 of \"ab\"", len(got))
	}
}

// logTB records what is logged into a test.
type logTB struct {
	testing.TB
	lines []string
}

func (l *logTB) Log(args ...any) { l.lines = append(l.lines, fmt.Sprint(args...)) }

func TestLoggerWritesIntoTheTestLog(t *testing.T) {
	rec := &logTB{TB: t}
	Logger(rec).Debug("relay on", "port", "/dev/ttyUSB0")
	if len(rec.lines) != 1 || !strings.Contains(rec.lines[0], "level=DEBUG msg=\"relay on\" port=/dev/ttyUSB0") {
		t.Fatalf("logged %q", rec.lines)
	}
}

func TestRun(t *testing.T) {
	if out := Run(t, []string{"LOA_TESTKIT=ok"}, "sh", "-c", "echo $LOA_TESTKIT; echo err >&2"); out != "ok\nerr\n" {
		t.Fatalf("Run printed %q, want the environment given and both outputs", out)
	}
	rec := &fatalTB{TB: t}
	func() {
		defer func() { recover() }()
		Run(rec, nil, "sh", "-c", "echo broken; exit 3")
	}()
	if !strings.Contains(rec.msg, "sh -c echo broken; exit 3") || !strings.Contains(rec.msg, "broken") {
		t.Fatalf("a failing run reported %q, want the command and its output", rec.msg)
	}
}

// fatalTB records Fatalf and stops the helper there, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestWaitForFailsNamingWhat(t *testing.T) {
	rec := &fatalTB{TB: t}
	func() {
		defer func() { recover() }()
		WaitFor(rec, "the relay to click", 20*time.Millisecond, func() bool { return false })
	}()
	if !strings.Contains(rec.msg, "waiting for the relay to click") {
		t.Fatalf("WaitFor failed with %q, want it to name what it waited for", rec.msg)
	}
}
