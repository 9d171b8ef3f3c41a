// Package neighbours lets the agents of one commune share content on their LAN: each serves
// the complete, verified items of its content store to the others, and fetches a missing item
// from a neighbour that has it (or is fetching it) before asking the hub. Requests between
// neighbours are signed with the commune's key, which the hub gives each agent with the list
// of its neighbours' addresses (protocol.Neighbours). Whatever a neighbour sends is verified
// by sha256 by the content store like any fetch. See docs/agent.md, "Neighbours".
package neighbours

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/protocol"
)

// Store is the agent's content store; *content.Store implements it.
type Store interface {
	Has(ref content.Ref) bool
	// Open returns the item verified (a corrupt one is removed and an error returned).
	Open(ref content.Ref) (*os.File, error)
	// Fetch downloads url into the store with Range resume and checks its sha256.
	Fetch(ctx context.Context, url string, ref content.Ref, size int64) error
	// Fetching says whether a fetch of ref is under way and how far it got.
	Fetching(ref content.Ref) (have, size int64, ok bool)
}

// Config is what the agent config's neighbours section says (docs/agent.md, "Neighbours").
type Config struct {
	// Listen is where the agent serves its content to neighbours, e.g. ":7081". Empty: the
	// agent neither serves nor asks neighbours.
	Listen string
	// Advertise is the address told to neighbours (IP:port). Empty: the listen address when
	// it names an IP, else the address this machine reaches the hub from, with the port.
	Advertise string
	// MaxTransfers bounds the items sent to neighbours at once (default 2); more are answered
	// 503 and the neighbour asks another or the hub.
	MaxTransfers int
	// RateMBps bounds the bytes sent to all neighbours together, in megabytes a second
	// (default 8, about a 100 Mbit/s LAN's worth, which leaves the SD card to the player).
	RateMBps float64
	// Wait is how long a fetch waits, per neighbour that needs the same item and ranks before
	// this agent for it, for one of them to start fetching it from the hub (default 2s): of
	// the agents that need one item at once, one goes to the hub and the others wait for it.
	Wait time.Duration
	// Stall: a neighbour whose transfer (to us, or its own from the hub that we wait for)
	// makes no progress for this long is left for the hub (default 15s).
	Stall time.Duration
}

// Defaults.
const (
	defaultMaxTransfers = 2
	defaultRateMBps     = 8
	defaultWait         = 2 * time.Second
	defaultStall        = 15 * time.Second
	// maxSkew bounds the age of a signed request (hub time, which both sides learnt at their
	// welcome): a captured request cannot be replayed for long.
	maxSkew = 10 * time.Minute
	// FetchingHeader on a 404 says the item is being fetched here: "<have>/<size>" bytes.
	FetchingHeader = "Loa-Fetching"
	// WantingHeader on a 404 says this agent needs the item too and is asking its neighbours.
	WantingHeader = "Loa-Wanting"
	maxRequests   = 16 // requests handled at once, transfers included
)

// Neighbours serves this agent's store to its neighbours and fetches from them.
type Neighbours struct {
	cfg    Config
	self   string
	hubURL string
	store  Store
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	key   []byte            // the commune's key; nil until the hub sent one
	peers map[string]string // device id -> address, from the hub
	lan   map[string]string // device id -> address, found on the LAN (AddPeer)
	bad   map[string]time.Time
	want  map[content.Ref]time.Time // items this agent is asking its neighbours for, until

	ln        net.Listener
	requests  chan struct{}
	transfers chan struct{}
	pace      *pacer
	served    atomic.Int64
	refusals  refusalLog
}

