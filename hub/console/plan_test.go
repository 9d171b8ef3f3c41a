package console_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// playingAgent connects a device as the agent does and answers every schedule the hub sends
// with the delivery reports a real agent makes: received, content_ready, then active; then,
// once it is active, it confirms a play of the schedule's first segment (played now rather
// than at its time, so the test need not wait for it) in a confirmations batch, as the
// agent's journal sends its records.
func (h *testHub) playingAgent(id, secret string) {
	u := "ws" + strings.TrimPrefix(h.url, "http") + "/agent/ws"
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}})
	must(h.t, err)
	h.t.Cleanup(func() { ws.Close() })
	var mu sync.Mutex // one writer at a time on the socket
	send := func(m protocol.Message) error {
		b, err := protocol.Encode(m)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return ws.WriteMessage(websocket.TextMessage, b)
	}
	must(h.t, send(&protocol.Hello{Header: protocol.Header{ID: "h1"}, DeviceID: id, SoftwareVersion: "loa-agent 0.9"}))
	go func() {
		n, seq := 0, uint64(0)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			m, err := protocol.Decode(b)
			sc, ok := m.(*protocol.Schedule)
			if err != nil || !ok {
				continue
			}
			var p protocol.SchedulePayload
			if json.Unmarshal(sc.Signed.Payload, &p) != nil {
				continue
			}
			for _, st := range []string{protocol.DeliveryReceived, protocol.DeliveryContentReady, protocol.DeliveryActive} {
				n++
				if send(&protocol.Delivery{Header: protocol.Header{ID: fmt.Sprintf("d%d", n), Re: sc.ID}, ScheduleID: p.ScheduleID,
					Revision: p.Revision, State: st}) != nil {
					return
				}
			}
			doc, err := scheduler.Parse("received", []byte(p.Document))
			if err != nil {
				continue
			}
			now := time.Now()
			tl, err := scheduler.Compile(doc, now, now.AddDate(0, 0, 8), scheduler.CompileOptions{})
			if err != nil || len(tl.Segments) == 0 {
				continue
			}
			sg := tl.Segments[0]
			seq++
			rec := protocol.Confirmation{Device: id, Seq: seq, Output: sg.Output, ScheduleID: p.ScheduleID, Revision: p.Revision,
				Program: sg.Program, ItemIndex: sg.Item, Item: sg.Ref, Scheduled: now, Start: now, End: now.Add(time.Second),
				Proof: protocol.Proof{PlayedS: 1}, Result: protocol.ResultCompleted, Clock: protocol.ClockSynced}
			if send(&protocol.Confirmations{Header: protocol.Header{ID: fmt.Sprintf("c%d", seq)}, Records: []protocol.Confirmation{rec}}) != nil {
				return
			}
		}
	}()
}

// fill sets form fields by name, as typing and ticking would: text values, and for a
// checkbox or radio the one with that value checked.
func fill(t *testing.T, ctx context.Context, fields [][2]string) {
	t.Helper()
	b, _ := json.Marshal(fields)
	js := `(() => { for (const [n, v] of ` + string(b) + `) {
		const els = [...document.getElementsByName(n)];
		if (!els.length) return "no field " + n;
		const box = els.find(e => (e.type === "checkbox" || e.type === "radio") && e.value === v);
		if (box) { box.checked = true; continue; }
		if (els[0].type === "checkbox" || els[0].type === "radio") return "no " + n + " = " + v;
		els[0].value = v;
	} return ""; })()`
	if msg := run(t, ctx, chromedp.Evaluate[string](js)); msg != "" {
		t.Fatal(msg)
	}
}

// click presses a button and waits for the page it leads to.
func click(t *testing.T, ctx context.Context, sel, cond string) {
	t.Helper()
	run(t, ctx, chromedp.Evaluate[bool](`document.documentElement.dataset.old = "1", true`))
	do(t, ctx, chromedp.Click(chromedp.CSS(sel)))
	loaded(t, ctx, `!document.documentElement.dataset.old && `+cond)
}

// planShot takes the planning pages' screenshots only when they are asked for
// (LOA_CONSOLE_SCREENSHOTS): seven full pages at two widths cost ten seconds of make test.
func planShot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	if os.Getenv("LOA_CONSOLE_SCREENSHOTS") != "" {
		shot(t, ctx, dir, name)
	}
}

