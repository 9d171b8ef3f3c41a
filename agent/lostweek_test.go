package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// The lost week's schedule, in the schedule's zone: a bulletin every three hours at :45, a
// morning and an evening programme, noon news and a 10-minute relay of the district radio.
const lostWeekSchedule = `version: 1
id: lost-week
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - {id: morning, cron: "0 30 6 * * *", items: [{content: %[1]s}]}
  - {id: bulletin, cron: "0 45 */3 * * *", items: [{content: %[2]s}]}
  - {id: noon, cron: "0 0 12 * * *", items: [{content: %[2]s}]}
  - {id: relay, cron: "0 0 17 * * *", items: [{stream: "%[3]s", duration: 10m}]}
  - {id: evening, cron: "0 0 19 * * *", items: [{content: %[1]s}]}
`

// lostWeekStarts are the schedule's starts as times of day (the relay is watched to its end):
// the driver slows the clock around them so that every start is seen within a second or two.
var lostWeekStarts = []time.Duration{
	6*time.Hour + 30*time.Minute, 12 * time.Hour, 19 * time.Hour,
	45 * time.Minute, 3*time.Hour + 45*time.Minute, 6*time.Hour + 45*time.Minute, 9*time.Hour + 45*time.Minute,
	12*time.Hour + 45*time.Minute, 15*time.Hour + 45*time.Minute, 18*time.Hour + 45*time.Minute, 21*time.Hour + 45*time.Minute,
}

// lostWeekDay is what one simulated day (05:00 to 05:00 the next day) must leave in the
// journal, by planned time: a reboot from 08:00 to 10:00 (booting at 1970, then NTP), the
// clock stepped forward from 11:50 to 14:05, and back an hour at 17:05 during the relay.
var lostWeekDay = []string{
	"06:30 morning completed",
	"06:45 bulletin completed",
	"09:45 bulletin missed: the agent was not running",
	"12:00 noon missed: the wall clock jumped forward",
	"12:45 bulletin missed: the wall clock jumped forward",
	"15:45 bulletin completed",
	"17:00 relay completed",
	"18:45 bulletin completed",
	"19:00 evening completed",
	"21:45 bulletin completed",
	"00:45 bulletin completed",
	"03:45 bulletin completed",
}

