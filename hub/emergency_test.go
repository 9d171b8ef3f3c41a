package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// setClock is a settable hub clock that starts at the real time (agents' verifiers use it).
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *setClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func emergencyPrograms(doc *scheduler.Document) []scheduler.Program {
	var out []scheduler.Program
	for _, p := range doc.Programs {
		if strings.HasPrefix(p.ID, "emergency:") || strings.HasPrefix(p.ID, "bulletin:") || strings.HasPrefix(p.ID, "live:") {
			out = append(out, p)
		}
	}
	return out
}

func TestEmergencyComposedPushedReplacedCancelled(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Truncate(time.Second)}
	h.srv.clock = clk
	h.addArea("qn/tk")
	h.addArea("qn/tk/c1")
	h.addArea("qn/ha")
	s1 := h.enrol("c1/cl-01", "qn/tk/c1")
	h.enrol("tk/cl-02", "qn/tk")
	s3 := h.enrol("ha/cl-03", "qn/ha")
	ref := addFakeContent(t, h, "44", 30*time.Second)
	commune := "version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nquiet_hours: [{from: \"22:00\", to: \"05:00\"}]\nprograms:\n" +
		"  - {id: morning, cron: \"0 30 6 * * *\", items: [{content: " + ref + "}]}\n"
	if code, _, msg := h.push(h.admin, "qn/tk/c1", commune); code != 200 {
		t.Fatalf("push: %d %s", code, msg)
	}
	a1, _ := h.connect("c1/cl-01", s1, protocol.Hello{})
	p, _ := verifySchedule(t, h, "c1/cl-01", a1.next(), 0)
	h.connect("ha/cl-03", s3, protocol.Hello{})

	// An emergency for the district reaches the commune's and the district's devices only.
	vol := 0.9
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 13 sắp đổ bộ. Không ra khơi.",
		Title: "Bão số 13", Series: "storm-13", RepeatEvery: "20m", Until: "1h", Volume: &vol}, &res, http.StatusCreated)
	if len(res.Emergencies) != 1 || res.Devices != 2 || res.Sent != 1 || res.Emergencies[0].Plays != 3 {
		t.Fatalf("create: %+v", res)
	}
	em := res.Emergencies[0]
	p, doc := verifySchedule(t, h, "c1/cl-01", a1.next(), p.Revision)
	eps := emergencyPrograms(doc)
	if len(eps) != 2 || eps[0].ID != em.Program || eps[1].ID != fmt.Sprintf("emergency:%d/display", em.ID) {
		t.Fatalf("emergency programmes %+v, want %s and its display", eps, em.Program)
	}
	sp := eps[0]
	at, _ := time.Parse(time.RFC3339, sp.At)
	if sp.Class != scheduler.Emergency || !at.Equal(clk.Now()) || sp.Repeat == nil || sp.Repeat.Count != 2 ||
		sp.Repeat.Every.D() != 20*time.Minute || sp.MaxDuration.D() != 20*time.Minute || sp.Gain() != 0.9 || len(sp.Outputs) != 1 || sp.Outputs[0] != "speakers" {
		t.Fatalf("speakers programme: %+v", sp)
	}
	if !strings.HasPrefix(sp.Items[0].Text, "Bản tin phát lúc ") || sp.Items[1].Text != "Bão số 13 sắp đổ bộ. Không ra khơi." {
		t.Fatalf("speakers items: %+v", sp.Items)
	}
	if doc.Timezone != "Asia/Ho_Chi_Minh" || len(doc.QuietHours) != 1 || len(doc.Programs) != 3 {
		t.Fatalf("the commune's zone, quiet hours and programme must stay: %+v", doc)
	}
	// It plays at once, ahead of everything, and again every 20 minutes.
	tl, err := scheduler.Compile(doc, clk.Now(), clk.Now().Add(time.Hour), scheduler.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for _, s := range tl.Segments {
		if s.Output == "speakers" && s.Program == em.Program && s.Item == 0 {
			starts = append(starts, s.Start)
		}
	}
	if len(starts) != 3 || !starts[0].Equal(clk.Now()) || starts[2].Sub(starts[0]) != 40*time.Minute {
		t.Fatalf("emergency starts %v", starts)
	}
	if e, err := h.db.LatestEffective(context.Background(), "ha/cl-03"); err == nil && strings.Contains(string(e.Document), "emergency:") {
		t.Fatal("a device outside the area got the emergency")
	}

	// A newer bulletin of the same series replaces it everywhere at once.
	clk.Advance(5 * time.Minute)
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Content: ref, Series: "storm-13",
		RepeatEvery: "2h", Text: "Bão số 13 đã vào bờ."}, &res, http.StatusCreated)
	if len(res.Replaced) != 1 || res.Replaced[0] != em.ID || res.Sent != 1 {
		t.Fatalf("replace: %+v", res)
	}
	em2 := res.Emergencies[0]
	p, doc = verifySchedule(t, h, "c1/cl-01", a1.next(), p.Revision)
	eps = emergencyPrograms(doc)
	if len(eps) != 2 || eps[0].ID != em2.Program {
		t.Fatalf("after replace: %+v", eps)
	}
	if it := eps[0].Items[1]; it.Content != ref || it.Fallback != "Bão số 13 đã vào bờ." || it.Duration.D() != 30*time.Second {
		t.Fatalf("recording item: %+v", it)
	}
	if eps[0].Repeat.Count != 5 { // 12 h default expiry, every 2 h
		t.Fatalf("repeat count %d, want 5", eps[0].Repeat.Count)
	}

	var list []api.EmergencyJSON
	h.mustCall(h.admin, "GET", "/api/emergencies", nil, &list, 200)
	if len(list) != 1 || list[0].ID != em2.ID || !list[0].Active {
		t.Fatalf("active list: %+v", list)
	}
	h.mustCall(h.admin, "GET", "/api/emergencies?all=1", nil, &list, 200)
	if len(list) != 2 || list[1].EndReason != "replaced" || list[1].ReplacedBy != em2.ID {
		t.Fatalf("full list: %+v", list)
	}

	// Cancelled: gone from the devices' schedules at once.
	h.mustCall(h.admin, "POST", fmt.Sprintf("/api/emergencies/%d/cancel", em2.ID), nil, &res, 200)
	if res.Sent != 1 || len(res.Emergencies) != 1 || res.Emergencies[0].EndReason != "cancelled" {
		t.Fatalf("cancel: %+v", res)
	}
	_, doc = verifySchedule(t, h, "c1/cl-01", a1.next(), p.Revision)
	if len(emergencyPrograms(doc)) != 0 || len(doc.Programs) != 1 {
		t.Fatalf("after cancel: %+v", doc.Programs)
	}
	var e api.Error
	if code := h.call(h.admin, "POST", fmt.Sprintf("/api/emergencies/%d/cancel", em2.ID), nil, &e); code != http.StatusConflict {
		t.Fatalf("second cancel: %d %s", code, e.Error)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit", nil, &audit, 200)
	got := map[string]bool{}
	for _, a := range audit {
		got[a.Action] = a.Actor == "admin"
	}
	for _, want := range []string{"emergency.create", "emergency.replace", "emergency.cancel"} {
		if !got[want] {
			t.Errorf("no audit entry %s by admin: %+v", want, audit)
		}
	}
}

