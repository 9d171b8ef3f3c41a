package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/device/sign"
	"github.com/loa-project/loa/scheduler"
)

// Status is what `loa-agent status` shows.
type Status struct {
	DeviceID         string           `json:"device_id"`
	Running          bool             `json:"running"`
	Now              time.Time        `json:"now"`
	ClockSynced      bool             `json:"clock_synced"`
	ScheduleID       string           `json:"schedule_id,omitempty"`
	ScheduleRevision int64            `json:"schedule_revision,omitempty"`
	NowPlaying       []*NowPlaying    `json:"now_playing"`
	Next             []NextRun        `json:"next"`
	Store            content.Usage    `json:"store"`
	Journal          journal.Stats    `json:"journal"`
	Amplifier        *amplifier.State `json:"amplifier,omitempty"`
	Board            *sign.State      `json:"board,omitempty"`  // the LED sign: connected, last error
	Screen           *screen.State    `json:"screen,omitempty"` // mpv: running, restarts, last error
	Volume           float64          `json:"volume"`           // device volume now (its schedule applied)
}

// NextRun is an upcoming programme.
type NextRun struct {
	Output  string    `json:"output"`
	Program string    `json:"program"`
	Title   string    `json:"title,omitempty"`
	Class   string    `json:"class"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

func (a *Agent) status() Status {
	now := a.clock.Now()
	doc := a.sched.active()
	a.mu.Lock()
	st := Status{DeviceID: a.cfg.DeviceID, Running: true, Now: now, ClockSynced: a.synced}
	for _, np := range a.nowPlaying {
		st.NowPlaying = append(st.NowPlaying, np)
	}
	a.mu.Unlock()
	if doc != nil {
		st.ScheduleID, st.ScheduleRevision = doc.ID, doc.Revision
		if tl, err := scheduler.Compile(doc, now, now.Add(24*time.Hour), scheduler.CompileOptions{ItemLength: a.itemLength}); err == nil {
			for _, r := range tl.Runs() {
				if r.Start.After(now) && r.Segments[0].Audible() && len(st.Next) < 5 {
					st.Next = append(st.Next, NextRun{r.Output, r.Program, r.Title, r.Class.String(), r.Start, r.End})
				}
			}
		}
	}
	if a.screen != nil {
		ss := a.screen.State()
		st.Screen = &ss
	}
	if a.sign != nil {
		bs := a.sign.State()
		st.Board = &bs
	}
	if a.amp != nil {
		as := a.amp.State()
		st.Amplifier = &as
	}
	st.Volume = a.volume.now(now, doc)
	st.Store = a.store.Usage()
	st.Journal, _ = a.journal.Stats()
	return st
}

// serveControl answers `loa-agent status` and `loa-agent journal` on a unix socket in the
// data directory: the journal file is locked by the running agent, so other processes ask it.
func (a *Agent) serveControl(ctx context.Context) (io.Closer, error) {
	path := a.cfg.SocketPath()
	os.Remove(path) // a socket left by a crash
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	os.Chmod(path, 0o660)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.status())
	})
	mux.HandleFunc("GET /journal", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		recs, err := a.journal.List(since, limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, recs)
	})
	mux.HandleFunc("POST /test/{what}", func(w http.ResponseWriter, r *http.Request) {
		hold, _ := time.ParseDuration(r.URL.Query().Get("hold"))
		a.log.Info("test asked for on the control socket", "test", r.PathValue("what"), "hold", hold)
		rep, err := a.runTest(r.Context(), r.PathValue("what"), hold)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, errBusy) {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
			return
		}
		a.log.Info("test done", "test", rep.Test, "ok", rep.OK, "steps", strings.Join(rep.Steps, "; "))
		writeJSON(w, rep)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.tasks.Go(func() { srv.Serve(ln) }) // returns when Run closes srv
	return srv, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// controlClient talks to a running agent over its socket.
func controlClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
}

func askAgent(socket, path string, v any) error {
	if _, err := os.Stat(socket); err != nil {
		return errNoDaemon
	}
	resp, err := controlClient(socket).Get("http://agent" + path)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return errNoDaemon
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent answered %s: %s", resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// RunTest asks the running agent to carry out a test (speakers, relay, sign, screen); it
// returns an error wrapping ErrNotRunning when there is no agent to ask.
func RunTest(cfg *Config, what string, hold time.Duration) (TestReport, error) {
	var rep TestReport
	socket := cfg.SocketPath()
	if _, err := os.Stat(socket); err != nil {
		return rep, fmt.Errorf("%w (no control socket %s)", ErrNotRunning, socket)
	}
	c := controlClient(socket)
	c.Timeout = 5 * time.Minute // a warm-up, a tone and a spoken line, or a long hold
	resp, err := c.Post(fmt.Sprintf("http://agent/test/%s?hold=%s", url.PathEscape(what), hold), "", nil)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return rep, fmt.Errorf("%w (%s does not answer)", ErrNotRunning, socket)
		}
		return rep, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return rep, errors.New(strings.TrimSpace(string(b)))
	}
	return rep, json.NewDecoder(resp.Body).Decode(&rep)
}

// ErrNotRunning: the agent's control socket is absent or does not answer.
var ErrNotRunning = errNoDaemon

// ReadJournal returns the confirmations after seq: from the running agent if there is one,
// else from the journal file.
func ReadJournal(cfg *Config, since uint64, limit int) ([]journal.Record, error) {
	var recs []journal.Record
	err := askAgent(cfg.SocketPath(), fmt.Sprintf("/journal?since=%d&limit=%d", since, limit), &recs)
	if !errors.Is(err, errNoDaemon) {
		return recs, err
	}
	if _, err := os.Stat(cfg.JournalPath()); os.IsNotExist(err) {
		return nil, nil // no play recorded yet
	}
	// The agent may be starting (it holds the file before its socket is up) or a crashed
	// one's leftovers may be settling: try a few times, the socket first each time.
	var j *journal.Journal
	for attempt := 0; ; attempt++ {
		j, err = journal.Open(cfg.JournalPath(), journal.Options{DeviceID: cfg.DeviceID})
		if err == nil {
			break
		}
		if attempt == 3 {
			return nil, err
		}
		time.Sleep(time.Second)
		if err2 := askAgent(cfg.SocketPath(), fmt.Sprintf("/journal?since=%d&limit=%d", since, limit), &recs); err2 == nil {
			return recs, nil
		}
	}
	defer j.Close()
	return j.List(since, limit)
}

// ReadStatus returns the running agent's status, or what the files say when it is not running.
func ReadStatus(cfg *Config) (Status, error) {
	var st Status
	err := askAgent(cfg.SocketPath(), "/status", &st)
	if !errors.Is(err, errNoDaemon) {
		return st, err
	}
	st = Status{DeviceID: cfg.DeviceID, Now: time.Now()} // no daemon, so no agent clock: the machine's
	if data, err := os.ReadFile(cfg.activePath()); err == nil {
		if doc, err := scheduler.Parse(cfg.activePath(), data); err == nil {
			st.ScheduleID, st.ScheduleRevision = doc.ID, doc.Revision
		}
	}
	if s, err := content.Open(cfg.ContentDir(), content.Options{}); err == nil {
		st.Store = s.Usage()
		s.Close()
	}
	if j, err := journal.Open(cfg.JournalPath(), journal.Options{DeviceID: cfg.DeviceID}); err == nil {
		st.Journal, _ = j.Stats()
		j.Close()
	}
	return st, nil
}
