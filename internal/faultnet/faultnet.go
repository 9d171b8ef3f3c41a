// Package faultnet is a TCP fault proxy for tests: it sits between an agent and the hub on
// loopback and makes the link between them bad the ways a commune's 2G/3G link is bad. It
// can shape the link (bandwidth, added delay each way, and loss as TCP shows it to the
// program: a lost segment is retransmitted after a timeout and holds back everything behind
// it), go silent without closing (half-open: nothing forwarded either way, every socket kept
// open), cut the next connection after a number of bytes (mid-frame), play a hub that accepts
// and never answers, and drop the link (every connection closed, new ones refused).
//
// Loopback TCP cannot lose a packet, so loss is modelled as the stall it causes, which is
// what an application above TCP sees. A network namespace with tc netem would model the
// packets themselves, but needs root and changes kernel state on a machine the tests share;
// the proxy needs neither and its faults are switched on and off at exact moments.
package faultnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Shape is how the link carries bytes. The zero Shape forwards as fast as loopback does.
type Shape struct {
	// Rate is the link's bandwidth in bytes per second, each way; 0: unlimited.
	Rate int64
	// Delay is added to every segment, one way (a round trip gains 2×Delay).
	Delay time.Duration
	// Loss is the fraction of segments lost on the way; a lost segment arrives LossStall
	// later (TCP's retransmission) and the segments behind it wait for it (in-order delivery).
	Loss float64
	// LossStall is the retransmission delay of a lost segment; 0: the larger of 200 ms
	// (Linux's minimum retransmission timeout) and two round trips.
	LossStall time.Duration
}

// Segment is the most bytes the proxy forwards as one unit (a TCP segment on Ethernet).
const Segment = 1460

// Dir is a direction of forwarding.
type Dir int

const (
	ToTarget Dir = iota // from the client (the agent) to the target (the hub)
	ToClient            // from the target to the client
)

// Stats counts what went through.
type Stats struct {
	Conns     int   // connections accepted
	ToTarget  int64 // bytes forwarded to the target
	ToClient  int64 // bytes forwarded to clients
	CutsTaken int   // connections cut by CutNext
}

// Proxy forwards connections from Addr to a target. Create it with New; Close it.
type Proxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	shape   Shape
	silent  bool
	mute    bool
	down    bool
	cuts    []cutPlan // for the next connections, one each, in order
	changed chan struct{}
	conns   map[net.Conn]struct{}
	rng     *rand.Rand
	stats   Stats
}

// New listens on a loopback port and forwards every connection to target (host:port).
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultnet: listening on loopback: %w", err)
	}
	p := &Proxy{ln: ln, target: target, done: make(chan struct{}), changed: make(chan struct{}),
		conns: map[net.Conn]struct{}{}, rng: rand.New(rand.NewPCG(17, 3))}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetShape shapes every segment read from now on.
func (p *Proxy) SetShape(s Shape) {
	p.mu.Lock()
	p.shape = s
	p.mu.Unlock()
}

// Silence makes the link go silent (on) without closing anything: no byte is forwarded
// either way, on open connections and on new ones, which are accepted as a half-open path
// would let a SYN through a NAT that still knows it. Off: what waited is forwarded, as TCP
// delivers it after a short outage.
func (p *Proxy) Silence(on bool) {
	p.mu.Lock()
	p.silent = on
	p.broadcastLocked()
	p.mu.Unlock()
}

// Mute plays a hub that accepts and never answers: while on, new connections are accepted,
// read from, and nothing is ever sent back (the target is not dialled).
func (p *Proxy) Mute(on bool) {
	p.mu.Lock()
	p.mute = on
	p.mu.Unlock()
}

// CutNext cuts the next connection after it forwarded n bytes (n > 0) in direction d: the
// first n bytes go through, then both sockets are closed, wherever that falls in a frame.
// Called again before that connection came, it plans the cut of the one after, and so on.
func (p *Proxy) CutNext(d Dir, n int64) {
	p.mu.Lock()
	p.cuts = append(p.cuts, cutPlan{dir: d, after: n})
	p.mu.Unlock()
}

