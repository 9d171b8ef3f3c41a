// Package agentlink is the hub's link to its agents: the websocket each device holds open
// (hello and welcome, the registry of live connections, the confirmations and statuses it
// brings in), the push pipeline (composing, signing and sending each device's effective
// schedule) and the signed commands sent over the same connections with the devices'
// answers. Commands live here because their order is a property of the connection: a
// connection's start and a command's fan-out take one lock (commandState), and each
// connection remembers the newest command it carried (docs/hub.md, "Where the code lives").
package agentlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// Store is what the link reads and writes; *store.DB provides it.
type Store interface {
	GetDevice(ctx context.Context, id string) (store.Device, error)
	ListDevices(ctx context.Context, area string) ([]store.Device, error)
	Seen(ctx context.Context, id string) error
	SetAgent(ctx context.Context, id, software, arch string, upgrades bool) error
	UpdateStatus(ctx context.Context, id string, s store.Status) error
	AddOnline(ctx context.Context, id string, from, to time.Time) error
	SeeJournal(ctx context.Context, deviceID, journalID string) (restarted bool, oldAck int64, err error)
	AddConfirmations(ctx context.Context, deviceID string, cs []store.Confirmation) (int64, error)
	AckedSeq(ctx context.Context, deviceID string) (int64, error)
	GetContent(ctx context.Context, ref string) (store.Content, error)

	Ancestors(ctx context.Context, id string) ([]store.Area, error)
	LatestSchedule(ctx context.Context, t store.Target) (store.Schedule, error)
	SchedulesForDevice(ctx context.Context, deviceID string) ([]store.Schedule, error)
	AddEffective(ctx context.Context, e store.EffectiveSchedule) (store.EffectiveSchedule, error)
	LatestEffective(ctx context.Context, deviceID string) (store.EffectiveSchedule, error)
	LatestEffectives(ctx context.Context, deviceIDs []string) (map[string]store.EffectiveSchedule, error)
	LatestSchedulesUnder(ctx context.Context, area string) (store.SubtreeSchedules, error)
	LatestEffectiveHeads(ctx context.Context, area string) (map[string]store.EffectiveHead, error)
	LatestRevisions(ctx context.Context, area string) (map[string]int64, error)
	AddEffectives(ctx context.Context, es []store.EffectiveSchedule) ([]store.EffectiveSchedule, []error, error)
	MarkSent(ctx context.Context, revs []store.DeviceRevision) error
	MarkDelivery(ctx context.Context, deviceID string, revision int64, state store.DeliveryState, reason string) (store.Delivery, error)

	CommandStore // commands.go
}

// Broadcasts is what composition needs of the broadcast room (hub/broadcast): the active
// emergencies, bulletins and live relays put before a device's own sources.
type Broadcasts interface {
	WithEmergencies(ctx context.Context, deviceID string, srcs []store.Schedule) ([]store.Schedule, error)
	EmergenciesFor(ctx context.Context) (func(d store.Device, srcs []store.Schedule) []store.Schedule, error)
}

// Titles names what a device's status reports playing, for staff (the hub's titles of
// programmes and library items). One is made per connection and used by its reader alone.
type Titles interface {
	ProgramOf(device string, revision int64, program string) string
	Item(ref string) string
}

