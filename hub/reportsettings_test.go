package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// A device's time connected is recorded at its statuses and when it disconnects: never more
// than the wall time around the connection, never less than the time it stayed after its
// welcome.
func TestOnlineTimeFromConnections(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	secret := h.enrol("tk/cl-1", "qn/tk")
	ctx := context.Background()
	online := func() float64 {
		now := time.Now()
		rep, err := h.db.Devices(ctx, store.PeriodFilter{Area: "qn/tk", From: now.Add(-48 * time.Hour), To: now.Add(48 * time.Hour)}, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range rep.Lines {
			if l.Device == "tk/cl-1" {
				return l.OnlineSeconds
			}
		}
		return -1
	}
	before := time.Now()
	a, _ := h.connect("tk/cl-1", secret, protocol.Hello{})
	welcomed := time.Now()
	time.Sleep(100 * time.Millisecond)
	a.send(&protocol.Status{At: time.Now(), UptimeS: 5})
	testkit.WaitFor(t, "online time recorded at the status", 10*time.Second, func() bool { return online() > 0 })
	if s := online(); s > time.Since(before).Seconds() {
		t.Errorf("online %v s after a status, more than the %v s since the device dialled", s, time.Since(before).Seconds())
	}
	time.Sleep(100 * time.Millisecond)
	a.ws.Close()
	closed := time.Now()
	testkit.WaitFor(t, "online time recorded at the disconnect", 10*time.Second, func() bool { return online() >= closed.Sub(welcomed).Seconds() })
	if s, most := online(), time.Since(before).Seconds(); s > most {
		t.Errorf("online %v s in all, more than the %v s since the device dialled", s, most)
	}
}

// The report settings: defaults until set, set by a province administrator only, each entry
// resolved against the hub's lists (labels too), audited, and used by the plan report.
func TestReportSettings(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.enrol("tk/cl-1", "qn/tk")
	ctx := context.Background()
	for _, term := range []store.Term{{Dimension: store.DimLanguage, Value: "vie", Label: "Tiếng Việt"}, {Dimension: store.DimLanguage, Value: "ctu", Label: "Cơ Tu"},
		{Dimension: store.DimFormat, Value: "radio-report", Label: "Phóng sự truyền thanh"}, {Dimension: store.DimFormat, Value: "digital", Label: "Sản phẩm số"}} {
		if err := h.db.AddTerm(ctx, term); err != nil {
			t.Fatal(err)
		}
	}
	ref := "sha256:" + strings.Repeat("cd", 32)
	if _, _, err := h.db.AddContent(ctx, store.Content{Ref: ref, Size: 1, Title: "Phóng sự tiếng Cơ Tu", Language: "ctu", Format: "radio-report"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	if _, err := h.db.AddConfirmations(ctx, "tk/cl-1", []store.Confirmation{{Confirmation: protocol.Confirmation{Seq: 1, Output: "speakers", ScheduleID: "dev-tk/cl-1", Revision: 1,
		Program: "qn/tk/sang", Item: ref, Scheduled: at, Start: at, End: at.Add(time.Minute), Proof: protocol.Proof{PlayedS: 60}, Result: "completed",
		Clock: "synced"}}}); err != nil {
		t.Fatal(err)
	}
	target := func() string { // the plan's count of target products
		var doc api.ReportDoc
		h.mustCall(h.admin, "GET", "/api/reports/plan?area=qn/tk", nil, &doc, http.StatusOK)
		for _, l := range doc.Summary {
			if strings.HasPrefix(l.Label, "Sản phẩm tiếng dân tộc") && l.Value.Num != nil {
				return api.Number(*l.Value.Num, 0)
			}
		}
		t.Fatalf("the plan has no target line: %+v", doc.Summary)
		return ""
	}

	var got api.ReportSettings
	h.mustCall(h.admin, "GET", "/api/settings/reports", nil, &got, http.StatusOK)
	if strings.Join(got.HomeLanguages, ",") != "vi,vie" || strings.Join(got.DigitalFormats, ",") != "digital" || got.UpdatedAt != nil {
		t.Errorf("defaults: %+v", got)
	}
	if n := target(); n != "1" {
		t.Errorf("with the defaults the Cơ Tu report is a target product: got %s", n)
	}

	commune := h.userToken("qt-xa", "qn/tk")
	if code := h.call(commune, "PUT", "/api/settings/reports", api.ReportSettings{HomeLanguages: []string{"vie"}, DigitalFormats: []string{"digital"}}, nil); code != http.StatusForbidden {
		t.Errorf("a district administrator changed the hub's report settings: %d", code)
	}
	var e api.Error
	if code := h.call(h.admin, "PUT", "/api/settings/reports", api.ReportSettings{HomeLanguages: []string{"Tiếng Pháp"}, DigitalFormats: nil}, &e); code != http.StatusBadRequest ||
		!strings.Contains(e.Error, `"Tiếng Pháp"`) || !strings.Contains(e.Error, "digital_formats") {
		t.Errorf("an unknown language and no format: %d %q", code, e.Error)
	}
	h.mustCall(h.admin, "PUT", "/api/settings/reports", api.ReportSettings{HomeLanguages: []string{"Tiếng Việt", "co tu", "vie"}, DigitalFormats: []string{"digital"}}, &got, http.StatusOK)
	if strings.Join(got.HomeLanguages, ",") != "vie,ctu" || got.UpdatedAt == nil {
		t.Errorf("labels resolved to codes once each: %+v", got)
	}
	if n := target(); n != "0" {
		t.Errorf("with Cơ Tu counted as a home language the report is not a target product: got %s", n)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=settings.reports", nil, &audit, http.StatusOK)
	var detail struct {
		Home []string `json:"home_languages"`
		Was  []string `json:"was_home_languages"`
	}
	if len(audit) == 1 {
		json.Unmarshal(audit[0].Detail, &detail)
	}
	if len(audit) != 1 || audit[0].Actor != "admin" || strings.Join(detail.Was, ",") != "vi,vie" || strings.Join(detail.Home, ",") != "vie,ctu" {
		t.Errorf("audit of the change: %+v (%s)", audit, detail)
	}
}
