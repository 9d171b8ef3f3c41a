package console_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/console"
	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// testHub is a real hub (store file, HTTP server on loopback) holding a province, two
// communes, three devices — one online and playing, one with a relay fault, one in the other
// commune whose name is markup — 60 confirmations, and users with passwords.
type testHub struct {
	t     testing.TB
	db    *store.DB
	url   string
	admin string // the admin's API token
	zone  *time.Location
}

const (
	adminPass  = "mat-khau-tinh-2026"
	viewerPass = "mat-khau-xa-2026"
	// xssName is a device name that would run as script if a page did not escape it.
	xssName = `<script>window.__xss=1</script>Cụm <b>chợ</b>`
)

func newTestHub(t testing.TB) *testHub {
	t.Helper()
	ctx := context.Background()
	h := openHub(t, filepath.Join(t.TempDir(), "hub.db"))
	var err error
	h.admin, err = hub.AddUser(ctx, h.db, "admin", "Nguyễn Văn An", "qn", "Tỉnh Quảng Nam")
	if err != nil {
		t.Fatal(err)
	}
	return h.fixture()
}

// openHub serves the hub store at path (created if need be) on loopback.
func openHub(t testing.TB, path string) *testHub {
	t.Helper()
	dir := filepath.Dir(path)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, path, clock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := protocol.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := protocol.NewSigner("test-key", priv)
	if err != nil {
		t.Fatal(err)
	}
	zone, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	srv, err := hub.New(hub.Options{Store: db, Signer: signer, ContentDir: filepath.Join(dir, "content"), Log: log, Location: zone,
		Transcoder: &media.Transcoder{FFmpeg: "ffmpeg", FFprobe: "ffprobe", LoudnessLUFS: -16, TempDir: filepath.Join(dir, "tmp")}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
		db.Close()
	})
	return &testHub{t: t, db: db, url: hs.URL, zone: zone}
}

// fixture fills the hub as newTestHub describes.
func (h *testHub) fixture() *testHub {
	t, db, ctx := h.t, h.db, context.Background()
	h.password("admin", adminPass)
	for _, a := range []api.AreaJSON{{ID: "qn/tk", Name: "Thành phố Tam Kỳ"}, {ID: "qn/tk/tt", Name: "Xã Tam Thanh"}, {ID: "qn/tk/tp", Name: "Xã Tam Phú"}} {
		h.api(h.admin, "POST", "/api/areas", a, nil, http.StatusCreated)
	}
	secret := map[string]string{}
	for _, d := range []api.EnrolRequest{{ID: "tt/cl-1", Area: "qn/tk/tt", Name: "Cụm loa thôn Hoà Bình"},
		{ID: "tt/cl-2", Area: "qn/tk/tt", Name: "Cụm loa chợ Tam Thanh"}, {ID: "tp/cl-1", Area: "qn/tk/tp", Name: xssName}} {
		var res api.EnrolResponse
		h.api(h.admin, "POST", "/api/devices", d, &res, http.StatusCreated)
		secret[d.ID] = res.Secret
	}
	h.connect("tt/cl-1", secret["tt/cl-1"])
	must(t, db.UpdateStatus(ctx, "tt/cl-1", store.Status{NowPlaying: "Bản tin sáng <i>thời sự</i>", Volume: 0.8,
		DiskFreeBytes: 3 << 30, TemperatureC: 46, SoftwareVersion: "loa-agent 0.9", Link: "4g -87dBm",
		Parts: store.Parts{Relay: &store.Part{State: "on"}}}))
	must(t, db.UpdateStatus(ctx, "tt/cl-2", store.Status{Volume: 0.6, TemperatureC: math.NaN(), SoftwareVersion: "loa-agent 0.9",
		Parts: store.Parts{Relay: &store.Part{State: "unknown", Error: "rơ-le không trả lời qua /dev/ttyUSB0", Since: time.Now().Add(-3 * time.Hour)}}}))
	var cs []store.Confirmation
	at := time.Now().Add(-30 * time.Hour).Truncate(time.Minute)
	for i := range 60 {
		start := at.Add(time.Duration(i) * 30 * time.Minute)
		res := "completed"
		if i%7 == 3 {
			res = "interrupted"
		}
		cs = append(cs, store.Confirmation{Confirmation: protocol.Confirmation{Seq: uint64(i + 1), Output: "speakers", ScheduleID: "dev-tt/cl-1", Revision: 1, Program: "qn/tk/tt/morning", Item: "sha256:" + strings.Repeat("ab", 32), Scheduled: start, Start: start, End: start.Add(10 * time.Minute), Result: protocol.Result(res), Clock: "synced", Proof: protocol.Proof{PlayedS: 600, PeakDBFS: new(float64(-3)), RMSDBFS: new(float64(-18))}}})
	}
	if _, err := db.AddConfirmations(ctx, "tt/cl-1", cs); err != nil {
		t.Fatal(err)
	}
	// A viewer of the other commune, Tam Phú.
	if _, err := db.AddUser(ctx, store.User{ID: "xem-tp", Name: "Trần Thị Bình", Scope: "qn/tk/tp", Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	h.password("xem-tp", viewerPass)
	return h
}

type clock struct{}

func (clock) Now() time.Time { return time.Now() }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (h *testHub) password(user, pw string) {
	hash, err := console.HashPassword(pw)
	must(h.t, err)
	must(h.t, h.db.SetPassword(context.Background(), user, hash))
}

// api calls the JSON API with a token.
func (h *testHub) api(token, method, path string, body, out any, want int) []byte {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		must(h.t, json.Unmarshal(b, out))
	}
	return b
}

// connect holds a device online: a websocket with its hello, answered by a welcome.
func (h *testHub) connect(id, secret string) {
	u := "ws" + strings.TrimPrefix(h.url, "http") + "/agent/ws"
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}})
	must(h.t, err)
	h.t.Cleanup(func() { ws.Close() })
	b, err := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "h1"}, DeviceID: id, SoftwareVersion: "loa-agent 0.9"})
	must(h.t, err)
	must(h.t, ws.WriteMessage(websocket.TextMessage, b))
	_, b, err = ws.ReadMessage()
	must(h.t, err)
	if m, err := protocol.Decode(b); err != nil {
		h.t.Fatal(err)
	} else if _, ok := m.(*protocol.Welcome); !ok {
		h.t.Fatalf("hello answered by %T", m)
	}
	go func() { // drain what the hub sends; the socket stays open until the test ends
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
}

// client is a browser without script: a cookie jar, no redirects followed.
type client struct {
	t    testing.TB
	h    *testHub
	c    *http.Client
	csrf string // the session's, read from a page
}

func (h *testHub) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: h.t, h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *client) do(method, path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.h.url+path, rd)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.c.Do(req)
	must(c.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if i := strings.Index(string(b), `name="csrf" value="`); i >= 0 {
		rest := string(b)[i+len(`name="csrf" value="`):]
		c.csrf = rest[:strings.IndexByte(rest, '"')]
	}
	return resp.StatusCode, string(b), resp.Header
}

// signIn posts the sign-in form as a browser does (its CSRF value from the form).
func (c *client) signIn(user, pw string) (int, string) {
	c.t.Helper()
	c.do("GET", "/console/login", nil)
	code, body, hdr := c.do("POST", "/console/login", url.Values{"csrf": {c.csrf}, "user": {user}, "password": {pw}})
	if code == http.StatusSeeOther {
		code, body, _ = c.do("GET", hdr.Get("Location"), nil)
	}
	return code, body
}
