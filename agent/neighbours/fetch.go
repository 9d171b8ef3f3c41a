package neighbours

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/content"
)

// ErrNotFromNeighbours: no neighbour gave the item; the caller fetches it from the hub.
var ErrNotFromNeighbours = errors.New("not fetched from a neighbour")

const (
	poll         = 250 * time.Millisecond
	probeTimeout = 2 * time.Second
	skipBad      = time.Hour        // a neighbour that sent wrong bytes
	skipFailed   = 10 * time.Minute // one that failed otherwise
	wantLinger   = 2 * time.Second
	minWaitRate  = 8000 // bytes/s: a neighbour's own download slower than a 2G link is not waited for
)

var never = time.Unix(1<<62, 0)

// probe is what a neighbour said of an item.
type probe struct {
	peer
	complete       bool
	size           int64 // complete: its Content-Length
	have, expected int64 // fetching: its progress
	fetching       bool
	wanting        bool // it needs the item too, and is asking its neighbours
}

// wantingBefore counts the neighbours that need the item and rank before this agent (score mine).
func wantingBefore(probes []probe, mine string) int {
	k := 0
	for _, p := range probes {
		if p.wanting && p.score < mine {
			k++
		}
	}
	return k
}

// Fetch tries to get ref into the store from a neighbour: one that has it complete, or, when
// one is fetching it (from the hub, most likely), from that one once it has it. Of the
// agents that need one item at once (each says so to the others while it asks), the one
// ranked first for it (by a hash of the item and the device id) goes to the hub; the others
// wait for it: Config.Wait per such agent ranked before them for it to start, then as long as
// its download progresses. An agent that alone needs an item asks its neighbours twice, a poll
// apart, and goes to the hub. size is the item's size as the hub said (0 or less: not known,
// taken from the neighbour). It returns nil when the store holds the item, or an error
// wrapping ErrNotFromNeighbours: fetch from the hub then.
func (n *Neighbours) Fetch(ctx context.Context, ref content.Ref, size int64) error {
	key, peers := n.peerList(ref)
	if key == nil {
		return fmt.Errorf("%w: no neighbour key from the hub yet", ErrNotFromNeighbours)
	}
	if len(peers) == 0 {
		return fmt.Errorf("%w: no neighbours known", ErrNotFromNeighbours)
	}
	n.wantFor(ref, never)
	defer func() {
		// Still wanted for a moment: the hub fetch that follows a failure registers in the
		// store, and a neighbour must not take us for one that does not need the item.
		n.wantFor(ref, time.Now().Add(wantLinger))
	}()
	start := time.Now()
	mine := score(ref, n.self)
	rounds := 0
	var (
		waitingOn    string // the neighbour whose download we wait for
		lastHave     int64
		lastProgress time.Time
		waitFrom     time.Time // when we began waiting on waitingOn, which had haveFrom
		haveFrom     int64
		busySince    time.Time // a neighbour that has the item was busy since
	)
	for {
		probes := n.probeAll(ctx, key, peers, ref)
		for _, p := range probes {
			if !p.complete {
				continue
			}
			if size > 0 && p.size != size {
				n.log.Warn("a neighbour offers an item of another size than the hub's; skipped", "neighbour", p.id, "ref", ref.String(), "size", p.size, "hub_size", size)
				n.skip(p.id, skipBad)
				continue
			}
			err := n.fetchFrom(ctx, key, p.peer, ref, p.size)
			if err == nil {
				n.log.Info("content fetched from a neighbour", "ref", ref.String(), "neighbour", p.id, "addr", p.addr,
					"bytes", p.size, "took", time.Since(start).Round(time.Millisecond))
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var me *content.MismatchError
			var he *content.HTTPError
			if errors.As(err, &he) && he.Code == http.StatusServiceUnavailable {
				// Busy sending to others: ask again at the next round.
				if busySince.IsZero() {
					busySince = time.Now()
				}
				continue
			}
			if errors.As(err, &me) {
				n.log.Warn("a neighbour sent bytes that do not hash to the item: refused, and the neighbour skipped for an hour (its store may be damaged)",
					"neighbour", p.id, "addr", p.addr, "ref", ref.String(), "got", me.Got.String())
				n.skip(p.id, skipBad)
			} else {
				n.log.Info("fetching from a neighbour failed; trying another or the hub", "neighbour", p.id, "addr", p.addr, "ref", ref.String(), "err", err)
				n.skip(p.id, skipFailed)
			}
		}
		// Nobody has it complete: wait for one that is fetching it, if any progresses.
		now := time.Now()
		var best *probe
		for i := range probes {
			p := &probes[i]
			if p.fetching && (size <= 0 || p.expected == size) && p.have < p.expected && (best == nil || p.have > best.have) {
				best = p
			}
		}
		switch {
		case best != nil:
			if best.id != waitingOn {
				n.log.Info("waiting for a neighbour that is fetching the item", "neighbour", best.id, "ref", ref.String(), "have", best.have, "size", best.expected)
				waitingOn, waitFrom, haveFrom = best.id, now, best.have
				lastHave, lastProgress = best.have, now
			} else if best.have > lastHave {
				lastHave, lastProgress = best.have, now
			}
			if now.Sub(lastProgress) > n.cfg.Stall {
				return fmt.Errorf("%w: neighbour %s has made no progress fetching %s for %s", ErrNotFromNeighbours, best.id, ref, n.cfg.Stall)
			}
			// Progress too slow to be a download (or a neighbour pretending): the hub then.
			if d := now.Sub(waitFrom); d > n.cfg.Stall && float64(best.have-haveFrom) < minWaitRate*d.Seconds() {
				return fmt.Errorf("%w: neighbour %s fetches %s at under %d bytes/s", ErrNotFromNeighbours, best.id, ref, minWaitRate)
			}
		case !busySince.IsZero() && now.Sub(busySince) < n.cfg.Stall:
			// wait for a slot at a neighbour that has it
		case rounds >= 1 && !now.Before(start.Add(time.Duration(wantingBefore(probes, mine))*n.cfg.Wait)):
			return fmt.Errorf("%w: none of %d neighbours has %s or is fetching it", ErrNotFromNeighbours, len(probes), ref)
		}
		rounds++
		_, peers = n.peerList(ref) // without those skipped meanwhile
		if len(peers) == 0 {
			return fmt.Errorf("%w: no neighbour left to ask", ErrNotFromNeighbours)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fetchFrom lets the store download ref from one neighbour, cut when it makes no progress
// for Config.Stall (the store's own stall limit is for 4G links, far longer).
func (n *Neighbours) fetchFrom(ctx context.Context, key []byte, p peer, ref content.Ref, size int64) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last, at := int64(-1), time.Now()
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			have, _, ok := n.store.Fetching(ref)
			if !ok || have != last {
				last, at = have, time.Now()
			} else if time.Since(at) > n.cfg.Stall {
				cancel()
				return
			}
		}
	}()
	err := n.store.Fetch(fctx, n.itemURL(key, p.addr, ref), ref, size)
	close(done)
	<-watched
	if err != nil && fctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("no progress for %s: %w", n.cfg.Stall, err)
	}
	return err
}

