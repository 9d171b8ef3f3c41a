package hub

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// cmdAgent answers commands as agent/link does: verify (signature, devices, expiry, replay
// memory kept across its connections), then report executed, or refused with the code.
type cmdAgent struct {
	*fakeAgent
	v   *protocol.Verifier
	log *protocol.CommandLog
}

func (h *testHub) cmdAgent(id, secret string, clk protocol.Clock, log *protocol.CommandLog) *cmdAgent {
	h.t.Helper()
	a, _ := h.connect(id, secret, protocol.Hello{})
	v, err := protocol.NewVerifier(protocol.TrustedKeys{"test-key": h.pub}, id, clk)
	if err != nil {
		h.t.Fatal(err)
	}
	if log == nil {
		log = protocol.NewCommandLog(protocol.CommandLogState{})
	}
	return &cmdAgent{fakeAgent: a, v: v, log: log}
}

// command reads the next message, which must be a command, verifies it and answers it.
func (a *cmdAgent) command() (*protocol.CommandPayload, error) {
	a.t.Helper()
	m := a.next()
	cm, ok := m.(*protocol.Command)
	if !ok {
		a.t.Fatalf("%s got %T, want a command", a.id, m)
	}
	p, err := a.v.VerifyCommand(cm.Signed, a.log)
	if err != nil {
		a.send(protocol.RefusedDelivery("", cm.ID, err))
		return nil, err
	}
	a.send(&protocol.Delivery{Header: protocol.Header{Re: cm.ID}, CommandID: p.ID, State: protocol.DeliveryExecuted})
	return p, nil
}

func (h *testHub) issue(token string, req api.CommandRequest) api.CommandJSON {
	h.t.Helper()
	var c api.CommandJSON
	h.mustCall(token, "POST", "/api/commands", req, &c, http.StatusCreated)
	return c
}

