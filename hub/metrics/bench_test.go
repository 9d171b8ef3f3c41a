package metrics

import (
	"io"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkScrape is one scrape of a hub whose every series has values: what a Prometheus
// scraping every 15 s costs the hub (BENCHMARKS.md, "Metrics").
func BenchmarkScrape(b *testing.B) {
	m := New(func() int { return 10000 })
	for _, r := range []string{"completed", "preempted", "interrupted", "failed", "missed", "suppressed", "not_stored"} {
		m.Confirmed(r, 100)
	}
	for _, s := range []string{"received", "content_ready", "active"} {
		m.Delivered(s, time.Second)
	}
	for _, op := range []string{"add_confirmations", "mark_delivery", "add_effective", "add_effectives", "mark_sent", "latest_schedules_under", "get_emergency"} {
		m.StoreCall(op, time.Now(), nil)
	}
	for _, p := range []string{"GET /api/x", "/console/", "GET /content/{ref}", "GET /agent/ws", "POST /agent/screenshot", "GET /healthz", ""} {
		for _, c := range []int{200, 201, 400, 401, 403, 404, 409, 429, 500} {
			m.Answered(p, c)
		}
	}
	m.Issued("emergency", "cli")
	m.FirstSample("emergency", time.Second)
	m.Pushed(true)
	m.WebsocketError("refused")
	h := m.Handler()
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		size = rec.Body.Len()
		io.Discard.Write(rec.Body.Bytes())
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// BenchmarkAnswered is what counting one HTTP answer adds to a request.
func BenchmarkAnswered(b *testing.B) {
	m := New(func() int { return 0 })
	b.ReportAllocs()
	for b.Loop() {
		m.Answered("GET /api/devices/{id...}", 200)
	}
}
