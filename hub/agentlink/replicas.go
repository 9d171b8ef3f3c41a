package agentlink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/store"
)

// Several hubs (replicas) may serve from one PostgreSQL database, each holding the websockets
// of some of the agents (docs/scale.md). What one replica does for agents is stored first,
// then announced to the others (Peers) with the ids of what changed; each replica, told
// (Apply), reads it from the store and sends it to the agents it holds, as its own push,
// command fan-out or revocation would: a connection writes a schedule revision or a command
// only once, so a replica told of something its agents already have sends nothing.

// Peers carries announcements to the other replicas (hub/store's Notify on PostgreSQL). It
// must not block for long: it is called after each push, command and revocation.
type Peers interface {
	Notify(ctx context.Context, topic, payload string) error
}

// What a replica announces; the payload is the announcing replica's id, a space, then the id
// of what changed.
const (
	topicPush    = "push"    // a target (store.Target.String()) whose devices have new revisions
	topicCommand = "command" // a command id
	topicDrop    = "drop"    // a device id that was revoked or given a new secret
	topicRollout = "rollout" // a rollout id that started, moved on a stage or stopped (hub/upgrades)
)

// AnnounceRollout tells the other replicas that a rollout changed, so that their rollout
// engines send what it now calls for to the devices connected to them at once rather than at
// their next tick.
func (s *Link) AnnounceRollout(ctx context.Context, id string) { s.announce(ctx, topicRollout, id) }

// announceWait bounds one announcement.
const announceWait = 5 * time.Second

// newReplicaID names this process among the replicas, so that it ignores its own announcements.
func newReplicaID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Replica is this process's id among the replicas: it starts what it announces.
func (s *Link) Replica() string { return s.replica }

// announce tells the other replicas that topic changed for id.
func (s *Link) announce(ctx context.Context, topic, id string) {
	if s.opts.Peers == nil {
		return
	}
	// Bounded: the staff request (or the command lock) waits for it. If it fails, the other
	// replicas' agents get the change when they next connect.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceWait)
	defer cancel()
	if err := s.opts.Peers.Notify(ctx, topic, s.replica+" "+id); err != nil {
		s.log.Error("the other hubs were not told: their agents get this at their next connection or when the hubs resynchronise",
			"what", topic, "id", id, "err", err)
	}
}

// Apply acts on another replica's announcement: it reads what changed from the store and
// sends it to the agents connected here. Announcements of this replica, and ones it cannot
// read, are ignored (the latter logged).
func (s *Link) Apply(ctx context.Context, topic, payload string) {
	from, id, ok := strings.Cut(payload, " ")
	if !ok || id == "" {
		s.log.Warn("announcement from another hub not understood; ignored", "topic", topic, "payload", truncate(payload, 200))
		return
	}
	if from == s.replica {
		return
	}
	switch topic {
	case topicPush:
		kind, tid, _ := strings.Cut(id, ":")
		s.sendLatest(ctx, s.connsIn(store.Target{Kind: store.TargetKind(kind), ID: tid}))
	case topicCommand:
		s.sendCommand(ctx, id)
	case topicDrop:
		s.dropHere(id)
	case topicRollout:
		if s.opts.Upgrades != nil {
			s.opts.Upgrades.Changed()
		}
	default:
		s.log.Warn("announcement from another hub not understood; ignored", "topic", topic, "payload", truncate(payload, 200))
	}
}

// Resync brings every agent connected here up to date from the store, after announcements
// may have been lost (the listening connection was down): the newest revision of each
// device's schedule, its pending commands, and the revoked ones are closed.
func (s *Link) Resync(ctx context.Context) {
	conns := s.connsIn(store.Target{})
	var live []*agentConn
	for _, c := range conns {
		if d, err := s.st.GetDevice(ctx, c.device); errors.Is(err, store.ErrNotFound) || err == nil && d.Revoked {
			c.close()
		} else {
			live = append(live, c)
		}
	}
	s.sendLatest(ctx, live)
	s.sendPendingCommands(ctx, live)
	s.log.Info("agents brought up to date after announcements from the other hubs may have been lost", "devices", len(live))
}

