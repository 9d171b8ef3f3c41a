package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// The plan report's charts in the browser: in 2025 Tam Thanh's two clusters heard a Cơ Tu
// and a Vietnamese product in March, Tam Phú's cluster the Vietnamese one in April. The
// target chart, the stacked language chart and their tables show March at 50% and April at
// 0%; the area tree shows Tam Thanh's coverage (Cơ Tu on 2 of 2 clusters, Vietnamese on 1 of
// 2: 75%) above target and Tam Phú below, marked; its name opens Tam Phú's report.
func TestPlanChartsInBrowser(t *testing.T) {
	h := newTestHub(t)
	ctx := context.Background()
	for _, term := range []store.Term{{Dimension: store.DimLanguage, Value: "ctu", Label: "Tiếng Cơ Tu"}, {Dimension: store.DimLanguage, Value: "vie", Label: "Tiếng Việt"},
		{Dimension: store.DimTheme, Value: "law", Label: "Pháp luật"}} {
		must(t, h.db.AddTerm(ctx, term))
	}
	ctu, vie := "sha256:"+strings.Repeat("c1", 32), "sha256:"+strings.Repeat("e2", 32)
	for ref, lang := range map[string]string{ctu: "ctu", vie: "vie"} {
		if _, _, err := h.db.AddContent(ctx, store.Content{Ref: ref, Size: 1, Title: lang, Language: lang, Theme: "law", Format: "radio-report"}); err != nil {
			t.Fatal(err)
		}
	}
	seq := map[string]uint64{"tt/cl-1": 1000}
	play := func(dev, ref string, at time.Time) {
		seq[dev]++
		_, err := h.db.AddConfirmations(ctx, dev, []store.Confirmation{{Confirmation: protocol.Confirmation{Seq: seq[dev], Output: "speakers", ScheduleID: "s", Revision: 1,
			Program: "p", Item: ref, Scheduled: at, Start: at, Proof: protocol.Proof{PlayedS: 900}, Result: "completed", Clock: "synced"}}})
		must(t, err)
	}
	march, april := time.Date(2025, 3, 10, 6, 0, 0, 0, h.zone), time.Date(2025, 4, 2, 6, 0, 0, 0, h.zone)
	play("tt/cl-1", ctu, march)
	play("tt/cl-1", vie, march.Add(time.Hour))
	play("tt/cl-2", ctu, march.Add(24*time.Hour))
	play("tp/cl-1", vie, april)

	b := browser(t)
	dir := shots(t)
	do(t, b, chromedp.Navigate(h.url+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), adminPass),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	loaded(t, b, `location.pathname === "/console/"`)
	do(t, b, chromedp.Navigate(h.url+"/console/reports?kind=plan&area=qn/tk&from=01/01/2025&to=31/12/2025"))
	loaded(t, b, `document.querySelector("#area-tree") !== null`)

	if n := run(t, b, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart").length`)); n != 3 {
		t.Fatalf("%d charts, want the target, language and theme charts", n)
	}
	// The target chart: one bar a month, March's half, April's none, coloured by band.
	bars := run(t, b, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('svg[aria-labelledby="chart-target"] rect[data-share]')].map(r => [r.dataset.share, r.getAttribute("class"), r.textContent])`))
	if len(bars) != 12 || bars[2][0] != "0.5000" || bars[2][1] != "b-above" || bars[3][0] != "0.0000" || bars[3][1] != "b-below" || bars[0][1] != "b-none" ||
		!strings.Contains(bars[2][2], "1/2 (50,0%)") {
		t.Errorf("target bars: %v", bars)
	}
	// The language chart: March split half Cơ Tu (at the bottom, against the band), half Vietnamese.
	pieces := run(t, b, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('svg[aria-labelledby="chart-language"] g.point[data-label="03/2025"] rect')].map(r => [r.getAttribute("height"), r.textContent])`))
	if len(pieces) != 2 || pieces[0][0] != pieces[1][0] || !strings.Contains(pieces[0][1], "Tiếng Cơ Tu: 1 sản phẩm (50,0%)") || !strings.Contains(pieces[1][1], "Tiếng Việt: 1 sản phẩm") {
		t.Errorf("March in the language chart: %v", pieces)
	}
	if band := run(t, b, chromedp.Evaluate[bool](`document.querySelector('svg[aria-labelledby="chart-language"] rect.band') !== null && document.querySelector('svg[aria-labelledby="chart-target"] rect.band') !== null`)); !band {
		t.Error("the target band is not drawn")
	}
	// The tables beside the charts hold the same figures.
	cells := func(table, first string) map[string]string {
		return run(t, b, chromedp.Evaluate[map[string]string](fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#%s tbody tr")].find(r => r.cells[0].textContent.trim() === %q);
			return r ? Object.fromEntries([...r.cells].map(c => [c.dataset.label, c.textContent.trim()])) : {}; })()`, table, first)))
	}
	if row := cells("table-target", "03/2025"); row["Sản phẩm tính vào chỉ tiêu"] != "1" || row["Tỷ lệ (chỉ tiêu 15–20%)"] != "50,0%" || row["Số lượt phát"] != "3" || row["Số giờ phát"] != "0,8" {
		t.Errorf("March in the target table: %v", row)
	}
	if row := cells("table-chart-language", "04/2025"); row["Tiếng Việt"] != "1 (100,0%) · 1" || row["Tiếng Cơ Tu"] != "0" {
		t.Errorf("April in the language table: %v", row)
	}
	// The tree.
	tree := map[string]map[string]string{}
	for _, r := range run(t, b, chromedp.Evaluate[[]map[string]string](`[...document.querySelectorAll("#area-tree tbody tr")].map(r => Object.assign({area: r.dataset.area, cls: r.className}, Object.fromEntries([...r.cells].map(c => [c.dataset.label, c.textContent.replace(/\s+/g, " ").trim()]))))`)) {
		tree[r["area"]] = r
	}
	if tt := tree["qn/tk/tt"]; len(tree) != 3 || tt["Độ phủ"] != "75,0% 75,0%" || tt["Đánh giá"] != "Vượt chỉ tiêu" || tt["Số cụm loa, bảng tin"] != "2" || !strings.Contains(tt["cls"], "lv1") {
		t.Errorf("Tam Thanh in the tree: %v (tree %v)", tt, tree)
	}
	if tp := tree["qn/tk/tp"]; tp["Đánh giá"] != "▼ Chưa đạt" || !strings.HasPrefix(tp["Tỷ lệ (chỉ tiêu 15–20%)"], "0,0%") || tp["Độ phủ"] != "100,0% 100,0%" {
		t.Errorf("Tam Phú in the tree: %v", tp)
	}
	if top := tree["qn/tk"]; top["Số sản phẩm"] != "2" || !strings.HasPrefix(top["Độ phủ"], "66,7%") {
		t.Errorf("Tam Kỳ in the tree: %v", top)
	}
	if below := run(t, b, chromedp.Text(chromedp.CSS(".below-list"))); !strings.Contains(below, "Xã Tam Phú") || strings.Contains(below, "Tam Thanh") {
		t.Errorf("the areas below target: %q", below)
	}
	shot(t, b, dir, "reports-plan-charts")
	do(t, b, chromedp.Click(chromedp.CSS(`#area-tree tr[data-area="qn/tk/tp"] a`)))
	loaded(t, b, `decodeURIComponent(location.search).includes("area=qn/tk/tp")`)
	loaded(t, b, `document.querySelector("#area-tree") !== null`)
	if unit := run(t, b, chromedp.Evaluate[string](`document.querySelector(".report .unit").textContent`)); unit != "Xã Tam Phú" {
		t.Errorf("the tree's link opened %q's report", unit)
	}
}
