package hub

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// BenchmarkIssueCommandArea: POST /api/commands for an area of 10,000 devices, none connected
// (validation, signing in parts, storing the command and a row per device, reading it back):
// the hub-side cost of a province-wide stop, per device.
func BenchmarkIssueCommandArea(b *testing.B) {
	h := newTestHub(b)
	h.addArea("qn/tk")
	ctx := context.Background()
	const devices = 10000
	for i := range devices {
		if _, err := h.db.EnrolDevice(ctx, store.Device{ID: fmt.Sprintf("tk/cl-%05d", i), Name: "x", Area: "qn/tk", Kind: store.KindCluster}, [32]byte{1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		var c api.CommandJSON
		h.mustCall(h.admin, "POST", "/api/commands", api.CommandRequest{To: "qn/tk", Action: "stop"}, &c, http.StatusCreated)
		if len(c.Outcomes) != devices {
			b.Fatalf("%d outcomes", len(c.Outcomes))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
}

// BenchmarkCommandFanOut: a command to an area of 200 connected agents, until every agent
// has read it (loopback websockets in this process): the cost of the fan-out per connection.
func BenchmarkCommandFanOut(b *testing.B) {
	h := newTestHub(b)
	h.addArea("qn/tk")
	const devices = 200
	agents := make([]*fakeAgent, devices)
	for i := range devices {
		id := fmt.Sprintf("tk/cl-%03d", i)
		agents[i], _ = h.connect(id, h.enrol(id, "qn/tk"), protocol.Hello{})
	}
	b.ResetTimer()
	for range b.N {
		var c api.CommandJSON
		h.mustCall(h.admin, "POST", "/api/commands", api.CommandRequest{To: "qn/tk", Action: "reload"}, &c, http.StatusCreated)
		if c.Counts["sent"] != devices {
			b.Fatalf("sent to %d of %d", c.Counts["sent"], devices)
		}
		for _, a := range agents {
			select {
			case m := <-a.msgs:
				if _, ok := m.(*protocol.Command); !ok {
					b.Fatalf("%s got %T", a.id, m)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("%s got no command", a.id)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*devices), "µs/device")
}