func TestEmergencyScopeAndErrors(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.addArea("qn/tk/c1")
	h.addArea("qn/tk/c2")
	h.enrol("c1/cl-01", "qn/tk/c1")
	commune := h.userToken("c1-staff", "qn/tk/c1")
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Lũ", Series: "flood"}, &res, http.StatusCreated)
	district := res.Emergencies[0]

	cases := []struct {
		name  string
		token string
		req   api.EmergencyRequest
		code  int
		want  string
	}{
		{"outside scope", commune, api.EmergencyRequest{To: "qn/tk/c2", Text: "x"}, 404, "no area or device qn/tk/c2 in your scope qn/tk/c1"},
		{"above scope", commune, api.EmergencyRequest{To: "qn/tk", Text: "x"}, 404, "in your scope"},
		{"other area's series", commune, api.EmergencyRequest{To: "qn/tk/c1", Text: "x", Series: "flood"}, 409, "choose another --series"},
		{"nothing to say", h.admin, api.EmergencyRequest{To: "qn/tk"}, 400, "give a FILE, --content sha256:… or --text"},
		{"unknown area", h.admin, api.EmergencyRequest{To: "c1", Text: "x"}, 404, "use --to qn/tk/c1"},
		{"a device outside scope", commune, api.EmergencyRequest{To: "device:c2/cl-01", Text: "x"}, 404, "no device c2/cl-01 in your scope"},
		{"an area named as a device", h.admin, api.EmergencyRequest{To: "device:qn/tk", Text: "x"}, 404, "no device qn/tk"},
		{"content not uploaded", h.admin, api.EmergencyRequest{To: "qn/tk", Content: "sha256:" + strings.Repeat("9", 64)}, 400, "loa content add"},
		{"bad content ref", h.admin, api.EmergencyRequest{To: "qn/tk", Content: "abc"}, 400, "sha256"},
		{"repeat too short", h.admin, api.EmergencyRequest{To: "qn/tk", Text: strings.Repeat("cảnh báo ", 40), RepeatEvery: "5s"}, 400, "shorter than the broadcast"},
		{"until past", h.admin, api.EmergencyRequest{To: "qn/tk", Text: "x", Until: "2020-01-01T00:00:00+07:00"}, 400, "already past"},
		{"bad until", h.admin, api.EmergencyRequest{To: "qn/tk", Text: "x", Until: "tomorrow"}, 400, "RFC 3339"},
		{"loud", h.admin, api.EmergencyRequest{To: "qn/tk", Text: "x", Volume: ptr(2.0)}, 400, "from 0 to 1"},
		{"live without url", h.admin, api.EmergencyRequest{To: "qn/tk", Kind: "live"}, 400, "--url"},
		{"live bad url", h.admin, api.EmergencyRequest{To: "qn/tk", Kind: "live", Stream: "ftp://x/y"}, 400, "http://"},
		{"bulletin when", h.admin, api.EmergencyRequest{To: "qn/tk", Kind: "bulletin", Text: "x"}, 400, "--next-session"},
		{"bulletin no session", h.admin, api.EmergencyRequest{To: "qn/tk", Kind: "bulletin", Text: "x", NextSession: true}, 409, "push a schedule first"},
	}
	for _, c := range cases {
		var e api.Error
		code := h.call(c.token, "POST", "/api/emergencies", c.req, &e)
		if code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, code, e.Error, c.code, c.want)
		}
	}
	// Commune staff see the district's emergency that reaches them, but may not cancel it.
	var list []api.EmergencyJSON
	h.mustCall(commune, "GET", "/api/emergencies", nil, &list, 200)
	if len(list) != 1 || list[0].ID != district.ID {
		t.Fatalf("commune's list: %+v", list)
	}
	var e api.Error
	if code := h.call(commune, "POST", fmt.Sprintf("/api/emergencies/%d/cancel", district.ID), nil, &e); code != 403 || !strings.Contains(e.Error, "ask staff of that area") {
		t.Fatalf("commune cancels the district's emergency: %d %s", code, e.Error)
	}
	if code := h.call(commune, "POST", "/api/emergencies/cancel", api.CancelRequest{Series: "nope"}, &e); code != 404 {
		t.Fatalf("cancel unknown series: %d %s", code, e.Error)
	}
	h.mustCall(h.admin, "POST", "/api/emergencies/cancel", api.CancelRequest{Series: "flood"}, &res, 200)
	if len(res.Emergencies) != 1 || res.Emergencies[0].ID != district.ID {
		t.Fatalf("cancel by series: %+v", res)
	}
}