// New returns neighbours for device self whose hub is hubURL (to find the address the LAN
// knows this machine by). now is the hub's time as this agent knows it (its clock plus the
// offset learnt at welcome): signatures are dated with it.
func New(cfg Config, self, hubURL string, store Store, log *slog.Logger, now func() time.Time) (*Neighbours, error) {
	if cfg.Advertise != "" {
		if err := protocol.CheckContentAddr(cfg.Advertise); err != nil {
			return nil, fmt.Errorf("neighbours.advertise: %w", err)
		}
	}
	if cfg.MaxTransfers <= 0 {
		cfg.MaxTransfers = defaultMaxTransfers
	}
	if cfg.RateMBps <= 0 {
		cfg.RateMBps = defaultRateMBps
	}
	if cfg.Wait <= 0 {
		cfg.Wait = defaultWait
	}
	if cfg.Stall <= 0 {
		cfg.Stall = defaultStall
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Neighbours{cfg: cfg, self: self, hubURL: hubURL, store: store, log: log, now: now,
		peers: map[string]string{}, lan: map[string]string{}, want: map[content.Ref]time.Time{}, bad: map[string]time.Time{},
		requests: make(chan struct{}, maxRequests), transfers: make(chan struct{}, cfg.MaxTransfers),
		pace: &pacer{rate: cfg.RateMBps * 1e6}}, nil
}

// Hint takes the hub's neighbours message: the commune's key and its agents' addresses.
func (n *Neighbours) Hint(m *protocol.Neighbours) {
	key, err := m.KeyBytes()
	if err != nil {
		n.log.Warn("the hub sent an unusable neighbour key; neighbours are not asked", "err", err)
		return
	}
	peers := map[string]string{}
	for _, p := range m.Peers {
		if p.DeviceID != n.self {
			peers[p.DeviceID] = p.Addr
		}
	}
	n.mu.Lock()
	changed := !hmac.Equal(key, n.key) || len(peers) != len(n.peers)
	for id, a := range peers {
		changed = changed || n.peers[id] != a
	}
	n.key, n.peers = key, peers
	count := len(peers)
	n.mu.Unlock()
	if changed {
		n.log.Info("neighbours known from the hub", "neighbours", count)
	}
}

// AddPeer adds a neighbour found on the LAN (not from the hub).
func (n *Neighbours) AddPeer(deviceID, addr string) {
	if deviceID == n.self || protocol.CheckContentAddr(addr) != nil {
		return
	}
	n.mu.Lock()
	n.lan[deviceID] = addr
	n.mu.Unlock()
}

// Known is how many neighbours this agent knows, and whether it has the commune's key.
func (n *Neighbours) Known() (peers int, key bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.all()), n.key != nil
}

// Served is the bytes sent to neighbours since start.
func (n *Neighbours) Served() int64 { return n.served.Load() }

// ContentAddr is the address this agent tells the hub it serves at (empty before Listen).
func (n *Neighbours) ContentAddr() string {
	if n.cfg.Advertise != "" {
		return n.cfg.Advertise
	}
	if n.ln == nil {
		return ""
	}
	la, ok := n.ln.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip := la.IP
	if ip == nil || ip.IsUnspecified() {
		ip = n.lanIP()
	}
	if ip == nil {
		return ""
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(la.Port))
}

// lanIP is the local address of the route to the hub: behind the commune's router it is the
// LAN address the neighbours reach. A UDP "dial" sends nothing; it only picks the route.
func (n *Neighbours) lanIP() net.IP {
	u, err := url.Parse(n.hubURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP
	}
	return nil
}

// peerList is the neighbours to ask now for ref, best ranked first.
func (n *Neighbours) peerList(ref content.Ref) (key []byte, peers []peer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.key == nil {
		return nil, nil
	}
	now := time.Now()
	for id, addr := range n.all() {
		if until, bad := n.bad[id]; bad && now.Before(until) {
			continue
		}
		peers = append(peers, peer{id: id, addr: addr, score: score(ref, id)})
	}
	slices.SortFunc(peers, func(a, b peer) int { return strings.Compare(a.score, b.score) })
	return n.key, peers
}

// wantFor says this agent needs ref until then (neighbours see it in WantingHeader).
func (n *Neighbours) wantFor(ref content.Ref, until time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for r, u := range n.want {
		if !now.Before(u) {
			delete(n.want, r)
		}
	}
	n.want[ref] = until
}

func (n *Neighbours) wanting(ref content.Ref) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	u, ok := n.want[ref]
	return ok && time.Now().Before(u)
}

// all is the hub's neighbours and those found on the LAN; the hub's address wins.
func (n *Neighbours) all() map[string]string {
	all := make(map[string]string, len(n.peers)+len(n.lan))
	for id, a := range n.lan {
		all[id] = a
	}
	for id, a := range n.peers {
		all[id] = a
	}
	return all
}

// skip leaves a neighbour out of fetches for d.
func (n *Neighbours) skip(id string, d time.Duration) {
	n.mu.Lock()
	n.bad[id] = time.Now().Add(d)
	n.mu.Unlock()
}

type peer struct{ id, addr, score string }

// score orders the agents for one item: the same order on every agent, a different one per
// item, so the first to go to the hub is not always the same box.
func score(ref content.Ref, device string) string {
	h := sha256.Sum256([]byte(ref.String() + "\n" + device))
	return hex.EncodeToString(h[:])
}

// sign is the signature of a request by device from for ref at unix time t.
func sign(key []byte, ref content.Ref, from string, t int64) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "loa neighbour get v1\n%s\n%s\n%d", ref, from, t)
	return hex.EncodeToString(mac.Sum(nil))
}

// itemURL is the signed URL of ref at a neighbour.
func (n *Neighbours) itemURL(key []byte, addr string, ref content.Ref) string {
	t := n.now().Unix()
	q := url.Values{"from": {n.self}, "t": {strconv.FormatInt(t, 10)}, "sig": {sign(key, ref, n.self, t)}}
	return "http://" + addr + "/content/" + ref.String() + "?" + q.Encode()
}
