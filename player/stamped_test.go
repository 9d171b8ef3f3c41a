package player_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/livefeed"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/player"
)

// stampedRelay is a hub's feed (hub/livefeed, the real one) of a test upstream, answering
// only requests with the right credentials.
func stampedRelay(t *testing.T, up *testkit.Upstream, refuse bool) (feed, direct string) {
	usrv := httptest.NewServer(up)
	// Connections first: Close waits for the requests, and the stream runs for its length.
	t.Cleanup(func() { usrv.CloseClientConnections(); usrv.Close() })
	fs := livefeed.New(livefeed.Options{Log: testkit.Logger(t), Linger: 50 * time.Millisecond})
	t.Cleanup(fs.Close)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse || r.Header.Get("Authorization") != "Device test" {
			http.Error(w, "the hub cannot reach the upstream", http.StatusBadGateway)
			return
		}
		fs.Serve(w, r, usrv.URL, 0)
	}))
	t.Cleanup(func() { hub.CloseClientConnections(); hub.Close() })
	return hub.URL + "/agent/relay", usrv.URL
}

// A stamped relay plays its frames on the stamps' time line: a drop-out upstream, a gap in
// the stamps, is played as silence as long as the gap, so what follows stays where its stamps
// put it.
func TestStampedRelayBridgesAGapWithItsLength(t *testing.T) {
	up := &testkit.Upstream{MP3: testkit.MP3(t, "20", "sine", "440")}
	feed, direct := stampedRelay(t, up, false)
	out := &memOutput{}
	p, err := player.New(player.Config{Output: out, Log: testkit.Logger(t), StallTimeout: 3 * time.Second,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	it := player.Item{URL: feed, Duration: 6 * time.Second, Stamped: &player.Stamping{Delay: time.Second, Auth: "Device test", Direct: direct}}
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{it}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	up.Drop(2 * time.Second)
	res := pb.Wait()
	if res.Items[0].Ended != player.EndCompleted {
		t.Fatalf("relay ended %s: %+v", res.Items[0].Ended, res.Items[0])
	}
	s := left(out.get())
	// The longest silent stretch (the tone never rests) is the gap: the 2 s the upstream was
	// away, less nothing (the stamps go on from where the stream comes back) and more the hub's
	// reconnect backoff and MaxLag.
	longest, run := 0, 0
	for _, v := range s {
		if v == 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if g := time.Duration(longest) * time.Second / rate; g < 1500*time.Millisecond || g > 4*time.Second {
		t.Fatalf("longest silence %v after a 2 s drop-out upstream (%d frames played)", g, len(s))
	}
}

// A relay the hub does not serve is played from the upstream directly.
func TestStampedRelayFallsBackToTheUpstream(t *testing.T) {
	up := &testkit.Upstream{MP3: testkit.MP3(t, "10", "sine", "440")}
	feed, direct := stampedRelay(t, up, true)
	logs := &testkit.Buffer{}
	out := &memOutput{}
	p, err := player.New(player.Config{Output: out, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	it := player.Item{URL: feed, Duration: 2 * time.Second, Stamped: &player.Stamping{Delay: time.Second, Auth: "Device test", Direct: direct}}
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{it}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	if res.Items[0].Ended != player.EndCompleted || res.Items[0].Frames < rate {
		t.Fatalf("relay through the upstream: %+v", res.Items[0])
	}
	if !strings.Contains(logs.String(), "playing the upstream directly") || !strings.Contains(logs.String(), "502") {
		t.Fatalf("the fallback is not logged with the hub's answer:\n%s", logs.String())
	}
}
