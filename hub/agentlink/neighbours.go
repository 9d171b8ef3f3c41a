package agentlink

import (
	"slices"
	"strings"

	"github.com/loa-project/loa/protocol"
)

// noteContentAddr records where a device serves its content to its neighbours (its status's
// content_addr) and, when that is new, tells every connected device of its area that serves
// too: their neighbours and the area's key (docs/agent.md, "Neighbours"). Only devices that
// reported an address get the message: an older agent does not know its type.
func (s *Link) noteContentAddr(c *agentConn, addr string) {
	if addr == "" || c.area == "" {
		return
	}
	s.mu.Lock()
	if c.contentAddr == addr {
		s.mu.Unlock()
		return
	}
	c.contentAddr = addr
	var members []*agentConn
	for _, o := range s.conns {
		if o.area == c.area && o.contentAddr != "" && o != c {
			members = append(members, o)
		}
	}
	s.mu.Unlock()
	s.log.Info("device serves content to its neighbours", "device", c.device, "area", c.area, "addr", addr, "neighbours_connected", len(members))
	if err := s.sendNeighbours(c); err != nil {
		s.log.Warn("neighbours not sent", "device", c.device, "err", err)
	}
	for _, o := range members {
		// Another connection's write may wait on a slow link: not on this reader's goroutine.
		s.wg.Go(func() {
			if err := s.sendNeighbours(o); err != nil {
				s.log.Debug("neighbours not sent", "device", o.device, "err", err)
			}
		})
	}
}

// sendNeighbours sends c the devices of its area that serve now. Reading and sending under
// c's own lock keeps the messages in order: when two devices report at once, the list read
// last is the one sent last.
func (s *Link) sendNeighbours(c *agentConn) error {
	c.nbMu.Lock()
	defer c.nbMu.Unlock()
	peers := []protocol.Neighbour{}
	s.mu.Lock()
	for _, o := range s.conns {
		if o.area == c.area && o.contentAddr != "" && o != c {
			peers = append(peers, protocol.Neighbour{DeviceID: o.device, Addr: o.contentAddr})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(peers, func(a, b protocol.Neighbour) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	if len(peers) > protocol.MaxNeighbours {
		peers = peers[:protocol.MaxNeighbours]
	}
	key := protocol.FormatNeighbourKey(s.signer.NeighbourKey(c.area))
	return c.send(&protocol.Neighbours{Header: protocol.Header{ID: c.nextID()}, Key: key, Peers: peers})
}