type renderedSeg struct {
	Output, Program, Item, Start, End, Status string
}

// The done-when of issue 15: a district officer builds a Monday–Saturday schedule with two
// sessions and a Wednesday ethnic-language programme in the editor (meeting a field error on
// the way), previews and pushes it to a commune with two connected agents, watches both reach
// active, finds the device's calendar segment for segment what scheduler.Compile gives for the
// same document, applies the week as a template to two other communes, and previews a change
// beneath a province's relay.
func TestPlanningInBrowser(t *testing.T) {
	h := newTestHub(t)
	ctx := browser(t)
	dir := shots(t)
	h.api(h.admin, "POST", "/api/areas", api.AreaJSON{ID: "qn/tk/tx", Name: "Xã Tam Xuân"}, nil, http.StatusCreated)
	for _, id := range []string{"tx/cl-1", "tx/cl-2"} {
		var res api.EnrolResponse
		h.api(h.admin, "POST", "/api/devices", api.EnrolRequest{ID: id, Area: "qn/tk/tx", Name: "Cụm loa " + id}, &res, http.StatusCreated)
		h.playingAgent(id, res.Secret)
	}
	do(t, ctx, chromedp.Navigate(h.url+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), adminPass),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("table.tree")))

	do(t, ctx, chromedp.Navigate(h.url+"/console/plan/edit?to=area:qn/tk/tx"), chromedp.WaitVisible(chromedp.CSS(`input[name="p.0.id"]`)))
	monSat := [][2]string{{"p.%d.days", "MON"}, {"p.%d.days", "TUE"}, {"p.%d.days", "WED"}, {"p.%d.days", "THU"}, {"p.%d.days", "FRI"}, {"p.%d.days", "SAT"}}
	programme := func(i int, fields [][2]string) [][2]string {
		var out [][2]string
		for _, f := range fields {
			out = append(out, [2]string{fmt.Sprintf(f[0], i), f[1]})
		}
		return out
	}
	fill(t, ctx, [][2]string{{"q.0.from", "22:00"}, {"q.0.to", "05:00"}})
	// The morning session, its text item without a duration: the scheduler's message at the item.
	fill(t, ctx, programme(0, append([][2]string{{"p.%d.id", "ban-tin-sang"}, {"p.%d.title", "Bản tin sáng"}, {"p.%d.when", "weekly"},
		{"p.%d.time", "05:30"}, {"p.%d.i.0.kind", "text"}, {"p.%d.i.0.value", "Bản tin thời sự buổi sáng"}}, monSat...)))
	click(t, ctx, `button[value=form]`, `document.querySelector(".ferr") !== null`)
	ferr := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('section.prog[data-program="0"] li[data-item="0"] .ferr')].map(e => e.textContent).join("\n")`))
	if ferr == "" {
		t.Log(run(t, ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`)))
	}
	if !strings.Contains(ferr, "text needs a duration") {
		t.Errorf("the item's error: %q", ferr)
	}
	planShot(t, ctx, dir, "plan-editor-error")
	fill(t, ctx, [][2]string{{"p.0.i.0.duration", "15m"}})
	fill(t, ctx, programme(1, append([][2]string{{"p.%d.id", "ban-tin-chieu"}, {"p.%d.title", "Bản tin chiều"}, {"p.%d.when", "weekly"},
		{"p.%d.time", "17:00"}, {"p.%d.i.0.kind", "text"}, {"p.%d.i.0.value", "Bản tin thời sự buổi chiều"}, {"p.%d.i.0.duration", "20m"}}, monSat...)))
	click(t, ctx, `button[value=form]`, `document.querySelector(".notice") !== null`)
	fill(t, ctx, programme(2, [][2]string{{"p.%d.id", "tieng-co-tu"}, {"p.%d.title", "Chương trình tiếng Cơ Tu"}, {"p.%d.class", "priority"},
		{"p.%d.when", "weekly"}, {"p.%d.days", "WED"}, {"p.%d.time", "19:00"}, {"p.%d.outputs", "board"},
		{"p.%d.i.0.kind", "text"}, {"p.%d.i.0.value", "Chương trình phát thanh tiếng Cơ Tu"}, {"p.%d.i.0.duration", "30m"}}))
	click(t, ctx, `button[value=form]`, `document.querySelector(".notice") !== null`)
	if n := run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(n, "3 chương trình") {
		t.Fatalf("after the third programme: %q", n)
	}
	yaml := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("yaml").value`))
	for _, want := range []string{`cron: 0 30 5 * * MON-SAT`, `cron: 0 0 17 * * MON-SAT`, `cron: 0 0 19 * * WED`, "- board", `from: "22:00"`} {
		if !strings.Contains(yaml, want) {
			t.Errorf("the YAML lacks %q:\n%s", want, yaml)
		}
	}
	planShot(t, ctx, dir, "plan-editor")

	click(t, ctx, `button[value=preview]`, `document.getElementById("push") !== null`)
	added := run(t, ctx, chromedp.Text(chromedp.CSS("#n-added")))
	newSegs := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll(".new .seg").length`))
	if added == "0" || fmt.Sprint(newSegs) != added {
		t.Errorf("preview: %s added, %d segments in the new calendar", added, newSegs)
	}
	click(t, ctx, `#push`, `document.querySelector("table.delivery") !== null`)
	loaded(t, ctx, `document.getElementById("progress").dataset.finished === "1"`)
	states := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("td.dl")].map(e => e.dataset.state)`))
	if strings.Join(states, " ") != "active active" {
		t.Errorf("delivery states: %v", states)
	}
	// The first confirmations: each device's play from the pushed revision, named by its
	// programme's title as the hub stored it.
	loaded(t, ctx, `document.getElementById("progress").dataset.ended === "1"`)
	played := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr[data-device]")].map(e => e.dataset.device + " " + e.querySelector("td.pl").textContent)`))
	var plays []api.ConfirmationJSON
	h.api(h.admin, "GET", "/api/confirmations?area=qn/tk/tx", nil, &plays, http.StatusOK)
	var wantPlayed []string
	for _, p := range plays {
		var dev api.DeviceJSON
		h.api(h.admin, "GET", "/api/devices/"+p.Device, nil, &dev, http.StatusOK)
		if p.Title == "" || p.Start == nil || p.Revision != dev.Revision {
			t.Errorf("a confirmation after the push: %+v (device at revision %d)", p, dev.Revision)
			continue
		}
		wantPlayed = append(wantPlayed, p.Device+" "+p.Title+" · "+p.Start.In(h.zone).Format("15:04:05 02/01"))
	}
	sort.Strings(wantPlayed)
	sort.Strings(played)
	if len(wantPlayed) != 2 || strings.Join(played, "\n") != strings.Join(wantPlayed, "\n") {
		t.Errorf("the delivery view's first plays:\n%s\nwant (the hub's confirmations):\n%s", strings.Join(played, "\n"), strings.Join(wantPlayed, "\n"))
	}
	planShot(t, ctx, dir, "plan-delivery")

	// The calendar of one of the devices, against the scheduler's own compile of the document.
	var stored api.ScheduleJSON
	h.api(h.admin, "GET", "/api/schedules/show?to=area:qn/tk/tx", nil, &stored, http.StatusOK)
	week := time.Now().In(h.zone).AddDate(0, 0, 7)
	y, m, d := week.Date()
	monday := time.Date(y, m, d, 0, 0, 0, 0, h.zone)
	monday = monday.AddDate(0, 0, -((int(monday.Weekday()) + 6) % 7))
	want := composedWeek(t, monday, [2]string{"qn/tk/tx", stored.Document}) // as the hub composes a device's schedule
	do(t, ctx, chromedp.Navigate(h.url+"/console/plan?to=device:tx/cl-1&week="+monday.Format("2006-01-02")), chromedp.WaitVisible(chromedp.CSS(".cal")))
	rendered := run(t, ctx, chromedp.Evaluate[[]renderedSeg](`[...document.querySelectorAll(".seg")].map(e => ({Output: e.dataset.output,
		Program: e.dataset.program, Item: e.dataset.item, Start: e.dataset.start, End: e.dataset.end, Status: e.dataset.status}))`))
	var got []string
	for _, s := range rendered {
		st, err1 := time.Parse(time.RFC3339Nano, s.Start)
		en, err2 := time.Parse(time.RFC3339Nano, s.End)
		if err1 != nil || err2 != nil {
			t.Fatalf("a segment's times: %+v", s)
		}
		got = append(got, strings.Join([]string{s.Output, s.Program, s.Item, st.UTC().Format(time.RFC3339Nano), en.UTC().Format(time.RFC3339Nano), s.Status}, "|"))
	}
	sort.Strings(got)
	sort.Strings(want)
	// 6 mornings and 6 evenings on the speakers; Wednesday evening's programme on the speakers
	// (ticked for a new programme) and the board.
	if len(want) != 14 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the calendar's %d segments are not scheduler.Compile's %d:\n%s\n--- want\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	planShot(t, ctx, dir, "plan-week")
	wed := monday.AddDate(0, 0, 2).Format("2006-01-02")
	do(t, ctx, chromedp.Click(chromedp.CSS(`.cal-head a[href$="day=`+wed+`"]`)))
	loaded(t, ctx, `document.querySelector(".cal-day-view") !== null`)
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll(".seg").length`)); n != 4 {
		t.Errorf("Wednesday's day view has %d segments, want 4", n)
	}
	planShot(t, ctx, dir, "plan-day")

	// Save the week as a template and apply it to Tam Thanh and Tam Phú.
	do(t, ctx, chromedp.Navigate(h.url+"/console/plan/edit?to=area:qn/tk/tx"), chromedp.WaitVisible(chromedp.CSS(`input[name="template_name"]`)))
	fill(t, ctx, [][2]string{{"template_name", "Tuần thường"}})
	click(t, ctx, `button[value=template]`, `document.querySelector("section.tpl") !== null`)
	fill(t, ctx, [][2]string{{"to", "qn/tk/tt"}, {"to", "qn/tk/tp"}})
	click(t, ctx, `section.tpl button`, `document.querySelector(".notice") !== null`)
	if n := run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(n, "qn/tk/tt") || !strings.Contains(n, "qn/tk/tp") {
		t.Errorf("after applying the template: %q", n)
	}
	planShot(t, ctx, dir, "plan-templates")
	for _, a := range []string{"qn/tk/tt", "qn/tk/tp"} {
		var sc api.ScheduleJSON
		h.api(h.admin, "GET", "/api/schedules/show?to=area:"+a, nil, &sc, http.StatusOK)
		if canon(t, sc.Document) != canon(t, stored.Document) || sc.Author != "admin" {
			t.Errorf("%s's schedule is not the template's: by %s\n%s", a, sc.Author, sc.Document)
		}
	}

	// The province relays its radio at 05:45 every day; the commune moves its morning bulletin
	// to 05:40: the preview shows the relay in both weeks and the bulletin cut by it.
	prov := "version: 1\nid: tinh\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: tiep-song\n    title: Tiếp sóng Đài tỉnh\n    class: priority\n    cron: \"0 45 5 * * *\"\n    items: [{stream: \"http://radio.example/qn.mp3\", duration: 15m}]\n"
	h.api(h.admin, "POST", "/api/schedules", api.PushRequest{To: "area:qn", Document: prov}, nil, http.StatusOK)
	do(t, ctx, chromedp.Navigate(h.url+"/console/plan/edit?to=area:qn/tk/tx"), chromedp.WaitVisible(chromedp.CSS(`input[name="p.0.time"]`)))
	fill(t, ctx, [][2]string{{"p.0.time", "05:40"}})
	click(t, ctx, `button[value=preview]`, `document.getElementById("push") !== null`)
	counts := run(t, ctx, chromedp.Evaluate[[]int](`[".old .seg[data-program='qn/tiep-song']", ".new .seg[data-program='qn/tiep-song']",
		".new .seg[data-program='qn/tk/tx/ban-tin-sang'][data-status='preempted']", ".new .seg.ch-added[data-program='qn/tiep-song']"].map(s => document.querySelectorAll(s).length)`))
	if fmt.Sprint(counts) != "[7 7 6 0]" {
		t.Errorf("the preview's relays (current, new), mornings cut and relays marked added: %v, want [7 7 6 0]", counts)
	}
	planShot(t, ctx, dir, "plan-preview")
}

// canon is a document as the scheduler reads it, so two writings of one schedule compare equal.
func canon(t *testing.T, src string) string {
	t.Helper()
	d, err := scheduler.Parse("canon", []byte(src))
	must(t, err)
	b, err := d.Encode()
	must(t, err)
	return string(b)
}

// A commune viewer sees the district's templates and its own commune's calendar, not another
// commune's; it may not push, save or apply; the editor's import reads a YAML file into the forms.
func TestPlanScopeAndRole(t *testing.T) {
	h := newTestHub(t)
	doc := "version: 1\nid: tuan\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: sang\n    cron: \"0 30 5 * * MON-SAT\"\n    items: [{text: Bản tin, duration: 15m}]\n"
	h.api(h.admin, "POST", "/api/schedule-templates", api.TemplateRequest{Area: "qn/tk", Name: "Tuần thường", Document: doc}, nil, http.StatusCreated)
	h.api(h.admin, "POST", "/api/schedule-templates", api.TemplateRequest{Area: "qn/tk/tt", Name: "Riêng Tam Thanh", Document: doc}, nil, http.StatusCreated)
	h.api(h.admin, "POST", "/api/schedule-templates", api.TemplateRequest{Area: "qn/tk", Name: "Hỏng", Document: "version: 1\nid: x\n"}, nil, http.StatusBadRequest)

	c := h.client()
	if code, _ := c.signIn("xem-tp", viewerPass); code != http.StatusOK {
		t.Fatal("viewer's sign-in")
	}
	code, body, _ := c.do("GET", "/console/plan/templates", nil)
	if code != http.StatusOK || !strings.Contains(body, "Tuần thường") || strings.Contains(body, "Riêng Tam Thanh") || strings.Contains(body, `action="/console/plan/templates/apply"`) {
		t.Errorf("viewer's templates page (%d): the district's, not Tam Thanh's, and no apply form:\n%s", code, body)
	}
	if code, _, _ := c.do("GET", "/console/plan?to=area:qn/tk/tp", nil); code != http.StatusOK {
		t.Errorf("viewer's own commune's calendar: %d", code)
	}
	if code, _, _ := c.do("GET", "/console/plan?to=device:tt/cl-1", nil); code != http.StatusNotFound {
		t.Errorf("another commune's device calendar: %d", code)
	}
	if code, _, _ := c.do("POST", "/console/plan/templates/apply", url.Values{"csrf": {c.csrf}, "area": {"qn/tk"}, "name": {"Tuần thường"}, "to": {"qn/tk/tp"}}); code != http.StatusForbidden {
		t.Errorf("viewer's apply: %d", code)
	}
	if code, _, _ := c.do("POST", "/console/plan/push", url.Values{"csrf": {c.csrf}, "to": {"area:qn/tk/tp"}, "yaml": {doc}}); code != http.StatusUnprocessableEntity && code != http.StatusForbidden {
		t.Errorf("viewer's push: %d", code)
	}
	var list []api.ScheduleJSON
	h.api(h.admin, "GET", "/api/schedules?to=area:qn/tk/tp", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Errorf("the viewer's push stored a schedule: %+v", list)
	}

	// Import: a YAML file posted as a browser posts it fills the forms.
	a := h.client()
	a.signIn("admin", adminPass)
	a.do("GET", "/console/plan/edit?to=area:qn/tk/tp", nil)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", a.csrf)
	mw.WriteField("to", "area:qn/tk/tp")
	mw.WriteField("act", "import")
	fw, _ := mw.CreateFormFile("file", "tuan.yaml")
	fw.Write([]byte(doc))
	mw.Close()
	req, _ := http.NewRequest("POST", h.url+"/console/plan/edit", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", h.url)
	resp, err := a.c.Do(req)
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `name="p.0.id" value="sang"`) || !strings.Contains(string(b), `value="05:30"`) {
		t.Errorf("import (%d) did not fill the forms:\n%s", resp.StatusCode, b)
	}
}

// A document naming content the library lacks is previewed with the warning and the hub's
// refusal, and offers no push.
func TestPreviewMissingContent(t *testing.T) {
	h := newTestHub(t)
	a := h.client()
	a.signIn("admin", adminPass)
	a.do("GET", "/console/plan/edit?to=area:qn/tk/tp", nil)
	ref := "sha256:" + strings.Repeat("cd", 32)
	doc := "version: 1\nid: tuan\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: sang\n    cron: \"0 30 5 * * MON-SAT\"\n    items: [{content: " + ref + ", duration: 10m}]\n"
	code, body, _ := a.do("POST", "/console/plan/edit", url.Values{"csrf": {a.csrf}, "to": {"area:qn/tk/tp"}, "act": {"yaml-preview"}, "yaml": {doc}})
	if code != http.StatusOK || !strings.Contains(body, `id="refused"`) || strings.Contains(body, `id="push"`) ||
		!strings.Contains(body, "chưa có trong thư viện") || strings.Count(body, `class="seg `) != 6 {
		t.Errorf("preview of missing content (%d):\n%s", code, body)
	}
}

