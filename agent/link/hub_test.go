package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// This file is a real, small hub for the tests: a loopback HTTP server that upgrades
// /agent/ws with gorilla/websocket, checks the device header, speaks the protocol package's
// messages, stores confirmations once per seq, and serves /content/<ref> with Range.

const (
	testDevice = "cl-07"
	testKeyID  = "hub-test"
)

type hubConn struct {
	c   *websocket.Conn
	wmu sync.Mutex
}

func (hc *hubConn) send(t testing.TB, m protocol.Message) {
	t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatalf("hub: encoding %s: %v", m.Type(), err)
	}
	hc.wmu.Lock()
	defer hc.wmu.Unlock()
	if err := hc.c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Logf("hub: sending %s: %v", m.Type(), err)
	}
}

type testHub struct {
	t      testing.TB
	secret string
	signer *protocol.Signer
	pub    ed25519.PublicKey
	skew   time.Duration // the hub's clock minus the real clock

	// timeSamples: the welcome says the hub answers time messages; timeStep moves the hub's
	// clock for those answers; uplinkDelay holds a time request before it is stamped received
	// (an unequal round trip) while it is above zero.
	timeSamples bool
	timeStep    atomic.Int64
	uplinkDelay atomic.Int64
	timeAsked   atomic.Int64

	ln   net.Listener
	srv  *http.Server
	addr string

	mu *sync.Mutex // shared with the hubs sharing its ledger
	*ledger
	hellos      []*protocol.Hello
	conns       []*hubConn
	crashAfter  int // >0: the first batch is stored only up to this many records, then the hub "crashes"
	upgrades    int
	authFails   int
	blobs       map[string][]byte
	ranges      []string
	cutFirstGet bool
	busyOnce    int // >0: answer the next hello with busy, retry_after_s this
	notStored   int // >0: refuse this many batches as not stored (a full disk), storing none of them

	deliveries chan *protocol.Delivery
	statuses   chan *protocol.Status
	connected  chan *hubConn
}

// ledger is what a hub stores of the device's confirmations: several hubs may share one, as
// replicas share their database.
type ledger struct {
	received map[uint64]int    // seq -> times a batch carried it
	stored   map[uint64]bool   // seq -> stored (exactly once)
	errors   map[uint64]string // seq -> the stored record's error text
	unstored map[uint64]int    // seq -> times it came in a batch the hub "crashed" before storing
	contig   uint64
}

func newHub(t testing.TB, secret string) *testHub {
	pub, priv, err := protocol.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := protocol.NewSigner(testKeyID, priv)
	if err != nil {
		t.Fatal(err)
	}
	return startHub(t, &testHub{t: t, secret: secret, signer: signer, pub: pub, mu: new(sync.Mutex),
		ledger: &ledger{received: map[uint64]int{}, stored: map[uint64]bool{}, errors: map[uint64]string{}, unstored: map[uint64]int{}}})
}

// startHub makes h's channels and content, and starts it on a free loopback port.
func startHub(t testing.TB, h *testHub) *testHub {
	h.blobs = map[string][]byte{}
	h.deliveries = make(chan *protocol.Delivery, 100)
	h.statuses = make(chan *protocol.Status, 1000)
	h.connected = make(chan *hubConn, 10)
	h.start("127.0.0.1:0")
	t.Cleanup(h.stop)
	return h
}

func (h *testHub) now() time.Time { return time.Now().Add(h.skew) }

func (h *testHub) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		h.t.Fatalf("hub listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/agent/ws", h.serveWS)
	mux.HandleFunc("/content/", h.serveContent)
	h.mu.Lock()
	h.ln, h.addr = ln, ln.Addr().String()
	h.srv = &http.Server{Handler: mux}
	srv := h.srv
	h.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener and every connection, websockets included (http.Server does
// not track hijacked connections).
func (h *testHub) stop() {
	h.mu.Lock()
	srv, conns := h.srv, h.conns
	h.srv, h.conns = nil, nil
	h.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	for _, c := range conns {
		c.c.Close()
	}
}

func (h *testHub) authorized(r *http.Request) bool {
	dev, secret, err := protocol.ParseDeviceAuth(r.Header.Get("Authorization"))
	return err == nil && dev == testDevice && secret == h.secret
}

func (h *testHub) serveWS(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		h.mu.Lock()
		h.authFails++
		h.mu.Unlock()
		http.Error(w, "unknown device or wrong secret", http.StatusUnauthorized)
		return
	}
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(protocol.DefaultMaxMessageBytes)
	hc := &hubConn{c: c}
	h.mu.Lock()
	h.upgrades++
	h.conns = append(h.conns, hc)
	h.mu.Unlock()
	defer c.Close()

	_, b, err := c.ReadMessage()
	if err != nil {
		return
	}
	t1 := h.now()
	m, err := protocol.Decode(b)
	hello, ok := m.(*protocol.Hello)
	if err != nil || !ok {
		hc.send(h.t, protocol.NewErrorMessage("h-0", "", fmt.Errorf("hello first")))
		return
	}
	h.mu.Lock()
	h.hellos = append(h.hellos, hello)
	busy := h.busyOnce
	h.busyOnce = 0
	resend := h.contig + 1
	h.mu.Unlock()
	if busy > 0 {
		hc.send(h.t, &protocol.ErrorMessage{Header: protocol.Header{ID: "h-busy"}, Code: protocol.CodeBusy, Message: "busy", RetryAfterS: busy})
		return
	}
	hc.send(h.t, &protocol.Welcome{Header: protocol.Header{ID: "h-1", Re: hello.ID}, HelloReceivedAt: t1, HubTime: h.now(), ResendFrom: resend,
		TimeSamples: h.timeSamples})
	h.connected <- hc
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		m, err := protocol.Decode(b)
		if err != nil {
			h.t.Errorf("hub: the agent sent a message that does not decode: %v", err)
			return
		}
		switch m := m.(type) {
		case *protocol.Confirmations:
			if !h.confirmations(hc, m) {
				c.Close()
				return
			}
		case *protocol.Delivery:
			h.deliveries <- m
		case *protocol.Status:
			select {
			case h.statuses <- m:
			default:
			}
		case *protocol.Time:
			if !h.timeSamples {
				h.t.Errorf("hub: a time request to a hub whose welcome did not offer them")
			}
			h.timeAsked.Add(1)
			time.Sleep(time.Duration(h.uplinkDelay.Load()))
			step := time.Duration(h.timeStep.Load())
			t1 := h.now().Add(step)
			hc.send(h.t, &protocol.Time{Header: protocol.Header{ID: "h-t", Re: m.ID}, SentAt: m.SentAt, ReceivedAt: t1, HubTime: h.now().Add(step)})
		default:
			h.t.Errorf("hub: unexpected %s from the agent", m.Type())
		}
	}
}

