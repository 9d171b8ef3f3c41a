package hub

import (
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// TestNeighboursHint: a device that reports where it serves content gets the devices of its
// area that serve and the area's key, and they get it; a device that reports no address (an
// older agent) gets no neighbours message, and one of another area is not listed and holds
// another key.
func TestNeighboursHint(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	h.addArea("qn/c2")
	sa, sb, sc := h.enrol("c1/a", "qn/c1"), h.enrol("c1/b", "qn/c1"), h.enrol("c2/c", "qn/c2")
	a, _ := h.connect("c1/a", sa, protocol.Hello{})
	b, _ := h.connect("c1/b", sb, protocol.Hello{})
	c, _ := h.connect("c2/c", sc, protocol.Hello{})
	status := func(x *fakeAgent, addr string) {
		x.send(&protocol.Status{At: time.Now(), UptimeS: 1, ContentAddr: addr})
	}
	neighbours := func(x *fakeAgent) *protocol.Neighbours {
		t.Helper()
		m, ok := x.next().(*protocol.Neighbours)
		if !ok {
			t.Fatalf("%s: got %T, want a neighbours message", x.id, m)
		}
		return m
	}

	status(a, "192.168.1.21:7081")
	ma := neighbours(a)
	if len(ma.Peers) != 0 {
		t.Fatalf("a alone serves; told %+v", ma.Peers)
	}
	// b has not said it serves: it gets nothing (an older agent would not know the type); the
	// next thing it hears is the ack of what it sends.
	status(b, "")
	b.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation("c1/b", 1)}})
	if m := b.next(); m.Type() != protocol.TypeAck {
		t.Fatalf("b, serving nothing, got %s before its ack", m.Type())
	}

	status(b, "192.168.1.22:7081")
	mb, ma2 := neighbours(b), neighbours(a)
	if len(mb.Peers) != 1 || mb.Peers[0] != (protocol.Neighbour{DeviceID: "c1/a", Addr: "192.168.1.21:7081"}) {
		t.Fatalf("b told %+v", mb.Peers)
	}
	if len(ma2.Peers) != 1 || ma2.Peers[0] != (protocol.Neighbour{DeviceID: "c1/b", Addr: "192.168.1.22:7081"}) {
		t.Fatalf("a told %+v", ma2.Peers)
	}
	if ma.Key != mb.Key || ma.Key != ma2.Key {
		t.Fatal("two devices of one area got different keys")
	}
	status(c, "192.168.1.23:7081")
	mc := neighbours(c)
	if len(mc.Peers) != 0 || mc.Key == ma.Key {
		t.Fatalf("a device of another area told %+v, same key %v", mc.Peers, mc.Key == ma.Key)
	}
	// The same address again changes nothing: no message (the next is the ack).
	status(a, "192.168.1.21:7081")
	a.send(&protocol.Confirmations{Records: []protocol.Confirmation{confirmation("c1/a", 1)}})
	if m := a.next(); m.Type() != protocol.TypeAck {
		t.Fatalf("a got %s after repeating its address", m.Type())
	}
}
