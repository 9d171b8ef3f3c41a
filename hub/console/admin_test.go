package console_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// dial opens a device's websocket as an agent does and says whether the hub let it in.
func (h *testHub) dial(id, secret string) error {
	u := "ws" + strings.TrimPrefix(h.url, "http") + "/agent/ws"
	ws, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}})
	if err != nil {
		if resp != nil {
			return &dialError{resp.StatusCode}
		}
		return err
	}
	ws.Close()
	return nil
}

type dialError struct{ code int }

func (e *dialError) Error() string { return http.StatusText(e.code) }

// signInBrowser signs a user in on the browser's sign-in form.
func signInBrowser(t *testing.T, ctx context.Context, h *testHub, user, pw string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(h.url+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("table.tree")))
}

// submit clicks a form's button and waits for the page it leads to.
func submit(t *testing.T, ctx context.Context, button, cond string) {
	t.Helper()
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.__old = true`), chromedp.Click(chromedp.CSS(button)))
	loaded(t, ctx, `window.__old === undefined && `+cond)
}

func screenPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 320, 180))
	for y := range 180 {
		for x := range 320 {
			img.SetRGBA(x, y, color.RGBA{R: uint8(x), G: 80, B: uint8(y), A: 255})
		}
	}
	var b bytes.Buffer
	must(t, png.Encode(&b, img))
	return b.Bytes()
}

// An administrator adds an area under a district, enrols a board in it — the shown secret
// connects as a real agent — takes its screenshot, plays an item now on a cluster, gives the
// board a new secret (the old one no longer connects), revokes it (nothing connects), makes
// an API token and revokes it from the list, and changes a user's role and area.
func TestAdminInBrowser(t *testing.T) {
	h := newTestHub(t)
	ctx := browser(t)
	dir := shots(t)
	bg := context.Background()
	item := "sha256:" + strings.Repeat("cd", 32)
	if _, _, err := h.db.AddContent(bg, store.Content{Ref: item, Size: 1 << 20, Duration: 95 * time.Second, MIME: "audio/mpeg",
		Title: "Tuyên truyền phòng chống bão", UploadedBy: "admin", UploadedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, h, "admin", adminPass)

	// An area, any depth below the district: Tam Bình under Tam Kỳ.
	do(t, ctx, chromedp.Navigate(h.url+"/console/areas"), chromedp.WaitVisible(chromedp.CSS(`#part`)),
		chromedp.SetValue(chromedp.CSS("#parent"), "qn/tk"), chromedp.SendKeys(chromedp.CSS("#part"), "tb"),
		chromedp.SendKeys(chromedp.CSS("#aname"), "Xã Tam Bình"))
	submit(t, ctx, `form[action="/console/areas"] button`, `document.querySelector(".notice") !== null`)
	var areas []api.AreaJSON
	h.api(h.admin, "GET", "/api/areas", nil, &areas, http.StatusOK)
	found := false
	for _, a := range areas {
		found = found || a.ID == "qn/tk/tb" && a.Parent == "qn/tk" && a.Name == "Xã Tam Bình"
	}
	if !found {
		t.Fatalf("the hub's areas after adding one in the page: %+v", areas)
	}
	// The tree: the new commune below the district, with its counts; Tam Thanh's 2 devices
	// count in it and in the district and province above.
	rows := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.tree tbody tr")].map(r => r.firstElementChild.className + " " + r.innerText.replace(/\s+/g, " ").trim())`))
	want := []string{"d1 Tỉnh Quảng Nam qn 1 2 1 1", "d2 Thành phố Tam Kỳ qn/tk 1 2 1 1", "d3 Xã Tam Bình qn/tk/tb 0 0 0 0",
		"d3 Xã Tam Phú qn/tk/tp 0 1 0 0", "d3 Xã Tam Thanh qn/tk/tt 1 1 1 1"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("the areas tree:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	shot(t, ctx, dir, "areas")

	// Enrol a board in it from the devices list's button.
	do(t, ctx, chromedp.Navigate(h.url+"/console/devices?area=qn/tk/tb"), chromedp.WaitVisible(chromedp.CSS(`a[href^="/console/enrol"]`)),
		chromedp.Click(chromedp.CSS(`a[href^="/console/enrol"]`)), chromedp.WaitVisible(chromedp.CSS("#id")))
	if a := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("area").value`)); a != "qn/tk/tb" {
		t.Errorf("the enrol form's area from the list's filter: %q", a)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#id"), "tb/bang-1"), chromedp.SendKeys(chromedp.CSS("#name"), "Bảng tin chợ Tam Bình"),
		chromedp.SetValue(chromedp.CSS("#kind"), "board"))
	shot(t, ctx, dir, "enrol")
	submit(t, ctx, `form[action="/console/enrol"] button`, `document.getElementById("secret") !== null`)
	secret := run(t, ctx, chromedp.Text(chromedp.CSS("#secret")))
	config := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("config").value`))
	for _, w := range []string{`device_id: "tb/bang-1"`, "hub:\n  url: ", "\n  secret: " + secret + "\n", "  trusted_keys:\n    test-key: \"ed25519:"} {
		if !strings.Contains(config, w) {
			t.Errorf("the agent config shown lacks %q:\n%s", w, config)
		}
	}
	if !strings.HasPrefix(secret, "loa-ds1-") {
		t.Fatalf("secret shown: %q", secret)
	}
	shot(t, ctx, dir, "enrolled")
	h.connect("tb/bang-1", secret) // the shown secret is the device's: a real agent connects with it

	// The board's screenshot: the command goes out, the device uploads, the page shows it.
	do(t, ctx, chromedp.Navigate(h.url+"/console/devices/tb/bang-1"), chromedp.WaitVisible(chromedp.CSS(`input[value="screenshot"] ~ button`)))
	submit(t, ctx, `input[value="screenshot"] ~ button`, `location.search.includes("shot=")`)
	cmd := run(t, ctx, chromedp.Evaluate[string](`new URLSearchParams(location.search).get("shot")`))
	req, _ := http.NewRequest("POST", h.url+"/agent/screenshot?command="+url.QueryEscape(cmd), bytes.NewReader(screenPNG(t)))
	req.Header.Set("Authorization", protocol.FormatDeviceAuth("tb/bang-1", secret))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("screenshot upload: %d", resp.StatusCode)
	}
	if w := run(t, ctx, chromedp.Poll[int](`document.getElementById("shot").naturalWidth || false`, chromedp.WithPollingTimeout(30*time.Second))); w != 320 {
		t.Errorf("the screenshot shown is %d px wide, want 320", w)
	}
	shot(t, ctx, dir, "device-board")

	// Play now on a cluster: an item picked from the library.
	do(t, ctx, chromedp.Navigate(h.url+"/console/devices/tt/cl-1"), chromedp.WaitVisible(chromedp.CSS("#playitem")),
		chromedp.SetValue(chromedp.CSS("#playitem"), item))
	submit(t, ctx, `.playnow button`, `document.querySelector(".notice") !== null`)
	var cmds []api.CommandJSON
	h.api(h.admin, "GET", "/api/commands?device=tt/cl-1", nil, &cmds, http.StatusOK)
	if len(cmds) != 1 || cmds[0].Action != "play_now" || cmds[0].Content != item {
		t.Errorf("commands after play now: %+v", cmds)
	}

	// A new secret: the old one is refused, the new one connects.
	do(t, ctx, chromedp.Navigate(h.url+"/console/devices/tb/bang-1"), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/device/rekey"]`)))
	submit(t, ctx, `form[action="/console/device/rekey"] button`, `document.getElementById("secret") !== null`)
	secret2 := run(t, ctx, chromedp.Text(chromedp.CSS("#secret")))
	if secret2 == secret || !strings.Contains(run(t, ctx, chromedp.Evaluate[string](`document.getElementById("config").value`)), "secret: "+secret2) {
		t.Fatalf("re-key showed %q (old %q)", secret2, secret)
	}
	if err := h.dial("tb/bang-1", secret); err == nil {
		t.Error("the old secret still connects after re-key")
	}
	if err := h.dial("tb/bang-1", secret2); err != nil {
		t.Errorf("the new secret does not connect: %v", err)
	}

	// Revoke: nothing connects any more.
	do(t, ctx, chromedp.Navigate(h.url+"/console/devices/tb/bang-1"), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/device/revoke"]`)))
	submit(t, ctx, `form[action="/console/device/revoke"] button`, `document.querySelector(".notice") !== null`)
	if err := h.dial("tb/bang-1", secret2); err == nil {
		t.Error("a revoked device still connects")
	}
	var dev api.DeviceJSON
	h.api(h.admin, "GET", "/api/devices/tb/bang-1", nil, &dev, http.StatusOK)
	if !dev.Revoked {
		t.Errorf("the hub does not hold the device revoked: %+v", dev)
	}

	// A token made in the page works, is listed, and stops working once revoked there.
	do(t, ctx, chromedp.Navigate(h.url+"/console/tokens"), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/tokens/add"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=label]`), "máy tính phòng văn hoá"),
		chromedp.SetValue(chromedp.CSS(`input[name=days]`), "30"))
	submit(t, ctx, `form[action="/console/tokens/add"] button`, `document.getElementById("newtoken") !== null`)
	tok := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("newtoken").value`))
	var who api.UserJSON
	h.api(tok, "GET", "/api/whoami", nil, &who, http.StatusOK)
	sum := sha256.Sum256([]byte(tok))
	row := `tr[data-token="` + hex.EncodeToString(sum[:]) + `"]`
	if txt := run(t, ctx, chromedp.Text(chromedp.CSS(row))); !strings.Contains(txt, "máy tính phòng văn hoá") || !strings.Contains(txt, "còn hiệu lực") ||
		!strings.Contains(txt, time.Now().In(h.zone).AddDate(0, 0, 30).Format("02/01/2006")) {
		t.Errorf("the new token's row: %q", txt)
	}
	shot(t, ctx, dir, "tokens")
	submit(t, ctx, row+` button`, `document.querySelector(".notice") !== null`)
	h.api(tok, "GET", "/api/whoami", nil, nil, http.StatusUnauthorized)
	if txt := run(t, ctx, chromedp.Text(chromedp.CSS(row))); !strings.Contains(txt, "đã thu hồi") {
		t.Errorf("the revoked token's row: %q", txt)
	}

	// A user's role and area: the Tam Phú viewer becomes an operator of Tam Thanh.
	do(t, ctx, chromedp.Navigate(h.url+"/console/users"), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/users/role"]`)))
	form := `form[action="/console/users/role"]:has(input[value="xem-tp"])`
	do(t, ctx, chromedp.SetValue(chromedp.CSS(form+` select[name=role]`), "operator"), chromedp.SetValue(chromedp.CSS(form+` select[name=scope]`), "qn/tk/tt"))
	submit(t, ctx, form+` button`, `document.querySelector(".notice") !== null`)
	u, err := h.db.GetUser(bg, "xem-tp")
	must(t, err)
	if u.Role != store.RoleOperator || u.Scope != "qn/tk/tt" {
		t.Errorf("after the change in the page: %+v", u)
	}
	shot(t, ctx, dir, "users-role")
}

