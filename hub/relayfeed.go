package hub

import (
	"net/http"

	"github.com/loa-project/loa/hub/livefeed"
	"github.com/loa-project/loa/hub/staffapi"
)

// relayFeed is GET /agent/relay?url=…&delay=…: a device's stamped feed of a live relay on the
// air that reaches it (hub/livefeed). Any other address is refused: the hub is no open proxy.
func (s *Server) relayFeed(w http.ResponseWriter, r *http.Request) {
	d, ok := s.deviceAuth(w, r)
	if !ok {
		return
	}
	if !s.opts.StampRelays {
		staffapi.Error(w, http.StatusNotFound, "this hub does not serve live relays (relay_through_hub: false): play the stream directly")
		return
	}
	q := r.URL.Query()
	upstream := q.Get("url")
	delay, err := livefeed.ParseDelay(q.Get("delay"))
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	on, err := s.bc.Relays(r.Context(), d, upstream)
	if err != nil {
		s.log.Error("live relay: cannot read the broadcasts on the air", "device", d.ID, "err", err)
		staffapi.Error(w, http.StatusInternalServerError, "cannot read the broadcasts on the air")
		return
	}
	if !on {
		staffapi.Error(w, http.StatusNotFound, "no live relay of "+upstream+" is on the air for device "+d.ID)
		return
	}
	s.feeds.Serve(w, r, upstream, delay)
}