// outcomes waits until the command's outcomes (device -> state) are want.
func (h *testHub) outcomes(id string, want map[string]string) api.CommandJSON {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c api.CommandJSON
		h.mustCall(h.admin, "GET", "/api/commands/"+id, nil, &c, http.StatusOK)
		got := map[string]string{}
		for _, o := range c.Outcomes {
			got[o.Device] = o.State
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("command %s outcomes %v, want %v: %+v", id, got, want, c.Outcomes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommandsIssuedSignedSentAnswered(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Truncate(time.Millisecond)}
	h.srv.clock = clk
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/ha"} {
		h.addArea(a)
	}
	s1 := h.enrol("c1/cl-01", "qn/tk/c1")
	s2 := h.enrol("tk/cl-02", "qn/tk")
	s3 := h.enrol("ha/cl-03", "qn/ha")
	a1 := h.cmdAgent("c1/cl-01", s1, clk, nil)
	a3 := h.cmdAgent("ha/cl-03", s3, clk, nil)

	// A volume command for the district: sent at once to the connected device, waiting for
	// the other; the other district's device gets nothing.
	vol := 0.3
	c1 := h.issue(h.admin, api.CommandRequest{To: "qn/tk", Action: "volume", Volume: &vol})
	if c1.Counts["sent"] != 1 || c1.Counts["pending"] != 1 || c1.To != "area:qn/tk" || c1.Volume == nil || *c1.Volume != 0.3 ||
		c1.IssuedBy != "admin" || c1.ExpiresAt.Sub(c1.IssuedAt) != agentlink.DefaultCommandLife {
		t.Fatalf("volume command: %+v", c1)
	}
	p, err := a1.command()
	if err != nil {
		t.Fatalf("c1/cl-01 refuses the hub's command: %v", err)
	}
	if p.ID != c1.ID || p.Seq != uint64(c1.Seq) || p.Action != "volume" || *p.Volume != 0.3 || p.IssuedBy != "admin" ||
		!slices.Equal(p.Devices, []string{"c1/cl-01", "tk/cl-02"}) || !p.ExpiresAt.Equal(c1.ExpiresAt) {
		t.Fatalf("signed payload: %+v", p)
	}
	h.outcomes(c1.ID, map[string]string{"c1/cl-01": "executed", "tk/cl-02": "pending"})

	// Later commands have higher sequences; the offline device gets both on connecting, in
	// that order (its replay memory would refuse the older one after the newer).
	clk.Advance(time.Second)
	c2 := h.issue(h.admin, api.CommandRequest{To: "qn/tk", Action: "stop", Output: "speakers"})
	if c2.Seq <= c1.Seq {
		t.Fatalf("second command seq %d not above %d", c2.Seq, c1.Seq)
	}
	if p, err := a1.command(); err != nil || p.ID != c2.ID || p.Output != "speakers" {
		t.Fatalf("c1/cl-01 second command: %+v %v", p, err)
	}
	mem2 := protocol.NewCommandLog(protocol.CommandLogState{})
	a2 := h.cmdAgent("tk/cl-02", s2, clk, mem2)
	if p, err := a2.command(); err != nil || p.ID != c1.ID {
		t.Fatalf("tk/cl-02 first pending: %+v %v", p, err)
	}
	// It drops the link having accepted the second command but before its answer left.
	m := a2.next()
	if _, err := a2.v.VerifyCommand(m.(*protocol.Command).Signed, mem2); err != nil {
		t.Fatal(err)
	}
	a2.ws.Close()
	h.outcomes(c2.ID, map[string]string{"c1/cl-01": "executed", "tk/cl-02": "sent"})
	// On reconnecting it is sent again, refuses it as replayed, and the hub records that it
	// had it rather than a refusal.
	a2 = h.cmdAgent("tk/cl-02", s2, clk, mem2)
	if _, err := a2.command(); err == nil || protocol.CodeOf(err) != "replayed" {
		t.Fatalf("resend after a lost answer: %v, want replayed", err)
	}
	c2 = h.outcomes(c2.ID, map[string]string{"c1/cl-01": "executed", "tk/cl-02": "received"})
	for _, o := range c2.Outcomes {
		if o.Device == "tk/cl-02" && (o.Sends != 2 || o.Code != "replayed" || !strings.Contains(o.Reason, "earlier connection")) {
			t.Fatalf("received outcome: %+v", o)
		}
	}
	h.outcomes(c1.ID, map[string]string{"c1/cl-01": "executed", "tk/cl-02": "executed"})

	// A play_now of library content for one device; the district device's first message is
	// this one, so nothing earlier reached it.
	ref := addFakeContent(t, h, "44", 30*time.Second)
	c3 := h.issue(h.admin, api.CommandRequest{To: "ha/cl-03", Action: "play_now", Content: ref, Class: "emergency", Title: "Cảnh báo", ExpiresIn: "30s"})
	if p, err := a3.command(); err != nil || p.ID != c3.ID || p.Content != ref || p.Class != "emergency" || p.Title != "Cảnh báo" ||
		!slices.Equal(p.Devices, []string{"ha/cl-03"}) || p.ExpiresAt.Sub(p.IssuedAt) != 30*time.Second {
		t.Fatalf("play_now payload: %+v %v", p, err)
	}
	h.outcomes(c3.ID, map[string]string{"ha/cl-03": "executed"})

	// Its confirmation at the hub names the command and keeps the volume it played at.
	rec := confirmation("ha/cl-03", 1)
	rec.Program, rec.CommandID, rec.Volume = protocol.CommandProgram+c3.ID, c3.ID, 0.3
	a3.send(&protocol.Confirmations{Records: []protocol.Confirmation{rec}})
	if ack, ok := a3.next().(*protocol.Ack); !ok || ack.Seq != 1 {
		t.Fatalf("confirmation not acknowledged")
	}
	var cs []api.ConfirmationJSON
	h.mustCall(h.admin, "GET", "/api/confirmations?device=ha/cl-03", nil, &cs, http.StatusOK)
	if len(cs) != 1 || cs[0].CommandID != c3.ID || cs[0].Volume == nil || *cs[0].Volume != 0.3 {
		t.Fatalf("confirmation of a play_now: %+v", cs)
	}

}

func TestCommandRefusalsExpiryAndScope(t *testing.T) {
	h := newTestHub(t)
	clk := &setClock{t: time.Now().Truncate(time.Millisecond)}
	h.srv.clock = clk
	h.addArea("qn/tk")
	h.addArea("qn/ha")
	s1 := h.enrol("tk/cl-01", "qn/tk")
	s2 := h.enrol("tk/cl-02", "qn/tk")
	h.enrol("ha/cl-03", "qn/ha")

	// An agent holding another key refuses with bad_signature; the refusal names only the
	// message it answers.
	other, _, _ := protocol.GenerateKey(nil)
	a1 := h.cmdAgent("tk/cl-01", s1, clk, nil)
	a1.v, _ = protocol.NewVerifier(protocol.TrustedKeys{"test-key": other}, "tk/cl-01", clk)
	c := h.issue(h.admin, api.CommandRequest{To: "tk/cl-01", Action: "reload"})
	if _, err := a1.command(); protocol.CodeOf(err) != "bad_signature" {
		t.Fatalf("refusal: %v", err)
	}
	got := h.outcomes(c.ID, map[string]string{"tk/cl-01": "refused"})
	if o := got.Outcomes[0]; o.Code != "bad_signature" || o.Reason == "" || o.ReportedAt == nil {
		t.Fatalf("refused outcome: %+v", o)
	}

	// A command that reaches the agent after its expiry (by the agent's clock) is refused
	// as expired.
	late := &setClock{t: clk.Now().Add(time.Hour)}
	a1.v, _ = protocol.NewVerifier(protocol.TrustedKeys{"test-key": h.pub}, "tk/cl-01", late)
	c = h.issue(h.admin, api.CommandRequest{To: "tk/cl-01", Action: "stop"})
	if _, err := a1.command(); protocol.CodeOf(err) != "expired" {
		t.Fatalf("late command: %v, want expired", err)
	}
	h.outcomes(c.ID, map[string]string{"tk/cl-01": "refused"})
	// The same signed message again (a replay) is refused as replayed.
	a1.v, _ = protocol.NewVerifier(protocol.TrustedKeys{"test-key": h.pub}, "tk/cl-01", clk)
	c = h.issue(h.admin, api.CommandRequest{To: "tk/cl-01", Action: "stop"})
	m := a1.next().(*protocol.Command)
	if _, err := a1.v.VerifyCommand(m.Signed, a1.log); err != nil {
		t.Fatal(err)
	}
	if _, err := a1.v.VerifyCommand(m.Signed, a1.log); protocol.CodeOf(err) != "replayed" {
		t.Fatalf("a replayed command: %v, want replayed", err)
	}

	// A device offline until its command expired never gets it; the hub shows it expired.
	c = h.issue(h.admin, api.CommandRequest{To: "tk/cl-02", Action: "stop", ExpiresIn: "5s"})
	clk.Advance(6 * time.Second)
	c2 := h.issue(h.admin, api.CommandRequest{To: "tk/cl-02", Action: "reload"})
	a2 := h.cmdAgent("tk/cl-02", s2, clk, nil)
	if p, err := a2.command(); err != nil || p.ID != c2.ID {
		t.Fatalf("first command after reconnecting: %+v %v, want %s only", p, err, c2.ID)
	}
	h.outcomes(c.ID, map[string]string{"tk/cl-02": "expired"})

	// Scope: the other commune's staff can neither command nor see these.
	ha := h.userToken("ha-staff", "qn/ha")
	var e api.Error
	if code := h.call(ha, "POST", "/api/commands", api.CommandRequest{To: "qn/tk", Action: "stop"}, &e); code != http.StatusNotFound ||
		!strings.Contains(e.Error, "in your scope qn/ha") {
		t.Fatalf("command outside the scope: %d %s", code, e.Error)
	}
	if code := h.call(ha, "POST", "/api/commands", api.CommandRequest{To: "tk/cl-01", Action: "stop"}, &e); code != http.StatusNotFound {
		t.Fatalf("command to a device outside the scope: %d %s", code, e.Error)
	}
	var list []api.CommandJSON
	h.mustCall(ha, "GET", "/api/commands", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Fatalf("qn/ha staff see %d commands of qn/tk", len(list))
	}
	if code := h.call(ha, "GET", "/api/commands/"+c.ID, nil, &e); code != http.StatusNotFound {
		t.Fatalf("another commune's command: %d", code)
	}
	// A province command reaches qn/ha's staff with their device only.
	h.issue(h.admin, api.CommandRequest{To: "qn", Action: "reload"})
	h.mustCall(ha, "GET", "/api/commands", nil, &list, http.StatusOK)
	if len(list) != 1 || len(list[0].Outcomes) != 1 || list[0].Outcomes[0].Device != "ha/cl-03" {
		t.Fatalf("province command seen from qn/ha: %+v", list)
	}
	h.mustCall(h.admin, "GET", "/api/commands?limit=2", nil, &list, http.StatusOK)
	if len(list) != 2 || list[0].To != "area:qn" || list[1].ID != c2.ID {
		t.Fatalf("newest two: %+v", list)
	}
	h.mustCall(h.admin, "GET", "/api/commands?device=tk/cl-02", nil, &list, http.StatusOK)
	if len(list) != 3 {
		t.Fatalf("commands of tk/cl-02: %d, want 3", len(list))
	}

	// Every command is in the audit log with its issuer.
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit?action=command.stop", nil, &audit, http.StatusOK)
	if len(audit) != 3 || audit[0].Actor != "admin" {
		t.Fatalf("audit of stop commands: %+v", audit)
	}
}

func TestCommandRequestsRefused(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/tk")
	h.addArea("qn/empty")
	h.enrol("tk/cl-01", "qn/tk")
	h.enrol("tk/gone", "qn/tk")
	h.mustCall(h.admin, "DELETE", "/api/devices/tk/gone", nil, nil, http.StatusOK)
	vol, loud := 0.5, 1.5
	for _, tc := range []struct {
		req  api.CommandRequest
		code int
		want string
	}{
		{api.CommandRequest{Action: "stop"}, 400, "use --to AREA or --to DEVICE"},
		{api.CommandRequest{To: "qn/tk"}, 400, "needs an action"},
		{api.CommandRequest{To: "qn/tk", Action: "mute"}, 400, `unknown action "mute"`},
		{api.CommandRequest{To: "qn/tk", Action: "volume"}, 400, "from 0 to 1"},
		{api.CommandRequest{To: "qn/tk", Action: "volume", Volume: &loud}, 400, "volume 1.5"},
		{api.CommandRequest{To: "qn/tk", Action: "stop", Volume: &vol}, 400, "only with the volume action"},
		{api.CommandRequest{To: "qn/tk", Action: "stop", Content: "sha256:" + strings.Repeat("1", 64)}, 400, "belong to play_now"},
		{api.CommandRequest{To: "qn/tk", Action: "play_now"}, 400, "one of content"},
		{api.CommandRequest{To: "qn/tk", Action: "play_now", Content: "clip.mp3"}, 400, "sha256"},
		{api.CommandRequest{To: "qn/tk", Action: "play_now", Content: "sha256:" + strings.Repeat("1", 64)}, 400, "not in the hub's library"},
		{api.CommandRequest{To: "qn/tk", Action: "play_now", Stream: "rtsp://x/y"}, 400, "http:// or https://"},
		{api.CommandRequest{To: "qn/tk", Action: "play_now", Stream: "http://radio/vov1", Class: "urgent"}, 400, `class "urgent"`},
		{api.CommandRequest{To: "qn/tk", Action: "stop", Output: "Speakers!"}, 400, "name one output"},
		{api.CommandRequest{To: "qn/tk", Action: "reload", Output: "speakers"}, 400, "whole device"},
		{api.CommandRequest{To: "qn/tk", Action: "stop", ExpiresIn: "48h"}, 400, "expires_in"},
		{api.CommandRequest{To: "qn/tk", Action: "stop", ExpiresIn: "soon"}, 400, "expires_in"},
		{api.CommandRequest{To: "cl-01", Action: "stop"}, 404, "use --to tk/cl-01"},
		{api.CommandRequest{To: "qn/empty", Action: "stop"}, 409, "no enrolled device"},
		{api.CommandRequest{To: "tk/gone", Action: "stop"}, 409, "revoked"},
	} {
		var e api.Error
		code := h.call(h.admin, "POST", "/api/commands", tc.req, &e)
		if code != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%+v: %d %q, want %d and %q", tc.req, code, e.Error, tc.code, tc.want)
		}
	}
	var list []api.CommandJSON
	h.mustCall(h.admin, "GET", "/api/commands", nil, &list, http.StatusOK)
	if len(list) != 0 {
		t.Fatalf("refused requests stored %d commands", len(list))
	}
	// A revoked device is left out of an area's command.
	c := h.issue(h.admin, api.CommandRequest{To: "qn/tk", Action: "stop"})
	if len(c.Outcomes) != 1 || c.Outcomes[0].Device != "tk/cl-01" {
		t.Fatalf("outcomes: %+v", c.Outcomes)
	}
}

