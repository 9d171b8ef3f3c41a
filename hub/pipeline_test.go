package hub

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// gatedStore is the real store with a gate before the first batch of effective schedules
// written once at least gateAt devices are stored: the test holds the push there, or fails
// that batch and every later one (the database went away), and it records which devices were
// stored and which the gate held or failed.
type gatedStore struct {
	*store.DB // all of it: a hub says it shares its database with other replicas through it
	gateAt    int
	gate      func() error // called once; an error fails that batch and the later ones

	mu     sync.Mutex
	fired  bool
	err    error
	stored []string
	held   []string
}

func (g *gatedStore) AddEffectives(ctx context.Context, es []store.EffectiveSchedule) ([]store.EffectiveSchedule, []error, error) {
	g.mu.Lock()
	fire := !g.fired && len(g.stored) >= g.gateAt
	g.fired = g.fired || fire
	if fire || g.err != nil {
		for _, e := range es {
			g.held = append(g.held, e.DeviceID)
		}
	}
	err := g.err
	g.mu.Unlock()
	if fire {
		err = g.gate()
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
	}
	if err != nil {
		return nil, nil, err
	}
	out, errs, err := g.DB.AddEffectives(ctx, es)
	if err == nil {
		g.mu.Lock()
		for i, e := range es {
			if errs[i] == nil {
				g.stored = append(g.stored, e.DeviceID)
			}
		}
		g.mu.Unlock()
	}
	return out, errs, err
}

// wasStored reports whether id was stored (while the gate holds: before it).
func (g *gatedStore) wasStored(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.stored, id)
}

// heldOrFailed returns the devices the gate held or failed.
func (g *gatedStore) heldOrFailed() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.held)
}

// pipelineHubs starts replicas A (its store gated after a third of n) and B on one database,
// an area of n devices enrolled in the store, and agents for every step-th device,
// alternately on A and B.
func pipelineHubs(t *testing.T, n, step int, gate func() error) (a, b *testHub, g *gatedStore, agents map[string]*fakeAgent, onB map[string]bool) {
	t.Helper()
	first := true
	hubs := newHubsOnOneDatabaseWith(t, func(o *Options) {
		if first {
			g = &gatedStore{DB: o.Store.(*store.DB), gateAt: n / 3, gate: gate}
			o.Store = g
			first = false
		}
	}, "a", "b")
	a, b = hubs[0], hubs[1]
	a.addArea("qn/big")
	ctx := context.Background()
	agents, onB = map[string]*fakeAgent{}, map[string]bool{}
	for i := range n {
		id := fmt.Sprintf("big/cl-%04d", i)
		if i%step != 0 {
			if _, err := a.db.EnrolDevice(ctx, store.Device{ID: id, Name: "x", Area: "qn/big", Kind: store.KindCluster,
				Outputs: []string{"speakers"}}, sha256.Sum256([]byte(id))); err != nil {
				t.Fatal(err)
			}
			continue
		}
		secret := a.enrol(id, "qn/big")
		h := a
		if i/step%2 == 1 {
			h, onB[id] = b, true
		}
		agents[id], _ = h.connect(id, secret, protocol.Hello{})
	}
	return a, b, g, agents, onB
}

const bigDoc = "version: 1\nid: big\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: news%d\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/news.mp3\n        duration: 15m\n"

