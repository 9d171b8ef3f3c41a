package screen

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running mpv and its IPC connection.
type process struct {
	cmd    *exec.Cmd
	ipc    *ipc
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit status, set before exited closes
	stderr *tailBuffer
}

// args are mpv's options: idle and black between programs, nothing on screen but the
// content (no OSD, OSC, cursor, key bindings), no user config or scripts, the next playlist
// entry opened while the current one plays.
func (s *Screen) args(sock string) []string {
	a := []string{
		"--no-config",
		"--idle=yes",
		"--force-window=yes",
		"--fullscreen",
		"--keep-open=no",
		"--prefetch-playlist=yes",
		"--image-display-duration=" + fmt.Sprint(s.cfg.ImageDuration.Seconds()),
		"--no-terminal",
		"--no-input-default-bindings",
		"--input-vo-keyboard=no",
		"--no-osc",
		"--osd-level=0",
		"--cursor-autohide=always",
		"--sub-auto=no",
		"--audio-file-auto=no",
		"--load-scripts=no",
		"--ytdl=no",
		"--hwdec=auto-safe",
		"--screenshot-format=png",
		"--vo=" + s.cfg.VO,
	}
	switch s.cfg.Audio {
	case "", "none":
		a = append(a, "--aid=no")
	case "auto":
	default:
		a = append(a, "--audio-device="+s.cfg.Audio)
	}
	a = append(a, s.cfg.Args...)
	return append(a, "--input-ipc-server="+sock)
}

// start runs mpv and connects to its socket.
func (s *Screen) start() (*process, error) {
	sock := filepath.Join(s.dir, "mpv.sock")
	os.Remove(sock)
	if len(sock) > 100 {
		return nil, fmt.Errorf("screen: socket path %s is too long for a unix socket: use a shorter dir", sock)
	}
	p := &process{exited: make(chan struct{}), stderr: &tailBuffer{max: 4096}}
	p.cmd = exec.Command(s.cfg.MPV, s.args(sock)...)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	// mpv must not outlive the agent: it would hold the display.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("screen: cannot start %s (is mpv installed? apt-get install mpv): %w", s.cfg.MPV, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(s.cfg.StartTimeout)
	var conn net.Conn
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			conn = c
			break
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("screen: mpv exited at start (%v): %s", p.err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			<-p.exited
			return nil, fmt.Errorf("screen: mpv did not open its IPC socket %s within %s: %s", sock, s.cfg.StartTimeout, p.stderr.String())
		}
	}
	p.ipc = newIPC(conn, func(m message) { s.onEvent(p, m) }, func(err error) { s.log.Warn("screen: bad message from mpv", "err", err) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, name := range []string{"playback-time", "frame-drop-count", "decoder-frame-drop-count"} {
		if _, err := p.ipc.command(ctx, "observe_property", i+1, name); err != nil {
			p.cmd.Process.Kill()
			<-p.exited
			return nil, fmt.Errorf("screen: mpv does not answer on its socket: %w", err)
		}
	}
	if _, err := p.ipc.command(ctx, "request_log_messages", "warn"); err != nil {
		s.log.Warn("screen: mpv will not send its log", "err", err)
	}
	s.log.Info("screen: mpv started", "pid", p.cmd.Process.Pid, "vo", s.cfg.VO, "audio", s.cfg.Audio)
	return p, nil
}

// supervise waits for mpv to exit. An exit while the screen is open fails the program on
// screen and starts mpv again after a backoff (1 s doubling to 30 s); Close quits mpv.
func (s *Screen) supervise(p *process) {
	defer close(s.superv)
	backoff := time.Second
	for {
		select {
		case <-s.quit:
			s.stopProcess(p)
			return
		case <-p.exited:
		}
		msg := fmt.Sprintf("mpv exited (%v)", p.err)
		if tail := strings.TrimSpace(p.stderr.String()); tail != "" {
			msg += ": " + lastLine(tail)
		}
		s.log.Error("screen: "+msg+"; restarting it", "in", backoff)
		s.mu.Lock()
		s.proc = nil
		s.state.Running, s.state.PID = false, 0
		s.noteError(msg)
		var calls []func()
		for _, sh := range append([]*Showing(nil), s.live...) {
			calls = append(calls, s.finishLocked(sh, msg)...)
		}
		s.entries, s.early, s.playing = map[int64]entry{}, map[int64][]message{}, 0
		s.dropVO, s.dropDec = 0, 0
		s.mu.Unlock()
		runCalls(calls)
		p.ipc.close()
		for {
			select {
			case <-s.quit:
				return
			case <-s.clk.After(backoff):
			}
			np, err := s.start()
			if err == nil {
				p = np
				break
			}
			s.mu.Lock()
			s.noteError(err.Error())
			s.mu.Unlock()
			backoff = min(2*backoff, 30*time.Second)
			s.log.Error("screen: mpv restart failed", "err", err, "next_try_in", backoff)
		}
		s.mu.Lock()
		s.proc = p
		s.restarts++
		s.state.Running, s.state.PID = true, p.cmd.Process.Pid
		s.mu.Unlock()
		backoff = time.Second
	}
}

// stopProcess asks mpv to quit and kills it if it has not within 3 s.
func (s *Screen) stopProcess(p *process) {
	s.mu.Lock()
	s.proc = nil
	s.state.Running, s.state.PID = false, 0
	var calls []func()
	for _, sh := range append([]*Showing(nil), s.live...) {
		if sh.stopReason == "" {
			sh.stopReason = EndStopped
		}
		calls = append(calls, s.finishLocked(sh, "")...)
	}
	s.mu.Unlock()
	runCalls(calls)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.ipc.command(ctx, "quit") //nolint:errcheck // mpv closes the socket as it quits
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
		s.log.Warn("screen: mpv did not quit; killing it", "pid", p.cmd.Process.Pid)
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.ipc.close()
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// tailBuffer keeps the last max bytes written (mpv's own output, for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
