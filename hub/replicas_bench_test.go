package hub

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// BenchmarkReplicaPush measures how long a push through replica A takes to reach an agent
// connected to replica B (through the database's NOTIFY), beside the same push reaching an
// agent on A itself, in the same run (scripts/bench-replicas; BENCHMARKS.md).
func BenchmarkReplicaPush(b *testing.B) {
	a, r := newReplicas(b)
	a.addArea("qn/tk")
	sa := a.enrol("tk/cl-a", "qn/tk")
	sb := a.enrol("tk/cl-b", "qn/tk")
	onA, _ := a.connect("tk/cl-a", sa, protocol.Hello{})
	onB, _ := r.connect("tk/cl-b", sb, protocol.Hello{})
	ref := addFakeContent(b, a, "46", 30*time.Second)
	var local, remote []time.Duration
	b.ResetTimer()
	for i := range b.N {
		doc := fmt.Sprintf("version: 1\nid: tk\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: p%d\n    cron: \"0 30 6 * * *\"\n    items:\n      - content: %s\n", i+1, i, ref)
		start := time.Now()
		if code, _, msg := a.push(a.admin, "qn/tk", doc); code != http.StatusOK {
			b.Fatalf("push: %d %s", code, msg)
		}
		for _, w := range []struct {
			ag  *fakeAgent
			out *[]time.Duration
		}{{onA, &local}, {onB, &remote}} {
			for {
				if _, ok := w.ag.next().(*protocol.Schedule); ok {
					*w.out = append(*w.out, time.Since(start))
					break
				}
			}
		}
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"local", local}, {"remote", remote}} {
		slices.Sort(m.d)
		b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds())/1000, "ms-p50-"+m.name)
		b.ReportMetric(float64(m.d[len(m.d)*99/100].Microseconds())/1000, "ms-p99-"+m.name)
	}
}
