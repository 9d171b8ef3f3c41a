package livefeed

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// listen reads frames from the hub's feed until ctx ends, into the returned channel.
func listen(ctx context.Context, t *testing.T, url string) <-chan protocol.RelayFrame {
	out := make(chan protocol.RelayFrame, 10000)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("feed answered %s: %s", resp.Status, b)
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		for {
			f, err := protocol.ReadRelayFrame(resp.Body, nil)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					t.Errorf("reading the feed: %v", err)
				}
				return
			}
			out <- f
		}
	}()
	return out
}

// One upstream read once for two agents: both get the same frames with the same stamps, each
// stamp following the one before by its length, the frames are the upstream's bytes, and an
// upstream drop-out longer than MaxLag becomes a flagged gap in the stamps of its length.
func TestFeedStampsOneUpstreamForEveryAgent(t *testing.T) {
	up := &testkit.Upstream{MP3: testkit.MP3(t, "30", "sine", "440")}
	usrv := httptest.NewServer(up)
	defer usrv.Close()
	fs := New(Options{Log: testkit.Logger(t), Linger: 100 * time.Millisecond})
	defer fs.Close()
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := ParseDelay(r.URL.Query().Get("delay"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fs.Serve(w, r, usrv.URL, d)
	}))
	defer hub.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := listen(ctx, t, hub.URL+"?delay=3s")
	b := listen(ctx, t, hub.URL+"?delay=3s")
	take := func(c <-chan protocol.RelayFrame, n int) []protocol.RelayFrame {
		var fs []protocol.RelayFrame
		for len(fs) < n {
			select {
			case f, ok := <-c:
				if !ok {
					t.Fatalf("feed ended after %d frames", len(fs))
				}
				fs = append(fs, f)
			case <-time.After(15 * time.Second):
				t.Fatalf("no frame after %d", len(fs))
			}
		}
		return fs
	}
	// 24 ms a frame: 80 frames are about 2 s.
	fa, fb := take(a, 80), take(b, 80)
	// b joined a moment later, from the backlog: its first frame is one of a's.
	i := 0
	for i < len(fa) && !fa[i].Stamp.Equal(fb[0].Stamp) {
		i++
	}
	if i == len(fa) {
		t.Fatalf("the second agent's first stamp %v is none of the first's", fb[0].Stamp)
	}
	for k := 0; i+k < len(fa); k++ {
		if !fa[i+k].Stamp.Equal(fb[k].Stamp) || !bytes.Equal(fa[i+k].Payload, fb[k].Payload) {
			t.Fatalf("frame %d differs between the agents: %v vs %v", k, fa[i+k].Stamp, fb[k].Stamp)
		}
	}
	if fa[0].Flags&protocol.RelayGap == 0 {
		t.Errorf("the first frame is not flagged as starting a time line")
	}
	var joined []byte
	for k, f := range fa {
		if f.Rate != 48000 || f.Samples != 1152 || f.Channels != 2 {
			t.Fatalf("frame %d: %d Hz, %d samples, %d channels", k, f.Rate, f.Samples, f.Channels)
		}
		if k > 0 && !f.Stamp.Equal(fa[k-1].Stamp.Add(fa[k-1].Duration())) {
			t.Fatalf("frame %d stamped %v, not right after %v", k, f.Stamp, fa[k-1].Stamp)
		}
		joined = append(joined, f.Payload...)
	}
	if at := bytes.Index(up.MP3, joined); at < 0 || at > 1000 {
		t.Fatalf("the frames are not the upstream's bytes (found at %d)", at)
	}
	// The upstream goes away for 2.5 s, more than its burst-free stream had ahead.
	last := take(a, 1)[0]
	t0 := time.Now()
	up.Drop(2500 * time.Millisecond)
	var gap protocol.RelayFrame
	for {
		f := take(a, 1)[0]
		if f.Flags&protocol.RelayGap != 0 {
			gap = f
			break
		}
		last = f
	}
	jump := gap.Stamp.Sub(last.Stamp.Add(last.Duration()))
	if since := time.Since(t0); jump < 1500*time.Millisecond || jump > since+time.Second {
		t.Fatalf("after a drop-out of 2.5 s (%v ago) the stamps jumped %v", since, jump)
	}
	if n := fs.Running(); n != 1 {
		t.Fatalf("%d upstreams read for one relay", n)
	}
	if conns := up.Connections(); conns < 2 || conns > 8 {
		t.Fatalf("%d connections to the upstream for two agents and one drop-out", conns)
	}
	cancel()
	testkit.WaitFor(t, "the feed to close once its agents left", 5*time.Second, func() bool { return fs.Running() == 0 })
}

// An upstream the hub cannot reach is answered 502 with the reason, so that the agent plays
// it directly.
func TestFeedUnreachableUpstream(t *testing.T) {
	fs := New(Options{Log: testkit.Logger(t), FirstFrame: 700 * time.Millisecond, Linger: 50 * time.Millisecond})
	defer fs.Close()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/agent/relay", nil)
	fs.Serve(rec, req, "http://127.0.0.1:1/none.mp3", 0)
	if rec.Code != http.StatusBadGateway || !bytes.Contains(rec.Body.Bytes(), []byte("cannot reach the upstream http://127.0.0.1:1/none.mp3")) {
		t.Fatalf("answered %d %q", rec.Code, rec.Body.String())
	}
}