// The administration routes refuse an operator (the API's role check), and every form
// refuses a post without the session's CSRF token: nothing changes either way.
func TestAdminRoutesRefused(t *testing.T) {
	h := newTestHub(t)
	if _, err := h.db.AddUser(context.Background(), store.User{ID: "vh-tt", Name: "Lê Văn Cường", Scope: "qn/tk/tt", Role: store.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	h.password("vh-tt", "mat-khau-van-hanh")
	op := h.client()
	if code, _ := op.signIn("vh-tt", "mat-khau-van-hanh"); code != http.StatusOK {
		t.Fatalf("operator sign-in: %d", code)
	}
	admin := h.client()
	if code, _ := admin.signIn("admin", adminPass); code != http.StatusOK {
		t.Fatalf("admin sign-in: %d", code)
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/console/enrol", url.Values{"id": {"tt/cl-9"}, "area": {"qn/tk/tt"}, "kind": {"cluster"}}},
		{"/console/device/revoke", url.Values{"device": {"tt/cl-2"}}},
		{"/console/device/rekey", url.Values{"device": {"tt/cl-2"}}},
		{"/console/areas", url.Values{"parent": {"qn/tk/tt"}, "part": {"x"}, "name": {"Thôn X"}}},
		{"/console/users/role", url.Values{"id": {"xem-tp"}, "role": {"admin"}}},
	}
	for _, p := range posts {
		f := url.Values{"csrf": {op.csrf}}
		for k, v := range p.form {
			f[k] = v
		}
		if code, body, _ := op.do("POST", p.path, f); code != http.StatusForbidden || !strings.Contains(body, "Vai trò của bạn không được") {
			t.Errorf("an operator's POST %s: %d\n%s", p.path, code, body)
		}
		for _, csrf := range []string{"", "not-the-session-token"} {
			f := url.Values{"csrf": {csrf}}
			for k, v := range p.form {
				f[k] = v
			}
			if code, _, _ := admin.do("POST", p.path, f); code != http.StatusForbidden {
				t.Errorf("an admin's POST %s with CSRF %q: %d, want 403", p.path, csrf, code)
			}
		}
	}
	for _, path := range []string{"/console/tokens", "/console/enrol"} {
		if code, _, _ := op.do("GET", path, nil); code != http.StatusForbidden {
			t.Errorf("an operator's GET %s: %d", path, code)
		}
	}
	// Nothing changed.
	h.api(h.admin, "GET", "/api/devices/tt/cl-9", nil, nil, http.StatusNotFound)
	var d api.DeviceJSON
	h.api(h.admin, "GET", "/api/devices/tt/cl-2", nil, &d, http.StatusOK)
	if d.Revoked {
		t.Error("tt/cl-2 was revoked by a refused form")
	}
	h.api(h.admin, "GET", "/api/areas", nil, nil, http.StatusOK)
	if u, _ := h.db.GetUser(context.Background(), "xem-tp"); u.Role != store.RoleViewer {
		t.Errorf("xem-tp's role changed by a refused form: %s", u.Role)
	}
	var audit []api.AuditJSON
	h.api(h.admin, "GET", "/api/audit", nil, &audit, http.StatusOK)
	for _, a := range audit {
		if a.Action == "device.enrol" && a.Target == "device:tt/cl-9" || a.Action == "device.revoke" || a.Action == "device.rekey" || a.Action == "user.role" || a.Target == "area:qn/tk/tt/x" {
			t.Errorf("a refused form reached the audit: %+v", a)
		}
	}
}

// The play log's first page gains a row when a confirmation lands, without a reload, once:
// the rows it showed are not added again.
func TestPlayLogLive(t *testing.T) {
	h := newTestHub(t)
	ctx := browser(t)
	signInBrowser(t, ctx, h, "admin", adminPass)
	do(t, ctx, chromedp.Navigate(h.url+"/console/confirmations?device=tt/cl-1"), chromedp.WaitVisible(chromedp.CSS("table.plays")))
	run(t, ctx, chromedp.Poll[bool](`document.querySelector(".live-plays").textContent === "Tự động cập nhật"`))
	// The style sheet inside the page is allowed by the Content-Security-Policy's hash.
	if bg := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).backgroundColor`)); bg != "rgb(11, 79, 138)" {
		t.Errorf("the page's styles did not apply (header background %q): the CSP hash does not match the inline sheet?", bg)
	}
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.__page = true`))
	start := time.Now().Truncate(time.Minute)
	if _, err := h.db.AddConfirmations(context.Background(), "tt/cl-1", []store.Confirmation{{Confirmation: protocol.Confirmation{Seq: 61, Output: "speakers", ScheduleID: "dev-tt/cl-1",
		Revision: 1, Program: "qn/tk/tt/evening", Item: "sha256:" + strings.Repeat("ef", 32), Scheduled: start, Start: start,
		End: start.Add(5 * time.Minute), Proof: protocol.Proof{PlayedS: 300}, Result: "failed", Error: "thẻ nhớ lỗi <b>đọc</b>", Clock: "synced"}}}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Poll[bool](`document.querySelector("table.plays tbody tr").dataset.key === "tt/cl-1#61"`, chromedp.WithPollingTimeout(time.Minute)))
	first := run(t, ctx, chromedp.Text(chromedp.CSS("table.plays tbody tr")))
	for _, w := range []string{"qn/tk/tt/evening", "thẻ nhớ lỗi <b>đọc</b>", start.In(h.zone).Format("02/01/2006 15:04"), "5:00"} {
		if !strings.Contains(first, w) {
			t.Errorf("the live row lacks %q: %q", w, first)
		}
	}
	// A second one lands: it comes on top, and neither is added twice.
	if _, err := h.db.AddConfirmations(context.Background(), "tt/cl-1", []store.Confirmation{{Confirmation: protocol.Confirmation{Seq: 62, Output: "speakers", ScheduleID: "dev-tt/cl-1",
		Revision: 1, Program: "qn/tk/tt/evening", Item: "sha256:" + strings.Repeat("ef", 32), Scheduled: start.Add(5 * time.Minute),
		Start: start.Add(5 * time.Minute), End: start.Add(10 * time.Minute), Proof: protocol.Proof{PlayedS: 300}, Result: "completed", Clock: "synced"}}}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Poll[bool](`document.querySelector("table.plays tbody tr").dataset.key === "tt/cl-1#62"`, chromedp.WithPollingTimeout(time.Minute)))
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.plays tbody tr").length`)); n != 52 {
		t.Errorf("rows after two live ones: %d, want 52", n)
	}
	if !run(t, ctx, chromedp.Evaluate[bool](`window.__page === true`)) {
		t.Error("the page reloaded")
	}
}

