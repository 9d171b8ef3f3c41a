package content

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mediaServer serves one file with real Range support (http.ServeContent) and can misbehave:
// cut the connection after dropAfter body bytes of each of the first drops requests, answer
// with a status, or ignore Range.
type mediaServer struct {
	mu         sync.Mutex
	body       []byte
	dropAfter  int
	drops      int
	status     int // non-zero: answer every request with this status
	statusFrom int // non-zero: answer 503 from this request number (1-based) on
	noRange    bool
	requests   []string // Range header of each request ("" if none)
	sent       int      // body bytes written in total
}

type cutWriter struct {
	http.ResponseWriter
	left int
	srv  *mediaServer
}

func (w *cutWriter) Write(b []byte) (int, error) {
	if w.left >= 0 && len(b) > w.left {
		b = b[:w.left]
		n, _ := w.ResponseWriter.Write(b)
		w.srv.mu.Lock()
		w.srv.sent += n
		w.srv.mu.Unlock()
		w.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the server closes the connection mid-body
	}
	if w.left >= 0 {
		w.left -= len(b)
	}
	n, err := w.ResponseWriter.Write(b)
	w.srv.mu.Lock()
	w.srv.sent += n
	w.srv.mu.Unlock()
	return n, err
}

func (m *mediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests = append(m.requests, r.Header.Get("Range"))
	status, drop := m.status, m.drops > 0
	if m.statusFrom > 0 && len(m.requests) >= m.statusFrom {
		status = http.StatusServiceUnavailable
	}
	if drop {
		m.drops--
	}
	m.mu.Unlock()
	if status != 0 {
		http.Error(w, "no such item on this hub", status)
		return
	}
	if m.noRange {
		r.Header.Del("Range")
	}
	left := -1
	if drop {
		left = m.dropAfter
	}
	http.ServeContent(&cutWriter{w, left, m}, r, "", time.Time{}, bytes.NewReader(m.body))
}

func (m *mediaServer) stats() ([]string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.requests...), m.sent
}

func TestFetchPlain(t *testing.T) {
	b := data(1<<20, 1)
	srv := httptest.NewServer(&mediaServer{body: b})
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{})
	ref := RefOf(b)
	if err := s.Fetch(context.Background(), srv.URL+"/x.mp3", ref, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if !s.Has(ref) || s.Usage().Partial != 0 {
		t.Fatalf("after Fetch: has %v, usage %+v", s.Has(ref), s.Usage())
	}
	// A second Fetch of a stored item makes no request.
	if err := s.Fetch(context.Background(), "http://127.0.0.1:1/unreachable", ref, int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func TestFetchResumesAfterDrops(t *testing.T) {
	b := data(1<<20, 2)
	m := &mediaServer{body: b, dropAfter: 300_000, drops: 3}
	srv := httptest.NewServer(m)
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{})
	if err := s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	reqs, sent := m.stats()
	if len(reqs) != 4 {
		t.Fatalf("requests %q, want 4", reqs)
	}
	if reqs[0] != "" {
		t.Fatalf("first request asked for range %q", reqs[0])
	}
	for i, r := range reqs[1:] {
		// Each resume starts where the partial file ends: a multiple of what was delivered.
		if !strings.HasPrefix(r, "bytes=") || r == "bytes=0-" {
			t.Fatalf("request %d: Range %q", i+1, r)
		}
	}
	if sent != len(b) {
		t.Fatalf("server sent %d bytes for a %d-byte item: resume re-downloaded data", sent, len(b))
	}
	f, err := s.Open(RefOf(b))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestFetchResumesAcrossRestart(t *testing.T) {
	b := data(800_000, 3)
	// Request 1 is cut after 500 kB, then the hub is down (503): no progress, Fetch gives up.
	m := &mediaServer{body: b, dropAfter: 500_000, drops: 1, statusFrom: 2}
	srv := httptest.NewServer(m)
	defer srv.Close()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := RefOf(b)
	err = s.Fetch(context.Background(), srv.URL+"/a.mp3", ref, int64(len(b)))
	var he *HTTPError
	if !errors.As(err, &he) || he.Code != 503 || !strings.Contains(err.Error(), "no such item on this hub") {
		t.Fatalf("fetch from a failing hub: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "partial", ref.Hex()))
	if err != nil || fi.Size() != 500_000 {
		t.Fatalf("partial download not kept: %v %v", fi, err)
	}
	if u := s.Usage(); u.Partial != 500_000 || u.Items != 0 {
		t.Fatalf("Usage = %+v", u)
	}
	s.Close()

	// "Restart": a new Store on the same directory, the hub is back.
	m.mu.Lock()
	m.statusFrom = 0
	m.requests = nil
	m.mu.Unlock()
	s2 := openStore(t, dir, Options{})
	if err := s2.Fetch(context.Background(), srv.URL+"/a.mp3", ref, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	reqs, sent := m.stats()
	if len(reqs) != 1 || reqs[0] != "bytes=500000-" {
		t.Fatalf("after restart requests were %q, want one from byte 500000", reqs)
	}
	if sent != len(b) {
		t.Fatalf("server sent %d bytes in all for %d", sent, len(b))
	}
	if err := s2.Verify(ref); err != nil {
		t.Fatal(err)
	}
}

func TestFetchHashMismatch(t *testing.T) {
	b := data(100_000, 4)
	wrong := data(100_000, 5)
	srv := httptest.NewServer(&mediaServer{body: wrong})
	defer srv.Close()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	err := s.Fetch(context.Background(), srv.URL+"/b", RefOf(b), int64(len(b)))
	var me *MismatchError
	if !errors.As(err, &me) || me.Got != RefOf(wrong) || !strings.Contains(err.Error(), srv.URL+"/b") {
		t.Fatalf("fetch of wrong bytes: %v", err)
	}
	if s.Has(RefOf(b)) || s.Has(RefOf(wrong)) || len(dirNames(t, filepath.Join(dir, "partial"))) != 0 || len(dirNames(t, filepath.Join(dir, "objects"))) != 0 {
		t.Fatal("mismatched download left something behind")
	}
}

func TestFetchErrors(t *testing.T) {
	b := data(10_000, 6)
	ref := RefOf(b)
	ctx := context.Background()

	srv := httptest.NewServer(&mediaServer{body: b, status: http.StatusNotFound})
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{})
	err := s.Fetch(ctx, srv.URL+"/c", ref, int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") || !strings.Contains(err.Error(), "no such item on this hub") {
		t.Fatalf("404: %v", err)
	}

	// The server offers another size than the schedule says.
	srv2 := httptest.NewServer(&mediaServer{body: b[:9000]})
	defer srv2.Close()
	err = s.Fetch(ctx, srv2.URL, ref, int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "server offers 9000 bytes, expected 10000") {
		t.Fatalf("short item: %v", err)
	}

	// A body that ends early without an error (no Content-Length): kept, reported.
	srv3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(b[:4000])
		w.(http.Flusher).Flush()
	}))
	defer srv3.Close()
	err = s.Fetch(ctx, srv3.URL, ref, int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "ended after 4000 of 10000 bytes") {
		t.Fatalf("short body: %v", err)
	}

	// Too long, no Content-Length.
	srv4 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data(6000, 1))
		w.(http.Flusher).Flush()
		w.Write(data(6000, 2))
	}))
	defer srv4.Close()
	s4 := openStore(t, t.TempDir(), Options{})
	err = s4.Fetch(ctx, srv4.URL, ref, int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "more than the expected 10000 bytes") {
		t.Fatalf("long body: %v", err)
	}

	// Nothing listening.
	err = s4.Fetch(ctx, "http://127.0.0.1:1/x", ref, int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestFetchServerIgnoresRange(t *testing.T) {
	b := data(400_000, 7)
	m := &mediaServer{body: b, dropAfter: 100_000, drops: 2, noRange: true}
	srv := httptest.NewServer(m)
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{})
	// Each attempt restarts at 0 (200 instead of 206) yet still counts as progress.
	if err := s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(RefOf(b)); err != nil {
		t.Fatal(err)
	}
}

