package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A notification sent through one store reaches every store listening on the same database,
// in order; on SQLite nothing is sent and the listening channel is closed at once.
func TestNotifyReachesListeners(t *testing.T) {
	a, _, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if testEngine == "sqlite" {
		if a.Shared() {
			t.Fatal("a SQLite store says other hubs may share it")
		}
		noErr(t, a.Notify(ctx, "push", "x"))
		if _, open := <-a.Listen(ctx); open {
			t.Fatal("Listen on SQLite gave an event")
		}
		return
	}
	b, err := Open(ctx, a.pgCfg.ConnString(), newClock(), nil)
	noErr(t, err)
	defer b.Close()
	events := b.Listen(ctx)
	waitFor(t, "b's listening connection", b.Listening)
	noErr(t, a.Notify(ctx, "push", "area:qn/tam-ky"))
	noErr(t, a.Notify(ctx, "command", "cmd-42"))
	for _, want := range []Event{{Topic: "push", Payload: "area:qn/tam-ky"}, {Topic: "command", Payload: "cmd-42"}} {
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification %+v", want)
		}
	}
	err = a.Notify(ctx, "push", strings.Repeat("x", MaxNotifyPayload))
	wantErr(t, err, ErrInvalid, "a payload over the limit")
	wantErr(t, a.Notify(ctx, "two\nlines", ""), ErrInvalid, "a topic of two lines")
	cancel()
	for range events { // closed once ctx ends
	}
	if b.Listening() {
		t.Fatal("still listening after ctx ended")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
