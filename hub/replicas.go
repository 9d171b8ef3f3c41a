package hub

import (
	"context"
	"net/http"
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
	for ev := range s.bus.Listen(ctx) { // closed once ctx ends
		if ev.Resync {
			s.link.Resync(ctx)
		} else {
			s.link.Apply(ctx, ev.Topic, ev.Payload)
		}
	}
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