// connsIn is the connections here of the devices a target feeds (every one for a zero target).
func (s *Link) connsIn(t store.Target) []*agentConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*agentConn
	for id, c := range s.conns {
		switch {
		case t.Kind == "",
			t.Kind == store.TargetDevice && id == t.ID,
			t.Kind != store.TargetDevice && (c.area == t.ID || strings.HasPrefix(c.area, t.ID+"/")):
			out = append(out, c)
		}
	}
	return out
}

// latestChunk is how many devices' newest revisions sendLatest reads in one query: few enough
// that the first are written while the next are read, many enough that a province's
// thousands of agents cost a few queries, not one each.
const latestChunk = 1000

// sendLatest writes each connection's newest stored revision unless it carried it, and
// records the ones written as sent.
func (s *Link) sendLatest(ctx context.Context, conns []*agentConn) {
	type send struct {
		c *agentConn
		e store.EffectiveSchedule
	}
	var (
		mu   sync.Mutex
		sent []store.DeviceRevision
		wg   sync.WaitGroup
	)
	next := make(chan send, latestChunk)
	for range min(4, len(conns)) { // as many writers as a push uses
		wg.Go(func() {
			for w := range next {
				if w.c.carried(w.e.Revision) || w.c.writeSchedule(w.e) != nil {
					continue
				}
				mu.Lock()
				sent = append(sent, store.DeviceRevision{DeviceID: w.c.device, Revision: w.e.Revision})
				mu.Unlock()
			}
		})
	}
	for chunk := range slices.Chunk(conns, latestChunk) {
		ids := make([]string, len(chunk))
		for i, c := range chunk {
			ids[i] = c.device
		}
		es, err := s.st.LatestEffectives(ctx, ids)
		if err != nil {
			s.log.Warn("newest schedules not read for devices connected here: they get them at their next connection or resynchronisation",
				"devices", len(ids), "err", err)
			continue
		}
		for _, c := range chunk {
			if e, ok := es[c.device]; ok {
				next <- send{c, e}
			}
		}
	}
	close(next)
	wg.Wait()
	if err := s.timed.MarkSent(ctx, sent); err != nil {
		s.log.Error("delivery state not recorded", "state", "sent", "err", err)
	}
}

// sendCommand writes command id to its devices connected here.
func (s *Link) sendCommand(ctx context.Context, id string) {
	c, err := s.st.GetCommand(ctx, id, "")
	if err != nil {
		s.log.Warn("command announced by another hub not read; its devices here get it at their next connection", "command", id, "err", err)
		return
	}
	want := make(map[string]bool, len(c.Devices))
	for _, d := range c.Devices {
		want[d.DeviceID] = true
	}
	var conns []*agentConn
	for _, conn := range s.connsIn(store.Target{}) {
		if want[conn.device] {
			conns = append(conns, conn)
		}
	}
	s.sendPendingCommands(ctx, conns)
}

// sendPendingCommands writes to each connection the commands its device has not answered
// and it has not carried, under the commands' lock as a local fan-out (commandState).
func (s *Link) sendPendingCommands(ctx context.Context, conns []*agentConn) {
	if len(conns) == 0 {
		return
	}
	s.cmds.mu.Lock()
	defer s.cmds.mu.Unlock()
	s.cmds.lastSeq = 0 // another replica signed above it: read it again before signing
	var sends []store.CommandSend
	for _, c := range conns {
		pend, err := s.st.PendingCommands(ctx, c.device, s.clock.Now())
		if err != nil {
			s.log.Warn("pending commands not read for a device connected here", "device", c.device, "err", err)
			continue
		}
		for _, p := range pend {
			if c.writeCommand(p, false) == nil {
				sends = append(sends, store.CommandSend{CommandID: p.ID, DeviceID: c.device})
			}
		}
	}
	if err := s.st.MarkCommandsSent(ctx, sends); err != nil {
		s.log.Error("command sends not recorded", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
