package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/broadcast"
	"github.com/loa-project/loa/hub/cap"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

func (h *testHub) postCAP(token string, body []byte) (int, api.CAPResponse, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.http.URL+"/api/cap", bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/cap+xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var res api.CAPResponse
	var e api.Error
	json.Unmarshal(b, &res)
	json.Unmarshal(b, &e)
	return resp.StatusCode, res, e.Error
}

func capFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("cap", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// capHub is a hub with the Quảng Nam CAP area map, a province token and a device in Cẩm Thanh,
// its clock on the morning of the typhoon series' first alert.
func capHub(t *testing.T) (*testHub, *setClock, string) {
	h := newTestHub(t)
	loc, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	clk := &setClock{t: time.Date(2026, 11, 26, 8, 5, 0, 0, loc)}
	h.srv.clock = clk
	tok, err := AddUser(context.Background(), h.db, "vndma", "", "quang-nam", "Quảng Nam")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"quang-nam/hoi-an", "quang-nam/hoi-an/cam-thanh", "quang-nam/hoi-an/tan-hiep", "quang-nam/tam-ky", "quang-nam/tam-ky/tam-thanh"} {
		h.mustCall(tok, "POST", "/api/areas", api.AreaJSON{ID: a}, nil, http.StatusCreated)
	}
	h.mustCall(tok, "POST", "/api/devices", api.EnrolRequest{ID: "cam-thanh/cl-01", Area: "quang-nam/hoi-an/cam-thanh"}, nil, http.StatusCreated)
	if err := h.srv.ConfigureCAP(broadcast.CAPConfig{AreaMap: filepath.Join("cap", "testdata", "quang-nam-areas.yaml")}); err != nil {
		t.Fatal(err)
	}
	return h, clk, tok
}

func TestCAPAlertUpdateCancel(t *testing.T) {
	h, clk, tok := capHub(t)
	ctx := context.Background()
	// The recording is served on loopback below: allowed here on purpose.
	if err := h.srv.ConfigureCAP(broadcast.CAPConfig{AreaMap: filepath.Join("cap", "testdata", "quang-nam-areas.yaml"), AudioFromPrivate: true}); err != nil {
		t.Fatal(err)
	}
	// The alert's recording, served locally with its SHA-1 in the alert.
	wav := filepath.Join(t.TempDir(), "ts12.wav")
	if b, err := exec.Command("sox", "-n", "-r", "16000", "-c", "1", wav, "synth", "2", "sine", "440").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, b)
	}
	audio, _ := os.ReadFile(wav)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(audio) }))
	defer as.Close()
	storm := string(capFile(t, "quang-nam-storm.xml"))
	storm = strings.Replace(storm, "https://canhbao.example.vn/audio/ts12-001.mp3", as.URL+"/ts12-001.wav", 1)
	storm = regexp.MustCompile(`<digest>[0-9a-f]+</digest>`).ReplaceAllString(storm, fmt.Sprintf("<digest>%x</digest>", sha1.Sum(audio)))

	code, res, msg := h.postCAP(tok, []byte(storm))
	if code != 200 || !res.Applied || len(res.Result.Emergencies) != 2 {
		t.Fatalf("alert: %d %q %+v", code, msg, res)
	}
	var d cap.Decision
	json.Unmarshal(res.Decision, &d)
	if d.Action != cap.Create || strings.Join(d.Areas, " ") != "quang-nam/hoi-an/cam-thanh quang-nam/hoi-an/tan-hiep" {
		t.Fatalf("decision: %+v", d)
	}
	e := res.Result.Emergencies[0]
	until := time.Date(2026, 11, 27, 20, 0, 0, 0, time.FixedZone("", 7*3600))
	if e.Class != "emergency" || e.RepeatEvery != "2h0m0s" || !e.Until.Equal(until) || e.Series != "cap:canhbao@vndma.example.vn,VNDMA-2026-TS12-001" ||
		e.Source != "cap:canhbao@vndma.example.vn,VNDMA-2026-TS12-001" || !strings.HasPrefix(e.Content, "sha256:") ||
		!strings.Contains(e.Text, "Bản tin phát hành lúc 8 giờ 00 ngày 26/11/2026") {
		t.Fatalf("emergency from the alert: %+v %v", e, res.Result.Warnings)
	}
	if res.Result.Devices != 1 {
		t.Fatalf("devices given the alert: %d", res.Result.Devices)
	}
	eff, _ := h.db.LatestEffective(ctx, "cam-thanh/cl-01")
	var pl protocol.SchedulePayload
	json.Unmarshal(eff.Document, &pl)
	if !strings.Contains(pl.Document, e.Content) || !strings.Contains(pl.Document, `"fallback_text":"Bản tin phát hành lúc`) {
		t.Fatalf("device schedule lacks the recording with its spoken fallback: %s", pl.Document)
	}

	// A sender's retry (or the feed listing it again) is applied once.
	if code, res, _ := h.postCAP(tok, []byte(storm)); code != 200 || res.Applied || !strings.Contains(res.Note, "already applied") {
		t.Fatalf("repeat: %d %+v", code, res)
	}

	// Update: the series moves to Tam Thanh (a 10 km circle off Tam Kỳ), replacing both.
	clk.Advance(6 * time.Hour)
	code, res, msg = h.postCAP(tok, capFile(t, "quang-nam-storm-update.xml"))
	if code != 200 || !res.Applied || len(res.Result.Replaced) != 2 || len(res.Result.Emergencies) != 1 ||
		res.Result.Emergencies[0].Area != "quang-nam/tam-ky/tam-thanh" || res.Result.Emergencies[0].Series != e.Series {
		t.Fatalf("update: %d %q %+v", code, msg, res)
	}
	eff, _ = h.db.LatestEffective(ctx, "cam-thanh/cl-01")
	json.Unmarshal(eff.Document, &pl)
	if strings.Contains(pl.Document, "emergency:") {
		t.Fatal("Cẩm Thanh still has the replaced alert")
	}

	// Cancel ends the series.
	clk.Advance(16 * time.Hour)
	code, res, msg = h.postCAP(tok, capFile(t, "quang-nam-storm-cancel.xml"))
	if code != 200 || !res.Applied || len(res.Result.Emergencies) != 1 || res.Result.Emergencies[0].EndReason != "cancelled" {
		t.Fatalf("cancel: %d %q %+v", code, msg, res)
	}
	var list []api.EmergencyJSON
	h.mustCall(tok, "GET", "/api/emergencies", nil, &list, 200)
	if len(list) != 0 {
		t.Fatalf("on the air after cancel: %+v", list)
	}
	var audit []api.AuditJSON
	h.mustCall(tok, "GET", "/api/audit?actor=vndma", nil, &audit, 200)
	acts := ""
	for _, a := range audit {
		acts += a.Action + " "
	}
	for _, w := range []string{"cap.create", "cap.replace", "cap.cancel", "emergency.create", "emergency.replace", "emergency.cancel"} {
		if !strings.Contains(acts, w) {
			t.Errorf("audit lacks %s: %s", w, acts)
		}
	}
}