func ptr[T any](v T) *T { return &v }

// An expired emergency drops out of the devices' schedules (pushed to connected ones, and not
// in what a device reconnecting later receives).
func TestEmergencyExpiry(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Truncate(time.Second)}
	h.srv.clock = clk
	h.addArea("qn/tk")
	s1 := h.enrol("tk/cl-01", "qn/tk")
	s2 := h.enrol("tk/cl-02", "qn/tk")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.srv.RunEmergencies(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	a1, _ := h.connect("tk/cl-01", s1, protocol.Hello{})
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Cháy rừng", Until: "10m"}, &res, http.StatusCreated)
	p, doc := verifySchedule(t, h, "tk/cl-01", a1.next(), 0)
	if len(emergencyPrograms(doc)) != 2 || emergencyPrograms(doc)[0].Repeat != nil || emergencyPrograms(doc)[0].MaxDuration.D() != 10*time.Minute {
		t.Fatalf("one-off emergency: %+v", doc.Programs)
	}
	// Within its life, a device that was offline gets it when it connects.
	a2, w := h.connect("tk/cl-02", s2, protocol.Hello{})
	if w.LatestSchedule == nil {
		t.Fatal("offline device not offered the emergency on connect")
	}
	_, doc2 := verifySchedule(t, h, "tk/cl-02", a2.next(), 0)
	if len(emergencyPrograms(doc2)) != 2 {
		t.Fatalf("reconnecting device: %+v", doc2.Programs)
	}
	a2.ws.Close()

	clk.Advance(11 * time.Minute)
	h.srv.bc.Changed() // the loop would wake at the expiry; the test's clock is not real time
	_, doc = verifySchedule(t, h, "tk/cl-01", a1.next(), p.Revision)
	if len(emergencyPrograms(doc)) != 0 {
		t.Fatalf("expired emergency still pushed: %+v", doc.Programs)
	}
	// After expiry, a device reconnecting is not given it.
	a2, _ = h.connect("tk/cl-02", s2, protocol.Hello{ActiveSchedule: &protocol.ScheduleRef{ID: "dev-tk/cl-02", Revision: 1}})
	m := a2.next()
	if sm, ok := m.(*protocol.Schedule); ok {
		var pl protocol.SchedulePayload
		json.Unmarshal(sm.Signed.Payload, &pl)
		if strings.Contains(pl.Document, "emergency:") {
			t.Fatal("a device reconnecting after expiry was sent the expired emergency")
		}
	}
	var list []api.EmergencyJSON
	h.mustCall(h.admin, "GET", "/api/emergencies", nil, &list, 200)
	if len(list) != 0 {
		t.Fatalf("expired emergency listed as active: %+v", list)
	}
}