// TestAgentLostWeek runs the agent in-process on a fast fake clock (the scheduler's clock seam,
// internal/clock) through days offline: a real hub pushes the schedule and its content, goes
// away, and comes back at the end to receive the week. Plays go to the null output, which takes
// samples as fast as they come: the point is the schedule, the journal and the content store,
// and it lets a simulated day pass in seconds. The relay's stream drops every few hundred
// milliseconds. One day in `make test`; LOA_SOAK=1 runs seven (`make soak`) and prints the
// LOSTWEEK figures line.
func TestAgentLostWeek(t *testing.T) {
	days := 1
	if os.Getenv("LOA_SOAK") != "" {
		days = 7
	}
	hcm, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	os.MkdirAll(media, 0o755)
	tone(t, filepath.Join(media, "a.wav"), 440, 2)
	tone(t, filepath.Join(media, "b.wav"), 660, 1)
	relayMP3 := filepath.Join(media, "relay.mp3")
	tone(t, relayMP3, 550, 3)
	radio := newDroppingRadio(t, relayMP3)

	t0 := time.Now()
	h := startLostWeekHub(t)
	t.Logf("phase hub built and started %.1fs", time.Since(t0).Seconds())
	h.cli(t, "area", "add", "qn/tk", "--name", "Tam Kỳ")
	secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(h.cli(t, "device", "enroll", "qn/tk/lost-week", "--area", "qn/tk"))[1]
	refRe := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	refA := refRe.FindString(h.cli(t, "content", "add", filepath.Join(media, "a.wav"), "--title", "Bản tin", "--language", "vi"))
	refB := refRe.FindString(h.cli(t, "content", "add", filepath.Join(media, "b.wav"), "--title", "Thông báo", "--language", "vi"))
	sched := filepath.Join(dir, "lost-week.yaml")
	os.WriteFile(sched, fmt.Appendf(nil, lostWeekSchedule, refA, refB, radio.URL+"/vov1.mp3"), 0o644)

	const budgetMB, maxRecords = 4, 5000
	os.WriteFile(filepath.Join(dir, "agent.yaml"), fmt.Appendf(nil, "device_id: qn/tk/lost-week\ndata_dir: data\naudio: {output: \"null\"}\n"+
		"content: {budget_mb: %d}\njournal: {max_records: %d}\n"+
		"hub:\n  url: %s\n  secret: %s\n  heartbeat: 2s\n  reconnect_max: 1s\n  trusted_keys:\n    %s\n", budgetMB, maxRecords, h.url, secret, h.keyLine), 0o644)
	cfg, err := agent.LoadConfig(filepath.Join(dir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	// Day 1 starts at 05:00 eight days ago, so that the week ends before the hub's now.
	y, m, d := time.Now().In(hcm).AddDate(0, 0, -8).Date()
	day1 := time.Date(y, m, d, 0, 0, 0, 0, hcm)
	w := &weekDriver{t: t, cfg: cfg, hcm: hcm, log: &lockedWriter{w: &bytes.Buffer{}}}
	logs := func() string {
		w.log.mu.Lock()
		defer w.log.mu.Unlock()
		agentLog := w.log.w.String()
		return "hub:\n" + h.proc.String() + "\nagent (last 8 kB):\n" + agentLog[max(0, len(agentLog)-8000):]
	}
	w.boot(day1.Add(5 * time.Hour))
	h.cli(t, "schedule", "push", sched, "--to", "qn/tk")
	waitFor(t, "the agent to take the pushed schedule and its content", 60*time.Second, func() bool {
		st, err := agent.ReadStatus(cfg)
		return err == nil && st.ScheduleRevision == 1
	}, logs)
	h.stop() // the link is lost for the whole week
	t.Logf("phase schedule taken %.1fs", time.Since(t0).Seconds())

	var heap1, heap7 uint64
	var gor1, gor7 int
	var dayTook []time.Duration // real time per simulated day: a slowdown over the week shows here
	for day := range days {
		dayStart := time.Now()
		base := day1.AddDate(0, 0, day)
		w.advanceTo(base.Add(8 * time.Hour))
		// A power cut at 08:00; the box comes back at 10:00 without an RTC (1970), and NTP
		// steps it to the real time a minute later.
		w.shutdown()
		w.boot(time.Date(1970, 1, 1, 9, 59, 0, 0, hcm))
		w.advanceTo(time.Date(1970, 1, 1, 10, 0, 0, 0, hcm))
		w.clk.Step(base.Add(10 * time.Hour).Sub(w.clk.Now()))
		// A wrong step forward over the noon session.
		w.advanceTo(base.Add(11*time.Hour + 50*time.Minute))
		w.clk.Step(2*time.Hour + 15*time.Minute)
		// A step back of an hour five minutes into the relay.
		w.advanceTo(base.Add(17*time.Hour + 5*time.Minute))
		w.clk.Step(-time.Hour)
		w.advanceTo(base.Add(29 * time.Hour))
		dayTook = append(dayTook, time.Since(dayStart))
		switch day {
		case 0:
			heap1, gor1 = heapAfterGC(), runtime.NumGoroutine()
		case 6:
			heap7, gor7 = heapAfterGC(), runtime.NumGoroutine()
		}
	}

	t.Logf("phase days done %.1fs", time.Since(t0).Seconds())
	recs, err := agent.ReadJournal(cfg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkLostWeek(t, recs, day1, days, hcm)
	if t.Failed() {
		w.log.mu.Lock()
		os.WriteFile(filepath.Join(os.TempDir(), "lostweek-agent.log"), w.log.w.Bytes(), 0o644)
		w.log.mu.Unlock()
		t.Logf("the agent's log of the whole run is in %s", filepath.Join(os.TempDir(), "lostweek-agent.log"))
	}
	st, err := agent.ReadStatus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Journal.Records > maxRecords {
		t.Errorf("journal holds %d records, over its cap of %d", st.Journal.Records, maxRecords)
	}
	if st.Store.Bytes > budgetMB<<20 {
		t.Errorf("content store holds %d bytes, over its budget of %d MB", st.Store.Bytes, budgetMB)
	}
	if heap7 > 0 && heap7 > heap1+heap1/2+4<<20 {
		t.Errorf("heap grew from %d bytes at day 1 to %d at day 7", heap1, heap7)
	}
	if gor7 > 0 && gor7 > gor1+10 {
		t.Errorf("goroutines grew from %d at day 1 to %d at day 7", gor1, gor7)
	}
	jfile, err := os.Stat(cfg.JournalPath())
	if err != nil {
		t.Fatal(err)
	}

	// The hub comes back: the week is delivered in order and acknowledged.
	back := time.Now()
	h.start(t)
	var confs []struct {
		Device  string `json:"device"`
		Seq     uint64 `json:"seq"`
		Program string `json:"program"`
		Result  string `json:"result"`
	}
	waitFor(t, "the hub to receive the week", 120*time.Second, func() bool {
		confs = nil
		return json.Unmarshal([]byte(h.cliOut("confirmations", "--json", "--limit", "100000")), &confs) == nil && len(confs) >= len(recs)
	}, logs)
	delivery := time.Since(back)
	slices.SortFunc(confs, func(a, b struct {
		Device  string `json:"device"`
		Seq     uint64 `json:"seq"`
		Program string `json:"program"`
		Result  string `json:"result"`
	}) int {
		return int(a.Seq) - int(b.Seq)
	})
	if len(confs) != len(recs) {
		t.Fatalf("the hub holds %d confirmations, the journal %d", len(confs), len(recs))
	}
	for i, c := range confs {
		r := recs[i]
		if c.Seq != uint64(i+1) || c.Seq != r.Seq || c.Program != r.Program || c.Result != string(r.Result) {
			t.Fatalf("hub confirmation %d is seq %d %s %s; the journal's is seq %d %s %s", i, c.Seq, c.Program, c.Result, r.Seq, r.Program, r.Result)
		}
	}
	waitFor(t, "the agent to see the week acknowledged", 30*time.Second, func() bool {
		st, err := agent.ReadStatus(cfg)
		return err == nil && st.Journal.Acked == uint64(len(recs))
	}, logs)
	st, _ = agent.ReadStatus(cfg)
	w.shutdown()
	missed := 0
	for _, r := range recs {
		if r.Result == protocol.ResultMissed {
			missed++
		}
	}
	t.Logf("LOSTWEEK days=%d records=%d missed=%d heap_day1=%.1fMB heap_day7=%.1fMB goroutines_day1=%d goroutines_day7=%d day1_took=%.1fs last_day_took=%.1fs "+
		"journal_records=%dB journal_file=%dB content=%dB stream_connections=%d delivered=%d delivery=%.1fs",
		days, len(recs), missed, float64(heap1)/(1<<20), float64(heap7)/(1<<20), gor1, gor7, dayTook[0].Seconds(), dayTook[len(dayTook)-1].Seconds(),
		st.Journal.Bytes, jfile.Size(), st.Store.Bytes, radio.connections(), len(confs), delivery.Seconds())
}

// checkLostWeek compares the journal with lostWeekDay for each day, by planned time.
func checkLostWeek(t *testing.T, recs []journal.Record, day1 time.Time, days int, loc *time.Location) {
	t.Helper()
	var want, got []string
	for day := range days {
		date := day1.AddDate(0, 0, day).Format("01-02")
		for i, line := range lostWeekDay {
			if i == len(lostWeekDay)-2 { // the 00:45 and 03:45 bulletins are the next date's
				date = day1.AddDate(0, 0, day+1).Format("01-02")
			}
			want = append(want, date+" "+line)
		}
	}
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b journal.Record) int { return a.Scheduled.Compare(b.Scheduled) })
	dropouts := 0
	for _, r := range sorted {
		program := r.Program[strings.LastIndex(r.Program, "/")+1:] // the hub names it after the area
		line := fmt.Sprintf("%s %s %s", r.Scheduled.In(loc).Format("01-02 15:04"), program, r.Result)
		if r.Result == protocol.ResultMissed {
			why := r.Error
			for _, reason := range []string{"the agent was not running", "the wall clock jumped forward"} {
				if strings.HasPrefix(why, reason) {
					why = reason
				}
			}
			line += ": " + why
		}
		if program == "relay" {
			// The wall clock went back an hour during it. Its end is its last sound: seen after
			// the step (before its start), the journal keeps start + played and marks the clock
			// unsynced; seen before it (the stream was down at the step), it stands.
			dropouts += r.Dropouts
			stepped := r.Clock == protocol.ClockUnsynced
			if r.End.Before(r.Start) || stepped && !r.End.Equal(r.Start.Add(time.Duration(r.PlayedS*float64(time.Second)))) {
				t.Errorf("relay of %s: start %s end %s played %.1fs clock %s; want an end after the start, start + played when the clock is unsynced",
					r.Scheduled.Format("01-02"), r.Start, r.End, r.PlayedS, r.Clock)
			}
		} else if r.Clock != protocol.ClockSynced {
			t.Errorf("%s %s: clock %s, want synced", program, r.Scheduled.Format("01-02 15:04"), r.Clock)
		}
		got = append(got, line)
	}
	if !slices.Equal(got, want) {
		t.Errorf("journal by planned time:\n got %q\nwant %q", got, want)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("journal record %d has seq %d: not 1..N", i, r.Seq)
		}
		if r.Result == protocol.ResultCompleted && r.PlayedS <= 0 {
			t.Errorf("record %d (%s) completed with nothing played", r.Seq, r.Program)
		}
	}
	if dropouts == 0 {
		t.Error("the relay's records count no drop-out although the stream dropped every 300 ms")
	}
}

