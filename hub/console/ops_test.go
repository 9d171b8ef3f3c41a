package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// wav writes a mono 16-bit 8 kHz tone of secs seconds: a small real file for the transcoder.
func wav(t *testing.T, path string, hz float64, secs int) {
	n := 8000 * secs
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	for i := range n {
		binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*hz*float64(i)/8000)))
	}
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func (h *testHub) terms() {
	for _, term := range []api.TermJSON{{Dimension: "language", Code: "vie", Label: "Tiếng Việt"}, {Dimension: "language", Code: "kuf", Label: "Cơ Tu"},
		{Dimension: "theme", Code: "thoi-su", Label: "Thời sự"}, {Dimension: "format", Code: "ban-tin", Label: "Bản tin"},
		{Dimension: "unit", Code: "dai-tk", Label: "Đài Truyền thanh Tam Kỳ"}} {
		h.api(h.admin, "POST", "/api/terms", term, nil, http.StatusCreated)
	}
}

// signInBrowser signs the browser in as user.

// The library, emergency, CAP and relay pages in one browser on one hub (Chromium and the hub
// take seconds to start): see libraryInBrowser and emergencyInBrowser.
func TestOpsPagesInBrowser(t *testing.T) {
	h := newTestHub(t)
	ctx := browserMic(t)
	dir := shots(t)
	signInBrowser(t, ctx, h, "admin", adminPass)
	t.Run("library", func(t *testing.T) { libraryInBrowser(t, h, ctx, dir) })
	t.Run("emergency", func(t *testing.T) { emergencyInBrowser(t, h, ctx, dir) })
}