// Pages, styles and scripts go gzipped to a browser that accepts it; the event stream does
// not (each event must leave at once).
func TestGzip(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	if code, _ := c.signIn("admin", adminPass); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	for _, tc := range []struct {
		path, want string
		gz         bool
	}{
		{"/console/devices", "<style>", true},
		{"/console/static/console.js", "EventSource", true},
		{"/console/events", "event: device", false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.url+tc.path, nil)
		req.Header.Set("Accept-Encoding", "gzip") // set by hand: the transport then does not decompress
		resp, err := c.c.Do(req)
		must(t, err)
		var body io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gz {
			t.Errorf("%s: gzipped %v, want %v", tc.path, got, tc.gz)
		} else if got {
			zr, err := gzip.NewReader(resp.Body)
			must(t, err)
			body = zr
		}
		buf := make([]byte, 64<<10)
		n, _ := io.ReadAtLeast(body, buf, len(tc.want)+1)
		if !strings.Contains(string(buf[:n]), tc.want) {
			t.Errorf("%s: the answer lacks %q: %.300s", tc.path, tc.want, buf[:n])
		}
		resp.Body.Close()
		cancel()
	}
}

// A tree too big for one page (a province of 2,000 areas) shows the levels that fit, each node
// with more below it linking to its own tree.
func TestBigTree(t *testing.T) {
	h := newTestHub(t)
	for d := range 3 {
		did := fmt.Sprintf("qn/tk/tt/t%d", d)
		h.api(h.admin, "POST", "/api/areas", api.AreaJSON{ID: did, Name: fmt.Sprintf("Thôn %d", d)}, nil, http.StatusCreated)
		for c := range 80 {
			h.api(h.admin, "POST", "/api/areas", api.AreaJSON{ID: fmt.Sprintf("%s/to%d", did, c), Name: fmt.Sprintf("Tổ %d", c)}, nil, http.StatusCreated)
		}
	}
	c := h.client()
	if code, _ := c.signIn("admin", adminPass); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	// 4 + 3 areas fit in the first four levels; the 240 groups below do not.
	_, body, _ := c.do("GET", "/console/areas", nil)
	if n := strings.Count(body, `<td class="d`); n != 7 || strings.Contains(body, "qn/tk/tt/t0/to0") || strings.Count(body, `class="zoom" href="?area=qn%2ftk%2ftt%2ft`) != 3 {
		t.Errorf("the whole tree shows %d rows:\n%s", n, body)
	}
	_, body, _ = c.do("GET", "/console/?area=qn/tk/tt/t1", nil)
	if n := strings.Count(body, `<td class="d`); n != 81 || !strings.Contains(body, "qn/tk/tt/t1/to79") || strings.Contains(body, "qn/tk/tt/t0/") {
		t.Errorf("village t1's tree shows %d rows", n)
	}
}
