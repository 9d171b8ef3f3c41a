package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A serial line in tests is a pair of linked pseudo-terminals made by socat: the part under
// test opens one end as it would /dev/ttyUSB0, the test plays the device on the other. socat
// ignores parity and data bits, so those are set but not checked on the wire.

// NeedSocat skips t when socat is not installed.
func NeedSocat(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("socat not installed (scripts/install-deps installs it)")
	}
}

// Pty is a socat pty pair: the symlinks A and B are its two ends.
type Pty struct {
	A, B string
	t    testing.TB
	cmd  *exec.Cmd
	log  *Buffer
}

// NewPty makes a pty pair with its ends in a new temporary directory (named "a" and "b"),
// plugged in, and unplugs it when the test ends. It skips t without socat.
func NewPty(t testing.TB) *Pty {
	t.Helper()
	dir := t.TempDir()
	return PtyAt(t, filepath.Join(dir, "a"), filepath.Join(dir, "b"))
}

// PtyAt is NewPty with the ends at the paths a and b, e.g. the port a config names.
func PtyAt(t testing.TB, a, b string) *Pty {
	t.Helper()
	p := UnpluggedPtyAt(t, a, b)
	p.Plug()
	return p
}

// UnpluggedPtyAt is a pty pair at a and b that does not exist until Plug, as a USB adapter
// not yet plugged in. It is unplugged when the test ends.
func UnpluggedPtyAt(t testing.TB, a, b string) *Pty {
	t.Helper()
	NeedSocat(t)
	p := &Pty{A: a, B: b, t: t}
	t.Cleanup(p.Unplug)
	return p
}

// Plug starts socat (again) with the same link names, as an adapter plugged back in comes
// back under the same /dev/serial/by-id name, and returns when both ends can be opened.
func (p *Pty) Plug() {
	p.t.Helper()
	p.log = &Buffer{}
	p.cmd = exec.Command("socat", "-d", "-d", "pty,raw,echo=0,link="+p.A, "pty,raw,echo=0,link="+p.B)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start socat (scripts/install-deps installs it): %v", err)
	}
	WaitFor(p.t, "socat to link "+p.A+" and "+p.B, 10*time.Second, func() bool {
		_, e1 := os.Stat(p.A)
		_, e2 := os.Stat(p.B)
		return e1 == nil && e2 == nil && strings.Contains(p.log.String(), "starting data transfer")
	})
}

// Unplug stops socat: both ends close and their links go, as when the adapter is pulled.
func (p *Pty) Unplug() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	p.cmd = nil
	WaitFor(p.t, "socat to remove "+p.A, 10*time.Second, func() bool {
		_, err := os.Lstat(p.A)
		return os.IsNotExist(err)
	})
}