// confirmations stores a batch once per seq and acks; false: the hub "crashed" mid-batch.
func (h *testHub) confirmations(hc *hubConn, m *protocol.Confirmations) bool {
	h.mu.Lock()
	if h.notStored > 0 {
		h.notStored--
		for _, r := range m.Records {
			h.received[r.Seq]++
		}
		h.mu.Unlock()
		hc.send(h.t, &protocol.ErrorMessage{Header: protocol.Header{ID: "h-full", Re: m.ID}, Code: protocol.CodeNotStored,
			Message: "the hub's disk is full", RetryAfterS: 1})
		return true
	}
	keep := len(m.Records)
	crash := h.crashAfter > 0
	if crash {
		keep = min(keep, h.crashAfter)
		h.crashAfter = 0
	}
	for i, r := range m.Records {
		if r.Device != testDevice {
			h.t.Errorf("hub: record %d from device %q", r.Seq, r.Device)
		}
		h.received[r.Seq]++
		if i < keep {
			h.stored[r.Seq] = true
			h.errors[r.Seq] = r.Error
		} else {
			h.unstored[r.Seq]++
		}
	}
	for h.stored[h.contig+1] {
		h.contig++
	}
	seq := h.contig
	h.mu.Unlock()
	if crash {
		return false
	}
	hc.send(h.t, &protocol.Ack{Header: protocol.Header{ID: "h-ack", Re: m.ID}, Seq: seq})
	return true
}

