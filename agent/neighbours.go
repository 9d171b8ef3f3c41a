package agent

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/agent/neighbours"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// NeighboursConfig is the config's neighbours section: sharing content with the other agents
// of the commune on the LAN (docs/agent.md, "Neighbours"). Off unless listen is set.
type NeighboursConfig struct {
	// Listen is where the store is served to neighbours, e.g. ":7081".
	Listen string `yaml:"listen"`
	// Advertise is the IP:port told to the hub for the neighbours (default: found).
	Advertise    string             `yaml:"advertise"`
	MaxTransfers int                `yaml:"max_transfers"`
	RateMBps     float64            `yaml:"rate_mbps"`
	Wait         scheduler.Duration `yaml:"wait"`
	Stall        scheduler.Duration `yaml:"stall"`
	// MDNS announces the box and finds its neighbours on the LAN by mDNS besides the hub's
	// hint (default true; false where the LAN forbids multicast).
	MDNS *bool `yaml:"mdns"`
}

func (c NeighboursConfig) check(hubURL string) []error {
	if c.Listen == "" {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("neighbours.listen %q: %v (write :7081)", c.Listen, err))
	}
	if hubURL == "" {
		errs = append(errs, fmt.Errorf("neighbours.listen is set but hub.url is not: the commune's key and the neighbours' addresses come from the hub"))
	}
	if c.Advertise != "" {
		if err := protocol.CheckContentAddr(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("neighbours.advertise: %w", err))
		}
	}
	if c.MaxTransfers < 0 || c.RateMBps < 0 || c.Wait < 0 || c.Stall < 0 {
		errs = append(errs, fmt.Errorf("neighbours: max_transfers, rate_mbps, wait and stall cannot be negative"))
	}
	return errs
}

// newNeighbours opens the neighbours' listener; nil when off or when the port cannot be had
// (the agent plays on and fetches from the hub).
func (a *Agent) newNeighbours() *neighbours.Neighbours {
	c := a.cfg.Neighbours
	if c.Listen == "" || a.cfg.Hub.URL == "" {
		return nil
	}
	log := a.log.With("component", "neighbours")
	n, err := neighbours.New(neighbours.Config{Listen: c.Listen, Advertise: c.Advertise, MaxTransfers: c.MaxTransfers,
		RateMBps: c.RateMBps, Wait: c.Wait.D(), Stall: c.Stall.D()}, a.cfg.DeviceID, a.cfg.Hub.URL, a.store, log, a.hubNow)
	if err == nil {
		err = n.Listen()
	}
	if err != nil {
		log.Warn("content not shared with neighbours; items come from the hub only", "err", err)
		return nil
	}
	return n
}

func (a *Agent) runNeighbours(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if m := a.cfg.Neighbours.MDNS; m == nil || *m {
		wg.Go(func() {
			if err := a.neighbours.Discover(ctx, time.Minute); err != nil {
				a.log.Warn("mDNS unavailable: neighbours are known from the hub only", "component", "neighbours", "err", err)
			}
		})
	}
	if err := a.neighbours.Run(ctx); err != nil {
		a.log.Warn("serving neighbours stopped; items come from the hub only", "component", "neighbours", "err", err)
	}
}

// hubNow is the hub's time as this agent knows it: neighbours date their signatures with it,
// so two boxes whose own clocks disagree (no RTC) still agree.
func (a *Agent) hubNow() time.Time {
	now := a.clock.Now()
	if a.link != nil {
		if off, ok := a.link.ClockOffset(); ok {
			return now.Add(off)
		}
	}
	return now
}

// linkNeighbours is the neighbours as the link takes them (a nil interface when off).
func (a *Agent) linkNeighbours() link.Neighbours {
	if a.neighbours == nil {
		return nil
	}
	return a.neighbours
}