// A push to more devices than one batch, through replica A with agents on A and B: while A
// still stores the rest (held here), both replicas have sent the devices of the batches
// stored, and none of the others; after the push every agent has exactly its device's newest
// revision, once, verified; a second push the same, in order.
func TestPushReachesOtherReplicasBatchByBatch(t *testing.T) {
	const n, step = 1500, 60
	atGate, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	a, b, g, agents, onB := pipelineHubs(t, n, step, func() error {
		close(atGate)
		<-release
		return nil
	})
	t.Cleanup(open) // a failure below must not leave the push held
	hubOf := func(id string) *testHub {
		if onB[id] {
			return b
		}
		return a
	}
	type answer struct {
		code int
		res  api.PushResponse
		msg  string
	}
	pushed := make(chan answer, 1)
	go func() {
		code, res, msg := a.push(a.admin, "qn/big", fmt.Sprintf(bigDoc, 1, 1))
		pushed <- answer{code, res, msg}
	}()
	<-atGate
	held := map[string]uint64{} // the revision each agent has
	early := 0
	for id, ag := range agents {
		if !g.wasStored(id) {
			ag.nothingMore("while its revision is not stored")
			continue
		}
		p, _ := verifySchedule(t, hubOf(id), id, nextSchedule(t, ag), 0)
		if e, err := a.db.LatestEffective(context.Background(), id); err != nil || uint64(e.Revision) != p.Revision {
			t.Fatalf("%s got revision %d; the store has %d (%v)", id, p.Revision, e.Revision, err)
		}
		held[id] = p.Revision
		if onB[id] {
			early++
		}
	}
	if early == 0 {
		t.Fatalf("no agent on B among the %d devices stored before the gate: the test needs one", n/3)
	}
	open()
	if r := <-pushed; r.code != http.StatusOK || r.res.Devices != n || len(r.res.Failures) > 0 {
		t.Fatalf("push: %d %+v %s", r.code, r.res, r.msg)
	}
	t.Logf("%d agents on B had theirs before A stored the rest (%d devices held at the gate)", early, len(g.heldOrFailed()))
	for id, ag := range agents {
		if held[id] == 0 {
			p, _ := verifySchedule(t, hubOf(id), id, nextSchedule(t, ag), 0)
			held[id] = p.Revision
		}
	}
	// The second push: each agent gets one newer revision, the store's newest, and no more.
	if code, res, msg := a.push(a.admin, "qn/big", fmt.Sprintf(bigDoc, 2, 2)); code != http.StatusOK || res.Devices != n {
		t.Fatalf("second push: %d %+v %s", code, res, msg)
	}
	for id, ag := range agents {
		p, _ := verifySchedule(t, hubOf(id), id, nextSchedule(t, ag), held[id])
		e, err := a.db.LatestEffective(context.Background(), id)
		if err != nil || uint64(e.Revision) != p.Revision || p.Revision <= held[id] {
			t.Fatalf("%s got revision %d after %d; the store's newest is %d (%v)", id, p.Revision, held[id], e.Revision, err)
		}
		ag.nothingMore("after the second push")
	}
}

// A push whose store writes fail from the middle on (the database went away after a third of
// the batches): the devices stored before get their revisions on both replicas, the others
// get none and the store has none for them, and the answer names them with the store's error.
func TestPushFailingMidwayLeavesReplicasConsistent(t *testing.T) {
	const n, step = 1500, 60
	injected := errors.New("write not committed: the disk is full (injected)")
	a, b, g, agents, onB := pipelineHubs(t, n, step, func() error { return injected })
	code, res, msg := a.push(a.admin, "qn/big", fmt.Sprintf(bigDoc, 1, 1))
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, msg)
	}
	failed := g.heldOrFailed()
	if len(failed) == 0 || res.Devices != n-len(failed) || len(res.Failures) == 0 ||
		!strings.Contains(res.Failures[0], "disk is full (injected)") {
		t.Fatalf("push answered %d devices, failures %q; want %d devices and the %d failed named with the store's error",
			res.Devices, res.Failures, n-len(failed), len(failed))
	}
	t.Logf("the answer names the failed devices: %q … %q", res.Failures[0], res.Failures[len(res.Failures)-1])
	lost := 0
	for id, ag := range agents {
		h := a
		if onB[id] {
			h = b
		}
		e, err := a.db.LatestEffective(context.Background(), id)
		if slices.Contains(failed, id) {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s was not stored, yet the store has revision %d (%v)", id, e.Revision, err)
			}
			ag.nothingMore("when its revision failed to be stored")
			lost++
			continue
		}
		p, _ := verifySchedule(t, h, id, nextSchedule(t, ag), 0)
		if err != nil || uint64(e.Revision) != p.Revision {
			t.Fatalf("%s got revision %d; the store has %d (%v)", id, p.Revision, e.Revision, err)
		}
		ag.nothingMore("after its one revision")
	}
	if lost == 0 {
		t.Fatalf("no agent among the %d devices not stored: the test needs one", len(failed))
	}
}