func (h *testHub) serveContent(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	ref := strings.TrimPrefix(r.URL.Path, "/content/")
	h.mu.Lock()
	b, ok := h.blobs[ref]
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, rg)
	}
	cut := h.cutFirstGet && r.Method == http.MethodGet
	if cut {
		h.cutFirstGet = false
	}
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if cut {
		// Send half the item, then drop the connection: the store must resume with Range.
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// --- the agent side of the tests: real journal, real store, small fakes for the daemon ---

type logEntry struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

type logRecorder struct {
	t  testing.TB
	mu sync.Mutex
	es []logEntry
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	e := logEntry{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool { e.attrs[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	r.es = append(r.es, e)
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) count(level slog.Level, msgPart string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.es {
		if e.level == level && strings.Contains(e.msg, msgPart) {
			n++
		}
	}
	return n
}

func (r *logRecorder) find(level slog.Level, msgPart string) (logEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.es {
		if e.level == level && strings.Contains(e.msg, msgPart) {
			return e, true
		}
	}
	return logEntry{}, false
}

// has reports whether an entry at level with msgPart carries attr.
func (r *logRecorder) has(level slog.Level, msgPart, attr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.es {
		if e.level == level && strings.Contains(e.msg, msgPart) && e.attrs[attr] != "" {
			return true
		}
	}
	return false
}

func (r *logRecorder) dump() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.es {
		r.t.Logf("log %s %q %v", e.level, e.msg, e.attrs)
	}
}

// testSchedules keeps schedules the way the daemon does, minus playing: a revision whose
// content is all in the store is active, otherwise pending.
type testSchedules struct {
	store           *content.Store
	mu              sync.Mutex
	held            map[string]uint64
	active, pending *protocol.ScheduleRef
	pendingRefs     []content.Ref
}

func (s *testSchedules) Active() *protocol.ScheduleRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}
func (s *testSchedules) Pending() *protocol.ScheduleRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}
func (s *testSchedules) HeldRevision(id string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.held[id]
	return r, ok
}

func (s *testSchedules) Offer(_ context.Context, p *protocol.SchedulePayload) (Progress, error) {
	doc, err := scheduler.Parse("push", []byte(p.Document))
	if err != nil {
		return Progress{}, fmt.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	var refs []content.Ref
	for _, pr := range doc.Programs {
		for _, it := range pr.Items {
			if it.Content != "" {
				r, err := content.ParseRef(it.Content)
				if err != nil {
					return Progress{}, fmt.Errorf("%w: %v", ErrInvalidDocument, err)
				}
				refs = append(refs, r)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[p.ScheduleID] = p.Revision
	ref := &protocol.ScheduleRef{ID: p.ScheduleID, Revision: p.Revision}
	s.pending, s.pendingRefs = ref, refs
	return s.advanceLocked(), nil
}

func (s *testSchedules) Advance(_ context.Context, ref protocol.ScheduleRef) (Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil || *s.pending != ref {
		return Progress{}, fmt.Errorf("revision %d of %s is not pending", ref.Revision, ref.ID)
	}
	return s.advanceLocked(), nil
}

func (s *testSchedules) advanceLocked() Progress {
	var missing []content.Ref
	for _, r := range s.pendingRefs {
		if !s.store.Has(r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return Progress{State: protocol.DeliveryReceived, Missing: missing}
	}
	s.active, s.pending, s.pendingRefs = s.pending, nil, nil
	return Progress{State: protocol.DeliveryActive}
}

type testCommands struct {
	mu   sync.Mutex
	done []string
}

func (c *testCommands) Execute(_ context.Context, p *protocol.CommandPayload) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = append(c.done, p.ID)
	return nil
}

func (c *testCommands) executed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.done...)
}

type testStatus struct{}

func (testStatus) Status() protocol.Status {
	v := 0.8
	return protocol.Status{UptimeS: 12, Volume: &v}
}

type testAgent struct {
	t       *testing.T
	dir     string
	journal *journal.Journal
	store   *content.Store
	sch     *testSchedules
	cmds    *testCommands
	mem     FileCommandMemory
	logs    *logRecorder
	link    *Link
	cancel  context.CancelFunc
	done    chan struct{}
}

func newTestAgent(t *testing.T, h *testHub, secret string, mod func(*Config)) *testAgent {
	t.Helper()
	dir := t.TempDir()
	logs := &logRecorder{t: t}
	log := slog.New(logs)
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{DeviceID: testDevice, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	cfg := Config{
		HubURL:          "http://" + h.addr,
		DeviceID:        testDevice,
		Secret:          secret,
		SoftwareVersion: "loa-agent test",
		TrustedKeys:     protocol.TrustedKeys{testKeyID: h.pub},
		Heartbeat:       time.Second,
		Backoff:         protocol.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Poll:            50 * time.Millisecond,
		Batch:           100,
		FetchBackoff:    protocol.Backoff{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg) // may point HubURL at a proxy in front of h
	}
	urls := cfg.HubURLs // several hubs: each is sent the credentials
	if cfg.HubURL != "" {
		urls = []string{cfg.HubURL}
	}
	tr, err := DeviceTransportAll(urls, testDevice, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := content.Open(filepath.Join(dir, "content"), content.Options{Logger: log, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &testAgent{
		t: t, dir: dir, journal: j, store: st, logs: logs,
		sch:  &testSchedules{store: st, held: map[string]uint64{}},
		cmds: &testCommands{},
		mem:  FileCommandMemory{Path: filepath.Join(dir, "commands.json")},
	}
	a.link, err = New(cfg, Deps{
		Logger: log, Clock: clock.NewSystem(), Rand: mrand.New(mrand.NewPCG(1, 2)),
		Journal: j, Store: st, Schedules: a.sch, Commands: a.cmds, CommandMemory: a.mem, Status: testStatus{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *testAgent) start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		if err := a.link.Run(ctx); err != nil {
			a.t.Errorf("Run returned %v", err)
		}
	}()
	a.t.Cleanup(a.stop)
}

func (a *testAgent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.t.Error("Run did not return within 10 s of its context ending")
	}
	a.cancel = nil
	if a.t.Failed() {
		a.logs.dump()
	}
}

// record writes n closed records to the journal.
func (a *testAgent) record(n int) {
	a.t.Helper()
	for i := 0; i < n; i++ {
		_, err := a.journal.Record(protocol.Confirmation{
			Output: "speakers", ScheduleID: "dev-cl-07", Revision: 1, Program: "morning",
			ItemIndex: i % 3, Scheduled: time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
			Result: protocol.ResultMissed, Error: "device was off", Clock: protocol.ClockSynced,
		})
		if err != nil {
			a.t.Fatal(err)
		}
	}
}

var waitFor = testkit.WaitFor

func (h *testHub) nextConn(t *testing.T) *hubConn {
	t.Helper()
	select {
	case c := <-h.connected:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not connect within 10 s")
		return nil
	}
}

func (h *testHub) nextDelivery(t *testing.T) *protocol.Delivery {
	t.Helper()
	select {
	case d := <-h.deliveries:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery report within 10 s")
		return nil
	}
}