// Options configure a Link. Every function is required.
type Options struct {
	Store  Store
	Signer *protocol.Signer
	Log    *slog.Logger
	// Now is the hub's clock, read at each use (tests move it after New).
	Now        func() time.Time
	Broadcasts Broadcasts
	// StatusInterval is asked of agents in the welcome.
	StatusInterval time.Duration
	// Limits bound agent messages; zero fields take protocol's defaults.
	Limits protocol.Limits
	// Touched, when set, is told of each device whose state the link changed (a connection, a
	// status, a delivery, a new revision): the hub's device list re-reads just that device.
	Touched func(deviceID string)
	// Metrics counts pushes, confirmations, deliveries and websocket errors, and times the
	// store calls on the agents' path.
	Metrics Metrics
	// MaxHellos bounds welcomes at once (0 or less: no limit); BusyRetryAfter is the wait
	// asked of an agent turned away busy.
	MaxHellos      int
	BusyRetryAfter time.Duration

	// DeviceAuth checks a device's credentials and answers 401 when they fail.
	DeviceAuth func(w http.ResponseWriter, r *http.Request) (store.Device, bool)
	// NewTitles makes the titles a connection's statuses are stored with.
	NewTitles func(ctx context.Context) Titles
	// For the staff's command handlers: the target a command names (answering when it is
	// not found or out of scope), a device by id in the caller's scope, the audit log.
	ResolveTarget func(w http.ResponseWriter, r *http.Request, p staffapi.Caller, to string) (store.Target, string, bool)
	LookupDevice  func(w http.ResponseWriter, r *http.Request, p staffapi.Caller, id string) (store.Device, bool)
	Audit         func(ctx context.Context, p staffapi.Caller, action, target string, detail any)
	// Peers, when set, is told of each push, command and revocation, for the other hubs
	// sharing the store (replicas.go); nil when this hub is alone.
	Peers Peers
	// Upgrades, when set, is told of each welcomed connection and of the upgrade state each
	// status carries (the hub's rollouts, hub/upgrades).
	Upgrades Upgrades
}

// Upgrades is what the link tells the hub's rollouts.
type Upgrades interface {
	// Connected: a device was welcomed; an upgrade it has not finished can be sent again.
	Connected(device string)
	// Report: a device's status said where it is in an upgrade.
	Report(ctx context.Context, device string, u protocol.UpgradeStatus)
	// Changed: another replica started, moved on or stopped a rollout (AnnounceRollout).
	Changed()
}

// clockFunc is the hub's clock as the moved code reads it (s.clock.Now()).
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// Link is the agents' side of the hub: an http.Handler for GET /agent/ws, the push pipeline
// and commands.
type Link struct {
	notStored notStoredLog // confirmations refused by the store, logged a few at a time
	st        Store
	signer    *protocol.Signer
	log       *slog.Logger
	clock     clockFunc
	bc        Broadcasts
	opts      Options
	metrics   Metrics
	touched   func(deviceID string)
	replica   string       // this process among the replicas (replicas.go)
	timed     timedStore   // the store calls on the agents' path, timed into metrics
	firsts    firstSamples // broadcasts whose first sample each device confirmed (metrics.go)
	follow    follower     // other replicas' pushes in progress (replicas.go)
	pushes    atomic.Int64 // numbers this replica's pushes in their announcements

	deviceAuth    func(w http.ResponseWriter, r *http.Request) (store.Device, bool)
	newTitles     func(ctx context.Context) Titles
	resolveTarget func(w http.ResponseWriter, r *http.Request, p staffapi.Caller, to string) (store.Target, string, bool)
	lookupDevice  func(w http.ResponseWriter, r *http.Request, p staffapi.Caller, id string) (store.Device, bool)
	audit         func(ctx context.Context, p staffapi.Caller, action, target string, detail any)

	mu    sync.Mutex
	conns map[string]*agentConn // device id -> its live connection
	// composeMu serialises composition per device so two pushes cannot race for a revision.
	composeMu keyedMutex
	// Caches of parsed source schedules and of source sets whose composition parsed: pushing
	// one schedule to 10,000 devices parses it once, not 10,000 times.
	parsedDocs, validSets sync.Map
	parsedCount           atomic.Int64
	wg                    sync.WaitGroup
	cmds                  commandState  // the order of signed commands (commands.go)
	hellos                chan struct{} // welcomes in progress (agentws.go); nil: no limit
	gens                  atomic.Uint64 // numbers each connection (agentConn.gen)
	// partFaults: device id -> its faulty parts as last logged, so a fault is logged once
	// when it appears or changes, not at every heartbeat.
	partFaults sync.Map
}

