package link

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Several hubs on one store (issue 18): the link stays with the hub it reached and moves to
// the next in the list when that one fails, wrapping around. Which replica stores a
// confirmation does not matter: they share the store, which keeps each (device, seq) once
// and answers the welcome's resend_from from what it holds, so nothing acknowledged is sent
// again and nothing unacknowledged is lost when the link moves.

// hubAddr is one hub: its http(s) base and its websocket URL.
type hubAddr struct {
	base *url.URL
	ws   string
}

// url is path under the hub's base.
func (h hubAddr) url(path string) string {
	return strings.TrimSuffix(h.base.String(), "/") + path
}

// hubAddrs checks the configured hub URLs: one (single) or a list (several), not both.
func hubAddrs(single string, several []string) ([]hubAddr, error) {
	switch {
	case single != "" && len(several) > 0:
		return nil, errors.New("link: both HubURL and HubURLs are set: give one")
	case single != "":
		several = []string{single}
	case len(several) == 0:
		return nil, errors.New("link: no hub URL")
	}
	hubs := make([]hubAddr, 0, len(several))
	seen := map[string]int{}
	for i, s := range several {
		base, err := hubBase(s)
		if err != nil {
			return nil, err
		}
		if j, ok := seen[base.String()]; ok {
			return nil, fmt.Errorf("link: hub URL %d (%s) repeats hub URL %d", i, s, j)
		}
		seen[base.String()] = i
		ws := *base
		ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
		ws.Path = strings.TrimSuffix(base.Path, "/") + "/agent/ws"
		hubs = append(hubs, hubAddr{base: base, ws: ws.String()})
	}
	return hubs, nil
}

// hub is the hub connected now, or the next to dial.
func (l *Link) hub() hubAddr { return l.hubs[l.cur.Load()] }

// Hub is the base URL of the hub connected now, or of the next the link dials.
func (l *Link) Hub() string { return l.hub().base.String() }

// moveOn makes the next hub in the list the current one (wrapping around) and returns it.
// Run's goroutine only moves; the fetcher and the daemon read.
func (l *Link) moveOn() hubAddr {
	l.cur.Store((l.cur.Load() + 1) % int64(len(l.hubs)))
	return l.hub()
}

// DeviceTransportAll is DeviceTransport for every hub of a list: requests to any of them
// carry the device's Authorization header, requests elsewhere never do.
func DeviceTransportAll(hubURLs []string, deviceID, secret string, next http.RoundTripper) (http.RoundTripper, error) {
	if len(hubURLs) == 0 {
		return nil, errors.New("link: no hub URL")
	}
	for _, u := range hubURLs {
		var err error
		if next, err = DeviceTransport(u, deviceID, secret, next); err != nil {
			return nil, err
		}
	}
	return next, nil
}
