package hub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// guard is how long a test waits for the hub to end a connection before calling it held
// forever; it bounds the test, it is not what is checked.
const guard = 30 * time.Second

// endsWithin reads conn until the hub closes it and returns what it answered.
func connEnds(t *testing.T, conn net.Conn, what string) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(guard))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the hub still holds the connection after %v", what, guard)
	}
	return string(b)
}

// The hub's server ends idle keep-alives, connections that never send a request and slow
// bodies (Run with short timeouts).
func TestRunTimesOutIdleAndSlowConnections(t *testing.T) {
	dir := t.TempDir()
	if _, err := Keygen(filepath.Join(dir, "hub.key"), "hub"); err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreeAddr(t) // Run listens itself
	os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte("listen: "+addr+"\ndata_dir: data\nsigning_key_file: hub.key\n"+
		"read_timeout: 1s\nwrite_timeout: 1s\nidle_timeout: 1s\n"), 0o600)
	cfg, err := LoadConfig(filepath.Join(dir, "hub.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		<-done
	}()
	for range 400 {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	connEnds(t, dial(), "a connection that sends nothing")

	keep := dial()
	fmt.Fprintf(keep, "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
	br := bufio.NewReader(keep)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	io.ReadAll(resp.Body)
	keep.SetReadDeadline(time.Now().Add(guard))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection: %v, want it closed by the hub", err)
	}

	slow := dial()
	fmt.Fprintf(slow, "POST /api/areas HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":")
	connEnds(t, slow, "a body that stops after 6 of 1000 bytes")
}

// Connections beyond max_connections are closed at once; those within are served.
func TestLimitListenerCapsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
	go hs.Serve(newLimitListener(ln, 1, slog.New(slog.DiscardHandler)))
	defer hs.Close()
	get := func(c net.Conn, br *bufio.Reader) error {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(guard))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.ReadAll(resp.Body)
		return nil
	}
	a, _ := net.Dial("tcp", ln.Addr().String())
	defer a.Close()
	ar := bufio.NewReader(a)
	if err := get(a, ar); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	b, _ := net.Dial("tcp", ln.Addr().String())
	defer b.Close()
	if err := get(b, bufio.NewReader(b)); err == nil {
		t.Fatal("a second connection over a cap of one was served")
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a second connection over a cap of one was held, not closed")
	}
	if err := get(a, ar); err != nil {
		t.Fatalf("the first connection after the refusal: %v", err)
	}
}

// Every answer forbids content sniffing: screenshots and library files reach browsers.
func TestAnswersAreNotSniffed(t *testing.T) {
	h := newTestHub(t)
	for _, path := range []string{"/healthz", "/api/whoami", "/content/sha256:" + strings.Repeat("0", 64)} {
		resp, err := http.Get(h.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, resp.Header.Get("X-Content-Type-Options"))
		}
	}
}
