// Package link is the agent's connection to the district hub: one websocket the agent dials
// out, over which it says hello, sends its journal of confirmations until the hub has
// acknowledged them, receives signed schedules and commands (verified here, handed to the
// daemon), fetches the content a pushed schedule lacks, and sends a heartbeat. It reconnects
// with capped exponential backoff and full jitter. Nothing in it ever blocks playback: the
// daemon runs Run beside its player and everything it consumes is an interface declared here.
//
// See docs/agent-link.md for the split of work between the link and the daemon.
package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// Journal is the confirmation journal; *journal.Journal implements it.
type Journal interface {
	// Since returns up to limit closed records with a sequence above after, in order.
	Since(after uint64, limit int) ([]journal.Record, error)
	// Ack records that the hub holds every record up to seq.
	Ack(seq uint64) error
	HighWater() uint64
	Acked() uint64
	ID() string // names the journal: a new one restarts numbering at 1
}

// Store is the content store; *content.Store implements it.
type Store interface {
	Has(ref content.Ref) bool
	// Fetch downloads url into the store (Range resume, verified). Its HTTP client must send
	// the device's Authorization header to the hub: see DeviceTransport.
	Fetch(ctx context.Context, url string, ref content.Ref, size int64) error
	Usage() content.Usage
	Dir() string
}

// Progress is how far a schedule revision got on the device.
type Progress struct {
	// State is protocol.DeliveryReceived (stored, waiting for the content in Missing),
	// protocol.DeliveryContentReady (all there, not playing yet) or protocol.DeliveryActive.
	State string
	// Missing lists the items the revision needs that the store lacks; the link fetches
	// them from the hub and then calls Schedules.Advance.
	Missing []content.Ref
}

// Schedules is the daemon's schedule keeper.
type Schedules interface {
	// Active is the revision playing now, Pending one stored and waiting for its content;
	// nil when there is none. They go into every hello.
	Active() *protocol.ScheduleRef
	Pending() *protocol.ScheduleRef
	// HeldRevision is the highest revision of a schedule id ever accepted (active, pending
	// or since replaced): a push not above it is refused as replayed.
	HeldRevision(scheduleID string) (revision uint64, ok bool)
	// Offer takes a verified schedule whose document the link has parsed and found to name
	// the payload's id and revision. The daemon validates it as it would a local file,
	// stores it (recording its revision for HeldRevision before returning), activates it at
	// once if every item is in the store, and otherwise keeps it pending and returns what is
	// missing. An error refuses the push: wrap ErrInvalidDocument for a document fault.
	Offer(ctx context.Context, p *protocol.SchedulePayload) (Progress, error)
	// Advance looks again at a pending revision after the link fetched its content (or at
	// connect, for a revision left pending by a restart), activating it when it is complete.
	Advance(ctx context.Context, ref protocol.ScheduleRef) (Progress, error)
}

// ErrInvalidDocument marks an Offer error caused by the document itself (refused with code
// "invalid_document" rather than "internal").
var ErrInvalidDocument = errors.New("invalid schedule document")

// Commands carries out verified commands (play_now, stop, volume, reload).
type Commands interface {
	// Execute acts on a command whose replay memory is already persisted. It must not block
	// for long (start the play, do not wait for its end). An error is reported as failed.
	Execute(ctx context.Context, c *protocol.CommandPayload) error
}

// CommandMemory persists the replay memory of commands (protocol.CommandLogState), so a
// reboot does not let an old command be replayed. FileCommandMemory is one.
type CommandMemory interface {
	LoadCommandLog() (protocol.CommandLogState, error)
	SaveCommandLog(protocol.CommandLogState) error
}

// StatusSource gives the heartbeat's content: now playing, volume, disk, temperature, uptime.
// The link fills in the message id, At when zero, the clock offset and the link's ping RTT.
type StatusSource interface {
	Status() protocol.Status
}