func TestCAPRefusedAndIgnored(t *testing.T) {
	h, clk, tok := capHub(t)
	for _, f := range []string{"truncated.xml", "bomb-billion-laughs.xml", "bomb-external-entity.xml", "wrong-namespace-cap11.xml"} {
		code, _, msg := h.postCAP(tok, capFile(t, f))
		if code != 400 || !strings.HasPrefix(msg, "refused CAP alert") {
			t.Errorf("%s: %d %q, want 400 with the reason", f, code, msg)
		}
	}
	if code, _, msg := h.postCAP(tok, []byte(strings.Replace(string(capFile(t, "quang-nam-storm.xml")), "<status>Actual</status>", "<status>Real</status>", 1))); code != 400 || !strings.Contains(msg, `alert/status: "Real"`) {
		t.Errorf("bad status: %d %q", code, msg)
	}
	// The specification's examples are refused only for being outside Quảng Nam (at their
	// time) or ignored as long expired (now).
	for _, f := range []string{"oasis-a1-homeland-security.xml", "oasis-a2-thunderstorm.xml", "oasis-a3-earthquake.xml", "oasis-a4-amber.xml"} {
		body := capFile(t, f)
		a, err := cap.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		clk.mu.Lock()
		saved := clk.t
		clk.t = a.Sent.Add(time.Minute)
		clk.mu.Unlock()
		code, res, msg := h.postCAP(tok, body)
		if code != 422 && !(code == 200 && !res.Applied) {
			t.Errorf("%s at its time: %d %q %+v, want 422 unmapped (or ignored)", f, code, msg, res)
		}
		if code == 422 && !strings.Contains(msg, "match no hub area") {
			t.Errorf("%s: %q", f, msg)
		}
		clk.mu.Lock()
		clk.t = saved
		clk.mu.Unlock()
		if code, res, msg := h.postCAP(tok, body); code != 200 || res.Applied || !strings.Contains(res.Note, "expired") {
			t.Errorf("%s now: %d %q %+v, want ignored as expired", f, code, msg, res)
		}
	}
	// A test message never reaches loudspeakers unless configured.
	test := strings.Replace(string(capFile(t, "quang-nam-storm.xml")), "<status>Actual</status>", "<status>Test</status>", 1)
	if code, res, _ := h.postCAP(tok, []byte(test)); code != 200 || res.Applied {
		t.Fatalf("test alert: %d %+v", code, res)
	}
	if l, _ := h.db.ListEmergencies(context.Background(), store.EmergencyFilter{}); len(l) != 0 {
		t.Fatalf("emergencies from refused or ignored alerts: %+v", l)
	}
	// Scope and authentication.
	commune := h.userToken("ct", "quang-nam/hoi-an/cam-thanh")
	if code, _, msg := h.postCAP(commune, capFile(t, "quang-nam-storm.xml")); code != 403 || !strings.Contains(msg, "reaches areas outside your scope") || strings.Contains(msg, "tan-hiep") {
		t.Fatalf("commune token: %d %q", code, msg)
	}
	if code, _, _ := h.postCAP("", capFile(t, "quang-nam-storm.xml")); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	plain := newTestHub(t)
	if code, _, msg := plain.postCAP(plain.admin, capFile(t, "quang-nam-storm.xml")); code != 503 || !strings.Contains(msg, "cap.area_map") {
		t.Fatalf("hub without CAP: %d %q", code, msg)
	}
}