// weekDriver runs the agent on a fake clock and restarts it on its data directory.
type weekDriver struct {
	t      *testing.T
	cfg    *agent.Config
	hcm    *time.Location
	log    *lockedWriter // the agent's, across its restarts
	clk    *clock.Fake
	cancel context.CancelFunc
	done   chan error
}

func (w *weekDriver) boot(at time.Time) {
	w.clk = clock.NewFake(at)
	a := agent.New(w.cfg, slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})), w.clk)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- a.Run(ctx) }()
	w.t.Cleanup(w.shutdown)
	waitFor(w.t, "the agent's control socket", 30*time.Second, func() bool {
		st, err := agent.ReadStatus(w.cfg)
		return err == nil && st.Running
	}, func() string { return "" })
}

func (w *weekDriver) shutdown() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	if err := <-w.done; err != nil {
		w.t.Error(err)
	}
	w.cancel = nil
}

// advanceTo moves the clock to wall time until: a second at a time from a minute before each
// programme's start (and through the relay), holding at each start until it is heard; up to
// five minutes at a time elsewhere.
func (w *weekDriver) advanceTo(until time.Time) {
	for now := w.clk.Now(); now.Before(until); now = w.clk.Now() {
		step, pause := time.Second, 2*time.Millisecond
		if next, ok := w.startIn(now, now.Add(24*time.Hour)); ok && next.Sub(now) > time.Minute && !w.inRelay(now) {
			step, pause = min(5*time.Minute, next.Sub(now)-time.Minute), 200*time.Microsecond
		}
		step = min(step, until.Sub(now))
		w.clk.Advance(step)
		time.Sleep(pause)
		if s, ok := w.startIn(now, now.Add(step)); ok {
			w.waitHeard(s)
		}
	}
}