// Live relays and next-session bulletins are priority programmes.
func TestLiveRelayAndNextSessionBulletin(t *testing.T) {
	h := newTestHub(t)
	loc, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	now := time.Now().In(loc)
	clk := &setClock{t: now.Truncate(time.Second)}
	h.srv.clock = clk
	h.addArea("qn/tk")
	s1 := h.enrol("tk/cl-01", "qn/tk")
	ref := addFakeContent(t, h, "55", 40*time.Second)
	// Sessions at 06:30 and 17:00 local every day.
	doc := "version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n" +
		"  - {id: morning, cron: \"0 30 6 * * *\", max_duration: 20m, items: [{content: " + ref + "}]}\n" +
		"  - {id: evening, cron: \"0 0 17 * * *\", max_duration: 20m, items: [{content: " + ref + "}]}\n"
	h.push(h.admin, "qn/tk", doc)
	a1, _ := h.connect("tk/cl-01", s1, protocol.Hello{})
	p, _ := verifySchedule(t, h, "tk/cl-01", a1.next(), 0)

	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Kind: "bulletin", Content: ref, NextSession: true}, &res, http.StatusCreated)
	want := nextLocal(now, 6, 30)
	if e := nextLocal(now, 17, 0); e.Before(want) {
		want = e
	}
	b := res.Emergencies[0]
	if b.Class != "priority" || !b.Start.Equal(want) || b.Kind != "bulletin" {
		t.Fatalf("bulletin %+v, want priority at %s", b, want)
	}
	p, d := verifySchedule(t, h, "tk/cl-01", a1.next(), p.Revision)
	tl, err := scheduler.Compile(d, want.Add(-time.Minute), want.Add(30*time.Minute), scheduler.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// At the session's start the bulletin plays first and the session's programme resumes after.
	var order []string
	for _, s := range tl.Segments {
		if s.Output == "speakers" {
			order = append(order, strings.SplitN(s.Program, "/", 2)[0]+":"+string(s.Status))
		}
	}
	if len(order) < 2 || !strings.HasPrefix(order[0], "bulletin:") || order[1] != "qn:resumed" && order[1] != "qn:play" {
		t.Fatalf("segments at the session start: %v", order)
	}

	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Kind: "live", Stream: "http://radio.example/qnr.mp3", For: "30m"}, &res, http.StatusCreated)
	live := res.Emergencies[0]
	if live.Class != "priority" || live.Until.Sub(live.Start) != 30*time.Minute || live.Stream != "http://radio.example/qnr.mp3" {
		t.Fatalf("live relay: %+v", live)
	}
	_, d = verifySchedule(t, h, "tk/cl-01", a1.next(), p.Revision)
	var relay *scheduler.Program
	for i := range d.Programs {
		if d.Programs[i].ID == live.Program {
			relay = &d.Programs[i]
		}
	}
	if relay == nil || relay.Class != scheduler.Priority || relay.Items[0].Stream != live.Stream || relay.Items[0].Duration.D() != 30*time.Minute {
		t.Fatalf("relay programme: %+v", relay)
	}
	h.mustCall(h.admin, "POST", "/api/emergencies/cancel", api.CancelRequest{Kind: "live", To: "qn/tk"}, &res, 200)
	if len(res.Emergencies) != 1 || res.Emergencies[0].EndReason != "stopped" {
		t.Fatalf("live stop: %+v", res)
	}
	_, d = verifySchedule(t, h, "tk/cl-01", a1.next(), p.Revision)
	for _, pr := range d.Programs {
		if pr.ID == live.Program {
			t.Fatal("stopped relay still in the schedule")
		}
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit", nil, &audit, 200)
	acts := ""
	for _, a := range audit {
		acts += a.Action + " "
	}
	for _, w := range []string{"bulletin.create", "live.start", "live.stop"} {
		if !strings.Contains(acts, w) {
			t.Errorf("audit lacks %s: %s", w, acts)
		}
	}
}

