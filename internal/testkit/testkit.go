// Package testkit holds the helpers of tests that run real parts: waiting for another
// goroutine or process, free loopback ports, serial lines made of socat pty pairs, and the
// project's programs built once per test process. It is imported by _test.go files only.
package testkit

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks its condition: short beside the waits (seconds), long
// enough not to take a core from the parts under test.
const pollEvery = 10 * time.Millisecond

// Poll checks cond every interval until it holds or d has passed, and reports whether it held.
func Poll(d, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// WaitFor polls cond until it holds, and fails t naming what it waited for if that takes
// more than d. The deadline only stops a broken test from hanging; it measures nothing.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if !Poll(d, pollEvery, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// FreePort is a loopback port nobody listened on a moment ago, for a server the test starts
// as a separate process. Another process may take it in between; in-process servers should
// listen on port 0 themselves instead.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("no free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is "127.0.0.1:" and a FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// LoadAverage is the machine's 1-, 5- and 15-minute load averages ("" if unknown), for the
// lines that say how busy the machine was when a real-time test or benchmark ran.
func LoadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
