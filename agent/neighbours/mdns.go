package neighbours

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/mdns"
)

// mdnsService is the DNS-SD service the agents announce on the LAN.
const mdnsService = "_loa-content._tcp"

// Discover announces this agent on the LAN by mDNS (DNS-SD service _loa-content._tcp, with
// its device id and a tag of its commune's key) and looks for the others every interval until
// ctx ends: boxes of the same commune find each other without the hub's hint, e.g. when the
// address a box reaches the hub from is not its LAN address. It starts once the hub has given
// the key (the tag comes from it) and returns when ctx ends or mDNS cannot be used (an error:
// the hub's hint still works).
func (n *Neighbours) Discover(ctx context.Context, every time.Duration) error {
	quiet := log.New(io.Discard, "", 0)
	var srv *mdns.Server
	var tag string
	defer func() {
		if srv != nil {
			srv.Shutdown()
		}
	}()
	for {
		n.mu.Lock()
		key := n.key
		n.mu.Unlock()
		if key != nil && communeTag(key) != tag {
			if srv != nil {
				srv.Shutdown()
				srv = nil
			}
			s, err := n.announce(communeTag(key), quiet)
			if err != nil {
				return err
			}
			srv, tag = s, communeTag(key)
		}
		if tag != "" {
			n.lookup(ctx, tag, quiet)
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (n *Neighbours) announce(tag string, quiet *log.Logger) (*mdns.Server, error) {
	host, port, err := net.SplitHostPort(n.ContentAddr())
	if err != nil {
		return nil, err
	}
	p, _ := strconv.Atoi(port)
	// Device ids hold '/', which DNS-SD instance names should not: the instance is a hash,
	// the id is in the TXT record.
	h := sha256.Sum256([]byte(n.self))
	svc, err := mdns.NewMDNSService("loa-"+hex.EncodeToString(h[:8]), mdnsService, "", "", p,
		[]net.IP{net.ParseIP(host)}, []string{"id=" + n.self, "commune=" + tag})
	if err != nil {
		return nil, err
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: svc, Logger: quiet})
	if err != nil {
		return nil, err
	}
	n.log.Info("announcing this box to its neighbours by mDNS", "service", mdnsService, "addr", n.ContentAddr())
	return srv, nil
}

// lookup asks the LAN once and adds the agents of this commune it finds.
func (n *Neighbours) lookup(ctx context.Context, tag string, quiet *log.Logger) {
	entries := make(chan *mdns.ServiceEntry, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range entries {
			var id, commune string
			for _, f := range e.InfoFields {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				} else if v, ok := strings.CutPrefix(f, "commune="); ok {
					commune = v
				}
			}
			if id == "" || id == n.self || commune != tag || e.AddrV4 == nil {
				continue
			}
			addr := net.JoinHostPort(e.AddrV4.String(), strconv.Itoa(e.Port))
			n.mu.Lock()
			known := n.lan[id] == addr
			n.mu.Unlock()
			if !known {
				n.AddPeer(id, addr)
				n.log.Info("neighbour found on the LAN by mDNS", "neighbour", id, "addr", addr)
			}
		}
	}()
	err := mdns.QueryContext(ctx, &mdns.QueryParam{Service: mdnsService, Domain: "local", Timeout: 2 * time.Second,
		Entries: entries, DisableIPv6: true, Logger: quiet})
	close(entries)
	<-done
	if err != nil && ctx.Err() == nil {
		n.log.Debug("mDNS lookup failed", "err", err)
	}
}

// communeTag names a commune on the LAN without telling its key.
func communeTag(key []byte) string {
	h := sha256.Sum256(append([]byte("loa neighbour mdns tag\x00"), key...))
	return hex.EncodeToString(h[:6])
}
