package hub

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/metrics"
	"github.com/loa-project/loa/internal/promtest"
	"github.com/loa-project/loa/protocol"
)

// nextSchedule skips what is not a schedule (commands) until one comes.
func nextSchedule(t *testing.T, a *fakeAgent) *protocol.Schedule {
	t.Helper()
	for {
		if s, ok := a.next().(*protocol.Schedule); ok {
			return s
		}
	}
}

// waitAck reads until the acknowledgement of a confirmation batch.
func waitAck(t *testing.T, a *fakeAgent) *protocol.Ack {
	t.Helper()
	for {
		m := a.next()
		if ack, ok := m.(*protocol.Ack); ok {
			return ack
		}
		if e, ok := m.(*protocol.ErrorMessage); ok {
			t.Fatalf("confirmations refused: %s %s", e.Code, e.Message)
		}
	}
}

// A real hub on loopback, scraped after a push, a confirmation batch, an emergency and a bad
// message: each metric moved by what happened, and only by that.
func TestMetricsScrapedAfterPushConfirmationsAndEmergency(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Truncate(time.Second)}
	h.srv.clock = clk
	ms := httptest.NewServer(h.srv.MetricsHandler())
	t.Cleanup(ms.Close)
	url := ms.URL + "/metrics"

	before := promtest.Scrape(t, url)
	if v := before.Value(metrics.AgentsConnected); v != 0 {
		t.Fatalf("agents connected before any: %v", v)
	}
	h.addArea("qn/tk")
	secret := h.enrol("tk/cl-01", "qn/tk")
	a, _ := h.connect("tk/cl-01", secret, protocol.Hello{})
	ref := addFakeContent(t, h, "51", 30*time.Second)
	doc := "version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n" +
		"  - {id: morning, cron: \"0 30 6 * * *\", items: [{content: " + ref + "}]}\n"
	if code, res, msg := h.push(h.admin, "qn/tk", doc); code != 200 || res.Sent != 1 {
		t.Fatalf("push: %d %+v %s", code, res, msg)
	}
	sch := nextSchedule(t, a)
	pl, _ := verifySchedule(t, h, "tk/cl-01", sch, 0)
	for _, st := range []string{protocol.DeliveryReceived, protocol.DeliveryActive} {
		a.send(&protocol.Delivery{Header: protocol.Header{Re: sch.ID}, ScheduleID: agentlink.ScheduleIDFor("tk/cl-01"), Revision: pl.Revision, State: st})
	}

	// A batch of three plays: two completed, one missed.
	recs := []protocol.Confirmation{confirmation("tk/cl-01", 1), confirmation("tk/cl-01", 2), confirmation("tk/cl-01", 3)}
	recs[2].Result, recs[2].Start, recs[2].End, recs[2].PlayedS = protocol.ResultMissed, time.Time{}, time.Time{}, 0
	recs = append(recs, confirmation("tk/cl-01", 4))
	recs[3].Result = "exploded" // a result this hub does not know: counted as other, not as a series of its own
	a.send(&protocol.Confirmations{Records: recs})
	if ack := waitAck(t, a); ack.Seq != 4 {
		t.Fatalf("ack %d, want 4", ack.Seq)
	}

	// An emergency, its first sample 3 s after it was issued, then its repeat (not timed).
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 13 sắp đổ bộ.",
		Title: "Bão số 13", RepeatEvery: "20m", Until: "1h"}, &res, http.StatusCreated)
	nextSchedule(t, a)
	issued := clk.Now()
	first := confirmation("tk/cl-01", 5)
	first.Program, first.Start = res.Emergencies[0].Program, issued.Add(3*time.Second)
	repeat := confirmation("tk/cl-01", 6)
	repeat.Program, repeat.Start = res.Emergencies[0].Program, issued.Add(20*time.Minute)
	a.send(&protocol.Confirmations{Records: []protocol.Confirmation{first, repeat}})
	waitAck(t, a)

	// A second device sends a record of another device: refused, its connection closed.
	secret2 := h.enrol("tk/cl-02", "qn/tk")
	b, _ := h.connect("tk/cl-02", secret2, protocol.Hello{})
	b.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation("tk/cl-01", 9)}})
	b.closed()
	// The hub forgets the connection after it has recorded its online time, a moment after
	// the agent saw it closed.
	for deadline := time.Now().Add(10 * time.Second); h.srv.link.Connected() != 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}

	// The client sees the close before the hub's handler has counted the connection gone.
	got := promtest.Scrape(t, url)
	for deadline := time.Now().Add(10 * time.Second); got.Value(metrics.AgentsConnected) != 1 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = promtest.Scrape(t, url)
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{metrics.AgentsConnected, nil, 1},
		{metrics.DeliverySeconds, []string{"stage", "received"}, 1},
		{metrics.DeliverySeconds, []string{"stage", "active"}, 1},
		{metrics.Confirmations, []string{"result", "completed"}, 4},
		{metrics.Confirmations, []string{"result", "missed"}, 1},
		{metrics.Confirmations, []string{"result", "other"}, 1},
		{metrics.Confirmations, []string{"result", "exploded"}, -1},
		{metrics.Emergencies, []string{"kind", "emergency", "source", "staff"}, 1},
		{metrics.EmergencyFirstPlay, []string{"kind", "emergency"}, 1},
		{metrics.StoreSeconds, []string{"op", "add_confirmations", "outcome", "ok"}, 2},
		{metrics.WebsocketErrors, []string{"kind", "refused"}, 1},
		{metrics.HTTPAnswers, []string{"route", "agent_ws", "code", "101"}, 2},
		{metrics.HTTPAnswers, []string{"route", "api", "code", "201"}, 4}, // area, two devices, emergency
	}
	for _, c := range checks {
		if v := got.Value(c.name, c.labels...); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	if v := got.Sum(metrics.EmergencyFirstPlay, "kind", "emergency"); v != 3 {
		t.Errorf("emergency first-sample seconds %v, want 3 (the sample 3 s after issue; the repeat not counted)", v)
	}
	for _, name := range metrics.Names {
		if got[name] == nil {
			t.Errorf("%s is not exported after all it counts happened", name)
		}
	}
	// The push to the connected agent and the emergency's: at least those two were sent.
	if v := got.Value(metrics.Pushes, "result", "sent"); v < 2 {
		t.Errorf("pushes sent %v, want at least 2", v)
	}
	if v := got.Value(metrics.StoreSeconds, "op", "mark_delivery", "outcome", "ok"); v < 2 {
		t.Errorf("mark_delivery timed %v times, want at least the two reports", v)
	}
	// No device id anywhere in the labels: bounded cardinality on a hub of 10,000 agents.
	for name, f := range got {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetValue() == "tk/cl-01" || l.GetValue() == "tk/cl-02" {
					t.Errorf("%s has a device id in label %s", name, l.GetName())
				}
			}
		}
	}
}