// New returns a link over opts.Store, or an error naming the option the hub left out.
func New(opts Options) (*Link, error) {
	for _, o := range []struct {
		name    string
		missing bool
	}{{"Store", opts.Store == nil}, {"Signer", opts.Signer == nil}, {"Now", opts.Now == nil},
		{"Broadcasts", opts.Broadcasts == nil}, {"Metrics", opts.Metrics == nil}, {"DeviceAuth", opts.DeviceAuth == nil}, {"NewTitles", opts.NewTitles == nil},
		{"ResolveTarget", opts.ResolveTarget == nil}, {"LookupDevice", opts.LookupDevice == nil}, {"Audit", opts.Audit == nil}} {
		if o.missing {
			return nil, fmt.Errorf("agentlink: Options.%s is required", o.name)
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = 60 * time.Second
	}
	if opts.BusyRetryAfter <= 0 {
		opts.BusyRetryAfter = helloRetryAfter
	}
	s := &Link{st: opts.Store, signer: opts.Signer, log: opts.Log, clock: clockFunc(opts.Now), bc: opts.Broadcasts, opts: opts,
		deviceAuth: opts.DeviceAuth, newTitles: opts.NewTitles, resolveTarget: opts.ResolveTarget,
		lookupDevice: opts.LookupDevice, audit: opts.Audit, conns: map[string]*agentConn{}, metrics: opts.Metrics}
	s.timed = timedStore{s}
	s.replica = newReplicaID()
	s.touched = opts.Touched
	if s.touched == nil {
		s.touched = func(string) {}
	}
	s.composeMu.m = map[string]*keyedEntry{}
	if opts.MaxHellos > 0 {
		s.hellos = make(chan struct{}, opts.MaxHellos)
	}
	return s, nil
}

// Online reports whether a device holds a live connection now.
func (s *Link) Online(deviceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.conns[deviceID]
	return ok
}

// Conn is the number of the device's live connection here, if it has one: a new number at
// each connection, so a sender can tell a reconnected device from one it already wrote to.
func (s *Link) Conn(deviceID string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[deviceID]
	if !ok {
		return 0, false
	}
	return c.gen, true
}

// errGone is a send to a connection that is no longer the device's.
var errGone = errors.New("the device's connection ended")

// SendOn writes m to the device's connection numbered conn (Conn), once it is welcomed; it
// fails if the device has no connection here or another one now.
func (s *Link) SendOn(deviceID string, conn uint64, m protocol.Message) error {
	s.mu.Lock()
	c, ok := s.conns[deviceID]
	s.mu.Unlock()
	if !ok || c.gen != conn {
		return errGone
	}
	select {
	case <-c.ready:
	default:
		return errNotReady
	}
	if m.Envelope().ID == "" {
		m.Envelope().ID = c.nextID()
	}
	err := c.send(m)
	if err != nil {
		s.metrics.WebsocketError("write")
	}
	return err
}

// Drop closes a device's live connection, if any (it was revoked or given a new secret), here
// and on the other replicas.
func (s *Link) Drop(deviceID string) {
	s.dropHere(deviceID)
	s.announce(context.Background(), topicDrop, deviceID)
}

// dropHere closes a device's live connection to this replica, if any.
func (s *Link) dropHere(deviceID string) {
	s.mu.Lock()
	c := s.conns[deviceID]
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// HoldWelcomes takes every free welcome slot, as if that many welcomes were in progress,
// until release is called: how tests and the storm benchmark make the hub answer busy.
func (s *Link) HoldWelcomes() (release func()) {
	n := 0
	for n < cap(s.hellos) {
		select {
		case s.hellos <- struct{}{}:
			n++
			continue
		default:
		}
		break
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for range n {
				<-s.hellos
			}
		})
	}
}

// Close closes every agent connection and waits for their goroutines.
func (s *Link) Close() {
	s.mu.Lock()
	conns := make([]*agentConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns { // outside the lock: each close may wait on a slow peer
		c.close()
	}
	s.wg.Wait()
}

// keyedMutex serialises work per key (device id) without one lock for all devices.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
