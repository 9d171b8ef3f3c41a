package hub

import (
	"fmt"
	"net/http"
	"testing"
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