// composedWeek is scheduler.Compile, over the week from monday, of the documents composed as
// the hub composes a device's effective schedule: sources root first, each programme's id
// prefixed with its area, the nearest document's zone and quiet hours. Each segment is written
// "output|program|item|start|end|status", times in UTC, sorted.
func composedWeek(t *testing.T, monday time.Time, sources ...[2]string) []string {
	t.Helper()
	var eff *scheduler.Document
	for _, src := range sources {
		d, err := scheduler.Parse(src[0], []byte(src[1]))
		must(t, err)
		for i := range d.Programs {
			d.Programs[i].ID = src[0] + "/" + d.Programs[i].ID
		}
		if eff != nil {
			d.Programs = append(eff.Programs, d.Programs...)
		}
		eff = d
	}
	b, err := eff.Encode()
	must(t, err)
	eff, err = scheduler.Parse("composed", b)
	must(t, err)
	tl, err := scheduler.Compile(eff, monday, monday.AddDate(0, 0, 7), scheduler.CompileOptions{})
	must(t, err)
	var out []string
	for _, s := range tl.Segments {
		out = append(out, strings.Join([]string{s.Output, s.Program, s.Ref, s.Start.UTC().Format(time.RFC3339Nano), s.End.UTC().Format(time.RFC3339Nano), string(s.Status)}, "|"))
	}
	sort.Strings(out)
	return out
}

