package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/media"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// testHub is a hub on a real SQLite file behind a real loopback HTTP server.
type testHub struct {
	t      testing.TB
	db     *store.DB
	srv    *Server
	http   *httptest.Server
	pub    ed25519.PublicKey
	admin  string // token scoped to the province "qn"
	dir    string
	dbPath string
}

func newTestHub(t testing.TB) *testHub {
	t.Helper()
	return newTestHubIn(t, t.TempDir())
}

// newTestHubIn is newTestHub keeping its database, content and temporary files in dir.
func newTestHubIn(t testing.TB, dir string) *testHub {
	t.Helper()
	return newTestHubWith(t, dir, nil)
}

// newTestHubWith is newTestHubIn over wrap(db) when wrap is not nil: a store that hooks into
// what the hub does.
func newTestHubWith(t testing.TB, dir string, wrap func(*store.DB) Store) *testHub {
	t.Helper()
	return newTestHubWithOptions(t, dir, wrap, nil)
}

// newTestHubWithOptions is newTestHubWith with edit applied to the hub's Options first.
func newTestHubWithOptions(t testing.TB, dir string, wrap func(*store.DB) Store, edit func(*Options)) *testHub {
	t.Helper()
	ctx := context.Background()
	log := testLog()
	dbPath := filepath.Join(dir, "hub.db")
	db, err := store.Open(ctx, dbPath, realClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	pub, signer := testSigner(t)
	var st Store = db
	if wrap != nil {
		st = wrap(db)
	}
	opts := Options{Store: st, Signer: signer, ContentDir: filepath.Join(dir, "content"), Log: log,
		Transcoder:     &media.Transcoder{FFmpeg: "ffmpeg", FFprobe: "ffprobe", LoudnessLUFS: -16, TempDir: filepath.Join(dir, "tmp")},
		StatusInterval: 60 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	h := &testHub{t: t, db: db, srv: srv, http: hs, pub: pub, dir: dir, dbPath: dbPath}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
		db.Close()
	})
	h.admin, err = AddUser(ctx, db, "admin", "Province admin", "qn", "Quảng Nam")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// call makes an API request and decodes the JSON answer into out (if not nil).
func (h *testHub) call(token, method, path string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.http.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: answer %d is not the JSON expected: %v\n%s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

func (h *testHub) mustCall(token, method, path string, body any, out any, want int) {
	h.t.Helper()
	var raw json.RawMessage
	code := h.call(token, method, path, body, &raw)
	if code != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *testHub) addArea(id string) {
	h.t.Helper()
	h.mustCall(h.admin, "POST", "/api/areas", api.AreaJSON{ID: id, Name: id}, nil, http.StatusCreated)
}

func (h *testHub) enrol(id, area string) string {
	h.t.Helper()
	var res api.EnrolResponse
	h.mustCall(h.admin, "POST", "/api/devices", api.EnrolRequest{ID: id, Area: area}, &res, http.StatusCreated)
	if !strings.HasPrefix(res.Secret, "loa-ds1-") {
		h.t.Fatalf("enrolment secret %q is not a device secret", res.Secret)
	}
	return res.Secret
}

func (h *testHub) userToken(id, scope string) string {
	h.t.Helper()
	tok, err := AddUser(context.Background(), h.db, id, id, scope, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *testHub) push(token, to, doc string) (int, api.PushResponse, string) {
	h.t.Helper()
	var raw json.RawMessage
	code := h.call(token, "POST", "/api/schedules", api.PushRequest{To: to, Document: doc}, &raw)
	var res api.PushResponse
	var e api.Error
	json.Unmarshal(raw, &res)
	json.Unmarshal(raw, &e)
	return code, res, e.Error
}

// fakeAgent is a minimal agent: gorilla/websocket and protocol, nothing of agent/.
type fakeAgent struct {
	t    testing.TB
	id   string
	ws   *websocket.Conn
	n    int
	msgs chan protocol.Message
	errc chan error
}

func (h *testHub) dial(id, secret string) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(h.http.URL, "http") + "/agent/ws"
	hdr := http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}}
	return websocket.DefaultDialer.Dial(u, hdr)
}

// connect dials, sends hello and returns the agent after reading the welcome.
func (h *testHub) connect(id, secret string, hello protocol.Hello) (*fakeAgent, *protocol.Welcome) {
	h.t.Helper()
	ws, resp, err := h.dial(id, secret)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		h.t.Fatalf("dial as %s: %v (HTTP %d)", id, err, code)
	}
	a := &fakeAgent{t: h.t, id: id, ws: ws, msgs: make(chan protocol.Message, 100), errc: make(chan error, 1)}
	h.t.Cleanup(func() { ws.Close() })
	hello.ID, hello.DeviceID = "a-hello", id
	if hello.SoftwareVersion == "" {
		hello.SoftwareVersion = "fake-agent 0"
	}
	a.send(&hello)
	go a.readLoop()
	m := a.next()
	w, ok := m.(*protocol.Welcome)
	if !ok {
		h.t.Fatalf("first answer to hello is %T, want welcome", m)
	}
	return a, w
}

func (a *fakeAgent) readLoop() {
	for {
		_, b, err := a.ws.ReadMessage()
		if err != nil {
			a.errc <- err
			close(a.msgs)
			return
		}
		m, err := protocol.Decode(b)
		if err != nil {
			a.errc <- err
			close(a.msgs)
			return
		}
		a.msgs <- m
	}
}

func (a *fakeAgent) send(m protocol.Message) {
	a.t.Helper()
	a.n++
	if m.Envelope().ID == "" {
		m.Envelope().ID = "a-" + strconv.Itoa(a.n)
	}
	b, err := protocol.Encode(m)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		a.t.Fatal(err)
	}
}

// next returns the next message, failing after 10 s.
func (a *fakeAgent) next() protocol.Message {
	a.t.Helper()
	select {
	case m, ok := <-a.msgs:
		if !ok {
			a.t.Fatalf("agent %s: connection ended: %v", a.id, <-a.errc)
		}
		return m
	case <-time.After(10 * time.Second):
		a.t.Fatalf("agent %s: no message within 10 s", a.id)
	}
	return nil
}

// closed waits for the connection to end and returns the read error.
func (a *fakeAgent) closed() (msgs []protocol.Message, err error) {
	a.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-a.msgs:
			if !ok {
				return msgs, <-a.errc
			}
			msgs = append(msgs, m)
		case <-deadline:
			a.t.Fatalf("agent %s: connection still open after 10 s", a.id)
		}
	}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// confirmation builds a journal record.
func confirmation(device string, seq uint64) protocol.Confirmation {
	t := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	return protocol.Confirmation{Device: device, Seq: seq, Output: "speakers", ScheduleID: "dev-" + device, Revision: 1,
		Program: "qn/morning", Item: "sha256:" + strings.Repeat("ab", 32), Scheduled: t, Start: t, End: t.Add(30 * time.Second),
		Proof: protocol.Proof{PlayedS: 30}, Result: protocol.ResultCompleted, Clock: protocol.ClockSynced}
}

// testLog is a hub's logger in tests: nothing, or everything on stderr with LOA_TEST_LOG set.
func testLog() *slog.Logger {
	if os.Getenv("LOA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testSigner is a new signing key with the id agents in tests trust ("test-key").
func testSigner(t testing.TB) (ed25519.PublicKey, *protocol.Signer) {
	t.Helper()
	pub, priv, err := protocol.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := protocol.NewSigner("test-key", priv)
	if err != nil {
		t.Fatal(err)
	}
	return pub, signer
}