// Two files dropped into the library page's picker go up with a progress bar each and the
// metadata chosen; the list then shows them with that metadata, a title with markup as text,
// and the bytes the console streams to its player are those the API lists.
func libraryInBrowser(t *testing.T, h *testHub, ctx context.Context, dir string) {
	h.terms()
	tmp := t.TempDir()
	files := []string{filepath.Join(tmp, "ban-tin-sang.wav"), filepath.Join(tmp, "canh-bao-lu.wav")}
	wav(t, files[0], 440, 3)
	wav(t, files[1], 660, 2)
	do(t, ctx, chromedp.Navigate(h.url+"/console/content"), chromedp.WaitVisible(chromedp.CSS("#upload")))
	xssTitle := `<img src=x onerror="window.__xss=3">Cảnh báo lũ <script>window.__xss=2</script>`
	do(t, ctx, chromedp.SetUploadFiles(chromedp.CSS(`#files`), files),
		chromedp.WaitVisible(chromedp.CSS(`#queue li:nth-child(2) input.ftitle`)),
		chromedp.SetValue(chromedp.CSS(`#up-language`), "kuf"), chromedp.SetValue(chromedp.CSS(`#up-theme`), "thoi-su"),
		chromedp.SetValue(chromedp.CSS(`#up-format`), "ban-tin"), chromedp.SetValue(chromedp.CSS(`#up-unit`), "dai-tk"),
		chromedp.SetValue(chromedp.CSS(`#queue li:nth-child(2) input.ftitle`), xssTitle))
	do(t, ctx, chromedp.Click(chromedp.CSS(`#upload button[type=submit]`)))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("upload").dataset.finished === "2"`, chromedp.WithPollingTimeout(40*time.Second))); err != nil {
		t.Fatalf("uploads did not finish: %v; the page shows %s", err, run(t, ctx, chromedp.Evaluate[string](`document.getElementById("upload").innerText`)))
	}
	res := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#queue .result")].map(e => e.textContent)`))
	bars := run(t, ctx, chromedp.Evaluate[[]float64](`[...document.querySelectorAll("#queue progress")].map(p => p.value)`))
	if len(res) != 2 || len(bars) != 2 {
		t.Fatalf("upload rows: %q, bars %v", res, bars)
	}
	for i, r := range res {
		if !strings.HasPrefix(r, "Đã lưu, đã chuyển mã: sha256:") || bars[i] != 100 {
			t.Errorf("file %d: %q, progress %v", i, r, bars[i])
		}
	}
	shot(t, ctx, dir, "content-upload")

	var items []api.ContentJSON
	h.api(h.admin, "GET", "/api/content", nil, &items, http.StatusOK)
	if len(items) != 2 {
		t.Fatalf("the library holds %d items: %+v", len(items), items)
	}
	titles := map[string]bool{}
	for _, it := range items {
		titles[it.Title] = true
		if it.Language != "kuf" || it.Theme != "thoi-su" || it.Format != "ban-tin" || it.Unit != "dai-tk" || it.By != "admin" || it.MIME != "audio/mpeg" {
			t.Errorf("stored metadata: %+v", it)
		}
		// The bytes the console's player gets are those the API lists (size and sha256).
		b := h.api(h.admin, "GET", "/api/content/"+it.Ref+"/file", nil, nil, http.StatusOK)
		if sum := fmt.Sprintf("sha256:%x", sha256.Sum256(b)); sum != it.Ref || int64(len(b)) != it.Size {
			t.Errorf("%s: the file served is %s, %d bytes (listed %d)", it.Ref, sum, len(b), it.Size)
		}
		got := run(t, ctx, chromedp.Evaluate[[]any](`fetch("/console/content/file/`+it.Ref+`", {headers: {Range: "bytes=0-99"}}).then(async r =>
			[r.status, r.headers.get("Content-Range"), (await r.arrayBuffer()).byteLength])`, chromedp.EvalAwaitPromise))
		if fmt.Sprint(got) != fmt.Sprintf("[206 bytes 0-99/%d 100]", it.Size) {
			t.Errorf("a Range request for %s answered %v", it.Ref, got)
		}
	}
	if !titles["ban tin sang"] || !titles[xssTitle] {
		t.Errorf("titles stored: %v", titles)
	}

	// One item is used by Tam Thanh's morning programme.
	var used string
	for _, it := range items {
		if it.Title == "ban tin sang" {
			used = it.Ref
		}
	}
	doc := "version: 1\nid: tt-sang\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: sang\n    title: Bản tin sáng\n    cron: \"0 30 5 * * *\"\n    items:\n      - content: " + used + "\n"
	h.api(h.admin, "POST", "/api/schedules", api.PushRequest{To: "area:qn/tk/tt", Document: doc}, nil, http.StatusOK)
	do(t, ctx, chromedp.Navigate(h.url+"/console/content"), chromedp.WaitVisible(chromedp.CSS("table.library")))
	uses := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.library tbody tr")].map(r => r.dataset.ref + " " + r.querySelector(".uses").textContent)`))
	for _, u := range uses {
		if strings.HasPrefix(u, used) != (u == used+" area:qn/tk/tt · Bản tin sáng") {
			t.Errorf("where used: %q", u)
		}
	}
	if ran := run(t, ctx, chromedp.Evaluate[any](`window.__xss`)); ran != nil {
		t.Fatalf("a content title ran as script: %v", ran)
	}
	rows := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.library tbody tr")].map(r => r.querySelector(".t .title").textContent + "|" + r.querySelector(".lang").textContent)`))
	if len(rows) != 2 || !strings.Contains(strings.Join(rows, "\n"), xssTitle+"|Cơ Tu") {
		t.Errorf("library rows: %q", rows)
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.library audio[src^='/console/content/file/sha256:']").length`)); n != 2 {
		t.Errorf("%d players, want 2", n)
	}
	shot(t, ctx, dir, "content")
	// Search and filter, then an edit of the metadata.
	do(t, ctx, chromedp.Navigate(h.url+"/console/content?q=sang&language=kuf"), chromedp.WaitVisible(chromedp.CSS("table.library")))
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.library tbody tr").length`)); n != 1 {
		t.Errorf("searching \"sang\": %d rows, want 1", n)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("table.library details summary")),
		chromedp.SetValue(chromedp.CSS(`table.library details input[name=title]`), "Bản tin sáng 04/12"),
		chromedp.SetValue(chromedp.CSS(`table.library details select[name=language]`), "vie"),
		chromedp.Click(chromedp.CSS("table.library details button")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	h.api(h.admin, "GET", "/api/content?language=vie", nil, &items, http.StatusOK)
	if len(items) != 1 || items[0].Title != "Bản tin sáng 04/12" {
		t.Errorf("after the edit: %+v", items)
	}
}

// agent is a device's websocket, held by the test, that can send confirmations.
func (h *testHub) agent(id, area string) *websocket.Conn {
	var res api.EnrolResponse
	h.api(h.admin, "POST", "/api/devices", api.EnrolRequest{ID: id, Area: area, Name: "Cụm loa " + id}, &res, http.StatusCreated)
	u := "ws" + strings.TrimPrefix(h.url, "http") + "/agent/ws"
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(id, res.Secret)}})
	must(h.t, err)
	h.t.Cleanup(func() { ws.Close() })
	b, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "h1"}, DeviceID: id, SoftwareVersion: "loa-agent 0.9"})
	must(h.t, ws.WriteMessage(websocket.TextMessage, b))
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return ws
}

