// Package metrics is the hub's Prometheus metrics: one registry the hub owns (never the
// process-wide default, so two hubs in one test process do not mix), the collectors on it, and
// the handler that serves it (docs/operations.md, "Metrics").
//
// Labels are kept to small fixed sets (result, stage, kind, operation, route class, code): a
// hub of 10,000 agents labelled by device would make 10,000 series per metric, which
// Prometheus keeps in memory and a Pi-class scraper cannot hold; per-device figures are in the
// hub's own reports. No label carries a device secret, a token or a staff member's name.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Hub holds the hub's collectors. Its methods are safe for concurrent use; a nil *Hub records
// nothing, so a room built without metrics (tests of one room) needs no stand-in.
type Hub struct {
	reg          *prometheus.Registry
	pushes       *prometheus.CounterVec
	delivery     *prometheus.HistogramVec
	confirmed    *prometheus.CounterVec
	emergencies  *prometheus.CounterVec
	firstSample  *prometheus.HistogramVec
	storeSeconds *prometheus.HistogramVec
	httpAnswers  *prometheus.CounterVec
	wsErrors     *prometheus.CounterVec
	served       prometheus.Counter
	upgrades     *prometheus.GaugeVec
}

// Metric names, shared with the dashboard and alert rules in firmware-config/ (a test checks
// that every expression there names one of these).
const (
	AgentsConnected     = "loa_hub_agents_connected"
	Pushes              = "loa_hub_pushes_total"
	DeliverySeconds     = "loa_hub_delivery_seconds"
	Confirmations       = "loa_hub_confirmations_total"
	Emergencies         = "loa_hub_emergencies_total"
	EmergencyFirstPlay  = "loa_hub_emergency_first_sample_seconds"
	StoreSeconds        = "loa_hub_store_seconds"
	HTTPAnswers         = "loa_hub_http_answers_total"
	WebsocketErrors     = "loa_hub_agent_websocket_errors_total"
	ContentServed       = "loa_hub_content_served_bytes_total"
	UpgradeDevices      = "loa_hub_upgrade_devices"
	deliveryStageHelp   = "stage: received (the agent has the schedule), content_ready (and its content), active (playing from it)"
	emergencySampleHelp = "Seconds from when a broadcast was due (issued, or its start if later) to the first sample a device confirms playing of it, by kind (emergency, bulletin, live); each device's first play of each broadcast counts once."
)

// Names are the hub's own metrics; Histograms those of them that are histograms (exported as
// _bucket, _sum and _count).
var (
	Names      = []string{AgentsConnected, Pushes, DeliverySeconds, Confirmations, Emergencies, EmergencyFirstPlay, StoreSeconds, HTTPAnswers, WebsocketErrors, ContentServed, UpgradeDevices}
	Histograms = []string{DeliverySeconds, EmergencyFirstPlay, StoreSeconds}
)

// New builds the collectors on a fresh registry. connected reports the agents connected now
// (read at each scrape).
func New(connected func() int) *Hub {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Delivery and first-sample times span a fast LAN (tens of ms) to a 3G agent fetching
	// content (minutes); store calls span a fraction of a millisecond to a loaded disk.
	slow := []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	m := &Hub{
		reg: reg,
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Pushes,
			Help: "Effective schedules pushed to connected agents, by result (sent, failed: the write to the websocket failed)."}, []string{"result"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: DeliverySeconds,
			Help: "Seconds from a schedule sent to an agent until the agent reports a stage; " + deliveryStageHelp + ".", Buckets: slow}, []string{"stage"}),
		confirmed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Confirmations,
			Help: "Confirmation records stored, by result (completed, preempted, failed, missed…; not_stored: a batch the store refused, kept in the agent's journal)."}, []string{"result"}),
		emergencies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Emergencies,
			Help: "Broadcasts put on the air, by kind (emergency, bulletin, live) and source (staff, cap)."}, []string{"kind", "source"}),
		firstSample: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: EmergencyFirstPlay, Help: emergencySampleHelp, Buckets: slow}, []string{"kind"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: StoreSeconds,
			Help:    "Seconds a store call took, by operation and outcome (ok, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"op", "outcome"}),
		httpAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: HTTPAnswers,
			Help: "HTTP answers, by route class (api, console, content, agent, agent_ws, health, other) and status code."}, []string{"route", "code"}),
		wsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: WebsocketErrors,
			Help: "Agent websocket errors, by kind (upgrade: the handshake failed; refused: the hub closed a connection over a bad message; write: a send failed)."}, []string{"kind"}),
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: AgentsConnected, Help: "Agents connected by websocket now."},
		func() float64 { return float64(connected()) }))
	// One series for all items (no ref label): per item, GET /api/content says served_bytes.
	m.served = prometheus.NewCounter(prometheus.CounterOpts{Name: ContentServed,
		Help: "Bytes of library content sent to agents (GET /content/<ref>, Range requests included): what neighbours sharing content saves shows here."})
	m.upgrades = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: UpgradeDevices,
		Help: "Devices in the agent rollouts running now, by their upgrade state (docs/upgrades.md); other: a state this hub does not know."}, []string{"state"})
	for _, st := range UpgradeStates {
		m.upgrades.WithLabelValues(st).Set(0)
	}
	reg.MustRegister(m.pushes, m.delivery, m.confirmed, m.emergencies, m.firstSample, m.storeSeconds, m.httpAnswers, m.wsErrors, m.served, m.upgrades)
	return m
}

