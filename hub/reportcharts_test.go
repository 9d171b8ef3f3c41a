package hub

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/report"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// The plan report's charts over the API: the series and the area tree hold the plays stored
// (March: a Cơ Tu and a Vietnamese product in commune x1; April: the Vietnamese one in x2),
// as JSON and CSV, and a commune's staff get their commune's only.
func TestPlanChartsAPI(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/x1", "qn/tk/x2"} {
		h.addArea(a)
	}
	h.enrol("x1/cl-1", "qn/tk/x1")
	h.enrol("x1/cl-2", "qn/tk/x1")
	h.enrol("x2/cl-1", "qn/tk/x2")
	ctx := context.Background()
	ctu, vie := "sha256:"+strings.Repeat("c1", 32), "sha256:"+strings.Repeat("e2", 32)
	for ref, lang := range map[string]string{ctu: "ctu", vie: "vie"} {
		if _, _, err := h.db.AddContent(ctx, store.Content{Ref: ref, Size: 1, Title: lang, Language: lang, Theme: "law", Format: "radio-report"}); err != nil {
			t.Fatal(err)
		}
	}
	zone := time.FixedZone("+07", 7*3600)
	play := func(dev string, seq uint64, ref string, at time.Time, played float64) {
		t.Helper()
		if _, err := h.db.AddConfirmations(ctx, dev, []store.Confirmation{{Confirmation: protocol.Confirmation{Seq: seq, Output: "speakers", ScheduleID: "s", Revision: 1,
			Program: "p", Item: ref, Scheduled: at, Start: at, Proof: protocol.Proof{PlayedS: played}, Result: "completed", Clock: "synced"}}}); err != nil {
			t.Fatal(err)
		}
	}
	march, april := time.Date(2026, 3, 10, 6, 0, 0, 0, zone), time.Date(2026, 4, 2, 6, 0, 0, 0, zone)
	play("x1/cl-1", 1, ctu, march, 1800)
	play("x1/cl-1", 2, vie, march.Add(time.Hour), 1800)
	play("x1/cl-2", 1, ctu, march.Add(24*time.Hour), 3600)
	play("x2/cl-1", 1, vie, april, 900)

	const period = "from=2026-01-01&to=2026-06-30"
	var ser report.Series
	h.mustCall(h.admin, "GET", "/api/reports/plan/series?area=qn/tk&"+period, nil, &ser, http.StatusOK)
	if ser.Step != "month" || len(ser.Points) != 6 {
		t.Fatalf("series of %d %s points, want 6 months", len(ser.Points), ser.Step)
	}
	mar, apr := ser.Points[2], ser.Points[3]
	if mar.Label != "03/2026" || mar.Products != 2 || mar.Broadcasts != 3 || mar.Hours != 2 || mar.Tagged != 2 || mar.Target != 1 || mar.Share != 0.5 ||
		mar.ByLanguage["ctu"].Broadcasts != 2 || mar.ByLanguage["vie"].Products != 1 || mar.ByTheme["law"].Products != 2 {
		t.Errorf("March: %+v", mar)
	}
	if apr.Products != 1 || apr.Target != 0 || apr.Hours != 0.3 || ser.Points[0].Products != 0 {
		t.Errorf("April %+v, January %+v", apr, ser.Points[0])
	}
	if len(ser.Languages) != 2 || ser.Languages[0].Code != "ctu" || ser.TargetLow != 0.15 || ser.TargetHigh != 0.2 {
		t.Errorf("languages %+v (the target's first), target %v–%v", ser.Languages, ser.TargetLow, ser.TargetHigh)
	}

	var tree report.AreaTree
	h.mustCall(h.admin, "GET", "/api/reports/plan/areas?area=qn/tk&"+period, nil, &tree, http.StatusOK)
	byArea := map[string]report.AreaFigures{}
	for _, a := range tree.Areas {
		byArea[a.Area] = a
	}
	// x1: ctu heard on 2 of 2 clusters, vie on 1 of 2: coverage 75%; x2: vie on its one cluster.
	if x1, x2 := byArea["qn/tk/x1"], byArea["qn/tk/x2"]; len(tree.Areas) != 3 || x1.Devices != 2 || x1.Coverage != 0.75 || x1.Share != 0.5 || x1.Band != "above" ||
		x2.Coverage != 1 || x2.Share != 0 || x2.Band != "below" || fmt.Sprint(tree.Below) != "[qn/tk/x2]" || byArea["qn/tk"].Products != 2 {
		t.Errorf("tree %+v", tree)
	}

	get := func(token, path string) (int, string, string) {
		code, body, hdr := h.get(token, path)
		return code, hdr.Get("Content-Type"), string(body)
	}
	if code, ctype, body := get(h.admin, "/api/reports/plan/series?area=qn/tk&format=csv&"+period); code != http.StatusOK || !strings.HasPrefix(ctype, "text/csv") ||
		!strings.Contains(body, "03/2026,Tổng cộng,,2,3,2.0,2,1,50.0") || !strings.Contains(body, "03/2026,Ngôn ngữ,ctu,1,2,1.5") {
		t.Errorf("series CSV: %d %s\n%s", code, ctype, body)
	}
	if code, _, body := get(h.admin, "/api/reports/plan/areas?area=qn/tk&format=csv&"+period); code != http.StatusOK || !strings.Contains(body, "qn/tk/x1,qn/tk/x1,1,2,2,3,2.0,2,1,50.0,Vượt chỉ tiêu,75.0") {
		t.Errorf("tree CSV: %d\n%s", code, body)
	}

	x2 := h.userToken("x2-staff", "qn/tk/x2")
	for _, path := range []string{"/api/reports/plan/series", "/api/reports/plan/areas"} {
		if code, _, body := get(x2, path+"?area=qn/tk/x1&"+period); code != http.StatusNotFound && code != http.StatusForbidden {
			t.Errorf("x2's staff asked for x1's %s: %d %s", path, code, body)
		}
		if code, _, body := get(h.admin, path+"?area=qn/tk&format=pdf&"+period); code != http.StatusBadRequest || !strings.Contains(body, "pdf") {
			t.Errorf("%s as PDF: %d %s", path, code, body)
		}
	}
	var own report.Series
	h.mustCall(x2, "GET", "/api/reports/plan/series?"+period, nil, &own, http.StatusOK)
	if own.Area != "qn/tk/x2" || own.Points[2].Products != 0 || own.Points[3].Products != 1 {
		t.Errorf("x2's own series: %+v", own)
	}
	var weeks report.Series
	h.mustCall(h.admin, "GET", "/api/reports/plan/series?area=qn/tk&from=2026-03-01&to=2026-03-31", nil, &weeks, http.StatusOK)
	if weeks.Step != "week" || len(weeks.Points) != 6 || weeks.Points[0].Label != "01/03–01/03" || weeks.Points[2].Broadcasts != 3 {
		t.Errorf("March by week: %s %+v", weeks.Step, weeks.Points)
	}
}
