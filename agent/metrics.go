package agent

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loa-project/loa/protocol"
)

// Agent metric names, shared with the dashboard and alert rules in firmware-config/.
const (
	MetricPlays         = "loa_agent_plays_total"
	MetricUnderruns     = "loa_agent_underruns_total"
	MetricDropouts      = "loa_agent_relay_dropouts_total"
	MetricPartFault     = "loa_agent_part_fault"
	MetricJournalUnack  = "loa_agent_journal_unacked_records"
	MetricClockOffset   = "loa_agent_clock_offset_seconds"
	MetricClockSynced   = "loa_agent_clock_synced"
	MetricHubConnected  = "loa_agent_hub_connected"
	metricsScanPerCycle = 10_000 // records counted per scrape at most: a scrape stays quick after a long gap
)

// MetricNames are the agent's own metrics (all counters and gauges).
var MetricNames = []string{MetricPlays, MetricUnderruns, MetricDropouts, MetricPartFault, MetricJournalUnack, MetricClockOffset, MetricClockSynced, MetricHubConnected}

var (
	descPlays = prometheus.NewDesc(MetricPlays, "Plays whose record closed since the agent started, by output and result (completed, preempted, interrupted, failed, missed, suppressed).",
		[]string{"output", "result"}, nil)
	descUnderruns = prometheus.NewDesc(MetricUnderruns, "Times an output ran dry during plays that closed since the agent started.", nil, nil)
	descDropouts  = prometheus.NewDesc(MetricDropouts, "Live relay streams lost after audio came, over plays that closed since the agent started.", nil, nil)
	descPart      = prometheus.NewDesc(MetricPartFault, "1 while a part is faulty (relay: the amplifier's relay; sign; screen), 0 while it works; absent when the device has no such part.",
		[]string{"part"}, nil)
	descUnacked = prometheus.NewDesc(MetricJournalUnack, "Journal records the hub has not acknowledged yet: grows while the hub is out of reach.", nil, nil)
	descOffset  = prometheus.NewDesc(MetricClockOffset, "The hub's clock minus this device's at the last welcome; absent before the first.", nil, nil)
	descSynced  = prometheus.NewDesc(MetricClockSynced, "1 when the device's clock is synchronised, 0 when it is not trusted.", nil, nil)
	descLinked  = prometheus.NewDesc(MetricHubConnected, "1 while the agent's link to the hub is up; absent without a hub.", nil, nil)
)

// metrics reads what the agent already keeps at each scrape: the journal's closed records
// since the last scrape (so plays are counted from the one record every output writes, with
// no hook in the outputs), its backlog, the parts' state and the clock.
type metrics struct {
	a     *Agent
	mu    sync.Mutex
	after uint64 // records up to here are counted
	plays map[[2]string]float64
	under float64
	drops float64
}

// newMetrics counts plays from the records written from now on.
func newMetrics(a *Agent) *metrics {
	return &metrics{a: a, after: a.journal.HighWater(), plays: map[[2]string]float64{}}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPlays, descUnderruns, descDropouts, descPart, descUnacked, descOffset, descSynced, descLinked} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	if recs, err := m.a.journal.Since(m.after, metricsScanPerCycle); err != nil {
		m.a.log.Warn("metrics: journal not read; plays are counted at the next scrape", "err", err)
	} else {
		for _, r := range recs {
			m.plays[[2]string{r.Output, string(r.Result)}]++
			m.under += float64(r.Underruns)
			m.drops += float64(r.Dropouts)
			m.after = r.Seq
		}
	}
	for k, n := range m.plays {
		ch <- prometheus.MustNewConstMetric(descPlays, prometheus.CounterValue, n, k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(descUnderruns, prometheus.CounterValue, m.under)
	ch <- prometheus.MustNewConstMetric(descDropouts, prometheus.CounterValue, m.drops)
	m.mu.Unlock()

	if js, err := m.a.journal.Stats(); err == nil {
		ch <- prometheus.MustNewConstMetric(descUnacked, prometheus.GaugeValue, float64(js.Unacked))
	}
	st := m.a.Status()
	for part, p := range map[string]*protocol.Part{"relay": st.Relay, "sign": st.Sign, "screen": st.Screen, "audio": st.Audio} {
		if p != nil {
			ch <- prometheus.MustNewConstMetric(descPart, prometheus.GaugeValue, flag(p.Error != ""), part)
		}
	}
	ch <- prometheus.MustNewConstMetric(descSynced, prometheus.GaugeValue, flag(st.ClockState == protocol.ClockSynced))
	m.a.mu.Lock()
	l := m.a.link
	m.a.mu.Unlock()
	if l != nil {
		ch <- prometheus.MustNewConstMetric(descLinked, prometheus.GaugeValue, flag(l.Connected()))
		if off, ok := l.ClockOffset(); ok {
			ch <- prometheus.MustNewConstMetric(descOffset, prometheus.GaugeValue, off.Seconds())
		}
	}
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricsHandler serves the agent's registry (its own, never the process-wide default).
func (a *Agent) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics(a), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// serveMetrics serves GET /metrics on metrics_listen (loopback: config.check refuses others)
// until ctx ends; Run's tasks wait for it.
func (a *Agent) serveMetrics(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.MetricsListen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	a.tasks.Go(func() { srv.Serve(ln) })
	a.tasks.Go(func() { <-ctx.Done(); srv.Close() })
	a.log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return nil
}