func nextLocal(now time.Time, h, m int) time.Time {
	t := time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, now.Location())
	if !t.After(now) {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

// racingStore composes and pushes the devices of the whole tree right after each change to
// the emergencies is stored, as the expiry loop (woken by the change) or a reconnecting device
// may do before the request's own push.
type racingStore struct {
	*store.DB
	srv *Server
}

func (r *racingStore) AddEmergencies(ctx context.Context, rows []store.Emergency) ([]store.Emergency, []store.Emergency, error) {
	a, b, err := r.DB.AddEmergencies(ctx, rows)
	r.srv.bc.Changed()
	r.srv.link.Push(ctx, store.AreaTarget("qn"))
	return a, b, err
}

func (r *racingStore) EndEmergencies(ctx context.Context, ids []int64, reason, by string) ([]store.Emergency, error) {
	ended, err := r.DB.EndEmergencies(ctx, ids, reason, by)
	r.srv.bc.Changed()
	r.srv.link.Push(ctx, store.AreaTarget("qn"))
	return ended, err
}

// The devices and sent counts of an emergency, its update and its cancel are what happened to
// the devices, also when another push composed them first; a connected device gets each
// change once.
func TestEmergencyCountsWhenAnotherPushComposesFirst(t *testing.T) {
	race := &racingStore{}
	h := newTestHubWith(t, t.TempDir(), func(db *store.DB) Store { race.DB = db; return race })
	race.srv = h.srv
	h.addArea("qn/tk")
	s1 := h.enrol("tk/cl-01", "qn/tk")
	h.enrol("tk/cl-02", "qn/tk")
	a1, _ := h.connect("tk/cl-01", s1, protocol.Hello{})
	held := uint64(0)
	next := func() {
		t.Helper()
		p, _ := verifySchedule(t, h, "tk/cl-01", a1.next(), held)
		held = p.Revision
	}
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 13.", Series: "storm-13"}, &res, http.StatusCreated)
	if res.Devices != 2 || res.Sent != 1 {
		t.Fatalf("create: devices %d sent %d, want 2 and 1", res.Devices, res.Sent)
	}
	next()
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 13 đã vào bờ.", Series: "storm-13"}, &res, http.StatusCreated)
	if len(res.Replaced) != 1 || res.Devices != 2 || res.Sent != 1 {
		t.Fatalf("update: replaced %v devices %d sent %d, want 1, 2 and 1", res.Replaced, res.Devices, res.Sent)
	}
	next()
	h.mustCall(h.admin, "POST", "/api/emergencies/cancel", api.CancelRequest{Series: "storm-13"}, &res, http.StatusOK)
	if res.Devices != 2 || res.Sent != 1 {
		t.Fatalf("cancel: devices %d sent %d, want 2 and 1", res.Devices, res.Sent)
	}
	next()
	select {
	case m := <-a1.msgs:
		t.Fatalf("a second message after the cancel: %T", m)
	default:
	}
}

// A typhoon warning for three communes is one broadcast (one series, a row per commune); a
// later broadcast of the series that names fewer areas is refused naming the others unless
// asked to end it there; a relay starts and stops on several areas at once.
func TestBroadcastToSeveralAreas(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2", "qn/tk/c3"} {
		h.addArea(a)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		h.enrol(c+"/cl-01", "qn/tk/"+c)
	}
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/c1, qn/tk/c2,qn/tk/c3", Text: "Bão số 13.", Series: "storm-13",
		RepeatEvery: "2h"}, &res, http.StatusCreated)
	if len(res.Emergencies) != 3 || res.Devices != 3 {
		t.Fatalf("a warning for three communes: %+v", res)
	}
	// The docs' old way, once per commune: no longer silently narrows the warning.
	var e api.Error
	if code := h.call(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/c3", Text: "Bão số 13 (c3).", Series: "storm-13"}, &e); code != http.StatusConflict ||
		!strings.Contains(e.Error, "qn/tk/c1, qn/tk/c2") || !strings.Contains(e.Error, "--replace-areas") {
		t.Fatalf("narrowing the series by accident: %d %q", code, e.Error)
	}
	var list []api.EmergencyJSON
	h.mustCall(h.admin, "GET", "/api/emergencies?series=storm-13", nil, &list, http.StatusOK)
	if len(list) != 3 {
		t.Fatalf("after the refused narrowing %d rows are on the air, want 3", len(list))
	}
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/c3", Text: "Bão số 13 (c3).", Series: "storm-13", ReplaceAreas: true}, &res, http.StatusCreated)
	if len(res.Replaced) != 3 || len(res.Emergencies) != 1 {
		t.Fatalf("narrowing on purpose: %+v", res)
	}
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{Kind: "live", To: "qn/tk/c1,qn/tk/c2", Stream: "http://radio.example/qnr.mp3"}, &res, http.StatusCreated)
	if len(res.Emergencies) != 2 {
		t.Fatalf("relay to two communes: %+v", res)
	}
	h.mustCall(h.admin, "POST", "/api/emergencies/cancel", api.CancelRequest{Kind: "live", To: "qn/tk/c1,qn/tk/c2"}, &res, http.StatusOK)
	if len(res.Emergencies) != 2 {
		t.Fatalf("stopping the relay on both: %+v", res)
	}
}

