package faultnet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoTarget is a loopback server that echoes every connection.
func echoTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readNothing checks that nothing arrives on c for d.
func readNothing(t *testing.T, c net.Conn, d time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 64))
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: read %d bytes, err %v; want nothing and the deadline", what, n, err)
	}
	c.SetReadDeadline(time.Time{})
}

// A shaped, lossy link still delivers every byte, in order.
func TestShapedLinkDeliversEverythingInOrder(t *testing.T) {
	p := newProxy(t, echoTarget(t))
	p.SetShape(Shape{Rate: 1 << 20, Delay: 5 * time.Millisecond, Loss: 0.2, LossStall: 10 * time.Millisecond})
	c := dial(t, p)
	msg := make([]byte, 100<<10)
	rand.Read(msg)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the echo through the shaped link differs from what was sent")
	}
	if st := p.Stats(); st.ToTarget != int64(len(msg)) || st.ToClient != int64(len(msg)) {
		t.Errorf("stats %+v, want %d bytes each way", st, len(msg))
	}
}

// A silent link keeps the connection open and forwards nothing until it speaks again; then
// what waited arrives.
func TestSilenceHoldsWithoutClosing(t *testing.T) {
	p := newProxy(t, echoTarget(t))
	c := dial(t, p)
	c.Write([]byte("a"))
	io.ReadFull(c, make([]byte, 1))
	p.Silence(true)
	c.Write([]byte("hello"))
	readNothing(t, c, 300*time.Millisecond, "silent link")
	c2 := dial(t, p) // a new connection is accepted and silent too
	c2.Write([]byte("x"))
	readNothing(t, c2, 100*time.Millisecond, "new connection on a silent link")
	p.Silence(false)
	got := make([]byte, 5)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
		t.Fatalf("after the silence: %q, %v; want hello", got, err)
	}
}

// CutNext closes the next connection after exactly n bytes toward the client; planned twice,
// the two next connections, in order.
func TestCutNextMidStream(t *testing.T) {
	p := newProxy(t, echoTarget(t))
	p.CutNext(ToClient, 1000)
	p.CutNext(ToTarget, 10)
	c := dial(t, p)
	go c.Write(make([]byte, 5000))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) != 1000 {
		t.Fatalf("read %d bytes before the cut (err %v), want 1000", len(got), err)
	}
	// The second is cut toward the target: the client sees its connection closed having had
	// at most the echo of those 10 bytes.
	c1 := dial(t, p)
	go c1.Write(make([]byte, 5000))
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(c1); len(got) > 10 || err != nil {
		t.Fatalf("the second connection echoed %d bytes (err %v), want at most the 10 that reached the target, then the close", len(got), err)
	}
	// The connection after them is not cut.
	c2 := dial(t, p)
	c2.Write(make([]byte, 5000))
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c2, make([]byte, 5000)); err != nil {
		t.Fatalf("the next connection: %v", err)
	}
	if st := p.Stats(); st.CutsTaken != 2 {
		t.Errorf("%d cuts, want 2", st.CutsTaken)
	}
}

// A mute target accepts and never answers; Down closes connections and refuses new ones.
func TestMuteAndDown(t *testing.T) {
	p := newProxy(t, echoTarget(t))
	p.Mute(true)
	c := dial(t, p)
	if _, err := c.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	readNothing(t, c, 300*time.Millisecond, "mute target")
	p.Mute(false)
	live := dial(t, p)
	live.Write([]byte("x"))
	if _, err := io.ReadFull(live, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.Down()
	live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection on a link that is down", n)
	}
	d := dial(t, p)
	d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := d.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a new connection on a link that is down: %v; want it closed", err)
	}
	p.Up()
	u := dial(t, p)
	u.Write([]byte("y"))
	if _, err := io.ReadFull(u, make([]byte, 1)); err != nil {
		t.Fatalf("after Up: %v", err)
	}
}