// An emergency sent through the page: areas ticked on the tree, the text typed, the
// confirmation step naming the communes and clusters counted on the hub, the live view
// showing an agent's confirmation when it lands, then cancelled.
func emergencyInBrowser(t *testing.T, h *testHub, ctx context.Context, dir string) {
	ws := h.agent("tt/cl-3", "qn/tk/tt")
	rec := filepath.Join(t.TempDir(), "canh-bao.wav")
	wav(t, rec, 500, 2)
	do(t, ctx, chromedp.Navigate(h.url+"/console/emergency"), chromedp.WaitVisible(chromedp.CSS("form.emergency")))
	shot(t, ctx, dir, "emergency")
	do(t, ctx, chromedp.Click(chromedp.CSS(`input[name=to][value="qn/tk/tt"]`)), chromedp.Click(chromedp.CSS(`input[name=to][value="qn/tk/tp"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Cảnh báo lũ"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=text]`), "Nước sông Tam Kỳ đang lên. Đề nghị bà con vùng trũng di chuyển lên chỗ cao."),
		chromedp.SetValue(chromedp.CSS(`select[name=every]`), "30m"),
		chromedp.SetUploadFiles(chromedp.CSS(`form.emergency input[type=file]`), []string{rec}),
		chromedp.Click(chromedp.CSS("#next")), chromedp.WaitVisible(chromedp.CSS("#reach")))
	// Tam Thanh has three clusters, Tam Phú one: two communes, four clusters.
	if reach := run(t, ctx, chromedp.Text(chromedp.CSS("#reach"))); reach != "Sẽ phát tới 2 xã, 4 cụm loa." {
		t.Errorf("the confirmation step says %q", reach)
	}
	if dl := run(t, ctx, chromedp.Text(chromedp.CSS(".confirm dl"))); !strings.Contains(dl, "mỗi 30 phút") || !strings.Contains(dl, "sau 2 giờ") ||
		!strings.Contains(dl, "Cảnh báo lũ") || !strings.Contains(dl, "Xã Tam Phú, Xã Tam Thanh") {
		t.Errorf("the confirmation step's details:\n%s", dl)
	}
	var active []api.EmergencyJSON
	h.api(h.admin, "GET", "/api/emergencies", nil, &active, http.StatusOK)
	if len(active) != 0 {
		t.Fatalf("the confirmation step sent something: %+v", active)
	}
	shot(t, ctx, dir, "emergency-confirm")
	do(t, ctx, chromedp.Click(chromedp.CSS("#send")), chromedp.WaitVisible(chromedp.CSS("#reached")))
	h.api(h.admin, "GET", "/api/emergencies", nil, &active, http.StatusOK)
	if len(active) != 2 || active[0].RepeatEvery != "30m0s" || active[0].Series != active[1].Series || active[0].Content == "" ||
		active[0].Text == "" || active[0].Content != active[1].Content {
		t.Fatalf("on the air after sending: %+v", active)
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#reached tbody tr").length`)); n != 4 {
		t.Errorf("the live view lists %d clusters, want 4", n)
	}
	run(t, ctx, chromedp.Poll[bool](`document.querySelector(".live").textContent === "Tự động cập nhật"`))
	// The agent in Tam Thanh confirms it played the warning.
	var prog string
	for _, e := range active {
		if e.Area == "qn/tk/tt" {
			prog = e.Program
		}
	}
	now := time.Now()
	b, _ := protocol.Encode(&protocol.Confirmations{Header: protocol.Header{ID: "c1"}, Records: []protocol.Confirmation{{Device: "tt/cl-3", Seq: 1,
		Output: "speakers", Program: prog, Scheduled: now, Start: now, End: now.Add(9 * time.Second), Proof: protocol.Proof{PlayedS: 9}, Result: "completed"}}})
	must(t, ws.WriteMessage(websocket.TextMessage, b))
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("heard").textContent === "1"`, chromedp.WithPollingTimeout(time.Minute)))
	if cell := run(t, ctx, chromedp.Text(chromedp.CSS(`tr[data-device="tt/cl-3"] .heard`))); !strings.HasPrefix(cell, "đã phát · ") {
		t.Errorf("the cluster's confirmation shows %q", cell)
	}
	if cell := run(t, ctx, chromedp.Text(chromedp.CSS(`tr[data-device="tt/cl-2"] .heard`))); cell != "đang chờ" {
		t.Errorf("a cluster that did not confirm shows %q", cell)
	}
	shot(t, ctx, dir, "emergency-live")
	do(t, ctx, chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	var all []api.EmergencyJSON
	h.api(h.admin, "GET", "/api/emergencies?all=1", nil, &all, http.StatusOK)
	if len(all) != 2 || all[0].Active || all[0].EndReason != "cancelled" || all[1].EndReason != "cancelled" {
		t.Errorf("after cancel: %+v", all)
	}

	// A second warning recorded with the (fake) microphone, no text.
	do(t, ctx, chromedp.Navigate(h.url+"/console/emergency"), chromedp.WaitVisible(chromedp.CSS("form.emergency")),
		chromedp.Click(chromedp.CSS(`input[name=to][value="qn/tk/tp"]`)), chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Ghi âm thử"),
		chromedp.Click(chromedp.CSS("button.rec")))
	run(t, ctx, chromedp.Poll[bool](`document.querySelector(".recstate").textContent === "● REC"`))
	time.Sleep(500 * time.Millisecond) // half a second of the fake microphone's tone: any length will do
	do(t, ctx, chromedp.Click(chromedp.CSS("button.rec")))
	run(t, ctx, chromedp.Poll[bool](`!document.querySelector("audio.take").hidden`))
	do(t, ctx, chromedp.Click(chromedp.CSS("#next")), chromedp.WaitVisible(chromedp.CSS("#reach")))
	if reach := run(t, ctx, chromedp.Text(chromedp.CSS("#reach"))); reach != "Sẽ phát tới 1 xã, 1 cụm loa." {
		t.Errorf("the confirmation step for Tam Phú says %q", reach)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#send")), chromedp.WaitVisible(chromedp.CSS("#reached")))
	h.api(h.admin, "GET", "/api/emergencies", nil, &active, http.StatusOK)
	if len(active) != 1 || active[0].Content == "" || active[0].Title != "Ghi âm thử" {
		t.Errorf("the recorded warning: %+v", active)
	}

	// The CAP page lists what the hub decided, as applyCAP records it.
	must(t, appendCAP(h, "cap.ignore", "area:qn", `{"message":"vndmc-2026-77","areas":["qn/tk/tt"],"status":"Exercise","reason":"status Exercise is not broadcast"}`))
	do(t, ctx, chromedp.Navigate(h.url+"/console/cap"), chromedp.WaitVisible(chromedp.CSS("table.cap")))
	if txt := run(t, ctx, chromedp.Text(chromedp.CSS("table.cap"))); !strings.Contains(txt, "vndmc-2026-77") || !strings.Contains(txt, "bỏ qua") ||
		!strings.Contains(txt, "status Exercise is not broadcast") {
		t.Errorf("the CAP page:\n%s", txt)
	}
	shot(t, ctx, dir, "cap")
	do(t, ctx, chromedp.Navigate(h.url+"/console/broadcasts"), chromedp.WaitVisible(chromedp.CSS("#relay")))
	shot(t, ctx, dir, "broadcasts")
	// A relay of the province station to Tam Thanh, then a bulletin at Tam Thanh's next session
	// (its morning programme, pushed by the library test).
	do(t, ctx, chromedp.Click(chromedp.CSS(`#relay input[name=to][value="qn/tk/tt"]`)),
		chromedp.SendKeys(chromedp.CSS(`#relay input[name=stream]`), "http://radio.example.vn/qnr.mp3"),
		chromedp.SendKeys(chromedp.CSS(`#relay input[name=title]`), "Đài Quảng Nam"),
		chromedp.Click(chromedp.CSS(`#relay button`)), chromedp.WaitVisible(chromedp.CSS("#reached")))
	do(t, ctx, chromedp.Navigate(h.url+"/console/broadcasts"), chromedp.WaitVisible(chromedp.CSS("#bulletin")),
		chromedp.Click(chromedp.CSS(`#bulletin input[name=to][value="qn/tk/tt"]`)),
		chromedp.SendKeys(chromedp.CSS(`#bulletin input[name=title]`), "Lịch tiêm chủng"),
		chromedp.SendKeys(chromedp.CSS(`#bulletin textarea[name=text]`), "Trạm y tế xã tiêm chủng sáng thứ Bảy."),
		chromedp.Click(chromedp.CSS(`#bulletin button[type=submit], #bulletin > button`)), chromedp.WaitVisible(chromedp.CSS("#reached")))
	var kinds []string
	h.api(h.admin, "GET", "/api/emergencies", nil, &active, http.StatusOK)
	for _, e := range active {
		if e.Area == "qn/tk/tt" {
			kinds = append(kinds, e.Kind+" "+e.Title+" "+e.Stream)
		}
	}
	sort.Strings(kinds)
	if strings.Join(kinds, "|") != "bulletin Lịch tiêm chủng |live Đài Quảng Nam http://radio.example.vn/qnr.mp3" {
		t.Errorf("relays and bulletins on the air in Tam Thanh: %q", kinds)
	}
}