// Config is what the agent config says about the hub.
type Config struct {
	// HubURL is the hub's base URL: https://hub.example (or http:// on loopback) or the same
	// with wss:// / ws://. The link dials <base>/agent/ws and fetches <base>/content/<ref>.
	// It is HubURLs with one entry; give one or the other.
	HubURL string
	// HubURLs are the base URLs of several hubs on one store (replicas), in the order they
	// are tried: the link stays with the hub it reached and moves to the next when that one
	// fails (docs/agent-link.md, "Several hubs").
	HubURLs         []string
	DeviceID        string
	Secret          string
	SoftwareVersion string
	TrustedKeys     protocol.TrustedKeys
	// Heartbeat is the status interval unless the welcome sets one (default 60s).
	Heartbeat time.Duration
	// Backoff is the reconnect policy (zero fields: protocol defaults); the welcome's
	// reconnect_base_s overrides Base.
	Backoff protocol.Backoff
	// Poll is how often the journal is read for new closed records besides Notify
	// (default 1s).
	Poll time.Duration
	// Batch is the largest confirmations batch (default 500, at most the protocol's 1000).
	Batch int
	// Ping is the websocket ping interval (default 30s).
	Ping time.Duration
	// PingDeadline: a link from which nothing (not even a pong) arrived for this long is
	// dropped and dialled again, so a link gone silent without closing is noticed (default
	// 2×Ping+10s).
	PingDeadline time.Duration
	// HandshakeTimeout bounds dialling and waiting for the welcome (default 30s).
	HandshakeTimeout time.Duration
	// FetchBackoff is the retry policy of content fetches (default 2s..5m).
	FetchBackoff protocol.Backoff
	// Arch is the agent's Debian architecture, told in hello; Upgrades says the agent trusts
	// a release key and installs the hub's upgrade messages (Deps.Upgrades).
	Arch     string
	Upgrades bool
}

// Deps are the parts the link uses. Logger, Clock, Rand, Journal, Store, Schedules, Commands,
// CommandMemory and Status are required.
type Deps struct {
	Logger *slog.Logger
	// Clock is the agent's clock, the link's wall time (hello, status, clock offset, command
	// expiry, outage length). Backoff, pings, polls and socket deadlines are waits on a real
	// network, so they use the machine's monotonic time, not this clock.
	Clock clock.Clock
	// Rand draws backoff jitter (*math/rand/v2.Rand); it is used from Run's goroutines
	// under a lock.
	Rand protocol.Rand
	// Dialer dials the websocket; nil: a dialer with the handshake timeout.
	Dialer *websocket.Dialer
	// HTTPClient asks the hub for content sizes (HEAD); nil: http.DefaultClient.
	HTTPClient    *http.Client
	Journal       Journal
	Store         Store
	Schedules     Schedules
	Commands      Commands
	CommandMemory CommandMemory
	Status        StatusSource
	// Neighbours, when set, are asked for an item before the hub (agent/neighbours).
	Neighbours Neighbours
	// Upgrades takes the hub's upgrade messages (agent/upgrade); nil: they are logged and
	// ignored, and hello says upgrades: false.
	Upgrades Upgrades
}

// Upgrades installs agent releases; *upgrade.Manager is one. Upgrade must not block.
type Upgrades interface {
	Upgrade(m *protocol.Upgrade)
}

// Link is the agent's link to the hub. Create it with New, run it with Run.
type Link struct {
	cfg      Config
	d        Deps
	commands sync.WaitGroup // commands being carried out; Run waits for them
	log      *slog.Logger
	hubs     []hubAddr
	cur      atomic.Int64 // index in hubs of the hub connected, or the next to dial
	verifier *protocol.Verifier
	cmdLog   *protocol.CommandLog
	limits   protocol.Limits

	randMu sync.Mutex

	offsetNS  atomic.Int64
	offsetErr atomic.Int64 // half the round trip of the sample offsetNS came from: its bound
	hasOffset atomic.Bool
	rttNS     atomic.Int64
	connected atomic.Bool

	notify chan struct{} // a record closed: look at the journal now
	status chan struct{} // an alarm raised or cleared: send a status now
	wake   chan struct{} // deliveries queued

	mu     sync.Mutex
	outbox []*protocol.Delivery

	fetchWant chan fetchJob

	// Outage state, used by Run's goroutine only.
	down      bool
	downSince time.Time
	everUp    bool
}