// UpgradeStates are the label values of UpgradeDevices: a fixed set (an agent's unknown state
// counts as other), each exported from the start.
var UpgradeStates = []string{"pending", "sent", "downloading", "waiting", "installing", "checking", "healthy", "rolled_back",
	"refused", "failed", "cancelled", "current", "cannot", "other"}

// Upgrades sets how many devices of the running rollouts are in each upgrade state.
func (m *Hub) Upgrades(counts map[string]int) {
	if m == nil {
		return
	}
	other := 0
	for st, n := range counts {
		if !slices.Contains(UpgradeStates, st) {
			other += n
		}
	}
	for _, st := range UpgradeStates {
		n := counts[st]
		if st == "other" {
			n = other
		}
		m.upgrades.WithLabelValues(st).Set(float64(n))
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Hub) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Pushed counts one schedule write to an agent.
func (m *Hub) Pushed(ok bool) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(outcome(ok, "sent", "failed")).Inc()
}

// Delivered observes the time from sent to a delivery stage an agent reported.
func (m *Hub) Delivered(stage string, d time.Duration) {
	if m == nil || d < 0 {
		return
	}
	m.delivery.WithLabelValues(stage).Observe(d.Seconds())
}

// Confirmed counts stored confirmation records of one result.
func (m *Hub) Confirmed(result string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.confirmed.WithLabelValues(result).Add(float64(n))
}

// Issued counts a broadcast put on the air; source is the store's ("cli", "cap:…").
func (m *Hub) Issued(kind, source string) {
	if m == nil {
		return
	}
	src := "staff"
	if strings.HasPrefix(source, "cap") {
		src = "cap"
	}
	m.emergencies.WithLabelValues(kind, src).Inc()
}

// FirstSample observes a device's first sample of a broadcast, d after it was due.
func (m *Hub) FirstSample(kind string, d time.Duration) {
	if m == nil {
		return
	}
	m.firstSample.WithLabelValues(kind).Observe(max(d, 0).Seconds())
}

// StoreCall observes one store call of op that started at start.
func (m *Hub) StoreCall(op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.storeSeconds.WithLabelValues(op, outcome(err == nil, "ok", "error")).Observe(time.Since(start).Seconds())
}

// ContentServed counts bytes of content sent to an agent.
func (m *Hub) ContentServed(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.served.Add(float64(n))
}

// WebsocketError counts an agent websocket error of kind.
func (m *Hub) WebsocketError(kind string) {
	if m == nil {
		return
	}
	m.wsErrors.WithLabelValues(kind).Inc()
}

// Answered counts an HTTP answer to a request the mux matched with pattern.
func (m *Hub) Answered(pattern string, code int) {
	if m == nil {
		return
	}
	m.httpAnswers.WithLabelValues(RouteClass(pattern), strconv.Itoa(code)).Inc()
}

// RouteClass names the class of a mux pattern ("GET /api/devices/{id...}" → api): a handful
// of values, so a scanner requesting random paths cannot grow the series.
func RouteClass(pattern string) string {
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = p
	}
	switch {
	case path == "/agent/ws":
		return "agent_ws"
	case strings.HasPrefix(path, "/agent/"):
		return "agent"
	case strings.HasPrefix(path, "/api/"):
		return "api"
	case strings.HasPrefix(path, "/console/"), path == "/{$}":
		return "console"
	case strings.HasPrefix(path, "/content/"):
		return "content"
	case path == "/healthz", path == "/metrics":
		return "health"
	}
	return "other"
}

func outcome(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
