package hub

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// storeHook is a function a test arms once, run by the next call of the store method that
// carries the hook (the hub holds its store from the start; the test arms it when ready).
type storeHook struct {
	mu    sync.Mutex
	after func()
}

func (h *storeHook) arm(f func()) { h.mu.Lock(); h.after = f; h.mu.Unlock() }

func (h *storeHook) run() {
	h.mu.Lock()
	f := h.after
	h.after = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

// movingStore is the real store, with a hook run after a push has read every device's newest
// revision: what another push or a connecting device could store in that moment.
type movingStore struct {
	*store.DB
	storeHook
}

func (m *movingStore) LatestEffectiveHeads(ctx context.Context, area string) (map[string]store.EffectiveHead, error) {
	h, err := m.DB.LatestEffectiveHeads(ctx, area)
	m.run()
	return h, err
}

// A push to an area whose devices' stored revisions move under it: the batch refuses the
// stale revisions and those devices are composed again alone, above what was stored meanwhile;
// every device ends with one new revision from the pushed sources; connected agents get it once,
// after their welcome, verified for them.
func TestPushAreaWhileRevisionsMove(t *testing.T) {
	var moving *movingStore
	h := newTestHubWith(t, t.TempDir(), func(db *store.DB) Store { moving = &movingStore{DB: db}; return moving })
	h.addArea("qn/c1")
	h.addArea("qn/c1/x")
	ctx := context.Background()
	const n = 30
	secrets := map[string]string{}
	var ids []string
	for i := range n {
		area := "qn/c1"
		if i%3 == 0 {
			area = "qn/c1/x" // a deeper area: its chain is read from the subtree
		}
		id := fmt.Sprintf("c1/cl-%02d", i)
		secrets[id] = h.enrol(id, area)
		ids = append(ids, id)
	}
	// A device with its own schedule composes it after the areas'.
	if code, _, msg := h.push(h.admin, "device:c1/cl-05", "version: 1\nid: own\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: bell\n    cron: \"0 0 7 * * *\"\n    items:\n      - stream: http://r.example/b.mp3\n        duration: 1m\n"); code != http.StatusOK {
		t.Fatal(code, msg)
	}
	moved := []string{"c1/cl-03", "c1/cl-04", "c1/cl-05"}
	agents := map[string]*fakeAgent{}
	for _, id := range []string{"c1/cl-00", "c1/cl-03", "c1/cl-05"} {
		hello := protocol.Hello{}
		if id == "c1/cl-05" {
			hello.ActiveSchedule = &protocol.ScheduleRef{ID: agentlink.ScheduleIDFor(id), Revision: 1}
		}
		agents[id], _ = h.connect(id, secrets[id], hello)
	}
	moving.arm(func() {
		for _, id := range moved {
			// Revision 7, composed from nothing the push knows of: the push must go above it.
			if _, err := h.db.AddEffective(ctx, store.EffectiveSchedule{DeviceID: id, Revision: 7, Document: []byte("{}")}); err != nil {
				t.Error(err)
			}
		}
	})
	code, res, msg := h.push(h.admin, "qn/c1", "version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: news\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 15m\n")
	if code != http.StatusOK || res.Devices != n || res.Sent != len(agents) || len(res.Failures) != 0 {
		t.Fatalf("push: %d %+v %s", code, res, msg)
	}
	for _, id := range ids {
		e, err := h.db.LatestEffective(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1)
		if slices.Contains(moved, id) {
			want = 8
		} else if id == "c1/cl-05" {
			want = 2
		}
		var srcs []string
		for _, s := range e.Sources {
			srcs = append(srcs, s.Target.String())
		}
		wantSrcs := "area:qn/c1"
		if id == "c1/cl-05" {
			wantSrcs += " device:c1/cl-05"
		}
		if e.Revision != want || strings.Join(srcs, " ") != wantSrcs {
			t.Errorf("%s: revision %d from %v, want %d from %s", id, e.Revision, srcs, want, wantSrcs)
		}
		if _, ok := agents[id]; ok && e.Delivery.State != store.StateSent {
			t.Errorf("%s (connected): delivery %s, want sent", id, e.Delivery.State)
		}
	}
	for id, a := range agents {
		e, _ := h.db.LatestEffective(ctx, id)
		held := uint64(0)
		if id == "c1/cl-05" {
			held = 1
		}
		p, doc := verifySchedule(t, h, id, a.next(), held)
		if int64(p.Revision) != e.Revision || !slices.ContainsFunc(doc.Programs, func(p scheduler.Program) bool { return p.ID == "qn/c1/news" }) {
			t.Errorf("%s got revision %d with %v; stored %d", id, p.Revision, doc.Programs, e.Revision)
		}
	}
	// Pushing again with no source changed composes and sends nothing.
	if res := h.srv.link.Push(ctx, store.AreaTarget("qn/c1")); res.Devices != 0 || res.Sent != 0 || len(res.Failures) != 0 {
		t.Fatalf("push with nothing changed: %+v", res)
	}
}

// hookedStore runs a hook once right after a push's batch of revisions is stored, before they
// are sent.
type hookedStore struct {
	*store.DB
	storeHook
}

func (h *hookedStore) AddEffectives(ctx context.Context, es []store.EffectiveSchedule) ([]store.EffectiveSchedule, []error, error) {
	out, errs, err := h.DB.AddEffectives(ctx, es)
	h.run()
	return out, errs, err
}

// A device connecting between the store and the send of a push gets the new revision with its
// welcome; the push's own send of that revision is not repeated (the agent would refuse it as
// replayed), and the next push's revision is the next message it sees.
func TestPushNotRepeatedToDeviceThatJustConnected(t *testing.T) {
	var hooked *hookedStore
	h := newTestHubWith(t, t.TempDir(), func(db *store.DB) Store { hooked = &hookedStore{DB: db}; return hooked })
	h.addArea("qn/c1")
	secret := h.enrol("c1/a", "qn/c1")
	doc := func(rev int, prog string) string {
		return fmt.Sprintf("version: 1\nid: c1\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: %s\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 15m\n", rev, prog)
	}
	var a *fakeAgent
	hooked.arm(func() {
		// The test goroutine is in the push call: connect by hand, report with t.Error.
		ws, _, err := h.dial("c1/a", secret)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { ws.Close() })
		b, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "a-hello"}, DeviceID: "c1/a", SoftwareVersion: "fake-agent 0"})
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Error(err)
			return
		}
		_, b, err = ws.ReadMessage()
		if m, derr := protocol.Decode(b); err != nil || derr != nil || m.Type() != "welcome" || m.(*protocol.Welcome).LatestSchedule == nil {
			t.Errorf("answer to hello: %s %v %v", b, err, derr)
			return
		}
		a = &fakeAgent{t: t, id: "c1/a", ws: ws, msgs: make(chan protocol.Message, 100), errc: make(chan error, 1)}
		go a.readLoop()
	})
	if code, res, msg := h.push(h.admin, "qn/c1", doc(1, "news")); code != http.StatusOK || res.Devices != 1 || res.Sent != 1 {
		t.Fatalf("push: %d %+v %s", code, res, msg)
	}
	if a == nil {
		t.Fatal("the device did not connect during the push")
	}
	p1, _ := verifySchedule(t, h, "c1/a", a.next(), 0)
	if code, res, msg := h.push(h.admin, "qn/c1", doc(2, "evening")); code != http.StatusOK || res.Sent != 1 {
		t.Fatalf("second push: %d %+v %s", code, res, msg)
	}
	p2, d2 := verifySchedule(t, h, "c1/a", a.next(), p1.Revision)
	if p2.Revision != p1.Revision+1 || d2.Programs[0].ID != "qn/c1/evening" {
		t.Fatalf("after revision %d the agent got revision %d with %+v", p1.Revision, p2.Revision, d2.Programs)
	}
}