// inRelay says whether the relay's window (17:00 to 17:10) is on, so that its stream gets
// real time to drop out and come back.
func (w *weekDriver) inRelay(now time.Time) bool {
	y, m, d := now.In(w.hcm).Date()
	tod := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, w.hcm))
	return tod >= 17*time.Hour && tod < 17*time.Hour+10*time.Minute
}

// startIn is the first programme start in (from, to], as a wall time.
func (w *weekDriver) startIn(from, to time.Time) (time.Time, bool) {
	y, m, d := from.In(w.hcm).Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, w.hcm)
	var first time.Time
	for _, day := range []time.Time{midnight, midnight.AddDate(0, 0, 1)} {
		for _, tod := range lostWeekStarts {
			if s := day.Add(tod); s.After(from) && !s.After(to) && (first.IsZero() || s.Before(first)) {
				first = s
			}
		}
	}
	return first, !first.IsZero()
}

// waitHeard holds the clock until the journal has a record of the start planned at s (a play
// is journalled when its first sample reaches the output), so that a one-second item is heard
// on a clock five hundred times faster than the machine's. A start the clock comes to again
// after a step back is recorded already; one that never comes lets the week go on after 10 s
// and the journal check says what is missing.
func (w *weekDriver) waitHeard(s time.Time) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		recs, err := agent.ReadJournal(w.cfg, 0, 0)
		if err != nil {
			continue
		}
		for _, r := range recs {
			if r.Scheduled.Equal(s) {
				return
			}
		}
	}
}

