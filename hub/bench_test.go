package hub

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/loa-project/loa/hub/store"
)

// BenchmarkPushArea composes, signs and stores a new effective schedule for every device of
// an area (none connected): the hub-side cost of a push, per device.
func BenchmarkPushArea(b *testing.B) {
	h := newTestHub(b)
	h.addArea("qn/c1")
	const devices = 500
	for i := range devices {
		h.enrol(fmt.Sprintf("c1/cl-%03d", i), "qn/c1")
	}
	b.ResetTimer()
	for i := range b.N {
		doc := fmt.Sprintf("version: 1\nid: c\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: p%d\n    cron: \"0 0 6 * * *\"\n    items:\n      - stream: http://r.example/x.mp3\n        duration: 1m\n", i+1, i)
		if code, res, msg := h.push(h.admin, "qn/c1", doc); code != http.StatusOK || res.Devices != devices {
			b.Fatal(code, res, msg)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
}

// BenchmarkPushAreaMany is BenchmarkPushArea at a district's or province's size, on SQLite or
// (LOA_STORE=postgres) on the PostgreSQL server the tests start: LOA_BENCH_DEVICES devices
// (default 10,000) enrolled straight into the store, none connected. One op is one push
// through the staff API; µs/device and s/push are the figures (profile with -cpuprofile).
func BenchmarkPushAreaMany(b *testing.B) {
	devices := 10000
	if n, err := strconv.Atoi(os.Getenv("LOA_BENCH_DEVICES")); err == nil && n > 0 {
		devices = n
	}
	var h *testHub
	if os.Getenv("LOA_STORE") == "postgres" {
		h = newHubsOnOneDatabase(b, "a")[0]
	} else {
		h = newTestHub(b)
	}
	h.addArea("qn/c1")
	ctx := context.Background()
	for i := range devices {
		if _, err := h.db.EnrolDevice(ctx, store.Device{ID: fmt.Sprintf("c1/cl-%05d", i), Name: "x", Area: "qn/c1", Kind: store.KindCluster,
			Outputs: []string{"speakers"}}, sha256.Sum256([]byte{byte(i)})); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		doc := fmt.Sprintf("version: 1\nid: c\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
			"  - id: relay%d\n    cron: \"0 0 11 * * MON-FRI\"\n    items:\n      - stream: http://radio.example/qnr.mp3\n        duration: 30m\n"+
			"  - id: news\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://radio.example/news.mp3\n        duration: 15m\n", i+1, i)
		if code, res, msg := h.push(h.admin, "qn/c1", doc); code != http.StatusOK || res.Devices != devices {
			b.Fatal(code, res, msg)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/push")
}