// Down drops the link: every connection is closed and new ones are closed at once, until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Up ends Down.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops the proxy, closes every connection and waits for its goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	close(p.done)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// track registers c; false when the proxy is closed or down (c is closed then).
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	if p.down {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.mu.Lock()
		p.stats.Conns++
		mute := p.mute
		var cut cutPlan
		if len(p.cuts) > 0 && !mute {
			cut, p.cuts = p.cuts[0], p.cuts[1:]
		}
		p.mu.Unlock()
		p.wg.Add(1)
		if mute {
			go p.swallow(c)
			continue
		}
		go p.serve(c, cut)
	}
}

// swallow reads and drops what a client sends, answering nothing, until it or the proxy
// closes.
func (p *Proxy) swallow(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	buf := make([]byte, Segment)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

type cutPlan struct {
	dir   Dir
	after int64 // 0: no cut
}

// segment is one unit read, with the moment it is to be written.
type segment struct {
	b  []byte
	at time.Time
}

func (p *Proxy) serve(client net.Conn, cut cutPlan) {
	defer p.wg.Done()
	target, err := net.Dial("tcp", p.target)
	if err != nil {
		p.untrack(client)
		return
	}
	if !p.track(target) {
		p.untrack(client)
		return
	}
	defer p.untrack(client, target)
	var cutOnce sync.Once
	hardCut := func() { cutOnce.Do(func() { client.Close(); target.Close() }) }
	var wg sync.WaitGroup
	for _, d := range []Dir{ToTarget, ToClient} {
		src, dst := client, target
		if d == ToClient {
			src, dst = target, client
		}
		limit := int64(-1)
		if cut.after > 0 && cut.dir == d {
			limit = cut.after
		}
		q := make(chan segment, 64)
		wg.Add(2)
		go func() { defer wg.Done(); p.read(src, q) }()
		go func() { defer wg.Done(); p.write(dst, d, q, limit, hardCut) }()
	}
	wg.Wait()
}

// read stamps each segment with when the shaped link delivers it and queues it.
func (p *Proxy) read(src net.Conn, q chan<- segment) {
	defer close(q)
	var free, last time.Time // when the link is free to send again; the last delivery
	for {
		buf := make([]byte, Segment)
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			p.mu.Lock()
			s := p.shape
			lost := s.Loss > 0 && p.rng.Float64() < s.Loss
			p.mu.Unlock()
			start := now
			if free.After(start) {
				start = free
			}
			free = start
			if s.Rate > 0 {
				free = start.Add(time.Duration(int64(n) * int64(time.Second) / s.Rate))
			}
			at := free.Add(s.Delay)
			if lost {
				stall := s.LossStall
				if stall <= 0 {
					stall = max(200*time.Millisecond, 4*s.Delay)
				}
				at = at.Add(stall)
			}
			if at.Before(last) {
				at = last // in order: nothing overtakes a retransmitted segment
			}
			last = at
			select {
			case q <- segment{b: buf[:n], at: at}:
			case <-p.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// write delivers queued segments at their time, while the link is not silent; it cuts the
// connection after limit bytes (limit < 0: never). When the source ended it half-closes dst,
// so that the other direction can finish.
func (p *Proxy) write(dst net.Conn, d Dir, q <-chan segment, limit int64, hardCut func()) {
	var sent int64
	cut := false
	for seg := range q {
		if cut {
			continue // cut: the rest is dropped while the reader ends
		}
		if !p.waitUntil(seg.at) || !p.waitAudible() {
			hardCut()
			continue
		}
		b := seg.b
		cut = limit >= 0 && sent+int64(len(b)) >= limit
		if cut {
			b = b[:limit-sent]
		}
		// Counted before the write: a reader of the other end may act on them at once.
		p.mu.Lock()
		if d == ToTarget {
			p.stats.ToTarget += int64(len(b))
		} else {
			p.stats.ToClient += int64(len(b))
		}
		if cut {
			p.stats.CutsTaken++
		}
		p.mu.Unlock()
		n, err := dst.Write(b)
		sent += int64(n)
		if err != nil || cut {
			cut = true
			hardCut() // the reader then ends, closing q
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// waitUntil sleeps until t; false if the proxy closed meanwhile.
func (p *Proxy) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-p.done:
		return false
	}
}

// waitAudible waits while the link is silent; false if the proxy closed meanwhile.
func (p *Proxy) waitAudible() bool {
	for {
		p.mu.Lock()
		silent, changed := p.silent, p.changed
		p.mu.Unlock()
		if !silent {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			return false
		}
	}
}
