package console_test

import (
	"fmt"
	"io"
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

// denseWeek is the scheduler benchmark's 500-programme document (scheduler/bench_test.go,
// bigSchedule): every class, daily, weekday and weekend crons from 05:00 to 21:59, repeats,
// two items each, on one, two or three outputs, preempting each other: about 5,600 segments
// a week.
func denseWeek(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nid: dense\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nquiet_hours: [{from: \"22:00\", to: \"05:00\"}]\nprograms:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: p%d\n    class: %s\n    priority: %d\n    cron: \"0 %d %d * * %s\"\n    max_duration: 20m\n    outputs: [%s]\n    on_interrupt: %s\n",
			i, []string{"normal", "normal", "normal", "priority", "emergency"}[i%5], i%4, (i*7)%60, 5+(i%17),
			[]string{"*", "MON-FRI", "SAT,SUN"}[i%3], []string{"speakers", "speakers, board", "screen"}[i%3], []string{"resume", "restart", "skip"}[i%3])
		if i%10 == 0 {
			b.WriteString("    repeat: {count: 2, gap: 10m}\n")
		}
		fmt.Fprintf(&b, "    items:\n      - {file: a%d.mp3, duration: %ds}\n      - {file: b%d.mp3, duration: %ds}\n", i, 60+i%300, i, 30+i%90)
	}
	return b.String()
}

// BenchmarkPlanCalendar500 is issue 15's figure: the console's week calendar of a device
// whose effective schedule has 500 programmes, server time and bytes sent (gzip, as a browser
// asks), beside scheduler.Compile of the same composed document over the same week (the
// agent's own work, as `loa-agent plan` does it). "sparse" is a commune's 500 weekly
// programmes (500 plays), "dense" the scheduler benchmark's document (about 5,600 segments).
func BenchmarkPlanCalendar500(b *testing.B) {
	h := newTestHub(b)
	h.api(h.admin, "POST", "/api/areas", api.AreaJSON{ID: "qn/tk/tx", Name: "Xã Tam Xuân"}, nil, http.StatusCreated)
	c := h.client()
	if code, _ := c.signIn("admin", adminPass); code != http.StatusOK {
		b.Fatalf("sign-in: %d", code)
	}
	monday := time.Date(2026, 12, 7, 0, 0, 0, 0, h.zone)
	for i, week := range []struct {
		name, src string
	}{{"sparse", bigWeek(500)}, {"dense", denseWeek(500)}} {
		dev := fmt.Sprintf("tx/cl-%d", i+1)
		h.api(h.admin, "POST", "/api/devices", api.EnrolRequest{ID: dev, Area: "qn/tk/tx"}, nil, http.StatusCreated)
		h.api(h.admin, "POST", "/api/schedules", api.PushRequest{To: "device:" + dev, Document: week.src}, nil, http.StatusOK)
		doc, err := scheduler.Parse(week.name, []byte(week.src))
		if err != nil {
			b.Fatal(err)
		}
		for i := range doc.Programs {
			doc.Programs[i].ID = "device:" + dev + "/" + doc.Programs[i].ID
		}
		enc, _ := doc.Encode()
		var segs int
		b.Run(week.name+"/compile", func(b *testing.B) {
			for b.Loop() {
				d, err := scheduler.Parse(week.name, enc)
				if err != nil {
					b.Fatal(err)
				}
				tl, err := scheduler.Compile(d, monday, monday.AddDate(0, 0, 7), scheduler.CompileOptions{})
				if err != nil {
					b.Fatal(err)
				}
				segs = len(tl.Segments)
			}
			b.ReportMetric(float64(segs), "segments")
		})
		page := "/console/plan?to=device:" + dev + "&week=" + monday.Format("2006-01-02")
		// Bytes as sent: the browser's Accept-Encoding set by hand, so the client does not
		// unzip them; the page's own size beside, once.
		get := func() int {
			req, _ := http.NewRequest("GET", h.url+page, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := c.c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			n, _ := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
				b.Fatalf("the calendar: %d, %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			return int(n)
		}
		_, body, _ := c.do("GET", page, nil)
		b.Run(week.name+"/console", func(b *testing.B) {
			var sent int
			for b.Loop() {
				sent = get()
			}
			b.ReportMetric(float64(sent), "bytes-sent/page")
			b.ReportMetric(float64(len(body)), "bytes-html/page")
		})
	}
}
