package agentlink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
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
	// device ids whose new revisions a push in progress has stored: "<push id> <id> <id>…";
	// its topicPush follows once all are stored, naming the push ("<target> <push id>").
	topicStored = "stored"
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
		target, push, _ := strings.Cut(id, " ")
		kind, tid, _ := strings.Cut(target, ":")
		// The devices announced stored as the push went are sent by the follower already.
		s.sendLatest(ctx, s.follow.notAnnounced(from+" "+push, s.connsIn(store.Target{Kind: store.TargetKind(kind), ID: tid})))
	case topicStored:
		push, ids, _ := strings.Cut(id, " ")
		s.followStored(ctx, from+" "+push, strings.Fields(ids))
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
	s.follow.forget() // pushes whose end may have been lost: they are covered here
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
	if err := s.timed.MarkSent(ctx, s.writeLatest(ctx, conns)); err != nil {
		s.log.Error("delivery state not recorded", "state", "sent", "err", err)
	}
}

// writeLatest is sendLatest without the "sent" marks, which it returns.
func (s *Link) writeLatest(ctx context.Context, conns []*agentConn) []store.DeviceRevision {
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
	return sent
}

// Pipelined pushes (docs/scale.md). The replica that composes a push announces the devices of
// each stored batch (topicStored) as it commits, so the others send while it composes the
// rest, rather than after; a replica never sends what the store has not committed. These
// announcements come every few dozen milliseconds during a large push: each is queued here
// and one goroutine (sendFollowed) drains the queue, reading 1,000 devices per query, and
// records the "sent" marks once the push has gone quiet, not one write per announcement
// (which made the pushing replica's batches wait on the writers' lock).

// follower is what a replica was told of other replicas' pushes in progress.
type follower struct {
	mu      sync.Mutex
	pending []*agentConn  // connections here whose device has a newly stored revision
	running bool          // a sendFollowed is draining pending
	kick    chan struct{} // told of each addition to pending
	// announced: per push ("<replica> <push id>"), the devices here already queued; its
	// topicPush sends the others only. Cleared by that topicPush, or by a resync.
	announced map[string]map[string]bool
}

// followIdle is how long sendFollowed waits for more announcements before it records what it
// sent and ends; maxFollowedMarks bounds the marks it holds.
const (
	followIdle       = 250 * time.Millisecond
	maxFollowedMarks = 20000
)

// followStored queues the connections here of devices another replica's push stored.
func (s *Link) followStored(ctx context.Context, push string, ids []string) {
	s.mu.Lock()
	var conns []*agentConn
	for _, id := range ids {
		if c, ok := s.conns[id]; ok {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	if len(conns) == 0 {
		return
	}
	f := &s.follow
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.announced == nil {
		f.announced = map[string]map[string]bool{}
	}
	if f.kick == nil {
		f.kick = make(chan struct{}, 1)
	}
	if f.announced[push] == nil {
		f.announced[push] = map[string]bool{}
	}
	for _, c := range conns {
		f.announced[push][c.device] = true
	}
	f.pending = append(f.pending, conns...)
	select {
	case f.kick <- struct{}{}:
	default:
	}
	if !f.running {
		f.running = true
		s.wg.Go(func() { s.sendFollowed(ctx) })
	}
}

// sendFollowed writes the queued connections their newest revisions until the queue stays
// empty for followIdle, then records them sent.
func (s *Link) sendFollowed(ctx context.Context) {
	f := &s.follow
	var sent []store.DeviceRevision
	mark := func() {
		if err := s.timed.MarkSent(ctx, sent); err != nil {
			s.log.Error("delivery state not recorded", "state", "sent", "err", err)
		}
		sent = nil
	}
	defer mark()
	for {
		f.mu.Lock()
		n := min(len(f.pending), latestChunk)
		chunk := slices.Clone(f.pending[:n])
		f.pending = f.pending[n:]
		f.mu.Unlock()
		if n > 0 {
			sent = append(sent, s.writeLatest(ctx, chunk)...)
			if len(sent) >= maxFollowedMarks {
				mark()
			}
			continue
		}
		select { // empty: wait for more, or end
		case <-f.kick:
			continue
		case <-time.After(followIdle):
		case <-ctx.Done():
		}
		f.mu.Lock()
		if len(f.pending) > 0 && ctx.Err() == nil {
			f.mu.Unlock()
			continue
		}
		f.running, f.pending = false, nil
		f.mu.Unlock()
		return
	}
}

// storedAnnouncer tells the other replicas, as a push goes, of the devices whose new
// revisions it has stored (topicStored), packing the ids waiting into as few notifications as
// fit. A nil one (no other replicas) does nothing.
type storedAnnouncer struct {
	s    *Link
	push string // this push's id among this replica's
	ids  chan []string
	done chan struct{}
}

func (s *Link) announceStored(ctx context.Context) *storedAnnouncer {
	if s.opts.Peers == nil {
		return nil
	}
	a := &storedAnnouncer{s: s, push: strconv.FormatInt(s.pushes.Add(1), 10), ids: make(chan []string, 256), done: make(chan struct{})}
	go a.run(ctx)
	return a
}

// add announces ids, stored (committed) already.
func (a *storedAnnouncer) add(ids ...string) {
	if a != nil && len(ids) > 0 {
		a.ids <- ids
	}
}

// close returns once every id added is announced, with the push's id for its topicPush.
func (a *storedAnnouncer) close() string {
	if a == nil {
		return ""
	}
	close(a.ids)
	<-a.done
	return a.push
}

func (a *storedAnnouncer) run(ctx context.Context) {
	defer close(a.done)
	room := store.MaxNotifyPayload - len(topicStored) - 1 - len(a.s.replica) - 1 // "topic\nreplica payload"
	for ids := range a.ids {
	more: // what came while the last notification was sent goes in the next ones
		for {
			select {
			case more, ok := <-a.ids:
				if !ok {
					break more
				}
				ids = append(ids, more...)
			default:
				break more
			}
		}
		for len(ids) > 0 {
			var b strings.Builder
			b.WriteString(a.push)
			for n := 0; len(ids) > 0 && (n == 0 || b.Len()+1+len(ids[0]) <= room); n++ {
				b.WriteString(" " + ids[0]) // the first always goes: an id is far shorter than the room
				ids = ids[1:]
			}
			a.s.announce(ctx, topicStored, b.String())
		}
	}
}

// notAnnounced returns conns without those already queued for push, and forgets the push.
func (f *follower) notAnnounced(push string, conns []*agentConn) []*agentConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	done := f.announced[push]
	if done == nil {
		return conns
	}
	delete(f.announced, push)
	return slices.DeleteFunc(conns, func(c *agentConn) bool { return done[c.device] })
}

// forget drops what was announced of pushes in progress.
func (f *follower) forget() {
	f.mu.Lock()
	f.announced = nil
	f.mu.Unlock()
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
