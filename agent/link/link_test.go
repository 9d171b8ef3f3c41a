package link

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

const (
	testSecret  = "loa-ds1-gpia34qax7pm6syqbmp73jkkzpwrrr76qho4mvpfp42jadezvhsq"
	wrongSecret = "loa-ds1-q5jkhlq37gpayxlba46jzbz7s5unq2dzqni2w6eoaz4ftfhiz7da"
)

func TestHelloWelcomeClockOffsetAndStatus(t *testing.T) {
	h := newHub(t, testSecret)
	h.skew = 7 * time.Minute // the device's clock is 7 minutes slow
	a := newTestAgent(t, h, testSecret, nil)
	a.record(3)
	if err := a.journal.Ack(1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Put(strings.NewReader("one item"), content.Ref{}); err != nil {
		t.Fatal(err)
	}
	h.stored[1], h.contig = true, 1 // the hub has what the journal says it acknowledged
	a.sch.active = &protocol.ScheduleRef{ID: "dev-cl-07", Revision: 4}
	a.start()
	h.nextConn(t)
	waitFor(t, "the link to take the welcome", 10*time.Second, a.link.Connected)

	h.mu.Lock()
	hello := h.hellos[0]
	h.mu.Unlock()
	if hello.DeviceID != testDevice || hello.SoftwareVersion != "loa-agent test" {
		t.Errorf("hello names device %q software %q", hello.DeviceID, hello.SoftwareVersion)
	}
	if hello.Journal.HighWater != 3 || hello.Journal.Acked != 1 {
		t.Errorf("hello journal = %+v, want high water 3, acked 1", hello.Journal)
	}
	if hello.ActiveSchedule == nil || *hello.ActiveSchedule != (protocol.ScheduleRef{ID: "dev-cl-07", Revision: 4}) || hello.PendingSchedule != nil {
		t.Errorf("hello schedules: active %v pending %v", hello.ActiveSchedule, hello.PendingSchedule)
	}
	if hello.Store.Items != 1 || hello.Store.Bytes != int64(len("one item")) || hello.Store.FreeBytes <= 0 {
		t.Errorf("hello store = %+v", hello.Store)
	}
	off, ok := a.link.ClockOffset()
	if !ok || (off-7*time.Minute).Abs() > time.Second {
		t.Errorf("clock offset = %v (learnt %v), want about 7m", off, ok)
	}
	select {
	case st := <-h.statuses:
		if st.ClockOffsetS == nil || (*st.ClockOffsetS-420) > 1 || (*st.ClockOffsetS-420) < -1 {
			t.Errorf("status clock_offset_s = %v, want about 420", st.ClockOffsetS)
		}
		if st.Volume == nil || *st.Volume != 0.8 || st.UptimeS != 12 {
			t.Errorf("status lost the consumer's snapshot: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no status within 10 s")
	}
	// The records after the ack reach the hub and their ack reaches the journal.
	waitFor(t, "journal acked to 3", 10*time.Second, func() bool { return a.journal.Acked() == 3 })
	h.mu.Lock()
	if h.received[1] != 0 || h.received[2] != 1 || h.received[3] != 1 {
		t.Errorf("hub received %v; want seqs 2 and 3 once (1 was acknowledged before)", h.received)
	}
	h.mu.Unlock()
	if !a.link.Connected() {
		t.Error("Connected() = false on a welcomed link")
	}
}

// The hub takes the first batch, "crashes" having stored only part of it, and comes back
// knowing less than it was sent: the link resends from resend_from and the hub ends with
// every seq stored once.
func TestConfirmationsResentAfterDropMidBatch(t *testing.T) {
	h := newHub(t, testSecret)
	h.crashAfter = 30
	a := newTestAgent(t, h, testSecret, nil) // batches of 100
	a.record(250)
	a.start()
	h.nextConn(t)
	h.nextConn(t) // the reconnect after the crash
	// New records while connected go out as they close.
	a.record(20)
	a.link.Notify()
	waitFor(t, "journal acked to 270", 20*time.Second, func() bool { return a.journal.Acked() == 270 })

	h.mu.Lock()
	defer h.mu.Unlock()
	for seq := uint64(1); seq <= 270; seq++ {
		if !h.stored[seq] {
			t.Fatalf("the hub never stored seq %d", seq)
		}
	}
	if len(h.stored) != 270 || h.contig != 270 {
		t.Errorf("hub stored %d records, contiguous to %d; want 270", len(h.stored), h.contig)
	}
	// Records 31..100 were in the batch the hub lost: they must have been sent again.
	for seq := uint64(31); seq <= 100; seq++ {
		if h.received[seq] < 2 {
			t.Fatalf("seq %d was received %d times; the link should have resent it after the drop", seq, h.received[seq])
		}
	}
	if h.received[1] != 1 {
		t.Errorf("seq 1 was received %d times; the welcome's resend_from said the hub had it", h.received[1])
	}
}

// A hub that cannot store confirmations (its disk is full) says so: the link keeps the session,
// waits the retry time, sends everything unacknowledged again, and nothing is lost or acked
// before it is stored.
func TestConfirmationsResentAfterNotStored(t *testing.T) {
	h := newHub(t, testSecret)
	h.notStored = 3
	a := newTestAgent(t, h, testSecret, nil) // batches of 100
	a.record(150)
	a.start()
	h.nextConn(t)
	waitFor(t, "journal acked to 150", 20*time.Second, func() bool { return a.journal.Acked() == 150 })

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) != 1 {
		t.Errorf("%d connections; a refusal to store must not end the session", len(h.conns))
	}
	if len(h.stored) != 150 || h.contig != 150 {
		t.Errorf("hub stored %d records, contiguous to %d; want 150", len(h.stored), h.contig)
	}
	if h.received[1] < 2 {
		t.Errorf("seq 1 was received %d times; refused, it must have been sent again", h.received[1])
	}
}

// A journal record the wire refuses (a gap gone negative over a clock step) must not hold back
// every record after it: it goes without its measurements, the reason in its error, in order.
func TestRecordTheWireRefusesIsSentWithoutItsMeasurements(t *testing.T) {
	h := newHub(t, testSecret)
	a := newTestAgent(t, h, testSecret, nil)
	a.record(2)
	if _, err := a.journal.Record(protocol.Confirmation{
		Output: "speakers", ScheduleID: "dev-cl-07", Revision: 1, Program: "relay", Scheduled: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
		Start: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 26, 7, 10, 0, 0, time.UTC),
		Proof: protocol.Proof{PlayedS: 600, MissingS: -2980}, Result: protocol.ResultCompleted, Clock: protocol.ClockSynced,
	}); err != nil {
		t.Fatal(err)
	}
	a.record(3)
	a.start()
	h.nextConn(t)
	waitFor(t, "journal acked to 6", 20*time.Second, func() bool { return a.journal.Acked() == 6 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.contig != 6 {
		t.Fatalf("hub holds 1..%d, want 1..6", h.contig)
	}
	if e := h.errors[3]; !strings.Contains(e, "measurements dropped") || !strings.Contains(e, "missing_s") {
		t.Errorf("record 3's error %q does not say its measurements were dropped and why", e)
	}
	for _, seq := range []uint64{1, 2, 4, 5, 6} {
		if e := h.errors[seq]; e != "device was off" {
			t.Errorf("record %d's error %q: only the refused record is changed", seq, e)
		}
	}
}

func (h *testHub) signSchedule(t *testing.T, id string, rev uint64, doc string) *protocol.Signed {
	t.Helper()
	s, err := h.signer.SignSchedule(protocol.SchedulePayload{
		ScheduleID: id, Revision: rev, Devices: []string{testDevice}, IssuedAt: h.now(), Format: protocol.FormatYAML, Document: doc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scheduleDoc(id string, rev uint64, ref content.Ref) string {
	return fmt.Sprintf("version: 1\nid: %s\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: morning\n    title: Bản tin sáng\n    class: normal\n    cron: \"0 30 6 * * MON-SAT\"\n    items:\n      - content: %s\n", id, rev, ref)
}

func TestSchedulePushFetchesContentAndRefusesForgeries(t *testing.T) {
	h := newHub(t, testSecret)
	item := make([]byte, 300_000)
	rand.Read(item)
	ref := content.RefOf(item)
	h.blobs[ref.String()] = item
	h.cutFirstGet = true // the first download breaks half way: resumed with Range
	a := newTestAgent(t, h, testSecret, nil)
	a.start()
	hc := h.nextConn(t)

	// A good push: received at once, then (after the fetch) content_ready and active.
	hc.send(t, &protocol.Schedule{Header: protocol.Header{ID: "h-10"}, Signed: h.signSchedule(t, "dev-cl-07", 5, scheduleDoc("dev-cl-07", 5, ref))})
	d := h.nextDelivery(t)
	if d.Re != "h-10" || d.State != protocol.DeliveryReceived || d.ScheduleID != "dev-cl-07" || d.Revision != 5 {
		t.Fatalf("first delivery = %+v, want received of dev-cl-07 r5 answering h-10", d)
	}
	for _, want := range []string{protocol.DeliveryContentReady, protocol.DeliveryActive} {
		d = h.nextDelivery(t)
		if d.State != want || d.ScheduleID != "dev-cl-07" || d.Revision != 5 {
			t.Fatalf("delivery = %+v, want %s of dev-cl-07 r5", d, want)
		}
	}
	if !a.store.Has(ref) {
		t.Fatal("the item is not in the store")
	}
	if err := a.store.Verify(ref); err != nil {
		t.Fatalf("fetched item does not verify: %v", err)
	}
	h.mu.Lock()
	ranges := append([]string(nil), h.ranges...)
	h.mu.Unlock()
	if len(ranges) == 0 || !strings.HasPrefix(ranges[0], fmt.Sprintf("bytes=%d-", len(item)/2)) {
		t.Errorf("the store did not resume with a Range from the half-way point: ranges %q", ranges)
	}
	if got := a.sch.Active(); got == nil || got.Revision != 5 {
		t.Errorf("active schedule = %v, want revision 5", got)
	}

	// Forgeries and replays, each refused with a delivery naming the reason.
	_, otherPriv, _ := protocol.GenerateKey(rand.Reader)
	other, _ := protocol.NewSigner(testKeyID, otherPriv) // a key the device does not trust, claiming the trusted id
	wrongKey, _ := other.SignSchedule(protocol.SchedulePayload{ScheduleID: "dev-cl-07", Revision: 6, Devices: []string{testDevice}, IssuedAt: h.now(), Format: protocol.FormatYAML, Document: scheduleDoc("dev-cl-07", 6, ref)})
	modified := h.signSchedule(t, "dev-cl-07", 7, scheduleDoc("dev-cl-07", 7, ref))
	modified.Payload = append([]byte(nil), modified.Payload...)
	i := strings.Index(string(modified.Payload), "Asia")
	modified.Payload[i] = 'B' // one byte changed after signing
	unknown, _ := protocol.NewSigner("someone-else", otherPriv)
	unknownKey, _ := unknown.SignSchedule(protocol.SchedulePayload{ScheduleID: "dev-cl-07", Revision: 8, Devices: []string{testDevice}, IssuedAt: h.now(), Format: protocol.FormatYAML, Document: scheduleDoc("dev-cl-07", 8, ref)})
	oldCapture, _ := h.signer.SignSchedule(protocol.SchedulePayload{ScheduleID: "dev-cl-07", Revision: 50, Devices: []string{testDevice},
		IssuedAt: h.now().Add(-protocol.MaxScheduleAge - time.Hour), Format: protocol.FormatYAML, Document: scheduleDoc("dev-cl-07", 50, ref)})
	cases := []struct {
		id     string
		signed *protocol.Signed
		code   string
		reason string
	}{
		{"h-11", wrongKey, "bad_signature", "signature"},
		{"h-12", modified, "bad_signature", "signature"},
		{"h-13", h.signSchedule(t, "dev-cl-07", 5, scheduleDoc("dev-cl-07", 5, ref)), "replayed", "revision"},
		{"h-14", h.signSchedule(t, "dev-cl-07", 4, scheduleDoc("dev-cl-07", 4, ref)), "replayed", "revision"},
		{"h-15", unknownKey, "unknown_key", "someone-else"},
		{"h-16", &protocol.Signed{KeyID: testKeyID, Payload: []byte(`{"kind":"schedule"}`)}, "unsigned", ""},
		{"h-17", h.signSchedule(t, "dev-cl-07", 9, scheduleDoc("dev-cl-07", 10, ref)), protocol.CodeInvalidDocument, "revision 10"},
		{"h-18", h.signSchedule(t, "dev-cl-07", 11, "version: 1\nid: dev-cl-07\nrevision: 11\n"), protocol.CodeInvalidDocument, ""},
		// A capture signed long ago, for a revision the device never had: still refused.
		{"h-19", oldCapture, "expired", "signed at"},
	}
	for _, c := range cases {
		hc.send(t, &protocol.Schedule{Header: protocol.Header{ID: c.id}, Signed: c.signed})
		d := h.nextDelivery(t)
		if d.Re != c.id || d.State != protocol.DeliveryRefused || d.Code != c.code || d.Reason == "" || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("push %s: delivery %+v, want refused with code %s and a reason mentioning %q", c.id, d, c.code, c.reason)
		}
	}
	if got := a.sch.Active(); got == nil || got.Revision != 5 {
		t.Errorf("after the refusals the active schedule is %v, want still revision 5", got)
	}
	if n := a.logs.count(slog.LevelWarn, "schedule push from the hub refused"); n != len(cases) {
		t.Errorf("%d refusals logged, want %d", n, len(cases))
	}
}

func (h *testHub) signCommand(t *testing.T, p protocol.CommandPayload) *protocol.Signed {
	t.Helper()
	p.Devices = []string{testDevice}
	s, err := h.signer.SignCommand(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The device clock is 7 minutes slow. A command that expired a minute ago by the hub's
// clock is still valid by the device's raw clock: it must be refused all the same.
func TestCommandsExpiryByCorrectedClockAndReplay(t *testing.T) {
	h := newHub(t, testSecret)
	h.skew = 7 * time.Minute
	a := newTestAgent(t, h, testSecret, nil)
	a.start()
	hc := h.nextConn(t)
	now := h.now()
	vol := 0.5
	good := h.signCommand(t, protocol.CommandPayload{ID: "cmd-1", Seq: 1, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Action: protocol.ActionVolume, Volume: &vol})
	expired := h.signCommand(t, protocol.CommandPayload{ID: "cmd-2", Seq: 2, IssuedAt: now.Add(-10 * time.Minute), ExpiresAt: now.Add(-time.Minute), Action: protocol.ActionStop})

	hc.send(t, &protocol.Command{Header: protocol.Header{ID: "h-20"}, Signed: good})
	d := h.nextDelivery(t)
	if d.Re != "h-20" || d.State != protocol.DeliveryExecuted || d.CommandID != "cmd-1" {
		t.Fatalf("delivery = %+v, want executed cmd-1", d)
	}
	// The replay memory was persisted: a new link on the same file would refuse cmd-1.
	b, err := os.ReadFile(a.mem.Path)
	if err != nil {
		t.Fatalf("command memory not saved: %v", err)
	}
	var st protocol.CommandLogState
	if err := json.Unmarshal(b, &st); err != nil || st.HighestSeq[testKeyID] != 1 {
		t.Errorf("saved command memory = %s (%v), want highest seq 1 for %s", b, err, testKeyID)
	}

	hc.send(t, &protocol.Command{Header: protocol.Header{ID: "h-21"}, Signed: expired})
	d = h.nextDelivery(t)
	if d.Re != "h-21" || d.State != protocol.DeliveryRefused || d.Code != "expired" {
		t.Errorf("expired command: delivery %+v, want refused expired", d)
	}
	hc.send(t, &protocol.Command{Header: protocol.Header{ID: "h-22"}, Signed: good})
	d = h.nextDelivery(t)
	if d.Re != "h-22" || d.State != protocol.DeliveryRefused || d.Code != "replayed" {
		t.Errorf("replayed command: delivery %+v, want refused replayed", d)
	}
	if got := a.cmds.executed(); len(got) != 1 || got[0] != "cmd-1" {
		t.Errorf("executed %v, want only cmd-1", got)
	}

	// After a restart of the agent the memory is loaded: the same command is still refused.
	a.stop()
	b2 := newTestAgentOnDir(t, h, a)
	b2.start()
	hc = h.nextConn(t)
	hc.send(t, &protocol.Command{Header: protocol.Header{ID: "h-23"}, Signed: good})
	d = h.nextDelivery(t)
	if d.State != protocol.DeliveryRefused || d.Code != "replayed" {
		t.Errorf("replayed command after restart: delivery %+v, want refused replayed", d)
	}
}

// newTestAgentOnDir makes a second link over the first agent's journal, store and command
// memory (a restart of the daemon).
func newTestAgentOnDir(t *testing.T, h *testHub, old *testAgent) *testAgent {
	t.Helper()
	a := *old
	a.logs = &logRecorder{t: t}
	a.cmds = &testCommands{}
	var err error
	a.link, err = New(old.link.cfg, Deps{
		Logger: slog.New(a.logs), Clock: clock.NewSystem(), Rand: old.link.d.Rand,
		Journal: a.journal, Store: a.store, Schedules: a.sch, Commands: a.cmds, CommandMemory: a.mem, Status: testStatus{},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.cancel = nil
	return &a
}

func TestReconnectAfterHubRestart(t *testing.T) {
	h := newHub(t, testSecret)
	a := newTestAgent(t, h, testSecret, nil)
	a.record(5)
	a.start()
	h.nextConn(t)
	waitFor(t, "first records acked", 10*time.Second, func() bool { return a.journal.Acked() == 5 })

	addr := h.addr
	h.stop()
	waitFor(t, "the link to notice", 10*time.Second, func() bool { return !a.link.Connected() })
	a.record(5) // plays go on during the outage
	time.Sleep(500 * time.Millisecond)
	h.start(addr)
	h.nextConn(t)
	waitFor(t, "records of the outage acked", 10*time.Second, func() bool { return a.journal.Acked() == 10 })

	h.mu.Lock()
	hellos := len(h.hellos)
	second := h.hellos[len(h.hellos)-1]
	h.mu.Unlock()
	if hellos < 2 || second.Journal.HighWater != 10 || second.Journal.Acked != 5 {
		t.Errorf("%d hellos, last journal %+v; want a second hello with high water 10, acked 5", hellos, second.Journal)
	}
	if n := a.logs.count(slog.LevelWarn, "hub link lost"); n != 1 {
		t.Errorf("the outage was logged %d times as a warning, want once", n)
	}
	if n := a.logs.count(slog.LevelDebug, "hub still unreachable"); n < 1 {
		t.Errorf("no retry during a 500 ms outage with a 20 ms backoff base")
	}
	if !a.logs.has(slog.LevelInfo, "hub link up", "outage") {
		t.Errorf("the end of the outage was not logged with its length")
	}
	if n := a.logs.count(slog.LevelInfo, "moving to the next hub"); n != 0 {
		t.Errorf("a link with one hub logged %d moves", n)
	}
}

// A wrong secret gets 401 before any websocket: the link backs off (no hot loop) and says
// once what to fix.
func TestWrongSecretBacksOff(t *testing.T) {
	h := newHub(t, testSecret)
	a := newTestAgent(t, h, wrongSecret, func(c *Config) {
		c.Backoff = protocol.Backoff{Base: 50 * time.Millisecond, Max: 400 * time.Millisecond}
	})
	a.start()
	time.Sleep(1500 * time.Millisecond)
	a.stop()
	h.mu.Lock()
	fails, ups := h.authFails, h.upgrades
	h.mu.Unlock()
	// Full jitter over ceilings 50, 100, 200, 400, 400… ms: about 7 attempts in 1.5 s on
	// average; a hot loop would make thousands. The bound is loose so no scheduler hiccup
	// can fail it.
	if fails < 2 || fails > 40 || ups != 0 {
		t.Errorf("%d refused attempts (and %d upgrades) in 1.5 s; want a handful, backed off", fails, ups)
	}
	w, ok := a.logs.find(slog.LevelWarn, "cannot reach the hub")
	if !ok || !strings.Contains(w.attrs["err"], "401") || !strings.Contains(w.attrs["err"], "secret") {
		t.Errorf("the warning does not say the hub refused the credentials: %+v", w)
	}
	if n := a.logs.count(slog.LevelWarn, "hub"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1", n)
	}
}

// A busy hub's retry_after_s is honoured: the next attempt waits at least that long.
func TestBusyHubRetryAfter(t *testing.T) {
	h := newHub(t, testSecret)
	h.busyOnce = 1
	a := newTestAgent(t, h, testSecret, nil)
	start := time.Now()
	a.start()
	h.nextConn(t)
	if took := time.Since(start); took < time.Second {
		t.Errorf("reconnected %v after a busy answer asking for 1 s", took)
	}
	h.mu.Lock()
	n := len(h.hellos)
	h.mu.Unlock()
	if n != 2 {
		t.Errorf("%d hellos, want 2 (busy, then welcome)", n)
	}
}

// Content the hub does not have yet: the revision stays pending (the warning says why), the
// fetcher retries with backoff, and once the hub has the item the revision becomes active.
func TestPendingScheduleCompletesWhenContentArrives(t *testing.T) {
	h := newHub(t, testSecret)
	item := []byte(strings.Repeat("a clip ", 5000))
	ref := content.RefOf(item)
	a := newTestAgent(t, h, testSecret, nil)
	a.start()
	hc := h.nextConn(t)
	hc.send(t, &protocol.Schedule{Header: protocol.Header{ID: "h-30"}, Signed: h.signSchedule(t, "dev-cl-07", 2, scheduleDoc("dev-cl-07", 2, ref))})
	if d := h.nextDelivery(t); d.State != protocol.DeliveryReceived {
		t.Fatalf("delivery %+v, want received", d)
	}
	waitFor(t, "the fetch failure to be logged", 10*time.Second, func() bool {
		return a.logs.count(slog.LevelWarn, "cannot complete the pending schedule yet") == 1
	})
	if w, _ := a.logs.find(slog.LevelWarn, "cannot complete the pending schedule yet"); !strings.Contains(w.attrs["err"], "404") {
		t.Errorf("the warning does not say the hub lacks the item: %v", w.attrs)
	}
	if p := a.sch.Pending(); p == nil || p.Revision != 2 {
		t.Fatalf("pending = %v, want revision 2", p)
	}
	h.mu.Lock()
	h.blobs[ref.String()] = item
	h.mu.Unlock()
	for _, want := range []string{protocol.DeliveryContentReady, protocol.DeliveryActive} {
		if d := h.nextDelivery(t); d.State != want || d.Revision != 2 {
			t.Fatalf("delivery %+v, want %s of revision 2", d, want)
		}
	}
	if !a.store.Has(ref) || a.sch.Active() == nil || a.sch.Active().Revision != 2 {
		t.Errorf("after the fetch: store has item %v, active %v", a.store.Has(ref), a.sch.Active())
	}
	if n := a.logs.count(slog.LevelWarn, "cannot complete the pending schedule yet"); n != 1 {
		t.Errorf("the failing fetch was warned about %d times, want once", n)
	}
}

// The device's secret goes to the hub and nowhere else (a stream relay, a mirror).
func TestDeviceTransportSendsSecretOnlyToHub(t *testing.T) {
	var hubAuth, otherAuth string
	hubSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hubAuth = r.Header.Get("Authorization") }))
	defer hubSrv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherAuth = r.Header.Get("Authorization") }))
	defer other.Close()
	tr, err := DeviceTransport(strings.Replace(hubSrv.URL, "http://", "ws://", 1)+"/agent/ws", testDevice, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	for _, u := range []string{hubSrv.URL + "/content/x", other.URL + "/stream.mp3"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if hubAuth != protocol.FormatDeviceAuth(testDevice, testSecret) {
		t.Errorf("the hub got Authorization %q", hubAuth)
	}
	if otherAuth != "" {
		t.Errorf("another server got the device's Authorization %q", otherAuth)
	}
	if _, err := DeviceTransport("ftp://hub", testDevice, testSecret, nil); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("an ftp hub URL gave %v, want an error about the scheme", err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	h := newHub(t, testSecret)
	a := newTestAgent(t, h, testSecret, nil)
	good := a.link.cfg
	deps := a.link.d
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Secret = "" }, "secret"},
		{func(c *Config) { c.DeviceID = "" }, "device_id"},
		{func(c *Config) { c.TrustedKeys = nil }, "trusted_keys"},
		{func(c *Config) { c.HubURL = "hub.example" }, "hub URL"},
		{func(c *Config) { c.HubURL = "ftp://hub.example" }, "scheme"},
		{func(c *Config) { c.HubURLs = []string{"https://hub-b.example"} }, "both HubURL and HubURLs"},
		{func(c *Config) { c.HubURL, c.HubURLs = "", []string{"https://a.example", "https://a.example/agent/ws"} }, "repeats hub URL 0"},
		{func(c *Config) { c.HubURL, c.HubURLs = "", []string{"https://a.example", "ftp://b.example"} }, "scheme"},
		{func(c *Config) { c.HubURL = "" }, "no hub URL"},
	} {
		cfg := good
		c.mod(&cfg)
		if _, err := New(cfg, deps); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New with a config lacking %s: %v", c.want, err)
		}
	}
	d := deps
	d.Journal = nil
	if _, err := New(good, d); err == nil || !strings.Contains(err.Error(), "Journal") {
		t.Errorf("New without a journal: %v", err)
	}
	if _, err := New(good, deps); err != nil {
		t.Errorf("New with the good config: %v", err)
	}
}

// The welcome is not signed: a hub (or whoever poses as one) that says its clock is an hour
// behind must not make a command that expired ten minutes ago acceptable again.
func TestWelcomeCannotWindExpiryBack(t *testing.T) {
	h := newHub(t, testSecret)
	h.skew = -time.Hour
	a := newTestAgent(t, h, testSecret, nil)
	a.start()
	hc := h.nextConn(t)
	real := time.Now()
	captured := h.signCommand(t, protocol.CommandPayload{ID: "cmd-old", Seq: 1, IssuedAt: real.Add(-20 * time.Minute),
		ExpiresAt: real.Add(-10 * time.Minute), Action: protocol.ActionStop})
	hc.send(t, &protocol.Command{Header: protocol.Header{ID: "h-30"}, Signed: captured})
	d := h.nextDelivery(t)
	if d.State != protocol.DeliveryRefused || d.Code != "expired" {
		t.Fatalf("a command expired 10 min ago, delivered by a hub claiming to be an hour behind: %+v, want refused expired", d)
	}
	if got := a.cmds.executed(); len(got) != 0 {
		t.Fatalf("executed %v", got)
	}
}

func TestCheckHubURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://hub.example.vn", false, true},
		{"wss://hub.example.vn", false, true},
		{"http://127.0.0.1:8470", false, true},
		{"ws://localhost:8470", false, true},
		{"http://[::1]:8470", false, true},
		{"http://hub.example.vn", false, false},
		{"ws://10.0.0.5:8470", false, false},
		{"http://10.0.0.5:8470", true, true},
	} {
		err := CheckHubURL(c.url, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("CheckHubURL(%q, %v) = %v, want ok %v", c.url, c.insecure, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "insecure_hub") {
			t.Errorf("refusal %q does not say how to allow it", err)
		}
	}
}