// browserMic is browser with Chromium's fake microphone (a tone) allowed without asking.
func browserMic(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/install-deps (Debian package chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

func appendCAP(h *testHub, action, target, detail string) error {
	_, err := h.db.AppendAudit(context.Background(), store.AuditEntry{Actor: "cap-feed", Action: action, Target: target, Detail: json.RawMessage(detail)})
	return err
}

// Sending an emergency is refused to viewers and operators by the routes themselves, and
// every new form is refused without its CSRF token.
func TestEmergencyRolesAndCSRF(t *testing.T) {
	h := newTestHub(t)
	_, err := h.db.AddUser(context.Background(), store.User{ID: "vh-tt", Name: "Lê Văn Cường", Scope: "qn/tk/tt", Role: store.RoleOperator})
	must(t, err)
	h.password("vh-tt", "mat-khau-van-hanh")
	form := url.Values{"to": {"qn/tk/tt"}, "text": {"Thử"}, "for": {"1h"}}
	clients := map[string]*client{}
	for _, u := range []struct{ id, pw string }{{"xem-tp", viewerPass}, {"vh-tt", "mat-khau-van-hanh"}} {
		c := h.client()
		if code, _ := c.signIn(u.id, u.pw); code != http.StatusOK {
			t.Fatalf("%s signs in: %d", u.id, code)
		}
		clients[u.id] = c
		_, page, _ := c.do("GET", "/console/emergency", nil)
		if strings.Contains(page, `action="/console/emergency/confirm"`) {
			t.Errorf("%s is shown the send form", u.id)
		}
		for _, path := range []string{"/console/emergency/confirm", "/console/emergency/send"} {
			f := url.Values{"csrf": {c.csrf}}
			for k, v := range form {
				f[k] = v
			}
			if code, _, _ := c.do("POST", path, f); code != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", u.id, path, code)
			}
		}
	}
	var all []api.EmergencyJSON
	h.api(h.admin, "GET", "/api/emergencies?all=1", nil, &all, http.StatusOK)
	if len(all) != 0 {
		t.Errorf("a refused role sent: %+v", all)
	}
	// The viewer of Tam Phú sees CAP decisions about Tam Phú only.
	must(t, appendCAP(h, "cap.create", "area:qn", `{"message":"a-tt","areas":["qn/tk/tt"]}`))
	must(t, appendCAP(h, "cap.create", "area:qn", `{"message":"a-tp","areas":["qn/tk/tp"]}`))
	// A warning for the whole province: the Tam Phú viewer's live view lists Tam Phú's cluster only.
	var res api.EmergencyResponse
	h.api(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn", Text: "Diễn tập", For: "1h"}, &res, http.StatusCreated)
	code, page, _ := clients["xem-tp"].do("GET", "/console/emergency/live?series="+url.QueryEscape(res.Emergencies[0].Series), nil)
	if code != http.StatusOK || !strings.Contains(page, `data-device="tp/cl-1"`) || strings.Contains(page, `data-device="tt/cl-1"`) ||
		strings.Contains(page, `action="/console/emergency/cancel"`) {
		t.Errorf("the Tam Phú viewer's live view of a province warning: %d\n%s", code, page)
	}
	if _, page, _ := clients["xem-tp"].do("GET", "/console/cap", nil); !strings.Contains(page, "a-tp") || strings.Contains(page, "a-tt") {
		t.Errorf("the Tam Phú viewer's CAP page:\n%s", page)
	}

	admin := h.client()
	admin.signIn("admin", adminPass)
	for _, path := range []string{"/console/emergency/confirm", "/console/emergency/send", "/console/emergency/cancel", "/console/broadcasts/live",
		"/console/broadcasts/bulletin", "/console/content/edit", "/console/content/upload"} {
		if code, _, _ := admin.do("POST", path, form); code != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %d, want 403", path, code)
		}
	}
	// With the token, the admin's send goes through (the refusals above were the token's).
	form.Set("csrf", admin.csrf)
	if code, body, _ := admin.do("POST", "/console/emergency/send", form); code != http.StatusSeeOther {
		t.Errorf("the admin's send: %d\n%s", code, body)
	}
	h.api(h.admin, "GET", "/api/emergencies?all=1", nil, &all, http.StatusOK)
	if len(all) != 2 {
		t.Errorf("after the admin's send: %+v", all)
	}
}
