package hub

import (
	"context"
	"github.com/loa-project/loa/hub/api"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

func TestWrongOrRevokedSecretRefused(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")
	other := h.enrol("c1/cl-02", "qn/c1")
	for name, auth := range map[string][2]string{
		"wrong secret":          {"c1/cl-01", other},
		"unknown device":        {"c1/cl-99", secret},
		"malformed secret":      {"c1/cl-01", "hunter2"},
		"secret of its sibling": {"c1/cl-02", secret},
	} {
		_, resp, err := h.dial(auth[0], auth[1])
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: err %v, response %v; want 401 before any upgrade", name, err, resp)
		}
	}
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})
	h.mustCall(h.admin, "DELETE", "/api/devices/c1/cl-01", nil, nil, http.StatusOK)
	if _, err := a.closed(); err == nil {
		t.Fatal("the revoked device's live connection stayed open")
	}
	if _, resp, err := h.dial("c1/cl-01", secret); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked device reconnects: %v %v", err, resp)
	}
}

// The hub answers hello with welcome and acknowledges every confirmation exactly once, across
// reconnects, duplicates and gaps.
func TestConfirmationsExactlyOnce(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	id := "c1/cl-01"
	secret := h.enrol(id, "qn/c1")
	before := time.Now()
	a, w := h.connect(id, secret, protocol.Hello{Journal: protocol.JournalState{HighWater: 6}})
	if w.ResendFrom != 1 || w.Re != "a-hello" || w.HubTime.Before(before) || w.HubTime.Before(w.HelloReceivedAt) {
		t.Fatalf("welcome %+v: want resend_from 1, re a-hello, hub times now", w)
	}
	batch := func(seqs ...uint64) *protocol.Confirmations {
		m := &protocol.Confirmations{}
		for _, s := range seqs {
			m.Records = append(m.Records, confirmation(id, s))
		}
		return m
	}
	ackOf := func(a *fakeAgent, m *protocol.Confirmations) uint64 {
		t.Helper()
		a.send(m)
		r := a.next()
		ack, ok := r.(*protocol.Ack)
		if !ok || ack.Re != m.ID {
			t.Fatalf("answer to confirmations %s: %#v, want its ack", m.ID, r)
		}
		return ack.Seq
	}
	if got := ackOf(a, batch(1, 2, 4)); got != 2 {
		t.Fatalf("ack after 1,2,4 = %d, want 2 (4 is behind a gap)", got)
	}
	if got := ackOf(a, batch(2, 1, 2)); got != 2 {
		t.Fatalf("ack after duplicates = %d, want 2", got)
	}
	a.ws.Close() // the link drops before 3 arrives

	a, w = h.connect(id, secret, protocol.Hello{Journal: protocol.JournalState{HighWater: 6, Acked: 2}})
	if w.ResendFrom != 3 {
		t.Fatalf("resend_from after reconnect = %d, want 3", w.ResendFrom)
	}
	if got := ackOf(a, batch(3, 4, 5, 6)); got != 6 {
		t.Fatalf("ack after the gap is filled = %d, want 6", got)
	}
	a.ws.Close()
	a, w = h.connect(id, secret, protocol.Hello{})
	if w.ResendFrom != 7 {
		t.Fatalf("resend_from = %d, want 7", w.ResendFrom)
	}
	if got := ackOf(a, batch(1, 2, 3, 4, 5, 6)); got != 6 {
		t.Fatalf("ack of a full resend = %d, want 6", got)
	}
	var cs []api.ConfirmationJSON
	h.mustCall(h.admin, "GET", "/api/confirmations?device="+id, nil, &cs, http.StatusOK)
	if len(cs) != 6 {
		t.Fatalf("hub holds %d confirmations, want 6 (each once)", len(cs))
	}
	for i, c := range cs {
		if c.Seq != int64(i+1) || c.Area != "qn/c1" || c.Result != "completed" || c.PlayedS != 30 {
			t.Errorf("confirmation %d = %+v", i, c)
		}
	}
	// A record claiming another device is refused and closes the connection.
	a.send(batch(7))
	bad := &protocol.Confirmations{Records: []protocol.Confirmation{confirmation("c1/cl-02", 1)}}
	if ack := a.next().(*protocol.Ack); ack.Seq != 7 {
		t.Fatalf("ack = %d, want 7", ack.Seq)
	}
	a.send(bad)
	msgs, err := a.closed()
	if len(msgs) != 1 || msgs[0].(*protocol.ErrorMessage).Code != protocol.CodeUnauthorized || closeCode(err) != websocket.ClosePolicyViolation {
		t.Fatalf("foreign record: got %v then %v; want an unauthorized error and close 1008", msgs, err)
	}
}

