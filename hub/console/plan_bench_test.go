package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/scheduler"
)

// bigWeek is an area schedule of n programmes, each once a week: a busy commune's week
// spread over the days from 05:00, a one-minute text item every ten minutes.
func bigWeek(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nid: big\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nquiet_hours: [{from: \"22:00\", to: \"05:00\"}]\nprograms:\n")
	days := []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}
	for i := range n {
		slot := i / 7 // the slot of the day, ten minutes apart from 05:00
		class := "normal"
		if i%50 == 0 {
			class = "priority"
		}
		fmt.Fprintf(&b, "  - id: p%03d\n    title: Chương trình %d\n    class: %s\n    cron: \"0 %d %d * * %s\"\n    items: [{text: \"Bản tin số %d\", duration: 1m}]\n",
			i, i, class, (slot*10)%60, 5+slot*10/60, days[i%7], i)
	}
	return b.String()
}

// BenchmarkPlanCalendar500 is issue 15's figure: the console's week calendar of a device
// whose effective schedule has 500 programmes, server time and bytes sent, beside
// scheduler.Compile of the same composed document over the same week (the agent's own work,
// as `loa-agent plan` does it).
func BenchmarkPlanCalendar500(b *testing.B) {
	h := newTestHub(b)
	h.api(h.admin, "POST", "/api/areas", api.AreaJSON{ID: "qn/tk/tx", Name: "Xã Tam Xuân"}, nil, http.StatusCreated)
	h.api(h.admin, "POST", "/api/devices", api.EnrolRequest{ID: "tx/cl-1", Area: "qn/tk/tx"}, nil, http.StatusCreated)
	src := bigWeek(500)
	h.api(h.admin, "POST", "/api/schedules", api.PushRequest{To: "area:qn/tk/tx", Document: src}, nil, http.StatusOK)
	c := h.client()
	if code, _ := c.signIn("admin", adminPass); code != http.StatusOK {
		b.Fatalf("sign-in: %d", code)
	}
	monday := time.Date(2026, 12, 7, 0, 0, 0, 0, h.zone)
	page := "/console/plan?to=device:tx/cl-1&week=" + monday.Format("2006-01-02")
	code, body, _ := c.do("GET", page, nil)
	if n := strings.Count(body, `class="seg `); code != http.StatusOK || n != 500 {
		b.Fatalf("the calendar: %d, %d segments, want 500", code, n)
	}

	doc, err := scheduler.Parse("big", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	for i := range doc.Programs {
		doc.Programs[i].ID = "qn/tk/tx/" + doc.Programs[i].ID
	}
	enc, _ := doc.Encode()
	b.Run("console", func(b *testing.B) {
		for b.Loop() {
			c.do("GET", page, nil)
		}
		b.ReportMetric(float64(len(body)), "bytes/page")
	})
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			d, err := scheduler.Parse("big", enc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := scheduler.Compile(d, monday, monday.AddDate(0, 0, 7), scheduler.CompileOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