// segsOn reads the segments a calendar page shows, written as composedWeek writes them.
// Attributes are cut out by hand rather than by a regular expression: a dense week has
// thousands of boxes, and under -race a regexp took seconds over them.
func segsOn(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	boxes := strings.Split(page, `<div class="seg `)
	for _, box := range boxes[1:] {
		box, _, _ = strings.Cut(box, ">")
		var f []string
		for _, name := range []string{"output", "program", "item", "start", "end", "status"} {
			_, v, ok := strings.Cut(box, ` data-`+name+`="`)
			v, _, ok2 := strings.Cut(v, `"`)
			if !ok || !ok2 {
				t.Fatalf("a box without its data-%s: %s", name, box)
			}
			f = append(f, html.UnescapeString(v))
		}
		out = append(out, strings.Join(f, "|"))
	}
	sort.Strings(out)
	return out
}

func thisMonday(zone *time.Location) time.Time {
	y, m, d := time.Now().In(zone).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, zone)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}

// The push preview shows what the commune's devices will really play: the province's relay
// of a higher class preempts the commune's new morning bulletin, which resumes after it, in
// the new calendar; the current one already holds the province's plays; the diff is made on
// these effective weeks, so the province's plays are not "added".
func TestPreviewEffectiveWeek(t *testing.T) {
	h := newTestHub(t)
	prov := "version: 1\nid: tinh\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: tiep-song\n    class: priority\n    cron: \"0 35 5 * * *\"\n    items: [{stream: \"http://radio.example/qn.mp3\", duration: 5m}]\n"
	h.api(h.admin, "POST", "/api/schedules", api.PushRequest{To: "area:qn", Document: prov}, nil, http.StatusOK)
	commune := "version: 1\nid: tam-phu\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: sang\n    title: Bản tin sáng\n    cron: \"0 30 5 * * MON-SAT\"\n    max_duration: 20m\n    on_interrupt: resume\n    items: [{text: Bản tin sáng, duration: 10m}]\n"
	a := h.client()
	a.signIn("admin", adminPass)
	a.do("GET", "/console/plan/edit?to=area:qn/tk/tp", nil)
	monday := thisMonday(h.zone)
	code, body, _ := a.do("POST", "/console/plan/edit", url.Values{"csrf": {a.csrf}, "to": {"area:qn/tk/tp"}, "act": {"yaml-preview"}, "yaml": {commune}})
	if monday != thisMonday(h.zone) {
		t.Skip("the week turned during the test")
	}
	oldAt, newAt := strings.Index(body, `class="cal-week-view old"`), strings.Index(body, `class="cal-week-view new"`)
	if code != http.StatusOK || oldAt < 0 || newAt < oldAt || !strings.Contains(body, `id="push"`) {
		t.Fatalf("preview (%d):\n%s", code, body)
	}
	gotOld, gotNew := segsOn(t, body[oldAt:newAt]), segsOn(t, body[newAt:])
	wantOld := composedWeek(t, monday, [2]string{"qn", prov})
	wantNew := composedWeek(t, monday, [2]string{"qn", prov}, [2]string{"qn/tk/tp", commune})
	if strings.Join(gotOld, "\n") != strings.Join(wantOld, "\n") {
		t.Errorf("the current week is not the province's:\n%s\n--- want\n%s", strings.Join(gotOld, "\n"), strings.Join(wantOld, "\n"))
	}
	if strings.Join(gotNew, "\n") != strings.Join(wantNew, "\n") {
		t.Errorf("the new week is not the composed one:\n%s\n--- want\n%s", strings.Join(gotNew, "\n"), strings.Join(wantNew, "\n"))
	}
	// Six mornings preempted at 05:35 and resumed at 05:40, beside seven relays.
	var preempted, resumed, relays int
	for _, s := range gotNew {
		f := strings.Split(s, "|")
		switch {
		case f[1] == "qn/tiep-song":
			relays++
		case f[1] == "qn/tk/tp/sang" && f[5] == "preempted":
			preempted++
		case f[1] == "qn/tk/tp/sang" && f[5] == "resumed":
			resumed++
		}
	}
	if relays != 7 || preempted != 6 || resumed != 6 {
		t.Errorf("the new week has %d relays, %d mornings preempted and %d resumed; want 7, 6, 6", relays, preempted, resumed)
	}
	// What the push adds is the commune's plays only: 12 segments (6 preempted, 6 resumed).
	if n := regexp.MustCompile(`id="n-added">(\d+)<`).FindStringSubmatch(body); n == nil || n[1] != "12" {
		t.Errorf("added: %v, want 12", n)
	}
	if n := regexp.MustCompile(`id="n-removed">(\d+)<`).FindStringSubmatch(body); n == nil || n[1] != "0" {
		t.Errorf("removed: %v, want 0", n)
	}
}