// capFeedActor is who feed alerts are attributed to in the audit log and the emergencies.
const capFeedActor = "cap-feed"

func TestCAPFeedPolled(t *testing.T) {
	h, _, _ := capHub(t)
	storm := capFile(t, "quang-nam-storm.xml")
	var fetches, feedReads atomic.Int64
	fs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/feed.atom":
			feedReads.Add(1)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title>
<entry><id>urn:ts12-001</id><updated>2026-11-26T01:00:00Z</updated><link rel="alternate" type="application/cap+xml" href="ts12-001.xml"/></entry>
<entry><id>urn:broken</id><updated>2026-11-26T01:00:00Z</updated><link rel="alternate" type="application/cap+xml" href="broken.xml"/></entry></feed>`))
		case "/ts12-001.xml":
			fetches.Add(1)
			w.Write(storm)
		case "/broken.xml":
			w.Write([]byte("<alert"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer fs.Close()
	off := false
	if err := h.srv.ConfigureCAP(broadcast.CAPConfig{AreaMap: filepath.Join("cap", "testdata", "quang-nam-areas.yaml"),
		FeedURL: fs.URL + "/feed.atom", FeedInterval: time.Second, FetchAudio: &off}); err != nil {
		t.Fatal(err)
	}
	// The real loop polls; two reads of the feed are two polls. Stopping waits for the poll.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.srv.RunEmergencies(ctx); close(done) }()
	testkit.WaitFor(t, "two polls of the feed", 10*time.Second, func() bool { return feedReads.Load() >= 2 })
	stop()
	<-done
	l, _ := h.db.ListEmergencies(context.Background(), store.EmergencyFilter{})
	if len(l) != 2 || l[0].CreatedBy != capFeedActor || fetches.Load() != 1 {
		t.Fatalf("after two polls: %d emergencies (want 2, one per area), %d fetches (want 1)", len(l), fetches.Load())
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?actor=cap-feed", nil, &audit, 200)
	// The province staff see nothing of qn here; the store has the entries.
	es, _ := h.db.ListAudit(context.Background(), store.AuditFilter{Actor: capFeedActor})
	acts := ""
	for _, e := range es {
		acts += e.Action + " "
	}
	if !strings.Contains(acts, "cap.create") || !strings.Contains(acts, "cap.refused") {
		t.Fatalf("feed audit: %s", acts)
	}
}

func TestCAPConfigBlock(t *testing.T) {
	dir := t.TempDir()
	c, err := ParseConfig([]byte("data_dir: d\nsigning_key_file: k\ncap:\n  area_map: areas.yaml\n  feed_url: https://x.example/feed\n  feed_interval: 30s\n"+
		"  mapping:\n    allow_test: true\n    lifetime: 6h\n    repeats: [{categories: [Met], class: emergency, every: 1h}]\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.CAP == nil || c.CAP.AreaMap != filepath.Join(dir, "areas.yaml") || c.CAP.FeedInterval != 30*time.Second ||
		!c.CAP.Mapping.AllowTest || c.CAP.Mapping.Lifetime != 6*time.Hour || c.CAP.Mapping.Repeats[0].Every != time.Hour {
		t.Fatalf("cap block: %+v", c.CAP)
	}
	if _, err := ParseConfig([]byte("data_dir: d\nsigning_key_file: k\ncap:\n  area_mapp: x\n"), dir); err == nil {
		t.Fatal("a misspelt cap key was accepted")
	}
	h := newTestHub(t)
	for _, bad := range []broadcast.CAPConfig{{}, {AreaMap: filepath.Join(dir, "missing.yaml")},
		{AreaMap: filepath.Join("cap", "testdata", "quang-nam-areas.yaml"), FeedInterval: time.Millisecond}} {
		if err := h.srv.ConfigureCAP(bad); err == nil || !strings.HasPrefix(err.Error(), "cap: ") {
			t.Errorf("ConfigureCAP(%+v) = %v, want an error naming cap", bad, err)
		}
	}
}

// CAP 1.2 lets an Update or Cancel reference only the latest earlier message of its series.
// Such an update replaces the series (no second broadcast of the same storm), and such a
// cancel ends it (the warning does not go on repeating every two hours).
func TestCAPSeriesMatchedThroughAnyMessage(t *testing.T) {
	h, clk, tok := capHub(t)
	storm := regexp.MustCompile(`(?s)<resource>.*</resource>`).ReplaceAll(capFile(t, "quang-nam-storm.xml"), nil)
	if code, res, msg := h.postCAP(tok, storm); code != 200 || !res.Applied {
		t.Fatalf("alert: %d %q %+v", code, msg, res)
	}
	clk.Advance(6 * time.Hour)
	if code, res, msg := h.postCAP(tok, capFile(t, "quang-nam-storm-update.xml")); code != 200 || len(res.Result.Replaced) != 2 {
		t.Fatalf("first update: %d %q %+v", code, msg, res)
	}
	// A second update naming only the first update.
	clk.Advance(2 * time.Hour)
	up2 := strings.NewReplacer("VNDMA-2026-TS12-002", "VNDMA-2026-TS12-004", "<sent>2026-11-26T14:00:00+07:00", "<sent>2026-11-26T16:00:00+07:00",
		"VNDMA-2026-TS12-001,2026-11-26T08:00:00+07:00", "VNDMA-2026-TS12-002,2026-11-26T14:00:00+07:00").Replace(string(capFile(t, "quang-nam-storm-update.xml")))
	code, res, msg := h.postCAP(tok, []byte(up2))
	if code != 200 || !res.Applied || len(res.Result.Replaced) != 1 || len(res.Result.Emergencies) != 1 ||
		res.Result.Emergencies[0].Series != "cap:canhbao@vndma.example.vn,VNDMA-2026-TS12-001" {
		t.Fatalf("update naming only the previous update: %d %q %+v", code, msg, res)
	}
	var list []api.EmergencyJSON
	h.mustCall(tok, "GET", "/api/emergencies", nil, &list, 200)
	if len(list) != 1 {
		t.Fatalf("%d broadcasts on the air for one storm, want 1: %+v", len(list), list)
	}
	// A cancel naming only the last update.
	clk.Advance(2 * time.Hour)
	cancel := strings.NewReplacer("VNDMA-2026-TS12-003", "VNDMA-2026-TS12-005",
		"canhbao@vndma.example.vn,VNDMA-2026-TS12-002,2026-11-26T14:00:00+07:00 canhbao@vndma.example.vn,VNDMA-2026-TS12-001,2026-11-26T08:00:00+07:00",
		"canhbao@vndma.example.vn,VNDMA-2026-TS12-004,2026-11-26T16:00:00+07:00").Replace(string(capFile(t, "quang-nam-storm-cancel.xml")))
	if !strings.Contains(cancel, "TS12-004,") {
		t.Fatal("the cancel fixture changed: fix the replacement")
	}
	code, res, msg = h.postCAP(tok, []byte(cancel))
	if code != 200 || !res.Applied || len(res.Result.Emergencies) != 1 {
		t.Fatalf("cancel naming only the last update: %d %q %+v", code, msg, res)
	}
	h.mustCall(tok, "GET", "/api/emergencies", nil, &list, 200)
	if len(list) != 0 {
		t.Fatalf("still on the air after the cancel: %+v", list)
	}
}

// An alert's audio URL is written by whoever sends the alert: by default the hub does not
// fetch it from its own network (loopback here), and speaks the alert's text instead.
func TestCAPAudioNotFetchedFromPrivateAddresses(t *testing.T) {
	h, _, tok := capHub(t)
	var hits atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer as.Close()
	storm := strings.Replace(string(capFile(t, "quang-nam-storm.xml")), "https://canhbao.example.vn/audio/ts12-001.mp3", as.URL+"/internal", 1)
	code, res, msg := h.postCAP(tok, []byte(storm))
	if code != 200 || !res.Applied {
		t.Fatalf("alert: %d %q %+v", code, msg, res)
	}
	if hits.Load() != 0 {
		t.Fatalf("the hub fetched the alert's audio from %s", as.URL)
	}
	if e := res.Result.Emergencies[0]; e.Content != "" || !strings.Contains(strings.Join(res.Result.Warnings, " "), "not a public address") {
		t.Fatalf("emergency %+v warnings %v: want the text spoken and a warning naming the refusal", e, res.Result.Warnings)
	}
}
