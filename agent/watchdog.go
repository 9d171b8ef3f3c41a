package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/player"
)

// notifier speaks systemd's notify protocol (sd_notify(3)): a datagram to $NOTIFY_SOCKET.
// It is small enough that a library would not earn its place.
type notifier struct {
	conn *net.UnixConn
}

func newNotifier() *notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract namespace
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil
	}
	return &notifier{conn: conn}
}

func (n *notifier) send(state string) {
	if n != nil {
		n.conn.Write([]byte(state))
	}
}

func (n *notifier) close() {
	if n != nil {
		n.conn.Close()
	}
}

// watchdogInterval is systemd's WatchdogSec for this service, if it asked for pings.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid, err := strconv.Atoi(os.Getenv("WATCHDOG_PID")); err == nil && pid != os.Getpid() {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// health is what the watchdog looks at: the scheduler loop's last step, and the playback
// on the speakers, whose output must be consuming samples while it plays.
type health struct {
	lastStep atomic.Int64 // unix nanos of the runner's last step
	lastPing atomic.Int64 // unix nanos of the last WATCHDOG=1
	playing  atomic.Pointer[player.Playback]

	// What outputStuck saw last (the upgrade health check's goroutine only).
	seenPb     *player.Playback
	seenFrames int64
	seenAt     time.Time
}

// stuckAfter is how long a play may take no samples before the health check of a new
// version calls the output stuck.
const stuckAfter = 5 * time.Second

// outputStuck says why the audio output is not consuming: a play whose frames have not moved
// across calls for stuckAfter. Idle (nothing playing) is not stuck: the output opened, or the
// agent would not run.
func (h *health) outputStuck() string {
	now := time.Now()
	pb := h.playing.Load()
	if pb == nil || isDone(pb) || pb.Progress().Paused {
		h.seenPb = nil
		return ""
	}
	f := pb.Progress().ProgramFrames
	if pb != h.seenPb || f != h.seenFrames {
		h.seenPb, h.seenFrames, h.seenAt = pb, f, now
		return ""
	}
	if d := now.Sub(h.seenAt); d >= stuckAfter {
		return fmt.Sprintf("the audio output has taken no samples for %s during a play", d.Round(time.Second))
	}
	return ""
}

// stepped and watch use the machine's time, not the agent's clock: systemd's watchdog counts
// monotonic time, whatever the wall clock (or a test's fast clock) does.
func (h *health) stepped() { h.lastStep.Store(time.Now().UnixNano()) }

// watch pings systemd every half interval while the agent is healthy, and stops pinging when
// the scheduler loop is stuck or the audio output stopped taking samples during a play, so
// that systemd restarts the service.
func (h *health) watch(ctx context.Context, n *notifier, interval time.Duration, log func(msg string, args ...any)) {
	if n == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	var lastFrames int64
	var lastPb *player.Playback
	lastAdvance := time.Now()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		ok := now.Sub(time.Unix(0, h.lastStep.Load())) < interval
		if !ok && !warned {
			log("watchdog: the scheduler loop has not stepped for a whole watchdog interval; letting systemd restart the agent")
		}
		if pb := h.playing.Load(); pb != nil && !isDone(pb) {
			f := pb.Progress().ProgramFrames
			if pb != lastPb || f != lastFrames {
				lastPb, lastFrames, lastAdvance = pb, f, now
			} else if now.Sub(lastAdvance) >= interval && !pb.Progress().Paused {
				if !warned {
					log("watchdog: the audio output has taken no samples for a whole watchdog interval during a play; letting systemd restart the agent")
				}
				ok = false
			}
		} else {
			lastPb, lastAdvance = nil, now
		}
		if ok {
			n.send("WATCHDOG=1")
			h.lastPing.Store(now.UnixNano())
			warned = false
		} else {
			warned = true
		}
	}
}

func isDone(pb *player.Playback) bool {
	select {
	case <-pb.Done():
		return true
	default:
		return false
	}
}