// A dense week (the scheduler benchmark's 500 programmes: about 5,600 segments on three
// outputs, preempting each other) is drawn whole: every segment scheduler.Compile gives, with
// its times and status; the page is sent gzipped.
func TestDenseWeekCalendar(t *testing.T) {
	h := newTestHub(t)
	src := denseWeek(500)
	h.api(h.admin, "POST", "/api/schedules", api.PushRequest{To: "device:tt/cl-2", Document: src}, nil, http.StatusOK)
	a := h.client()
	a.signIn("admin", adminPass)
	monday := time.Date(2026, 12, 7, 0, 0, 0, 0, h.zone)
	page := "/console/plan?to=device:tt/cl-2&week=" + monday.Format("2006-01-02")
	req, _ := http.NewRequest("GET", h.url+page, nil)
	req.Header.Set("Accept-Encoding", "gzip") // as a browser asks: the client then leaves it zipped
	resp, err := a.c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("the calendar (%d) is sent as %q, Vary %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(resp.Body)
	must(t, err)
	body, err := io.ReadAll(zr)
	must(t, err)
	want := composedWeek(t, monday, [2]string{"device:tt/cl-2", src})
	got := segsOn(t, string(body))
	if len(want) < 5000 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the dense week: %d segments drawn, scheduler.Compile gives %d", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("first difference:\n%s\nwant\n%s", got[i], want[i])
			}
		}
	}
	// The delivery events are not: a flush must reach the browser at once.
	req, _ = http.NewRequest("GET", h.url+"/console/plan/delivery/events?to=device:tt/cl-2", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = a.c.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("the delivery events (%d) are sent as %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
}