func TestRouteClass(t *testing.T) {
	for pattern, want := range map[string]string{
		"GET /agent/ws": "agent_ws", "POST /agent/screenshot": "agent", "GET /api/devices/{id...}": "api",
		"/console/": "console", "GET /{$}": "console", "GET /content/{ref}": "content", "GET /healthz": "health", "": "other",
	} {
		if got := metrics.RouteClass(pattern); got != want {
			t.Errorf("RouteClass(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// Run serves /metrics on metrics_listen only, not on the address agents and staff reach.
func TestRunServesMetricsOnItsOwnListener(t *testing.T) {
	dir := t.TempDir()
	if _, err := Keygen(filepath.Join(dir, "hub.key"), "hub"); err != nil {
		t.Fatal(err)
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	addr, maddr := free(), free()
	os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte("listen: "+addr+"\nmetrics_listen: "+maddr+"\ndata_dir: data\nsigning_key_file: hub.key\n"), 0o600)
	cfg, err := LoadConfig(filepath.Join(dir, "hub.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	for range 200 {
		if r, err := http.Get("http://" + maddr + "/metrics"); err == nil {
			r.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if v := promtest.Scrape(t, "http://"+maddr+"/metrics").Value(metrics.AgentsConnected); v != 0 {
		t.Errorf("agents connected on a new hub: %v", v)
	}
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the agents' and staff's listener: %d, want 404", r.StatusCode)
	}
	stopRun(t, cancel, done)
	cfg.MetricsListen = cfg.Listen
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "metrics_listen") {
		t.Errorf("metrics_listen on the listen address: %v", err)
	}
}