// probeAll asks every neighbour about ref at once (HEAD, signed).
func (n *Neighbours) probeAll(ctx context.Context, key []byte, peers []peer, ref content.Ref) []probe {
	out := make([]probe, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() { out[i] = n.probe(ctx, key, p, ref) })
	}
	wg.Wait()
	return out
}

var probeClient = &http.Client{Timeout: probeTimeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}}

func (n *Neighbours) probe(ctx context.Context, key []byte, p peer, ref content.Ref) probe {
	out := probe{peer: p}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, n.itemURL(key, p.addr, ref), nil)
	if err != nil {
		return out
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		n.log.Debug("neighbour not reachable", "neighbour", p.id, "addr", p.addr, "err", err)
		return out
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		out.complete, out.size = resp.ContentLength > 0, resp.ContentLength
	case http.StatusNotFound:
		out.wanting = resp.Header.Get(WantingHeader) != ""
		if h, s, ok := strings.Cut(resp.Header.Get(FetchingHeader), "/"); ok {
			have, err1 := strconv.ParseInt(h, 10, 64)
			size, err2 := strconv.ParseInt(s, 10, 64)
			out.fetching = err1 == nil && err2 == nil && have >= 0 && size > 0
			out.have, out.expected = have, size
		}
	case http.StatusForbidden:
		n.log.Warn("a neighbour refused this agent's signed request: it has another commune key (moved to another area?) or a clock far off",
			"neighbour", p.id, "addr", p.addr)
		n.skip(p.id, skipFailed)
	}
	return out
}
