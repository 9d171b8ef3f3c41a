package agent_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
)

// TestWatchdogStopsWhenAudioBlocks runs the agent as systemd would (NOTIFY_SOCKET,
// WATCHDOG_USEC), then makes the sound card stop taking samples mid-play: the agent must
// stop pinging, so that systemd restarts it.
func TestWatchdogStopsWhenAudioBlocks(t *testing.T) {
	b := newBox(t, "")
	tone(t, filepath.Join(b.dir, "media/long.wav"), 300, 30)
	sock := filepath.Join(b.dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	start := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: wd\nrevision: 1\ntimezone: UTC\nprograms:\n  - {id: long, at: %q, items: [{file: media/long.wav}]}\n", at(start)))
	const interval = 1500 * time.Millisecond
	os.Setenv("NOTIFY_SOCKET", sock)
	os.Setenv("WATCHDOG_USEC", fmt.Sprint(interval.Microseconds()))
	b.start()
	os.Unsetenv("NOTIFY_SOCKET")
	os.Unsetenv("WATCHDOG_USEC")

	expect := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case m := <-msgs:
				if m == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %s from the agent within %s; log:\n%s", want, within, b.logText())
			}
		}
	}
	expect("READY=1", 10*time.Second)
	b.waitFor("the long play to start", 15*time.Second, func(r []journal.Record) bool { return len(r) > 0 })
	expect("WATCHDOG=1", 3*interval)
	expect("WATCHDOG=1", 3*interval)

	// The card stops taking samples: hold the FIFO open without reading and stop the drain.
	fd, err := syscall.Open(b.fifo, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	b.stopCard()
	blocked := time.Now()
	// Pings already under way may still arrive for one interval; after two, none may.
	var late []time.Duration
	timeout := time.After(5 * interval)
	for done := false; !done; {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				late = append(late, time.Since(blocked))
			}
		case <-timeout:
			done = true
		}
	}
	for _, d := range late {
		if d > 2*interval+interval/2 {
			t.Errorf("the agent still pinged %s after its output blocked (interval %s): pings at %v", d.Round(time.Millisecond), interval, late)
			break
		}
	}
	if !strings.Contains(b.logText(), "audio output has taken no samples") {
		t.Errorf("the log does not say why the pings stopped:\n%s", b.logText())
	}
}