const maxOutbox = 1000

// New checks the configuration and returns a link. It loads the command replay memory.
func New(cfg Config, d Deps) (*Link, error) {
	if d.Logger == nil || d.Clock == nil || d.Rand == nil || d.Journal == nil || d.Store == nil ||
		d.Schedules == nil || d.Commands == nil || d.CommandMemory == nil || d.Status == nil {
		return nil, errors.New("link: Logger, Clock, Rand, Journal, Store, Schedules, Commands, CommandMemory and Status are all required")
	}
	if cfg.DeviceID == "" || cfg.Secret == "" {
		return nil, errors.New("link: hub configured without device_id or secret")
	}
	if len(cfg.TrustedKeys) == 0 {
		return nil, errors.New("link: no trusted_keys: the agent could accept no schedule or command from the hub")
	}
	hubs, err := hubAddrs(cfg.HubURL, cfg.HubURLs)
	if err != nil {
		return nil, err
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = "loa-agent"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	cfg.Batch = min(cfg.Batch, protocol.DefaultMaxRecords)
	if cfg.Ping <= 0 {
		cfg.Ping = 30 * time.Second
	}
	if cfg.PingDeadline <= 0 {
		cfg.PingDeadline = 2*cfg.Ping + 10*time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	if cfg.FetchBackoff.Base <= 0 {
		cfg.FetchBackoff.Base = 2 * time.Second
	}
	if cfg.FetchBackoff.Max <= 0 {
		cfg.FetchBackoff.Max = 5 * time.Minute
	}
	l := &Link{
		cfg:       cfg,
		d:         d,
		log:       d.Logger,
		hubs:      hubs,
		limits:    protocol.DefaultLimits(),
		notify:    make(chan struct{}, 1),
		status:    make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		fetchWant: make(chan fetchJob, 1),
	}
	l.verifier, err = protocol.NewVerifier(cfg.TrustedKeys, cfg.DeviceID, hubClock{l})
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	// Judged by hubClock, which the unsigned welcome cannot wind back.
	l.verifier.SetMaxScheduleAge(protocol.MaxScheduleAge)
	st, err := d.CommandMemory.LoadCommandLog()
	if err != nil {
		return nil, fmt.Errorf("link: loading the command replay memory: %w", err)
	}
	l.cmdLog = protocol.NewCommandLog(st)
	return l, nil
}

// CheckHubURL refuses a plaintext hub URL (http://, ws://) on a host that is not loopback
// unless allowInsecure: the device secret would cross the network in clear, and a hub posed
// by anyone on the path would be believed for everything not signed. The agent's config check
// calls it for each hub URL, and puts the field's name in front of the error.
func CheckHubURL(s string, allowInsecure bool) error {
	u, err := hubBase(s)
	if err != nil {
		return err
	}
	if u.Scheme == "https" || allowInsecure {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is plaintext to %s, which is not this machine: the device secret would cross the network in clear; "+
		"use https:// (or wss://), or set insecure_hub: true if a TLS tunnel carries it", s, host)
}

// hubBase turns the configured hub URL into its http(s) base.
func hubBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("link: hub URL %q is not an absolute URL like https://hub.example", s)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("link: hub URL %q: scheme must be https, wss, http or ws", s)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/agent/ws")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// hubClock judges command expiry: the device clock, moved forward by the offset learnt at
// welcome when the hub is ahead (a Pi without an RTC boots slow), never back. The welcome is
// not signed: whoever can pose as the hub could otherwise wind the clock back and deliver a
// captured expired command. A device clock that is really ahead makes commands expire early:
// a refusal, never a replay.
type hubClock struct{ l *Link }

func (c hubClock) Now() time.Time {
	now := c.l.d.Clock.Now()
	if off := time.Duration(c.l.offsetNS.Load()); off > 0 {
		return now.Add(off)
	}
	return now
}

// ClockOffset is the hub's clock minus the device's, learnt at the last welcome, and whether
// one has been learnt. The daemon may use it to mark its clock state.
func (l *Link) ClockOffset() (time.Duration, bool) {
	return time.Duration(l.offsetNS.Load()), l.hasOffset.Load()
}

// ClockError bounds the error of ClockOffset: half the round trip of the sample it came from
// (NTP cannot tell how a round trip splits between the two ways).
func (l *Link) ClockError() time.Duration { return time.Duration(l.offsetErr.Load()) }

// Connected reports whether a welcomed connection is up now.
func (l *Link) Connected() bool { return l.connected.Load() }

// Notify tells the link a journal record has closed, so it sends it without waiting for the
// next poll. It never blocks.
func (l *Link) Notify() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// StatusChanged asks for a status now rather than at the next interval: an alarm raised or
// cleared (dead air) reaches the hub in seconds, not a minute later.
func (l *Link) StatusChanged() {
	select {
	case l.status <- struct{}{}:
	default:
	}
}

// HubURL is the URL of a path on the hub connected now, or when none is, the one the link
// dials next (a release package's URL is such a path).
func (l *Link) HubURL(path string) string {
	return l.hub().url(path)
}

// ContentURL is where the hub serves an item: the hub connected now, or when none is, the
// one the link dials next.
func (l *Link) ContentURL(ref content.Ref) string {
	return l.URL("/content/" + ref.String())
}

// URL is path (with its query) on the hub connected now, or the next the link dials.
func (l *Link) URL(path string) string {
	return l.hub().url(path)
}

// ReportSchedule queues a delivery report for a schedule revision (state one of the
// protocol.Delivery* states, reason for failed/refused) and sends it when connected. The
// daemon calls it for a change the link did not cause itself, e.g. a pending revision it
// activated later. Reports made while the hub is unreachable wait (up to 1000, oldest
// dropped first); the hello's active/pending revisions tell the hub the rest.
func (l *Link) ReportSchedule(ref protocol.ScheduleRef, state, reason string) {
	l.queue(&protocol.Delivery{ScheduleID: ref.ID, Revision: ref.Revision, State: state, Reason: reason})
}

// ReportCommand queues a delivery report for a command.
func (l *Link) ReportCommand(commandID, state, reason string) {
	l.queue(&protocol.Delivery{CommandID: commandID, State: state, Reason: reason})
}

func (l *Link) queue(d *protocol.Delivery) {
	l.mu.Lock()
	if len(l.outbox) >= maxOutbox {
		l.outbox = l.outbox[1:]
	}
	l.outbox = append(l.outbox, d)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Link) takeOutbox() []*protocol.Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.outbox
	l.outbox = nil
	return out
}

// requeue puts back reports a lost connection did not send, ahead of newer ones.
func (l *Link) requeue(ds []*protocol.Delivery) {
	if len(ds) == 0 {
		return
	}
	l.mu.Lock()
	l.outbox = append(ds, l.outbox...)
	if len(l.outbox) > maxOutbox {
		l.outbox = l.outbox[len(l.outbox)-maxOutbox:]
	}
	l.mu.Unlock()
}

func (l *Link) delay(b protocol.Backoff, attempt int) time.Duration {
	l.randMu.Lock()
	defer l.randMu.Unlock()
	return b.Delay(attempt, l.d.Rand)
}

func (l *Link) retryAfter(hint time.Duration) time.Duration {
	l.randMu.Lock()
	defer l.randMu.Unlock()
	return protocol.RetryAfter(hint, l.d.Rand)
}

// sleep waits d or until ctx ends; it reports whether ctx ended. It is a wait on the network
// (backoff), so it runs on monotonic time, not Deps.Clock.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}
