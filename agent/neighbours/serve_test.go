package neighbours

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// serving is one agent serving its store, and the commune key its neighbours sign with.
type serving struct {
	n     *Neighbours
	key   []byte
	base  string
	store *content.Store
}

func serve(t *testing.T, cfg Config) *serving {
	t.Helper()
	st, err := content.Open(filepath.Join(t.TempDir(), "content"), content.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Listen = "127.0.0.1:0"
	n, err := New(cfg, "tt/cl-1", "http://127.0.0.1:1", st, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	key := make([]byte, protocol.NeighbourKeyBytes)
	rand.Read(key)
	n.Hint(&protocol.Neighbours{Key: protocol.FormatNeighbourKey(key)})
	return &serving{n: n, key: key, base: "http://" + n.ln.Addr().String(), store: st}
}

func (s *serving) put(t *testing.T, size int) (content.Ref, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	ref, err := s.store.Put(bytes.NewReader(b), content.Ref{})
	if err != nil {
		t.Fatal(err)
	}
	return ref, b
}

// signedURL is what a neighbour holding key asks, as device from at time at.
func (s *serving) signedURL(key []byte, ref content.Ref, from string, at time.Time) string {
	q := url.Values{"from": {from}, "t": {strconv.FormatInt(at.Unix(), 10)}, "sig": {sign(key, ref, from, at.Unix())}}
	return s.base + "/content/" + ref.String() + "?" + q.Encode()
}

func get(t *testing.T, method, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestServeOnlyToTheCommune: only requests signed with the commune's key, recent, for a
// complete item get bytes; everything else gets a status that says why.
func TestServeOnlyToTheCommune(t *testing.T) {
	s := serve(t, Config{RateMBps: 1000})
	ref, body := s.put(t, 200_000)
	other := make([]byte, protocol.NeighbourKeyBytes)
	rand.Read(other)
	now := time.Now()
	plain := s.base + "/content/" + ref.String()
	for _, c := range []struct {
		what, method, url string
		want              int
	}{
		{"unsigned", "GET", plain, http.StatusForbidden},
		{"another commune's key", "GET", s.signedURL(other, ref, "tp/cl-1", now), http.StatusForbidden},
		{"signed for another device", "GET", strings.Replace(s.signedURL(s.key, ref, "tt/cl-2", now), "tt%2Fcl-2", "tt%2Fcl-3", 1), http.StatusForbidden},
		{"signed an hour ago", "GET", s.signedURL(s.key, ref, "tt/cl-2", now.Add(-time.Hour)), http.StatusForbidden},
		{"signed an hour ahead", "GET", s.signedURL(s.key, ref, "tt/cl-2", now.Add(time.Hour)), http.StatusForbidden},
		{"a write", "PUT", s.signedURL(s.key, ref, "tt/cl-2", now), http.StatusMethodNotAllowed},
		{"another path", "GET", s.base + "/etc/passwd", http.StatusNotFound},
		{"a bad ref", "GET", s.base + "/content/sha256:00", http.StatusBadRequest},
		{"an item not here", "GET", s.signedURL(s.key, content.RefOf([]byte("x")), "tt/cl-2", now), http.StatusNotFound},
	} {
		resp, b := get(t, c.method, c.url)
		if resp.StatusCode != c.want {
			t.Errorf("%s: HTTP %d (%s), want %d", c.what, resp.StatusCode, bytes.TrimSpace(b), c.want)
		}
		if resp.StatusCode < 300 || bytes.Contains(b, body[:64]) {
			t.Errorf("%s: the item's bytes were sent", c.what)
		}
	}
	if s.n.Served() != 0 {
		t.Fatalf("served %d bytes to refused requests", s.n.Served())
	}

	u := s.signedURL(s.key, ref, "tt/cl-2", now)
	resp, b := get(t, "GET", u)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, body) {
		t.Fatalf("signed GET: HTTP %d, %d bytes, equal %v", resp.StatusCode, len(b), bytes.Equal(b, body))
	}
	resp, b = get(t, "GET", u, "Range", "bytes=150000-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, body[150_000:]) {
		t.Fatalf("Range GET: HTTP %d, %d bytes", resp.StatusCode, len(b))
	}
	// The server counts a transfer when its handler returns, which may be just after the
	// client has read the last byte.
	testkit.Poll(10*time.Second, 10*time.Millisecond, func() bool { return s.n.Served() >= 250_000 })
	if got := s.n.Served(); got != 250_000 {
		t.Fatalf("Served = %d, want 250000", got)
	}
}

// TestServeSaysWhileFetching: an item being fetched is answered 404 with its progress, so a
// neighbour waits for it rather than going to the hub.
func TestServeSaysWhileFetching(t *testing.T) {
	s := serve(t, Config{})
	body := make([]byte, 300_000)
	rand.Read(body)
	ref := content.RefOf(body)
	release := make(chan struct{})
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:100_000])
		w.(http.Flusher).Flush()
		<-release
		w.Write(body[100_000:])
	}))
	defer hub.Close()
	done := make(chan error, 1)
	go func() { done <- s.store.Fetch(context.Background(), hub.URL, ref, int64(len(body))) }()
	var h string
	for i := 0; i < 400 && h != "100000/300000"; i++ {
		resp, _ := get(t, "HEAD", s.signedURL(s.key, ref, "tt/cl-2", time.Now()))
		h = resp.Header.Get(FetchingHeader)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD while fetching: HTTP %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h != "100000/300000" {
		t.Fatalf("%s while fetching = %q, want 100000/300000", FetchingHeader, h)
	}
	resp, _ := get(t, "HEAD", s.signedURL(s.key, ref, "tt/cl-2", time.Now()))
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(body)) || resp.Header.Get(FetchingHeader) != "" {
		t.Fatalf("HEAD once stored: HTTP %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestServeBoundsTransfers: with max_transfers 1, a second GET while one is being sent is
// answered 503 with Retry-After; HEAD still answers.
func TestServeBoundsTransfers(t *testing.T) {
	s := serve(t, Config{MaxTransfers: 1, RateMBps: 0.5}) // 2 MB take 4 s
	ref, _ := s.put(t, 2_000_000)
	u := s.signedURL(s.key, ref, "tt/cl-2", time.Now())
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil { // the transfer is under way
		t.Fatal(err)
	}
	r2, b := get(t, "GET", u)
	if r2.StatusCode != http.StatusServiceUnavailable || r2.Header.Get("Retry-After") == "" {
		t.Fatalf("second GET during a transfer: HTTP %d %q", r2.StatusCode, b)
	}
	if r3, _ := get(t, "HEAD", u); r3.StatusCode != http.StatusOK {
		t.Fatalf("HEAD during a transfer: HTTP %d", r3.StatusCode)
	}
}

// FuzzServe: whatever path, query and Range a LAN host sends, the handler does not panic and
// sends no byte of an item without the commune's signature.
func FuzzServe(f *testing.F) {
	st, err := content.Open(filepath.Join(f.TempDir(), "content"), content.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	body := bytes.Repeat([]byte("loa"), 1000)
	ref, err := st.Put(bytes.NewReader(body), content.Ref{})
	if err != nil {
		f.Fatal(err)
	}
	n, err := New(Config{Listen: "127.0.0.1:0"}, "tt/cl-1", "http://127.0.0.1:1", st, nil, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	n.Hint(&protocol.Neighbours{Key: protocol.FormatNeighbourKey(bytes.Repeat([]byte{1}, protocol.NeighbourKeyBytes))})
	f.Add("/content/"+ref.String(), "from=tt/cl-2&t=1&sig=00", "bytes=0-10")
	f.Add("/content/"+ref.String(), "from=&t=&sig=", "")
	f.Add("/content/sha256:zz", "t=-9999999999999999999", "bytes=-1")
	f.Fuzz(func(t *testing.T, path, query, rng string) {
		u := &url.URL{Path: path, RawQuery: query}
		req, err := http.NewRequest(http.MethodGet, "http://x"+u.String(), nil)
		if err != nil {
			return
		}
		req.Header.Set("Range", rng)
		w := httptest.NewRecorder()
		n.ServeHTTP(w, req)
		if w.Code < 300 || bytes.Contains(w.Body.Bytes(), body[:30]) {
			t.Fatalf("%q ? %q: HTTP %d with %d bytes, unsigned", path, query, w.Code, w.Body.Len())
		}
	})
}
