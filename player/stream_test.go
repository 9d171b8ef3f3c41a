package player_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-project/loa/player"
)

// icyWrite sends audio with SHOUTcast metadata every metaint bytes, as Icecast does.
func icyWrite(w http.ResponseWriter, audio []byte, metaint int, title string) {
	meta := []byte(fmt.Sprintf("StreamTitle='%s';", title))
	meta = append(meta, make([]byte, (16-len(meta)%16)%16)...)
	block := 0
	for len(audio) > 0 {
		n := min(metaint, len(audio))
		w.Write(audio[:n])
		audio = audio[n:]
		if n == metaint {
			if block%2 == 0 {
				w.Write([]byte{byte(len(meta) / 16)})
				w.Write(meta)
			} else {
				w.Write([]byte{0}) // no new title
			}
			block++
		}
		w.(http.Flusher).Flush()
	}
}

// TestStreamDropAndResume relays a stream from a real loopback HTTP server that drops the
// connection part-way, refuses the next try, then comes back: playback resumes, the gap is
// reported, and the ICY metadata never reaches the decoder.
func TestStreamDropAndResume(t *testing.T) {
	dir := t.TempDir()
	wavPath, mp3 := filepath.Join(dir, "radio.wav"), filepath.Join(dir, "radio.mp3")
	run(t, "sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wavPath, "synth", "6", "sine", "200-2000", "sine", "440", "vol", "0.5")
	run(t, "lame", "--quiet", "-b", "128", wavPath, mp3)
	audio, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	cut := len(audio) * 4 / 10
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		if r.Header.Get("Icy-MetaData") != "1" {
			http.Error(w, "want Icy-MetaData", http.StatusBadRequest)
			return
		}
		const metaint = 4000
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Header().Set("icy-metaint", fmt.Sprint(metaint))
		switch n {
		case 1: // the first part, then the connection drops
			icyWrite(w, audio[:cut], metaint, "Bản tin sáng")
		case 2: // the encoder is still down
			http.Error(w, "source not connected", http.StatusServiceUnavailable)
		default: // back: the rest, then a live stream that stays open
			icyWrite(w, audio[cut:], metaint, "Thời tiết")
			<-r.Context().Done()
		}
	}))
	defer srv.Close()

	o := &memOutput{}
	p, err := player.New(player.Config{Output: o, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pb, err := p.Play(ctx, player.Program{Items: []player.Item{{URL: srv.URL + "/vov1.mp3", Duration: 5 * time.Second}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	proof := res.Items[0]
	t.Logf("proof %s", fmtProof(proof))
	if proof.Ended != player.EndCompleted || proof.Error != "" {
		t.Fatalf("stream did not complete: %s", fmtProof(proof))
	}
	if proof.Frames != 5*rate {
		t.Errorf("played %d frames, want the item's 5 s = %d", proof.Frames, 5*rate)
	}
	if proof.Gaps != 1 || proof.GapS <= 0 {
		t.Errorf("gaps %d (%.3f s), want one gap of some length", proof.Gaps, proof.GapS)
	}
	if proof.SkippedBytes != 0 {
		t.Errorf("%d bytes skipped: ICY metadata reached the decoder", proof.SkippedBytes)
	}
	if proof.Dropouts != 1 || proof.Reconnects != 1 || proof.ConnectFailures < 1 {
		t.Errorf("dropouts %d, reconnects %d, connect failures %d; want 1, 1 and at least the refusal",
			proof.Dropouts, proof.Reconnects, proof.ConnectFailures)
	}
	if proof.MissingS < proof.GapS || proof.MissingS >= 5 {
		t.Errorf("missing %.3f s: want the gap (%.3f s) plus the wait for the first audio, under the item's 5 s", proof.MissingS, proof.GapS)
	}
	if c := conns.Load(); c < 3 {
		t.Errorf("%d connections, want a reconnect after the refusal", c)
	}
	// The first part is the file's start, decoded as mpg123 does.
	ref := filepath.Join(dir, "ref.wav")
	run(t, "mpg123", "-q", "-r", "48000", "-e", "f32", "-w", ref, mp3)
	want, _ := readWAV(t, ref)
	got := o.get()
	part := rate * 3 / 2 // well inside the first connection's 2.4 s
	if corr, lag := alignedCorrelation(left(want[:2*part]), left(got[:2*part]), 600); corr < 0.99 {
		t.Errorf("first part correlates %.4f (lag %d) with mpg123's decode", corr, lag)
	}
}

// TestStreamUnreachable: a stream that never answers ends at its duration with the reason.
func TestStreamUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such mount", http.StatusNotFound)
	}))
	defer srv.Close()
	p, err := player.New(player.Config{Output: player.NewNullOutput(rate), BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.Play(context.Background(), player.Program{Items: []player.Item{{URL: srv.URL + "/x.mp3", Duration: 300 * time.Millisecond}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	proof := pb.Wait().Items[0]
	if proof.Frames != 0 || !strings.Contains(proof.Error, "404") {
		t.Errorf("want no frames and the 404 named: %s", fmtProof(proof))
	}
	// Never connected: no drop-out, failed tries, the whole window missing.
	if proof.Dropouts != 0 || proof.Reconnects != 0 || proof.ConnectFailures < 1 || proof.MissingS < 0.3 {
		t.Errorf("dropouts %d, reconnects %d, connect failures %d, missing %.3f s; want 0, 0, ≥1, ≥0.3 s",
			proof.Dropouts, proof.Reconnects, proof.ConnectFailures, proof.MissingS)
	}
}

// TestShoutcastStatusLine: SHOUTcast v1 servers answer "ICY 200 OK"; the relay accepts it.
func TestShoutcastStatusLine(t *testing.T) {
	dir := t.TempDir()
	wavPath, mp3 := filepath.Join(dir, "s.wav"), filepath.Join(dir, "s.mp3")
	run(t, "sox", "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", wavPath, "synth", "2", "sine", "440", "vol", "0.5")
	run(t, "lame", "--quiet", "-b", "128", wavPath, mp3)
	audio, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for { // the request head
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(c, "ICY 200 OK\r\nicy-name: Dai phat thanh\r\ncontent-type: audio/mpeg\r\nicy-metaint: 1000\r\n\r\n")
		for i := 0; i < len(audio); i += 1000 {
			c.Write(audio[i:min(i+1000, len(audio))])
			c.Write([]byte{1})
			c.Write([]byte("StreamTitle='';\x00"))
		}
		time.Sleep(2 * time.Second) // then stay quiet: the item ends by its duration first
	}()
	o := &memOutput{}
	p, err := player.New(player.Config{Output: o})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{{URL: "http://" + ln.Addr().String() + "/", Duration: time.Second}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	proof := pb.Wait().Items[0]
	if proof.Frames != rate || proof.Error != "" || proof.SkippedBytes != 0 {
		t.Errorf("want one clean second from a SHOUTcast server: %s", fmtProof(proof))
	}
}

// TestStreamStallIsADropout: a server that keeps the connection open but sends nothing more
// (a dead 4G link, a hung encoder) is abandoned after the stall timeout and reconnected; the
// gap is counted from when the audio ran out, not from when the stall was noticed.
func TestStreamStallIsADropout(t *testing.T) {
	dir := t.TempDir()
	wavPath, mp3 := filepath.Join(dir, "s.wav"), filepath.Join(dir, "s.mp3")
	run(t, "sox", "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", wavPath, "synth", "3", "sine", "440", "vol", "0.5")
	run(t, "lame", "--quiet", "-b", "128", wavPath, mp3)
	audio, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	stalled := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		if conns.Add(1) == 1 {
			w.Write(audio[:len(audio)/3])
			w.(http.Flusher).Flush()
			once.Do(func() { close(stalled) })
			<-r.Context().Done() // open and silent until the client gives up
			return
		}
		w.Write(audio)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	const stall = 400 * time.Millisecond
	p, err := player.New(player.Config{Output: player.NewNullOutput(rate), StallTimeout: stall,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{{URL: srv.URL + "/live.mp3", Duration: 3 * time.Second}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	proof := pb.Wait().Items[0]
	t.Logf("proof %s", fmtProof(proof))
	select {
	case <-stalled:
	default:
		t.Fatal("the server never sent its first part")
	}
	if proof.Ended != player.EndCompleted || proof.Error != "" {
		t.Errorf("want the item completed without error: %s", fmtProof(proof))
	}
	if proof.Dropouts != 1 || proof.Reconnects != 1 || proof.Gaps != 1 {
		t.Errorf("dropouts %d, reconnects %d, gaps %d; want one of each", proof.Dropouts, proof.Reconnects, proof.Gaps)
	}
	// The null output runs dry as soon as the first part is decoded: the gap covers about
	// the whole stall (the last decode may finish a little after the last byte came), not just
	// the moment it was noticed.
	if proof.GapS < 0.75*stall.Seconds() {
		t.Errorf("gap %.3f s, much shorter than the %.1f s stall", proof.GapS, stall.Seconds())
	}
}

// TestStreamPauseIsNotAStall: while a relay is paused the decoder takes nothing and the
// network side waits on it; that wait must not be taken for a quiet link.
func TestStreamPauseIsNotAStall(t *testing.T) {
	dir := t.TempDir()
	wavPath, mp3 := filepath.Join(dir, "s.wav"), filepath.Join(dir, "s.mp3")
	run(t, "sox", "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", wavPath, "synth", "20", "sine", "440", "vol", "0.5")
	run(t, "lame", "--quiet", "-b", "128", wavPath, mp3)
	audio, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Write(audio) // more than the relay buffers: it must wait for the decoder
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	const stall = 200 * time.Millisecond
	o := &memOutput{delay: time.Millisecond}
	p, err := player.New(player.Config{Output: o, StallTimeout: stall, BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{{URL: srv.URL + "/live.mp3", Duration: 3 * time.Second}}, Gain: 1,
		OnItemStart: func(int, time.Time, time.Duration) { close(started) }})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := pb.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * stall)
	if err := pb.Resume(); err != nil {
		t.Fatal(err)
	}
	proof := pb.Wait().Items[0]
	t.Logf("proof %s", fmtProof(proof))
	if proof.Dropouts != 0 || proof.Gaps != 0 || proof.Reconnects != 0 {
		t.Errorf("a pause was taken for a drop-out: dropouts %d, gaps %d, reconnects %d", proof.Dropouts, proof.Gaps, proof.Reconnects)
	}
	if proof.Ended != player.EndCompleted || proof.Frames == 0 {
		t.Errorf("want the relay to carry on after the pause: %s", fmtProof(proof))
	}
}
