package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 26, 6, 30, 0, 123456789, time.FixedZone("ICT", 7*3600))}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// openTest opens a store on a fresh data source (testSource) of the engine under test and
// returns it with its source.
func openTest(t testing.TB) (*DB, *fakeClock, string) {
	t.Helper()
	path := testSource(t)
	clk := newClock()
	db, err := Open(context.Background(), path, clk, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, clk, path
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
	t.Logf("%s: %v", what, err) // the message a technician would read
}

func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func refOf(s string) string {
	h := sha256.Sum256([]byte(s))
	const hexdigits = "0123456789abcdef"
	b := make([]byte, 0, 71)
	b = append(b, "sha256:"...)
	for _, c := range h {
		b = append(b, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(b)
}

// seedTree adds quang-nam / tam-ky / {tam-thanh, tam-phu} and quang-nam/duy-hai (a commune
// directly under the province).
func seedTree(t testing.TB, db *DB) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []Area{
		{ID: "quang-nam", Name: "Quảng Nam"},
		{ID: "quang-nam/tam-ky", Name: "Tam Kỳ"},
		{ID: "quang-nam/tam-ky/tam-thanh", Name: "Tam Thanh"},
		{ID: "quang-nam/tam-ky/tam-phu", Name: "Tam Phú"},
		{ID: "quang-nam/duy-hai", Name: "Duy Hải"},
	} {
		if _, err := db.AddArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}

func enrol(t testing.TB, db *DB, id, area string) Device {
	t.Helper()
	d, err := db.EnrolDevice(context.Background(), Device{ID: id, Name: "Cụm " + id, Area: area, Kind: KindCluster,
		Outputs: []string{"speakers"}}, hashOf("secret-"+id))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
