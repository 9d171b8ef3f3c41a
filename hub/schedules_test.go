package hub

import (
	"net/http"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
)

// POST /api/schedules/plan is the plan a target would have with a document in place of its
// own schedule: for a device, its area chain's programmes and the document's, composed as the
// hub composes; nothing is stored. A document that does not parse, and a target outside the
// caller's scope, are refused as a push would be.
func TestPlanWithDocument(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.enrol("tk/cl-1", "qn/tk")
	prov := "version: 1\nid: tinh\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: tiep-song\n    class: priority\n    cron: \"0 0 6 * * *\"\n    items: [{stream: \"http://radio.example/qn.mp3\", duration: 30m}]\n"
	if code, _, msg := h.push(h.admin, "area:qn", prov); code != http.StatusOK {
		t.Fatalf("the province's push: %d %s", code, msg)
	}
	own := "version: 1\nid: cum\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: sang\n    cron: \"0 50 5 * * *\"\n    max_duration: 1h\n    on_interrupt: resume\n    items: [{text: Bản tin, duration: 20m}]\n"
	week := "/api/schedules/plan?from=2026-12-07T00:00:00%2B07:00&days=7"
	var plan api.PlanJSON
	h.mustCall(h.admin, "POST", week, api.PushRequest{To: "device:tk/cl-1", Document: own}, &plan, http.StatusOK)
	n := map[string]int{}
	for _, s := range plan.Segments {
		n[s.Program+" "+s.Status]++
	}
	// The relay holds the speakers 06:00–06:30: the device's own 05:50 bulletin is cut at
	// 06:00 and resumes at 06:30.
	if len(plan.Segments) != 21 || n["qn/tiep-song play"] != 7 || n["device:tk/cl-1/sang preempted"] != 7 || n["device:tk/cl-1/sang resumed"] != 7 || plan.Device != "tk/cl-1" {
		t.Errorf("the plan with the device's document: %v (%d segments)", n, len(plan.Segments))
	}
	var list []api.ScheduleJSON
	h.mustCall(h.admin, "GET", "/api/schedules?to=device:tk/cl-1", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Errorf("a plan stored a schedule: %+v", list)
	}

	var e api.Error
	if code := h.call(h.admin, "POST", week, api.PushRequest{To: "device:tk/cl-1", Document: "version: 1\nid: x\n"}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "the new schedule of device:tk/cl-1") {
		t.Errorf("a document that does not parse: %d %q", code, e.Error)
	}
	h.addArea("qn/tt")
	other := h.userToken("xem-tt", "qn/tt")
	if code := h.call(other, "POST", week, api.PushRequest{To: "device:tk/cl-1", Document: own}, &e); code != http.StatusNotFound {
		t.Errorf("a device outside the caller's scope: %d %q", code, e.Error)
	}
}
