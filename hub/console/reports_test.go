package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// An operator of Tam Thanh chooses the proof-of-play report for their commune and a period
// typed and picked on the calendar, reads it on the page and downloads it: the CSV is the
// API's for the same query. The devices report shows the time online. A viewer of Tam Phú is
// refused Tam Thanh's report (404, as for any area outside a scope). An administrator sets
// what the plan report counts towards its target, and the change is audited.
func TestReportPagesInBrowser(t *testing.T) {
	h := newTestHub(t)
	ctx := context.Background()
	tok, err := h.db.AddUser(ctx, store.User{ID: "vh-tt", Name: "Lê Văn Cường", Scope: "qn/tk/tt", Role: store.RoleOperator})
	must(t, err)
	_ = tok
	h.password("vh-tt", viewerPass)
	// Five hours online yesterday: the devices report's figure.
	now := time.Now().In(h.zone)
	y, m, d := now.Date()
	yesterday := time.Date(y, m, d-1, 9, 0, 0, 0, h.zone)
	must(t, h.db.AddOnline(ctx, "tt/cl-2", yesterday, yesterday.Add(5*time.Hour)))
	from, to := now.AddDate(0, 0, -3).Format("02/01/2006"), now.Format("02/01/2006")
	// The hand count of newTestHub's 60 plays: every seventh from the fourth interrupted.
	interrupted := 0
	for i := range 60 {
		if i%7 == 3 {
			interrupted++
		}
	}

	b := browser(t)
	dir := shots(t)
	signIn := func(user, pw string) {
		do(t, b, chromedp.Navigate(h.url+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#user")),
			chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		loaded(t, b, `location.pathname === "/console/"`)
	}
	signIn("vh-tt", viewerPass)
	do(t, b, chromedp.Click(chromedp.CSS(`nav a[href="/console/reports"]`)))
	loaded(t, b, `location.pathname === "/console/reports"`)
	// The device field is for proof of play only; it shows once that report is chosen.
	if hidden := run(t, b, chromedp.Evaluate[bool](`getComputedStyle(document.getElementById("device").closest("label")).display === "none"`)); !hidden {
		t.Error("the device field shows for the plan report")
	}
	choose := func(id, v string) { // as a user picks an option: the value, then its change event
		do(t, b, chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById("`+id+`"); e.value = "`+v+`"; e.dispatchEvent(new Event("change")); })()`))
	}
	choose("kind", "plays")
	choose("area", "qn/tk/tt")
	choose("from", "")
	do(t, b, chromedp.SendKeys(chromedp.CSS("#from"), from))
	if hidden := run(t, b, chromedp.Evaluate[bool](`getComputedStyle(document.getElementById("device").closest("label")).display === "none"`)); hidden {
		t.Error("the device field is hidden for proof of play")
	}
	// The calendar writes the day it gives back as dd/mm/yyyy.
	iso := now.Format("2006-01-02")
	do(t, b, chromedp.Evaluate[chromedp.Void](`(() => { const p = document.querySelector('input.pick[data-for="to"]'); p.value = "`+iso+`"; p.dispatchEvent(new Event("change")); })()`))
	if v := run(t, b, chromedp.Value(chromedp.CSS("#to"))); v != to {
		t.Errorf("the calendar wrote %q, want %q", v, to)
	}
	if cal := run(t, b, chromedp.Evaluate[bool](`!document.querySelector("button.cal").hidden`)); !cal {
		t.Error("the calendar button is not shown")
	}
	do(t, b, chromedp.Click(chromedp.CSS("#show")))
	loaded(t, b, `location.search.includes("kind=plays") && document.querySelector("section.report") !== null`)
	summary := map[string]string{}
	for _, kv := range run(t, b, chromedp.Evaluate[[][]string](`[...document.querySelectorAll(".summary dt")].map(dt => [dt.textContent, dt.nextElementSibling.textContent])`)) {
		summary[kv[0]] = kv[1]
	}
	for k, want := range map[string]string{"Số lượt theo lịch": "60", "Số lượt đã nghe": "60", "Số giờ đã nghe": "10,0"} {
		if summary[k] != want {
			t.Errorf("summary %q = %q, want %q (all: %v)", k, summary[k], want, summary)
		}
	}
	// rowOf is a table row by its first cell, each value by its column's name.
	rowOf := func(first string) map[string]string {
		return run(t, b, chromedp.Evaluate[map[string]string](`(() => { const r = [...document.querySelectorAll("table.report-table tbody tr")]
			.find(r => r.cells[0].textContent === "`+first+`"); return r ? Object.fromEntries([...r.cells].map(c => [c.dataset.label, c.textContent])) : {}; })()`))
	}
	if total := rowOf("Tổng cộng"); total["Bị ngắt"] != strconv.Itoa(interrupted) || total["Đã phát"] != strconv.Itoa(60-interrupted) {
		t.Errorf("the total line: %v, want %d interrupted and %d completed", total, interrupted, 60-interrupted)
	}
	main := run(t, b, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"NHẬT KÝ PHÁT", "Xã Tam Thanh", "Từ ngày " + from + " đến ngày " + to, "qn/tk/tt/morning"} {
		if !strings.Contains(main, want) {
			t.Errorf("the report page lacks %q:\n%s", want, main)
		}
	}
	shot(t, b, dir, "reports-plays")
	// Decoded keeping the byte order mark the CSV starts with (for Excel).
	csv := run(t, b, chromedp.Evaluate[string](`fetch(document.getElementById("dl-csv").href).then(r => r.arrayBuffer())
		.then(b => new TextDecoder("utf-8", {ignoreBOM: true}).decode(b))`, chromedp.EvalAwaitPromise))
	q := url.Values{"area": {"qn/tk/tt"}, "from": {now.AddDate(0, 0, -3).Format("2006-01-02")}, "to": {iso}, "format": {"csv"}}
	want := string(h.api(h.admin, "GET", "/api/reports/plays?"+q.Encode(), nil, nil, http.StatusOK))
	if csv != want || !strings.Contains(csv, "qn/tk/tt/morning") {
		t.Errorf("the console's CSV is not the API's:\n%s\n---\n%s", csv, want)
	}
	for _, f := range []struct{ id, magic string }{{"dl-xlsx", "PK"}, {"dl-pdf", "%PDF"}} {
		start := run(t, b, chromedp.Evaluate[string](`fetch(document.getElementById("`+f.id+`").href).then(r => r.text()).then(t => t.slice(0, 4))`, chromedp.EvalAwaitPromise))
		if !strings.HasPrefix(start, f.magic) {
			t.Errorf("%s downloads %q…, not a %s file", f.id, start, f.magic)
		}
	}

	// The devices report: tt/cl-2's five hours online.
	choose("kind", "devices")
	do(t, b, chromedp.Click(chromedp.CSS("#show")))
	loaded(t, b, `location.search.includes("kind=devices") && document.querySelector("section.report") !== null`)
	if row := rowOf("tt/cl-2"); row["Giờ trực tuyến"] != "5,0" || row["Ngày im lặng"] == "" {
		t.Errorf("tt/cl-2 in the devices report: %v", row)
	}
	if settings := run(t, b, chromedp.Evaluate[bool](`document.querySelector('form[action="/console/reports/settings"]') !== null`)); settings {
		t.Error("an operator is offered the report settings")
	}
	shot(t, b, dir, "reports-devices")
	do(t, b, chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#user")))

	// Another commune's report: refused as an area outside the scope is everywhere.
	c := h.client()
	if code, _ := c.signIn("xem-tp", viewerPass); code != http.StatusOK {
		t.Fatalf("viewer sign-in: %d", code)
	}
	for _, path := range []string{"/console/reports?kind=plays&area=qn/tk/tt", "/console/reports/download?kind=plan&area=qn/tk/tt&format=csv"} {
		if code, body, _ := c.do("GET", path, nil); code != http.StatusNotFound || strings.Contains(body, "qn/tk/tt/morning") {
			t.Errorf("a Tam Phú viewer asked for %s: %d", path, code)
		}
	}
	if code, body, _ := c.do("GET", "/console/reports?kind=plays", nil); code != http.StatusOK || !strings.Contains(body, "Xã Tam Phú") || strings.Contains(body, "qn/tk/tt/morning") {
		t.Errorf("the viewer's own report: %d, Tam Thanh's plays in it: %v", code, strings.Contains(body, "qn/tk/tt/morning"))
	}
	if code, body, _ := c.do("GET", "/console/reports?kind=plays&from=31/02/2026", nil); code != http.StatusBadRequest || !strings.Contains(body, "31/02/2026") {
		t.Errorf("an impossible date: %d, the page does not name it", code)
	}

	// The administrator's settings: no lists kept on this hub, so codes typed.
	signIn("admin", adminPass)
	do(t, b, chromedp.Navigate(h.url+"/console/reports?kind=plan"), chromedp.WaitVisible(chromedp.CSS("#home")))
	if v := run(t, b, chromedp.Value(chromedp.CSS("#home"))); v != "vi, vie" {
		t.Errorf("the default home languages shown: %q", v)
	}
	shot(t, b, dir, "reports")
	choose("home", "vie, ctu")
	do(t, b, chromedp.Click(chromedp.CSS("#save-settings")))
	loaded(t, b, `document.querySelector(".notice") !== null`)
	var set api.ReportSettings
	h.api(h.admin, "GET", "/api/settings/reports", nil, &set, http.StatusOK)
	if strings.Join(set.HomeLanguages, ",") != "vie,ctu" || strings.Join(set.DigitalFormats, ",") != "digital" {
		t.Errorf("settings after the form: %+v", set)
	}
	var audit []api.AuditJSON
	h.api(h.admin, "GET", "/api/audit?action=settings.reports", nil, &audit, http.StatusOK)
	if len(audit) != 1 || audit[0].Actor != "admin" {
		t.Errorf("the change is not audited as the admin's: %+v", audit)
	}
}
