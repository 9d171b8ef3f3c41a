package hub

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/store"
)

// replicaBus is the store's side of several hubs on one PostgreSQL database (hub/store's
// notify.go): announcements to the other hubs, and theirs to this one.
type replicaBus interface {
	Shared() bool
	Notify(ctx context.Context, topic, payload string) error
	Listen(ctx context.Context) <-chan store.Event
	Listening() bool
}

// RunReplicas hands what the other hubs on the same database announce (a push, a command,
// a revocation) to the agent link, which sends it to the agents connected here, until ctx
// ends. Alone (SQLite) it returns at once.
func (s *Server) RunReplicas(ctx context.Context) {
	if s.bus == nil {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(touchEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.announceTouched(ctx)
			}
		}
	})
	for ev := range s.bus.Listen(ctx) { // closed once ctx ends
		switch {
		case ev.Resync:
			s.link.Resync(ctx)
			s.states.mu.Lock()
			s.states.loaded = time.Time{} // the overview reads every device again
			s.states.mu.Unlock()
		case ev.Topic == topicTouched:
			s.touchedThere(ev.Payload)
		default:
			s.link.Apply(ctx, ev.Topic, ev.Payload)
		}
	}
}

// topicTouched announces devices whose state (connection, status, delivery) a replica
// changed, so the others' overview and device list read them again.
const topicTouched = "touched"

// touchEvery is how often the devices touched here are announced: a status a minute from
// 10,000 agents is 170 a second, which one notification each would cost the database.
const touchEvery = time.Second

// touch marks a device's state changed here, and for the other replicas.
func (s *Server) touch(id string) {
	s.states.touch(id)
	if s.bus != nil {
		s.touchedHere.add(id)
	}
}

// touchedSet gathers device ids until they are taken (a cache's dirty devices, those to
// announce), under its own lock.
type touchedSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (t *touchedSet) add(id string) {
	t.mu.Lock()
	if t.ids == nil {
		t.ids = map[string]bool{}
	}
	t.ids[id] = true
	t.mu.Unlock()
}

func (t *touchedSet) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]string, 0, len(t.ids))
	for id := range t.ids {
		ids = append(ids, id)
	}
	t.ids = nil
	return ids
}

// announceTouched sends the devices touched here since the last call, in as few
// notifications as fit: "<replica> id id …".
func (s *Server) announceTouched(ctx context.Context) {
	ids := s.touchedHere.take()
	for len(ids) > 0 {
		var b strings.Builder
		b.WriteString(s.link.Replica())
		for n := 0; len(ids) > 0 && (n == 0 || b.Len()+1+len(ids[0]) <= store.MaxNotifyPayload-len(topicTouched)-1); n++ {
			b.WriteString(" " + ids[0]) // the first always goes: an id is far shorter than the limit
			ids = ids[1:]
		}
		if err := s.bus.Notify(ctx, topicTouched, b.String()); err != nil {
			s.log.Warn("device states not announced to the other hubs: their overview reads them at its next full refresh", "err", err)
			return
		}
	}
}

// touchedThere marks the devices another replica announced as changed.
func (s *Server) touchedThere(payload string) {
	ids := strings.Fields(payload)
	if len(ids) == 0 || ids[0] == s.link.Replica() {
		return
	}
	for _, id := range ids[1:] {
		s.states.touch(id)
	}
}

// online reports whether a device is connected: to this hub, or, with several hubs on one
// database, to another one, which the store says by a status within two intervals (the
// hubs do not announce each connection: a device that left another hub shows online here
// for up to that long).
func (s *Server) online(id string, lastSeen time.Time) bool {
	return s.link.Online(id) ||
		s.bus != nil && !lastSeen.IsZero() && s.clock.Now().Sub(lastSeen) < 2*s.opts.StatusInterval+30*time.Second
}

// readyWait bounds the store's answer to a readiness check: a load balancer polls often.
const readyWait = 2 * time.Second

// readyz answers a load balancer: 200 when this hub can serve (the store answers, and on
// PostgreSQL the connection hearing the other hubs is up), else 503. It is unauthenticated,
// so it says nothing else; the cause is in the hub's log when readiness changes.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyWait)
	defer cancel()
	why := ""
	if p, ok := s.st.(interface{ Ping(context.Context) error }); ok {
		if err := p.Ping(ctx); err != nil {
			why = "the store does not answer: " + err.Error()
		}
	}
	if why == "" && s.bus != nil && !s.bus.Listening() {
		why = "not listening to the other hubs on the database (reconnecting)"
	}
	w.Header().Set("Cache-Control", "no-store")
	if why != "" {
		if !s.notReady.Swap(true) {
			s.log.Warn("not ready: the load balancer sends no new clients here until this clears", "why", why)
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	if s.notReady.Swap(false) {
		s.log.Info("ready again")
	}
	w.Write([]byte("ready\n"))
}
