package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
)

// MaxNeighbours bounds the peers of one neighbours message (a commune has 10–20 clusters).
const MaxNeighbours = 256

// NeighbourKeyBytes is the length of a commune's neighbour key.
const NeighbourKeyBytes = 32

// Neighbours tells an agent the other agents of its commune that serve their content stores
// on the LAN, and the key that signs requests between them (docs/agent.md, "Neighbours").
// The hub sends it only to an agent whose status carried content_addr (an agent that serves
// its neighbours, and so knows this message), after its first status and whenever a device
// of the commune reports a new address.
type Neighbours struct {
	Header
	// Key is the commune's key, base64url without padding, NeighbourKeyBytes long. The same
	// for every device of the commune; a device of another commune holds another.
	Key   string      `json:"key"`
	Peers []Neighbour `json:"peers"`
}

// Neighbour is one agent that serves its content: its device id and its content_addr.
type Neighbour struct {
	DeviceID string `json:"device_id"`
	Addr     string `json:"addr"`
}

func (*Neighbours) Type() Type { return TypeNeighbours }

func (m *Neighbours) validate(c *checker) {
	c.header(&m.Header)
	if m.Key == "" {
		c.fail("key", ErrMissingField, "required")
	} else if _, err := m.KeyBytes(); err != nil {
		c.fail("key", ErrInvalidField, "%v", err)
	}
	if len(m.Peers) > MaxNeighbours {
		c.fail("peers", ErrInvalidField, "%d peers, at most %d", len(m.Peers), MaxNeighbours)
	}
	for i, p := range m.Peers {
		c.id(fmt.Sprintf("peers[%d].device_id", i), p.DeviceID)
		if err := CheckContentAddr(p.Addr); err != nil {
			c.fail(fmt.Sprintf("peers[%d].addr", i), ErrInvalidField, "%v", err)
		}
	}
}

// KeyBytes decodes Key.
func (m *Neighbours) KeyBytes() ([]byte, error) {
	k, err := base64.RawURLEncoding.DecodeString(m.Key)
	if err != nil {
		return nil, fmt.Errorf("not base64url without padding: %v", err)
	}
	if len(k) != NeighbourKeyBytes {
		return nil, fmt.Errorf("%d bytes, want %d", len(k), NeighbourKeyBytes)
	}
	return k, nil
}

// FormatNeighbourKey is the wire form of a neighbour key.
func FormatNeighbourKey(k []byte) string { return base64.RawURLEncoding.EncodeToString(k) }

// CheckContentAddr accepts where an agent serves its content: an IP address (not a name: no
// resolver is asked about what a device claims) and a port, e.g. "192.168.1.23:7081".
func CheckContentAddr(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("%q is longer than 64 bytes", clip(s))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not IP:port: %v", clip(s), err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("%q: %q is not a unicast IP address", clip(s), clip(host))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1-65535", clip(s), clip(port))
	}
	return nil
}

// NeighbourKey derives the neighbour key of an area (a commune) from the hub's signing key:
// the hub keeps no other secret, every replica derives the same key, and one commune's key
// tells nothing about another's. A new signing key gives new neighbour keys, which agents
// receive at their next connection.
func (s *Signer) NeighbourKey(area string) []byte {
	mac := hmac.New(sha256.New, s.priv.Seed())
	mac.Write([]byte("loa neighbour key v1\x00" + area))
	return mac.Sum(nil)
}