func TestFetchBudget(t *testing.T) {
	b := data(5000, 8)
	m := &mediaServer{body: b}
	srv := httptest.NewServer(m)
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{Budget: 4000})
	err := s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b)))
	var be *BudgetError
	if !errors.As(err, &be) || be.Need != 5000 {
		t.Fatalf("over budget: %v", err)
	}
	if reqs, _ := m.stats(); len(reqs) != 0 {
		t.Fatal("fetched although it could not fit")
	}
}

func TestFetchConcurrentSameItem(t *testing.T) {
	b := data(500_000, 9)
	m := &mediaServer{body: b}
	srv := httptest.NewServer(m)
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if reqs, _ := m.stats(); len(reqs) != 1 {
		t.Fatalf("%d downloads of one item", len(reqs))
	}
	if u := s.Usage(); u.Items != 1 || u.Bytes != int64(len(b)) {
		t.Fatalf("Usage = %+v", u)
	}
}

func TestFetchStalledLinkIsCutAndResumed(t *testing.T) {
	b := data(300_000, 10)
	var mu sync.Mutex
	n := 0
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first { // send a little, then hang without closing, like a dead 4G link
			w.Header().Set("Content-Length", "300000")
			w.Write(b[:1000])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{FetchStall: 200 * time.Millisecond})
	if err := s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 2 {
		t.Fatalf("%d requests, want 2 (stalled one, then resume)", n)
	}
}

func TestFetchDiskFull(t *testing.T) {
	b := data(500_000, 11)
	srv := httptest.NewServer(&mediaServer{body: b})
	defer srv.Close()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	s.fs = &faultFS{diskLeft: 200_000}
	err := s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("fetch to a full disk: %v", err)
	}
	if s.Has(RefOf(b)) {
		t.Fatal("item stored from a failed download")
	}
	// Space is freed: the download resumes from what was written.
	s.fs = osFS{}
	if err := s.Fetch(context.Background(), srv.URL, RefOf(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(RefOf(b)); err != nil {
		t.Fatal(err)
	}
}

// TestFetchingReportsProgress: while a Fetch is under way, Fetching names the bytes held and
// the size expected (a neighbour asking for the item waits on it); before and after, it says
// no fetch is under way.
func TestFetchingReportsProgress(t *testing.T) {
	b := data(300_000, 11)
	ref := RefOf(b)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "300000")
		w.Write(b[:100_000])
		w.(http.Flusher).Flush()
		<-release
		w.Write(b[100_000:])
	}))
	defer srv.Close()
	s := openStore(t, t.TempDir(), Options{})
	if _, _, ok := s.Fetching(ref); ok {
		t.Fatal("Fetching before any Fetch says one is under way")
	}
	done := make(chan error, 1)
	go func() { done <- s.Fetch(context.Background(), srv.URL, ref, int64(len(b))) }()
	var have, size int64
	var ok bool
	for i := 0; i < 1000 && have < 100_000; i++ {
		have, size, ok = s.Fetching(ref)
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if !ok || have != 100_000 || size != int64(len(b)) {
		t.Fatalf("Fetching during the download = %d of %d, %v; want 100000 of %d, true", have, size, ok, len(b))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Fetching(ref); ok || !s.Has(ref) {
		t.Fatalf("after Fetch: Fetching %v, Has %v", ok, s.Has(ref))
	}
}