func (w *weekDriver) nearStart(now time.Time) bool {
	y, m, d := now.In(w.hcm).Date()
	tod := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, w.hcm))
	for _, s := range lostWeekStarts {
		if tod > s-6*time.Minute && tod < s+time.Minute {
			return true
		}
	}
	return tod > 17*time.Hour-6*time.Minute && tod < 17*time.Hour+11*time.Minute // the relay
}

func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// droppingRadio is a relay stream that drops its listeners every 300 ms.
type droppingRadio struct {
	*httptest.Server
	conns chan struct{}
}

func newDroppingRadio(t *testing.T, mp3 string) *droppingRadio {
	data, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	r := &droppingRadio{conns: make(chan struct{}, 1<<20)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.conns <- struct{}{}
		w.Header().Set("Content-Type", "audio/mpeg")
		stop := time.After(300 * time.Millisecond)
		for off := 0; ; off = (off + 4096) % len(data) {
			select {
			case <-stop:
				return
			case <-req.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := w.Write(data[off:min(off+4096, len(data))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *droppingRadio) connections() int { return len(r.conns) }

// lostWeekHub is a real loa-hub on loopback, stopped and started again on the same data.
type lostWeekHub struct {
	hubBin, cliBin, dir, addr, url, config, keyLine, token string
	proc                                                   *testProc
}

func startLostWeekHub(t *testing.T) *lostWeekHub {
	t.Helper()
	h := &lostWeekHub{hubBin: testkit.Binary(t, "loa-hub"), cliBin: testkit.Binary(t, "loa"), dir: t.TempDir(), addr: testkit.FreeAddr(t)}
	h.url, h.config = "http://"+h.addr, filepath.Join(h.dir, "hub.yaml")
	keyOut := runOut(t, h.hubBin, "keygen", "--out", filepath.Join(h.dir, "key"), "--key-id", "hub-week")
	h.keyLine = strings.TrimSpace(regexp.MustCompile(`(?m)^\s*(hub-week: "ed25519:[^"]+")`).FindStringSubmatch(keyOut)[1])
	os.WriteFile(h.config, fmt.Appendf(nil, "listen: %s\ndata_dir: data\nsigning_key_file: key\nsigning_key_id: hub-week\nstatus_interval: 2s\n", h.addr), 0o644)
	h.token = regexp.MustCompile(`loa-st1-[a-z0-9]+`).FindString(runOut(t, h.hubBin, "user", "add", "admin", "--scope", "qn", "--area-name", "Quảng Nam", "--config", h.config))
	h.start(t)
	return h
}

func (h *lostWeekHub) start(t *testing.T) {
	t.Helper()
	h.proc = startProc(t, h.hubBin, "serve", "--config", h.config)
	waitFor(t, "the hub to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", h.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, h.proc.String)
}

func (h *lostWeekHub) stop() { h.proc.signal(syscall.SIGTERM) }

func (h *lostWeekHub) cli(t *testing.T, args ...string) string {
	t.Helper()
	return runOut(t, h.cliBin, append([]string{"--hub", h.url, "--token", h.token}, args...)...)
}

// cliOut runs the CLI and returns its standard output, or "" when it fails.
func (h *lostWeekHub) cliOut(args ...string) string {
	out, _ := exec.Command(h.cliBin, append([]string{"--hub", h.url, "--token", h.token}, args...)...).Output()
	return string(out)
}

// waitFor polls cond every 50 ms for up to d, failing with what and context() when it never holds.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool, context func() string) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s\n%s", d, what, context())
}

func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testkit.Run(t, nil, name, args...)
}

// testProc is a background process whose output is kept for failure messages.
type testProc struct {
	cmd *exec.Cmd
	out lockedWriter
}

func (p *testProc) String() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.w.String()
}

func startProc(t *testing.T, name string, args ...string) *testProc {
	t.Helper()
	p := &testProc{cmd: exec.Command(name, args...), out: lockedWriter{w: &bytes.Buffer{}}}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.signal(syscall.SIGKILL) })
	return p
}

// signal sends s and waits for the process to end.
func (p *testProc) signal(s syscall.Signal) {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(s)
		p.cmd.Wait()
	}
}
