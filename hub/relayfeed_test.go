package hub

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// A live relay through a hub that stamps relays: the devices' schedule offers the hub's
// stamped feed beside the upstream, the hub serves it only to a device the relay reaches, and
// only for that upstream (no open proxy), with the device's own credentials.
func TestRelayFeedOnlyForTheRelaysDevices(t *testing.T) {
	up := &testkit.Upstream{MP3: testkit.MP3(t, "10", "sine", "440")}
	usrv := httptest.NewServer(up)
	defer usrv.Close()
	h := newTestHubWithOptions(t, t.TempDir(), nil, func(o *Options) { o.StampRelays = true })
	h.addArea("qn/tk")
	h.addArea("qn/hd")
	s1 := h.enrol("tk/cl-01", "qn/tk")
	s2 := h.enrol("hd/cl-01", "qn/hd")
	a1, _ := h.connect("tk/cl-01", s1, protocol.Hello{})
	var res api.EmergencyResponse
	h.mustCall(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Kind: "live", Stream: usrv.URL + "/qnr.mp3", For: "5m"}, &res, http.StatusCreated)
	_, doc := verifySchedule(t, h, "tk/cl-01", a1.next(), 0)
	var stamped string
	for _, p := range doc.Programs {
		for _, it := range p.Items {
			if it.Stream == usrv.URL+"/qnr.mp3" {
				stamped = it.Stamped
			}
		}
	}
	if stamped == "" {
		t.Fatalf("the relay's item has no stamped feed: %+v", doc.Programs)
	}
	get := func(auth, path string) *http.Response {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.http.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, c := range []struct {
		what, auth, path string
		want             int
	}{
		{"no credentials", "", stamped, http.StatusUnauthorized},
		{"a device the relay does not reach", protocol.FormatDeviceAuth("hd/cl-01", s2), stamped, http.StatusNotFound},
		{"another address", protocol.FormatDeviceAuth("tk/cl-01", s1), "/agent/relay?url=http%3A%2F%2F169.254.169.254%2F", http.StatusNotFound},
		{"a bad delay", protocol.FormatDeviceAuth("tk/cl-01", s1), stamped + "&delay=forever", http.StatusBadRequest},
	} {
		if resp := get(c.auth, c.path); resp.StatusCode != c.want {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("%s: %s %s, want %d", c.what, resp.Status, b, c.want)
		}
	}
	resp := get(protocol.FormatDeviceAuth("tk/cl-01", s1), stamped+"&delay=3s")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("the relay's device: %s %s", resp.Status, b)
	}
	var prev protocol.RelayFrame
	for i := range 50 {
		f, err := protocol.ReadRelayFrame(resp.Body, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i > 0 && !f.Stamp.Equal(prev.Stamp.Add(prev.Duration())) {
			t.Fatalf("frame %d stamped %v, not right after %v", i, f.Stamp, prev.Stamp)
		}
		if d := time.Since(f.Stamp); d > 5*time.Second || d < -5*time.Second {
			t.Fatalf("frame %d stamped %v, %v from now", i, f.Stamp, d)
		}
		prev = f
	}
}
