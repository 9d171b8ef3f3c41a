package hub

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/report"
	"github.com/loa-project/loa/hub/store"
)

// The plays and yearly plan reports name who approved each product, in CSV and in XLSX read
// back: the approver of the schedule revision for a scheduled play, "không cần duyệt" where
// the area did not require approval, and for an emergency its reviewer once reviewed.
func TestReportsNameTheApprover(t *testing.T) {
	h := newTestHub(t)
	ctx := context.Background()
	editor, approver, warner := approvalDistrict(h)

	code, res, msg := h.push(editor, "qn/tk/c1", approvalDoc("news"))
	if code != http.StatusAccepted || res.Submission == nil {
		t.Fatalf("the editor's push: %d %+v %s", code, res, msg)
	}
	h.mustCall(approver, "POST", fmt.Sprintf("/api/submissions/%d/approve", res.Submission.ID), api.DecideRequest{}, nil, http.StatusOK)
	if code, _, msg := h.push(h.admin, "qn/dl", approvalDoc("music")); code != http.StatusOK {
		t.Fatalf("a push where approval is not required: %d %s", code, msg)
	}
	var em api.EmergencyResponse
	h.mustCall(warner, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 9", For: "1h"}, &em, http.StatusCreated)

	ref := func(b string) string { return "sha256:" + strings.Repeat(b, 32) }
	news, storm, music := ref("a1"), ref("b2"), ref("c3")
	for _, c := range []struct{ ref, title string }{{news, "Bản tin xã"}, {storm, "Cảnh báo bão"}, {music, "Dân ca"}} {
		if _, _, err := h.db.AddContent(ctx, store.Content{Ref: c.ref, Size: 1, MIME: "audio/mpeg", Title: c.title}); err != nil {
			t.Fatal(err)
		}
	}
	play := func(device string, seq uint64, program, item string) {
		c := confirmation(device, seq)
		c.Program, c.Item = program, item
		if _, err := h.db.AddConfirmations(ctx, device, []store.Confirmation{{Confirmation: c}}); err != nil {
			t.Fatal(err)
		}
	}
	stormProgram := fmt.Sprintf("emergency:%d/speakers", em.Emergencies[0].ID)
	play("c1/a", 1, "qn/tk/c1/news", news)
	play("c1/a", 2, stormProgram, storm)
	play("dl/a", 1, "qn/dl/music", music)

	// The play report's table: programme (first column) -> approver (last).
	const plays = "Theo chương trình và nội dung"
	want := map[string]string{"qn/tk/c1/news": "hung", stormProgram: "chờ xem xét", "qn/dl/music": "không cần duyệt"}
	checkApprovers(t, "plays CSV", csvTable(t, h, "/api/reports/plays?year=2026&format=csv", plays), want)

	h.mustCall(approver, "POST", fmt.Sprintf("/api/emergencies/%d/review", em.Emergencies[0].ID), api.ReviewRequest{Note: "Đúng quy trình"}, nil, http.StatusOK)
	want[stormProgram] = "hung"
	checkApprovers(t, "plays XLSX", xlsxTable(t, h, "/api/reports/plays?year=2026&format=xlsx", plays), want)

	// The yearly report's table of products: title (first column) -> approver (last).
	items := "Độ phủ từng sản phẩm"
	want = map[string]string{"Bản tin xã": "hung", "Cảnh báo bão": "hung", "Dân ca": "không cần duyệt"}
	checkApprovers(t, "plan XLSX", xlsxTable(t, h, "/api/reports/plan?year=2026&format=xlsx", items), want)
	checkApprovers(t, "plan CSV", csvTable(t, h, "/api/reports/plan?year=2026&format=csv", items), want)
}

// approvalDistrict is a district qn/tk requiring approval with a commune qn/tk/c1 and the
// district qn/dl not requiring it, a device in each commune, the commune's editor "lan", the
// district's approver "hung" and its emergency officer "binh" (their tokens).
func approvalDistrict(h *testHub) (editor, approver, warner string) {
	h.addArea("qn/tk")
	h.addArea("qn/tk/c1")
	h.addArea("qn/dl")
	h.enrol("c1/a", "qn/tk/c1")
	h.enrol("dl/a", "qn/dl")
	editor = h.staff("lan", "qn/tk/c1", store.RoleOperator)
	approver = h.staff("hung", "qn/tk", store.RoleApprover)
	warner = h.staff("binh", "qn/tk", store.RoleEmergency)
	h.setPolicy("qn/tk", store.ApprovalRequired, "")
	return editor, approver, warner
}

// checkApprovers checks that each row whose first cell is a key of want ends with its value,
// and that every key has a row.
func checkApprovers(t *testing.T, what string, rows [][]string, want map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		if w, ok := want[r[0]]; ok {
			seen[r[0]] = true
			if got := r[len(r)-1]; got != w {
				t.Errorf("%s: %s approved by %q, want %q (row %q)", what, r[0], got, w, r)
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%s: no row for %s in %q", what, k, rows)
		}
	}
}

// csvTable reads a report as CSV and returns the rows of its table titled title, headers first.
func csvTable(t *testing.T, h *testHub, path, title string) [][]string {
	t.Helper()
	code, body, _ := h.get(h.admin, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s is not CSV: %v", path, err)
	}
	for i, rec := range all {
		if len(rec) == 1 && rec[0] == title {
			var out [][]string
			for _, row := range all[i+1:] {
				if len(row) == 1 && row[0] == "" {
					break
				}
				out = append(out, row)
			}
			if len(out) == 0 || out[0][len(out[0])-1] != "Người duyệt" {
				t.Fatalf("%s: table %q has no approver column: %q", path, title, out)
			}
			return out
		}
	}
	t.Fatalf("%s: no table %q", path, title)
	return nil
}

// xlsxTable reads a report as a workbook and returns the rows of the sheet of title.
func xlsxTable(t *testing.T, h *testHub, path, title string) [][]string {
	t.Helper()
	code, body, _ := h.get(h.admin, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s is not a workbook: %v", path, err)
	}
	defer f.Close()
	rows, err := f.GetRows(report.SheetName(title))
	if err != nil || len(rows) == 0 || rows[0][len(rows[0])-1] != "Người duyệt" {
		t.Fatalf("%s: sheet %q: %v %q", path, title, err, rows)
	}
	return rows
}
