package neighbours_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/neighbours"
	"github.com/loa-project/loa/internal/faultnet"
)

// BenchmarkCommuneItem: a 50 MB item reaches three agents of one commune, each with its own
// shaped link to the hub (a 4G SIM: LOA_BENCH_4G_MBPS megabytes a second, default 2, and
// 30 ms each way), once with neighbours sharing it on the LAN (loopback, paced at the
// neighbours' default 8 MB/s) and once with each fetching from the hub. It reports the bytes
// the hub sent and the time until all three hold the item verified. scripts/bench-neighbours
// runs it.
func BenchmarkCommuneItem(b *testing.B) {
	mbps := 2.0
	if s := os.Getenv("LOA_BENCH_4G_MBPS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			b.Fatalf("LOA_BENCH_4G_MBPS=%q: give megabytes a second", s)
		}
		mbps = v
	}
	size := 50_000_000
	if s := os.Getenv("LOA_BENCH_ITEM_MB"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("LOA_BENCH_ITEM_MB=%q: give whole megabytes", s)
		}
		size = v * 1_000_000
	}
	for _, shared := range []bool{true, false} {
		name := "hub-only"
		if shared {
			name = "neighbours"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := newCommune(b)
				ref := c.addItem(size, uint64(i+1))
				var as []*agent
				for k := 1; k <= 3; k++ {
					id := fmt.Sprintf("tt/cl-%d", k)
					c.enrol(id, "qn/tt")
					p, err := faultnet.New(c.url[len("http://"):])
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { p.Close() })
					p.SetShape(faultnet.Shape{Rate: int64(mbps * 1e6), Delay: 30 * time.Millisecond})
					cfg := neighbours.Config{Listen: "127.0.0.1:0"}
					if !shared {
						cfg = neighbours.Config{}
					}
					as = append(as, c.agentVia(id, cfg, "http://"+p.Addr()))
				}
				if shared {
					knows(b, 2, as...)
				}
				b.StartTimer()
				start := time.Now()
				fetchAll(b, ref, as...)
				took := time.Since(start)
				b.StopTimer()
				hub := c.served(ref)
				b.ReportMetric(took.Seconds(), "s-until-all-3")
				b.ReportMetric(float64(hub)/1e6, "hub-MB")
				b.ReportMetric(float64(hub)/float64(size), "items-from-hub")
			}
		})
	}
}