func TestMalformedAndOversizedMessages(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	secret := h.enrol("c1/cl-01", "qn/c1")

	cases := []struct {
		name  string
		frame string
		code  string
		close int
	}{
		{"not JSON", "{{{", "bad_json", websocket.ClosePolicyViolation},
		{"unknown type", `{"v":1,"type":"launch","id":"x"}`, "unknown_type", websocket.ClosePolicyViolation},
		{"wrong version", `{"v":9,"type":"hello","id":"x"}`, "unsupported_version", websocket.ClosePolicyViolation},
		{"status before hello", `{"v":1,"type":"status","id":"x","at":"2026-11-26T06:00:00Z","uptime_s":1}`, protocol.CodeHelloFirst, websocket.ClosePolicyViolation},
		{"hello of another device", `{"v":1,"type":"hello","id":"x","device_id":"c1/cl-02","software_version":"x","journal":{"high_water":0,"acked":0},"store":{"items":0,"bytes":0,"free_bytes":0}}`, protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
	}
	for _, c := range cases {
		ws, _, err := h.dial("c1/cl-01", secret)
		if err != nil {
			t.Fatal(err)
		}
		ws.WriteMessage(websocket.TextMessage, []byte(c.frame))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("%s: no error message: %v", c.name, err)
		}
		m, err := protocol.Decode(b)
		em, ok := m.(*protocol.ErrorMessage)
		if err != nil || !ok || em.Code != c.code {
			t.Errorf("%s: answer %s, want an error with code %s", c.name, b, c.code)
		}
		_, _, err = ws.ReadMessage()
		if closeCode(err) != c.close {
			t.Errorf("%s: connection ended with %v, want close %d", c.name, err, c.close)
		}
		ws.Close()
	}

	// Oversized: a frame above the 1 MiB limit after hello.
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})
	big := `{"v":1,"type":"status","id":"x","at":"2026-11-26T06:00:00Z","uptime_s":1,"pad":"` + strings.Repeat("x", protocol.DefaultMaxMessageBytes) + `"}`
	a.ws.WriteMessage(websocket.TextMessage, []byte(big))
	if _, err := a.closed(); closeCode(err) != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame: %v, want close 1009", err)
	}
	// A malformed message mid-session.
	a, _ = h.connect("c1/cl-01", secret, protocol.Hello{})
	a.ws.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"confirmations","id":"q","records":[{"device":"c1/cl-01","seq":"one","result":"completed"}]}`))
	msgs, _ := a.closed()
	if len(msgs) != 1 || msgs[0].(*protocol.ErrorMessage).Code != "invalid_field" || !strings.Contains(msgs[0].(*protocol.ErrorMessage).Message, "records[0].seq") {
		t.Fatalf("malformed record: %v", msgs)
	}
	// The hub is unharmed: a fresh connection works and its API answers.
	a, w := h.connect("c1/cl-01", secret, protocol.Hello{})
	if w.ResendFrom != 1 {
		t.Fatalf("welcome after abuse: %+v", w)
	}
	a.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation("c1/cl-01", 1)}})
	if ack := a.next().(*protocol.Ack); ack.Seq != 1 {
		t.Fatalf("ack %d", ack.Seq)
	}
	h.mustCall(h.admin, "GET", "/api/status", nil, nil, http.StatusOK)
}

func addFakeContent(t testing.TB, h *testHub, hexByte string, dur time.Duration) string {
	t.Helper()
	ref := "sha256:" + strings.Repeat(hexByte, 32)
	if _, _, err := h.db.AddContent(context.Background(), store.Content{Ref: ref, Size: 1000, Duration: dur, MIME: "audio/mpeg", Title: "clip " + hexByte}); err != nil {
		t.Fatal(err)
	}
	return ref
}

func docWith(id, tz, prog, ref string) string {
	return "version: 1\nid: " + id + "\nrevision: 1\ntimezone: " + tz + "\nprograms:\n  - id: " + prog +
		"\n    cron: \"0 30 6 * * *\"\n    items:\n      - content: " + ref + "\n"
}

// verifySchedule checks a schedule message as an agent would and returns its document.
func verifySchedule(t *testing.T, h *testHub, device string, m protocol.Message, held uint64) (*protocol.SchedulePayload, *scheduler.Document) {
	t.Helper()
	sm, ok := m.(*protocol.Schedule)
	if !ok {
		t.Fatalf("%s got %T, want a schedule", device, m)
	}
	v, err := protocol.NewVerifier(protocol.TrustedKeys{"test-key": h.pub}, device, realClock{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.VerifySchedule(sm.Signed, func(string) (uint64, bool) { return held, held > 0 })
	if err != nil {
		t.Fatalf("%s refuses the hub's schedule: %v", device, err)
	}
	doc, err := scheduler.Parse("pushed", []byte(p.Document))
	if err != nil {
		t.Fatalf("pushed document does not parse: %v", err)
	}
	if doc.ID != p.ScheduleID || uint64(doc.Revision) != p.Revision {
		t.Fatalf("document says %s rev %d, payload %s rev %d", doc.ID, doc.Revision, p.ScheduleID, p.Revision)
	}
	return p, doc
}

// A three-level tree: province, district, commune, and the device's own schedule compose into
// one document, root first, ids prefixed by their source, the nearest zone, durations filled.
func TestCompositionAndPushToConnectedAgent(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tam-ky")
	h.addArea("qn/tam-ky/tam-thanh")
	id := "tam-thanh/cl-07"
	secret := h.enrol(id, "qn/tam-ky/tam-thanh")
	other := h.enrol("tam-ky/cl-01", "qn/tam-ky") // district-level device: not under the commune
	r1 := addFakeContent(t, h, "11", 90*time.Second)
	r2 := addFakeContent(t, h, "22", 5*time.Minute)

	a, w := h.connect(id, secret, protocol.Hello{})
	if w.LatestSchedule != nil {
		t.Fatalf("welcome names a schedule before any push: %+v", w.LatestSchedule)
	}
	b, _ := h.connect("tam-ky/cl-01", other, protocol.Hello{})

	if code, res, msg := h.push(h.admin, "qn", docWith("prov", "Asia/Bangkok", "relay", r1)); code != 200 || res.Devices != 2 || res.Sent != 2 {
		t.Fatalf("push to province: %d %+v %q", code, res, msg)
	}
	p, doc := verifySchedule(t, h, id, a.next(), 0)
	if p.Revision != 1 || len(doc.Programs) != 1 || doc.Programs[0].ID != "qn/relay" {
		t.Fatalf("first push: rev %d programs %v", p.Revision, doc.Programs)
	}
	verifySchedule(t, h, "tam-ky/cl-01", b.next(), 0)

	// A push to the commune reaches only the commune's device.
	if code, res, msg := h.push(h.admin, "qn/tam-ky/tam-thanh", docWith("commune", "Asia/Ho_Chi_Minh", "morning", r2)); code != 200 || res.Devices != 1 {
		t.Fatalf("push to commune: %d %+v %q", code, res, msg)
	}
	h.push(h.admin, "qn/tam-ky", docWith("district", "Asia/Bangkok", "news", r2))
	p, _ = verifySchedule(t, h, id, a.next(), 1)
	p, doc = verifySchedule(t, h, id, a.next(), p.Revision)
	h.push(h.admin, id, docWith("own", "Asia/Ho_Chi_Minh", "bell", r1))
	p, doc = verifySchedule(t, h, id, a.next(), p.Revision)
	var ids []string
	for _, pr := range doc.Programs {
		ids = append(ids, pr.ID)
	}
	want := []string{"qn/relay", "qn/tam-ky/news", "qn/tam-ky/tam-thanh/morning", "device:" + id + "/bell"}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("composed programs %v, want %v", ids, want)
	}
	if p.Revision != 4 || doc.Timezone != "Asia/Ho_Chi_Minh" || p.ScheduleID != "dev-"+id || len(p.Devices) != 1 || p.Devices[0] != id {
		t.Fatalf("payload %+v tz %s", p, doc.Timezone)
	}
	if doc.Programs[0].Items[0].Duration != scheduler.Duration(90*time.Second) || doc.Programs[1].Items[0].Duration != scheduler.Duration(5*time.Minute) {
		t.Fatalf("durations not filled from the library: %v %v", doc.Programs[0].Items[0].Duration, doc.Programs[1].Items[0].Duration)
	}
	// The district device got the district push but not the commune's.
	pb, docb := verifySchedule(t, h, "tam-ky/cl-01", b.next(), 1)
	if pb.Revision != 2 || len(docb.Programs) != 2 {
		t.Fatalf("district device: rev %d, %d programs", pb.Revision, len(docb.Programs))
	}
	// A signature moved to another device is refused by that device.
	v, _ := protocol.NewVerifier(protocol.TrustedKeys{"test-key": h.pub}, "tam-ky/cl-01", realClock{})
	eff, _ := h.db.LatestEffective(context.Background(), id)
	if _, err := v.VerifySchedule(&protocol.Signed{KeyID: "test-key", Payload: eff.Document, Sig: eff.Signature}, func(string) (uint64, bool) { return 0, false }); err == nil {
		t.Fatal("another device accepts cl-07's schedule")
	}

	// Delivery reports move the state; a refusal keeps its reason.
	for _, st := range []string{protocol.DeliveryReceived, protocol.DeliveryContentReady, protocol.DeliveryActive} {
		a.send(&protocol.Delivery{ScheduleID: p.ScheduleID, Revision: p.Revision, State: st})
	}
	a.send(&protocol.Status{At: time.Now(), UptimeS: 12, NowPlaying: []protocol.NowPlaying{{Output: "speakers", Program: "qn/relay"}}})
	b.send(&protocol.Delivery{Header: protocol.Header{Re: "h-3"}, State: protocol.DeliveryRefused, Code: "bad_signature", Reason: "test refusal"})
	testkit.WaitFor(t, "cl-07 active", 10*time.Second, func() bool {
		var d api.DeviceJSON
		h.call(h.admin, "GET", "/api/devices/"+id, nil, &d)
		return d.ActiveRevision == 4 && d.Delivery == "active" && d.Online && strings.Contains(d.NowPlaying, "qn/relay")
	})
	testkit.WaitFor(t, "cl-01 refused", 10*time.Second, func() bool {
		var d api.DeviceJSON
		h.call(h.admin, "GET", "/api/devices/tam-ky/cl-01", nil, &d)
		return d.Delivery == "refused" && strings.Contains(d.RefusedReason, "test refusal")
	})
	// The list reads every device's schedule state at once (DeliveryHeads): the same as each
	// device's own answer.
	var list []api.DeviceJSON
	h.mustCall(h.admin, "GET", "/api/devices", nil, &list, http.StatusOK)
	for _, ld := range list {
		var d api.DeviceJSON
		h.mustCall(h.admin, "GET", "/api/devices/"+ld.ID, nil, &d, http.StatusOK)
		if ld.Revision != d.Revision || ld.Delivery != d.Delivery || ld.RefusedReason != d.RefusedReason || ld.ActiveRevision != d.ActiveRevision {
			t.Errorf("%s listed with revision %d %s %q active %d, alone %d %s %q active %d", ld.ID, ld.Revision, ld.Delivery, ld.RefusedReason,
				ld.ActiveRevision, d.Revision, d.Delivery, d.RefusedReason, d.ActiveRevision)
		}
	}
	if len(list) < 2 {
		t.Errorf("the list has %d devices", len(list))
	}

	// Pushing the same sources again changes nothing: no new revision.
	a.ws.Close()
	a, w = h.connect(id, secret, protocol.Hello{ActiveSchedule: &protocol.ScheduleRef{ID: p.ScheduleID, Revision: p.Revision}})
	if w.LatestSchedule != nil {
		t.Fatalf("device holding the latest revision is offered %+v", w.LatestSchedule)
	}
}

// A device that was offline when its area's schedule changed gets the new revision in its
// welcome and the schedule right after.
func TestCatchUpOnConnect(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	id := "c1/cl-01"
	secret := h.enrol(id, "qn/c1")
	r1 := addFakeContent(t, h, "33", time.Minute)
	if code, res, msg := h.push(h.admin, "qn/c1", docWith("c", "Asia/Ho_Chi_Minh", "m", r1)); code != 200 || res.Devices != 1 || res.Sent != 0 {
		t.Fatalf("push: %d %+v %q", code, res, msg)
	}
	h.push(h.admin, "qn/c1", docWith("c", "Asia/Ho_Chi_Minh", "n", r1))
	a, w := h.connect(id, secret, protocol.Hello{ActiveSchedule: &protocol.ScheduleRef{ID: "dev-" + id, Revision: 1}})
	if w.LatestSchedule == nil || w.LatestSchedule.Revision != 2 {
		t.Fatalf("welcome latest_schedule = %+v, want revision 2", w.LatestSchedule)
	}
	_, doc := verifySchedule(t, h, id, a.next(), 1)
	if doc.Programs[0].ID != "qn/c1/n" {
		t.Fatalf("caught-up document: %v", doc.Programs)
	}
	testkit.WaitFor(t, "delivery state sent", 10*time.Second, func() bool {
		eff, _ := h.db.LatestEffective(context.Background(), id)
		return eff.Delivery.State == store.StateSent
	})
	// A device reporting a revision above the hub's (hub restored from an older backup) gets
	// a newer one it will accept.
	a.ws.Close()
	a, w = h.connect(id, secret, protocol.Hello{ActiveSchedule: &protocol.ScheduleRef{ID: "dev-" + id, Revision: 9}})
	if w.LatestSchedule == nil || w.LatestSchedule.Revision != 10 {
		t.Fatalf("welcome after restore: %+v, want revision 10", w.LatestSchedule)
	}
	verifySchedule(t, h, id, a.next(), 9)
}

// TestJournalRestartOverTheWire: a device that reconnects with a new journal (its old file was
// damaged and set aside) numbers from 1 again; the hub's welcome asks for everything of the new
// journal, and its records are stored after the old ones rather than dropped as duplicates.
func TestJournalRestartOverTheWire(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	const id = "c1/cl-01"
	secret := h.enrol(id, "qn/c1")
	a, w := h.connect(id, secret, protocol.Hello{Journal: protocol.JournalState{ID: "old-journal"}})
	if w.ResendFrom != 1 {
		t.Fatalf("first welcome resend_from %d", w.ResendFrom)
	}
	a.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation(id, 1), confirmation(id, 2), confirmation(id, 3)}})
	if ack := a.next().(*protocol.Ack); ack.Seq != 3 {
		t.Fatalf("ack %d, want 3", ack.Seq)
	}
	a.ws.Close()

	a, w = h.connect(id, secret, protocol.Hello{Journal: protocol.JournalState{ID: "new-journal", HighWater: 1}})
	if w.ResendFrom != 1 {
		t.Fatalf("welcome to the new journal: resend_from %d, want 1", w.ResendFrom)
	}
	a.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation(id, 1)}})
	if ack := a.next().(*protocol.Ack); ack.Seq != 1 {
		t.Fatalf("ack of the new journal's first record %d, want 1", ack.Seq)
	}
	var cs []api.ConfirmationJSON
	h.mustCall(h.admin, "GET", "/api/confirmations?device="+id, nil, &cs, http.StatusOK)
	if len(cs) != 4 {
		t.Fatalf("%d confirmations at the hub, want 4 (three old, one new)", len(cs))
	}
}