// A broadcast can name single devices beside areas: only those devices get it (not their
// neighbours), a device inside a named area is reached once, ending or narrowing the series
// names the device, and a relay stops on one device only.
func TestBroadcastToDevices(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2"} {
		h.addArea(a)
	}
	s1 := h.enrol("c1/cl-01", "qn/tk/c1")
	s2 := h.enrol("c1/cl-02", "qn/tk/c1")
	s3 := h.enrol("c2/cl-01", "qn/tk/c2")
	h.enrol("c2/cl-02", "qn/tk/c2")
	a1, _ := h.connect("c1/cl-01", s1, protocol.Hello{})
	a2, _ := h.connect("c1/cl-02", s2, protocol.Hello{})
	a3, _ := h.connect("c2/cl-01", s3, protocol.Hello{})

	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "c1/cl-01, qn/tk/c2, device:c2/cl-01", Text: "Sạt lở đất.",
		Series: "landslide"}, &res, http.StatusCreated)
	if len(res.Emergencies) != 2 || res.Devices != 3 {
		t.Fatalf("one cluster and one commune (whose cluster is named too): %d rows, %d devices, want 2 and 3: %+v", len(res.Emergencies), res.Devices, res)
	}
	byDevice := map[string]api.EmergencyJSON{}
	for _, e := range res.Emergencies {
		byDevice[e.Device] = e
	}
	if e := byDevice["c1/cl-01"]; e.Area != "qn/tk/c1" {
		t.Fatalf("the cluster's row: %+v, want area qn/tk/c1 and device c1/cl-01", res.Emergencies)
	}
	if e := byDevice[""]; e.Area != "qn/tk/c2" {
		t.Fatalf("the commune's row: %+v", res.Emergencies)
	}
	for _, a := range []*fakeAgent{a1, a3} {
		_, doc := verifySchedule(t, h, a.id, a.next(), 0)
		if len(emergencyPrograms(doc)) != 2 {
			t.Fatalf("%s: %+v, want the warning's two programmes", a.id, doc.Programs)
		}
	}
	select {
	case m := <-a2.msgs:
		t.Fatalf("the named cluster's neighbour got %T", m)
	case <-time.After(200 * time.Millisecond):
	}
	// The series names the cluster when a broadcast would end it there by leaving it out.
	var e api.Error
	if code := h.call(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/c2", Text: "x", Series: "landslide"}, &e); code != http.StatusConflict ||
		!strings.Contains(e.Error, "on the air in c1/cl-01,") {
		t.Fatalf("narrowing away from the cluster: %d %q", code, e.Error)
	}
	// Commune staff of c2 cannot put a warning on c1's cluster.
	commune := h.userToken("c2-staff", "qn/tk/c2")
	if code := h.call(commune, "POST", "/api/emergencies", api.EmergencyRequest{To: "c1/cl-01", Text: "x"}, &e); code != http.StatusNotFound {
		t.Fatalf("another commune's cluster: %d %q", code, e.Error)
	}
	// A relay on two clusters stops on one of them only.
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{Kind: "live", To: "c1/cl-01,c1/cl-02", Stream: "http://radio.example/qnr.mp3"}, &res, http.StatusCreated)
	if len(res.Emergencies) != 2 {
		t.Fatalf("relay to two clusters: %+v", res)
	}
	h.mustCall(h.admin, "POST", "/api/emergencies/cancel", api.CancelRequest{Kind: "live", To: "c1/cl-02"}, &res, http.StatusOK)
	if len(res.Emergencies) != 1 || res.Emergencies[0].Device != "c1/cl-02" {
		t.Fatalf("stopping the relay on one cluster: %+v", res.Emergencies)
	}
	var list []api.EmergencyJSON
	h.mustCall(h.admin, "GET", "/api/emergencies?kind=live", nil, &list, http.StatusOK)
	if len(list) != 1 || list[0].Device != "c1/cl-01" {
		t.Fatalf("relays on the air after stopping one: %+v", list)
	}
	// A revoked device is refused by name.
	h.mustCall(h.admin, "DELETE", "/api/devices/c1/cl-02", nil, nil, http.StatusOK)
	if code := h.call(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "c1/cl-02", Text: "x"}, &e); code != http.StatusConflict || !strings.Contains(e.Error, "revoked") {
		t.Fatalf("a revoked device: %d %q", code, e.Error)
	}
}