// TestClockSampledDuringTheSession: a hub whose welcome offers time samples is asked during
// the session; a request held on an unequal, slow uplink does not move the offset kept, and
// a step of the hub's clock is followed. A hub that does not offer them is never asked (the
// other tests: the test hub fails on a request it did not offer).
func TestClockSampledDuringTheSession(t *testing.T) {
	h := newHub(t, testSecret)
	h.skew, h.timeSamples = 7*time.Minute, true
	a := newTestAgent(t, h, testSecret, func(c *Config) { c.Heartbeat = 50 * time.Millisecond })
	a.start()
	h.nextConn(t)
	waitFor(t, "time samples", 10*time.Second, func() bool { return h.timeAsked.Load() >= 3 })
	off, _ := a.link.ClockOffset()
	if (off - 7*time.Minute).Abs() > 50*time.Millisecond {
		t.Fatalf("offset %v, want about 7m", off)
	}
	// 300 ms held before the hub stamps the request: each such sample says the hub is 150 ms
	// further ahead; the filter keeps the short round trips.
	h.uplinkDelay.Store(int64(300 * time.Millisecond))
	asked := h.timeAsked.Load()
	waitFor(t, "slow samples", 10*time.Second, func() bool { return h.timeAsked.Load() >= asked+3 })
	if off2, _ := a.link.ClockOffset(); (off2 - off).Abs() > 50*time.Millisecond {
		t.Errorf("slow unequal round trips moved the offset from %v to %v", off, off2)
	}
	h.uplinkDelay.Store(0)
	h.timeStep.Store(int64(5 * time.Second)) // the hub's clock steps 5 s
	waitFor(t, "the step followed", 10*time.Second, func() bool {
		o, _ := a.link.ClockOffset()
		return (o - 7*time.Minute - 5*time.Second).Abs() < 100*time.Millisecond
	})
}
