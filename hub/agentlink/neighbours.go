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
	var peers []protocol.Neighbour
	for _, o := range s.conns {
		if o.area == c.area && o.contentAddr != "" {
			members = append(members, o)
			peers = append(peers, protocol.Neighbour{DeviceID: o.device, Addr: o.contentAddr})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(peers, func(a, b protocol.Neighbour) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	key := protocol.FormatNeighbourKey(s.signer.NeighbourKey(c.area))
	s.log.Info("device serves content to its neighbours", "device", c.device, "area", c.area, "addr", addr, "neighbours_connected", len(members)-1)
	for _, o := range members {
		var others []protocol.Neighbour
		for _, p := range peers {
			if p.DeviceID != o.device {
				others = append(others, p)
			}
		}
		if len(others) > protocol.MaxNeighbours {
			others = others[:protocol.MaxNeighbours]
		}
		if others == nil {
			others = []protocol.Neighbour{}
		}
		m := &protocol.Neighbours{Header: protocol.Header{ID: o.nextID()}, Key: key, Peers: others}
		if o == c {
			if err := o.send(m); err != nil {
				s.log.Warn("neighbours not sent", "device", o.device, "err", err)
			}
			continue
		}
		// Another connection's write may wait on a slow link: not on this reader's goroutine.
		s.wg.Go(func() {
			if err := o.send(m); err != nil {
				s.log.Debug("neighbours not sent", "device", o.device, "err", err)
			}
		})
	}
}
