package neighbours_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/agent/neighbours"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/metrics"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/internal/promtest"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// This file runs a real hub (SQLite, loopback HTTP and websockets) and agents made of the real
// link, content store and neighbours, each in its own data directory: what loa-agent runs
// minus the player.

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

type commune struct {
	t       testing.TB
	url     string
	metrics string
	db      *store.DB
	admin   string
	pub     string
	dir     string
	log     *slog.Logger
	secret  map[string]string
}

func newCommune(t testing.TB) *commune {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("LOA_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	db, err := store.Open(ctx, filepath.Join(dir, "hub.db"), realClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := protocol.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := protocol.NewSigner("test-key", priv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := hub.New(hub.Options{Store: db, Signer: signer, ContentDir: filepath.Join(dir, "content"), Log: log.With("component", "hub"),
		StatusInterval: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ms := httptest.NewServer(srv.MetricsHandler())
	t.Cleanup(func() {
		ms.Close()
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
		db.Close()
	})
	admin, err := hub.AddUser(ctx, db, "admin", "Province admin", "qn", "Quảng Nam")
	if err != nil {
		t.Fatal(err)
	}
	c := &commune{t: t, url: hs.URL, metrics: ms.URL, db: db, admin: admin, pub: protocol.FormatPublicKey(pub), dir: dir, log: log, secret: map[string]string{}}
	for _, a := range []string{"qn/tt", "qn/tp"} {
		c.call("POST", "/api/areas", api.AreaJSON{ID: a, Name: a}, nil, http.StatusCreated)
	}
	return c
}

func (c *commune) call(method, path string, body, out any, want int) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (c *commune) enrol(id, area string) {
	c.t.Helper()
	var res api.EnrolResponse
	c.call("POST", "/api/devices", api.EnrolRequest{ID: id, Area: area}, &res, http.StatusCreated)
	c.secret[id] = res.Secret
}

// addItem puts size random bytes in the hub's library as uploads leave them.
func (c *commune) addItem(size int, seed uint64) content.Ref {
	c.t.Helper()
	b := make([]byte, size)
	r := mrand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	ref := content.RefOf(b)
	if err := os.MkdirAll(filepath.Join(c.dir, "content"), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "content", ref.Hex()), b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	if _, _, err := c.db.AddContent(context.Background(), store.Content{Ref: ref.String(), Size: int64(size), MIME: "audio/mpeg",
		Title: "Bản tin", UploadedBy: "admin", UploadedAt: time.Now()}); err != nil {
		c.t.Fatal(err)
	}
	return ref
}

// served is what the hub says it sent of ref (GET /api/content).
func (c *commune) served(ref content.Ref) int64 {
	c.t.Helper()
	var items []api.ContentJSON
	c.call("GET", "/api/content", nil, &items, http.StatusOK)
	for _, it := range items {
		if it.Ref == ref.String() {
			return it.ServedBytes
		}
	}
	c.t.Fatalf("%s is not in the hub's library", ref)
	return 0
}

// agent is one box: its store, neighbours and link, running until the test ends.
type agent struct {
	id    string
	store *content.Store
	nb    *neighbours.Neighbours
	link  *link.Link
}

func (c *commune) agent(id string, cfg neighbours.Config) *agent {
	c.t.Helper()
	return c.agentVia(id, cfg, c.url)
}

// agentVia is an agent that reaches the hub at hubURL (a proxy shaping its link).
func (c *commune) agentVia(id string, cfg neighbours.Config, hubURL string) *agent {
	t := c.t
	t.Helper()
	dir := t.TempDir()
	log := c.log.With("device", id)
	tr, err := link.DeviceTransport(hubURL, id, c.secret[id], nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := content.Open(filepath.Join(dir, "content"), content.Options{Logger: log.With("component", "content"), HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{DeviceID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	a := &agent{id: id, store: st}
	if cfg.Listen != "" {
		if a.nb, err = neighbours.New(cfg, id, hubURL, st, log.With("component", "neighbours"), time.Now); err != nil {
			t.Fatal(err)
		}
		if err := a.nb.Listen(); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := protocol.ParseTrustedKeys(map[string]string{"test-key": c.pub})
	if err != nil {
		t.Fatal(err)
	}
	deps := link.Deps{Logger: log.With("component", "link"), Clock: clock.NewSystem(), Rand: mrand.New(mrand.NewPCG(1, 2)),
		HTTPClient: &http.Client{Transport: tr}, Journal: j, Store: st, Schedules: noSchedules{}, Commands: noCommands{},
		CommandMemory: link.FileCommandMemory{Path: filepath.Join(dir, "commands.json")}, Status: status{a}}
	if a.nb != nil {
		deps.Neighbours = a.nb
	}
	if a.link, err = link.New(link.Config{HubURL: hubURL, DeviceID: id, Secret: c.secret[id], TrustedKeys: keys}, deps); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.link.Run(ctx) })
	if a.nb != nil {
		wg.Go(func() { a.nb.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a
}

// knows waits until every agent knows want neighbours and its key.
func knows(t testing.TB, want int, as ...*agent) {
	t.Helper()
	for _, a := range as {
		testkit.WaitFor(t, a.id+" knows its neighbours", 20*time.Second, func() bool {
			n, key := a.nb.Known()
			return n == want && key
		})
	}
}

// fetchAll fetches ref on every agent at once, as a push naming it would.
func fetchAll(t testing.TB, ref content.Ref, as ...*agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, len(as))
	for _, a := range as {
		go func() { errs <- a.link.Fetch(ctx, ref) }()
	}
	for range as {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range as {
		if err := a.store.Verify(ref); err != nil {
			t.Fatalf("%s after the fetch: %v", a.id, err)
		}
	}
}

type noSchedules struct{}

func (noSchedules) Active() *protocol.ScheduleRef      { return nil }
func (noSchedules) Pending() *protocol.ScheduleRef     { return nil }
func (noSchedules) HeldRevision(string) (uint64, bool) { return 0, false }
func (noSchedules) Offer(context.Context, *protocol.SchedulePayload) (link.Progress, error) {
	return link.Progress{}, link.ErrInvalidDocument
}
func (noSchedules) Advance(context.Context, protocol.ScheduleRef) (link.Progress, error) {
	return link.Progress{State: protocol.DeliveryActive}, nil
}

type noCommands struct{}

func (noCommands) Execute(context.Context, *protocol.CommandPayload) error { return nil }

type status struct{ a *agent }

func (s status) Status() protocol.Status {
	st := protocol.Status{}
	if s.a.nb != nil {
		st.ContentAddr = s.a.nb.ContentAddr()
	}
	return st
}

// rank is how the neighbours order agents for an item (the agent with the lowest goes first).
func rank(ref content.Ref, device string) string {
	h := sha256.Sum256([]byte(ref.String() + "\n" + device))
	return hex.EncodeToString(h[:])
}

func fast() neighbours.Config {
	return neighbours.Config{Listen: "127.0.0.1:0", RateMBps: 1000}
}

// TestCommuneFetchesFromTheHubOnce: three agents of one commune fetch one item at once: the
// hub sends it once, the other two get it from neighbours. An agent of another commune on the
// same LAN gets no neighbours and fetches from the hub as before.
func TestCommuneFetchesFromTheHubOnce(t *testing.T) {
	c := newCommune(t)
	for _, id := range []string{"tt/cl-1", "tt/cl-2", "tt/cl-3"} {
		c.enrol(id, "qn/tt")
	}
	c.enrol("tp/cl-1", "qn/tp")
	const size = 4 << 20
	ref := c.addItem(size, 1)
	// wait 10 minutes: an agent that waited for neighbours that do not need the item would
	// not finish (fetchAll gives up after 2 minutes).
	cfg := fast()
	cfg.Wait = 10 * time.Minute
	a1, a2, a3 := c.agent("tt/cl-1", cfg), c.agent("tt/cl-2", cfg), c.agent("tt/cl-3", cfg)
	other := c.agent("tp/cl-1", cfg)
	knows(t, 2, a1, a2, a3)
	knows(t, 0, other)

	fetchAll(t, ref, a1, a2, a3)
	if got := settled(size, func() int64 { return c.served(ref) }); got != size {
		t.Fatalf("the hub served %d bytes of a %d-byte item to three agents of one commune; want it once", got, size)
	}
	fromNeighbours := settled(2*size, func() int64 { return a1.nb.Served() + a2.nb.Served() + a3.nb.Served() })
	if fromNeighbours != 2*size {
		t.Fatalf("neighbours sent %d bytes, want two items (%d)", fromNeighbours, 2*size)
	}

	// An item only one agent needs, the one ranked last for it: it does not wait for the
	// others, which do not need it, and fetches from the hub.
	ref2 := c.addItem(1<<20, 3)
	last := a1
	for _, a := range []*agent{a2, a3} {
		if rank(ref2, a.id) > rank(ref2, last.id) {
			last = a
		}
	}
	fetchAll(t, ref2, last)
	if got := settled(1<<20, func() int64 { return c.served(ref2) }); got != 1<<20 {
		t.Fatalf("an item one agent needed: the hub served %d bytes, want %d", got, 1<<20)
	}

	fetchAll(t, ref, other)
	if got := settled(2*size, func() int64 { return c.served(ref) }); got != 2*size {
		t.Fatalf("after an agent of another commune fetched it, the hub served %d bytes; want %d", got, 2*size)
	}
	if got := promtest.Scrape(t, c.metrics).Value(metrics.ContentServed); got != 2*size+1<<20 {
		t.Fatalf("%s = %v, want %d (both items)", metrics.ContentServed, got, 2*size+1<<20)
	}
}

// TestCorruptNeighbourIsRefused: a neighbour that sends wrong bytes is refused and skipped;
// the item comes from the hub intact.
func TestCorruptNeighbourIsRefused(t *testing.T) {
	c := newCommune(t)
	c.enrol("tt/cl-1", "qn/tt")
	c.enrol("tt/cl-2", "qn/tt")
	const size = 1 << 20
	ref := c.addItem(size, 2)
	var evilSent int64
	var mu sync.Mutex
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ref.String()) {
			http.NotFound(w, r)
			return
		}
		bad := bytes.Repeat([]byte{0xAA}, size) // the right size, the wrong bytes
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(bad))
		if r.Method == http.MethodGet {
			mu.Lock()
			evilSent += size
			mu.Unlock()
		}
	}))
	defer evil.Close()
	a1, a2 := c.agent("tt/cl-1", fast()), c.agent("tt/cl-2", fast())
	knows(t, 1, a1, a2)
	a2.nb.AddPeer("tt/cl-evil", strings.TrimPrefix(evil.URL, "http://"))

	fetchAll(t, ref, a2)
	mu.Lock()
	sent := evilSent
	mu.Unlock()
	if sent == 0 {
		t.Fatal("the corrupt neighbour was never asked")
	}
	if got := settled(size, func() int64 { return c.served(ref) }); got != size {
		t.Fatalf("the hub served %d bytes; want the item once (%d) after the corrupt neighbour was refused", got, size)
	}
	if n, _ := a2.nb.Known(); n != 2 {
		t.Fatalf("a2 knows %d neighbours", n)
	}
	// Asked again, the corrupt one is skipped: a1 fetches from a2, not from it nor the hub.
	fetchAll(t, ref, a1)
	if got := c.served(ref); got != size || settled(size, a2.nb.Served) != size {
		t.Fatalf("second agent: hub served %d, a2 sent %d; want %d and %d", got, a2.nb.Served(), size, size)
	}
}

// TestStalledNeighbourLeftForTheHub: a neighbour that offers the item and stops sending
// half-way is left after stall; the hub sends the rest, resuming from the bytes that came.
func TestStalledNeighbourLeftForTheHub(t *testing.T) {
	c := newCommune(t)
	c.enrol("tt/cl-1", "qn/tt")
	const size, sent = 1 << 20, 100_000
	ref := c.addItem(size, 4)
	item, err := os.ReadFile(filepath.Join(c.dir, "content", ref.Hex()))
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(item[:sent]) // the right bytes, then nothing
		w.(http.Flusher).Flush()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang) // before Close, which waits for the handler
	cfg := fast()
	cfg.Stall = time.Second
	a := c.agent("tt/cl-1", cfg)
	knows(t, 0, a)
	a.nb.AddPeer("tt/cl-slow", strings.TrimPrefix(slow.URL, "http://"))
	fetchAll(t, ref, a)
	if got := settled(size-sent, func() int64 { return c.served(ref) }); got != size-sent {
		t.Fatalf("the hub served %d bytes; want the rest after the stalled neighbour's %d (%d)", got, sent, size-sent)
	}
}

// settled waits until f reaches want (10 s at most) and returns it: a server counts a transfer
// when its handler returns, which may be just after the client has read the last byte. A count
// above want is returned at once, so the caller's check still fails.
func settled(want int64, f func() int64) int64 {
	testkit.Poll(10*time.Second, 10*time.Millisecond, func() bool { return f() >= want })
	return f()
}