// A large area's command is signed in parts of at most agentlink.CommandPartDevices devices; each
// device gets the part naming it; sequences stay above the last one across a restart even
// with a clock far behind.
func TestCommandPartsAndSeqAcrossRestart(t *testing.T) {
	h := newTestHub(t)
	ctx := context.Background()
	h.addArea("qn/tk")
	const n = 2*agentlink.CommandPartDevices + 7
	for i := range n {
		if _, err := h.db.EnrolDevice(ctx, store.Device{ID: fmt.Sprintf("tk/cl-%03d", i), Name: "x", Area: "qn/tk", Kind: store.KindCluster}, [32]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	c := h.issue(h.admin, api.CommandRequest{To: "qn/tk", Action: "reload"})
	if len(c.Outcomes) != n || c.Counts["pending"] != n {
		t.Fatalf("outcomes %d, counts %v", len(c.Outcomes), c.Counts)
	}
	parts := map[string]bool{}
	for _, id := range []string{"tk/cl-000", "tk/cl-049", "tk/cl-050", "tk/cl-106"} {
		pend, err := h.db.PendingCommands(ctx, id, time.Now())
		if err != nil || len(pend) != 1 {
			t.Fatalf("pending for %s: %+v %v", id, pend, err)
		}
		v, _ := protocol.NewVerifier(protocol.TrustedKeys{"test-key": h.pub}, id, realClock{})
		p, err := v.VerifyCommand(&protocol.Signed{KeyID: pend[0].KeyID, Payload: pend[0].Payload, Sig: pend[0].Signature},
			protocol.NewCommandLog(protocol.CommandLogState{}))
		if err != nil {
			t.Fatalf("%s refuses its part: %v", id, err)
		}
		if len(p.Devices) > agentlink.CommandPartDevices || p.ID != c.ID {
			t.Fatalf("%s's part names %d devices", id, len(p.Devices))
		}
		parts[p.Devices[0]] = true
	}
	if len(parts) != 3 {
		t.Fatalf("devices spread over %d parts, want 3", len(parts))
	}

	// A new hub on the same store, its clock years behind: the next seq is still above.
	srv, err := New(Options{Store: h.db, Signer: h.srv.signer, ContentDir: t.TempDir(), Clock: &setClock{t: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	next, err := srv.link.IssueCommand(ctx, h.db, []store.Target{store.AreaTarget("qn/tk")}, "qn/tk",
		protocol.CommandPayload{Action: "stop", IssuedBy: "admin"}, time.Minute, []string{"tk/cl-000"})
	if err != nil || next.Seq != c.Seq+1 {
		t.Fatalf("seq after a restart: %d (%v), want %d", next.Seq, err, c.Seq+1)
	}
	if next.ID != fmt.Sprintf("cmd-%d", next.Seq) {
		t.Fatalf("command id %s for seq %d", next.ID, next.Seq)
	}
}

// One command may name several areas and devices: one id and seq for the union of their
// devices (each once); staff of one of the areas see it with their own devices' outcomes.
func TestCommandToSeveralTargets(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2", "qn/tk/c3"} {
		h.addArea(a)
	}
	h.enrol("c1/cl-01", "qn/tk/c1")
	h.enrol("c2/cl-01", "qn/tk/c2")
	h.enrol("c3/cl-01", "qn/tk/c3")
	h.enrol("c3/cl-02", "qn/tk/c3")
	var c api.CommandJSON
	h.mustCall(h.admin, "POST", "/api/commands", api.CommandRequest{To: "qn/tk/c1, qn/tk/c2,device:c3/cl-01,c1/cl-01", Action: "stop"}, &c, http.StatusCreated)
	if c.To != "area:qn/tk/c1,area:qn/tk/c2,device:c3/cl-01,device:c1/cl-01" || len(c.Outcomes) != 3 {
		t.Fatalf("command to three communes' devices: to %q, %d outcomes %+v", c.To, len(c.Outcomes), c.Outcomes)
	}
	c1 := h.userToken("c1-staff", "qn/tk/c1")
	var list []api.CommandJSON
	h.mustCall(c1, "GET", "/api/commands", nil, &list, http.StatusOK)
	if len(list) != 1 || list[0].ID != c.ID || len(list[0].Outcomes) != 1 || list[0].Outcomes[0].Device != "c1/cl-01" {
		t.Fatalf("c1 staff see %+v, want the command with their one device", list)
	}
	var e api.Error
	if code := h.call(c1, "POST", "/api/commands", api.CommandRequest{To: "qn/tk/c1,qn/tk/c2", Action: "stop"}, &e); code != http.StatusNotFound {
		t.Fatalf("a commune naming another commune among its targets: %d %q", code, e.Error)
	}
}
