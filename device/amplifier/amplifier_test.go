package amplifier

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// fakeClock runs AfterFunc callbacks in Advance, in deadline order, on the caller's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, rest []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// fakeRelay records every Set; fail makes Set return an error.
type fakeRelay struct {
	mu   sync.Mutex
	sets []bool
	fail error
	ch   chan bool
}

func newFakeRelay() *fakeRelay { return &fakeRelay{ch: make(chan bool, 100)} }

func (r *fakeRelay) Set(on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, on)
	r.ch <- on
	return r.fail
}

func (r *fakeRelay) Close() error { return nil }

func (r *fakeRelay) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func (r *fakeRelay) calls() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.sets...)
}

func (r *fakeRelay) next(t *testing.T) bool {
	t.Helper()
	select {
	case on := <-r.ch:
		return on
	case <-time.After(10 * time.Second):
		t.Fatal("relay was not written")
		return false
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.WarmUp = 2 * time.Second
	c.OffDelay = 30 * time.Second
	c.Refresh = 0
	c.RetryMax = 4 * time.Second
	return c
}

// start runs a on a fake clock until the test ends.
// The initial write (off) is consumed.
func start(t *testing.T, cfg Config, relay *fakeRelay) (*Amplifier, *fakeClock, *testkit.Buffer) {
	t.Helper()
	clk := newFakeClock()
	logs := &testkit.Buffer{}
	a := New(cfg, relay, clk, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if relay.next(t) {
		t.Fatal("initial write was on, want off")
	}
	testkit.WaitFor(t, "initial off recorded", 10*time.Second, func() bool { return a.State().Relay == "off" })
	return a, clk, logs
}

// acquire starts Acquire in the background; the channel yields its result.
func acquire(a *Amplifier) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- a.Acquire(context.Background()) }()
	return ch
}

func returned(ch <-chan error) bool {
	select {
	case err := <-ch:
		if err != nil {
			panic(err)
		}
		return true
	default:
		return false
	}
}

func waitResult(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return")
		return nil
	}
}

func TestWarmUpBeforeFirstSampleAndOffDelayAfterLast(t *testing.T) {
	r := newFakeRelay()
	a, clk, _ := start(t, testConfig(), r)

	res := acquire(a)
	if on := r.next(t); !on {
		t.Fatal("first relay write was off, want on")
	}
	testkit.WaitFor(t, "relay reported on", 10*time.Second, func() bool { return a.State().Relay == "on" })
	if s := a.State(); s.Phase != PhaseWarmingUp || s.Users != 1 {
		t.Fatalf("state during warm-up = %+v", s)
	}
	clk.Advance(2*time.Second - time.Millisecond)
	if returned(res) {
		t.Fatal("Acquire returned before the warm-up was over")
	}
	clk.Advance(time.Millisecond)
	if err := waitResult(t, res); err != nil {
		t.Fatal(err)
	}
	if s := a.State(); s.Phase != PhaseOn {
		t.Fatalf("phase after warm-up = %s", s.Phase)
	}

	a.Release()
	if s := a.State(); s.Phase != PhaseOffPending || s.Relay != "on" {
		t.Fatalf("state after release = %+v, want off_pending with relay on", s)
	}
	clk.Advance(30*time.Second - time.Millisecond)
	if s := a.State(); s.Phase != PhaseOffPending {
		t.Fatalf("phase before the off-delay ended = %s", s.Phase)
	}
	clk.Advance(time.Millisecond)
	if on := r.next(t); on {
		t.Fatal("relay written on after the off-delay, want off")
	}
	testkit.WaitFor(t, "relay reported off", 10*time.Second, func() bool { s := a.State(); return s.Phase == PhaseOff && s.Relay == "off" })
	if got := r.calls(); len(got) != 3 || !got[1] || got[2] {
		t.Fatalf("relay writes = %v, want [false true false]", got)
	}
}

func TestConcurrentPlaysShareOneOn(t *testing.T) {
	r := newFakeRelay()
	a, clk, _ := start(t, testConfig(), r)

	first, second := acquire(a), acquire(a)
	r.next(t)
	testkit.WaitFor(t, "both plays hold the amplifier", 10*time.Second, func() bool { s := a.State(); return s.Users == 2 && s.Relay == "on" })
	clk.Advance(2 * time.Second)
	for _, ch := range []<-chan error{first, second} {
		if err := waitResult(t, ch); err != nil {
			t.Fatal(err)
		}
	}
	a.Release()
	clk.Advance(time.Hour) // the other play still holds it
	if s := a.State(); s.Phase != PhaseOn || s.Users != 1 {
		t.Fatalf("after one of two releases: %+v", s)
	}
	a.Release()
	clk.Advance(30 * time.Second)
	if on := r.next(t); on {
		t.Fatal("want off after the last release")
	}
	if got := r.calls(); len(got) != 3 || !got[1] || got[2] {
		t.Fatalf("relay writes = %v, want exactly [false true false]", got)
	}
}

func TestAcquireDuringOffDelayKeepsItOnWithoutWarmUp(t *testing.T) {
	r := newFakeRelay()
	a, clk, _ := start(t, testConfig(), r)
	res := acquire(a)
	r.next(t)
	testkit.WaitFor(t, "relay on", 10*time.Second, func() bool { return a.State().Relay == "on" })
	clk.Advance(2 * time.Second)
	waitResult(t, res)

	a.Release()
	clk.Advance(20 * time.Second)
	// Already warm: returns without the clock moving.
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if s := a.State(); s.Phase != PhaseOn {
		t.Fatalf("phase = %s, want on", s.Phase)
	}
	if got := r.calls(); len(got) != 2 || !got[1] {
		t.Fatalf("relay writes = %v, want the initial off and one on", got)
	}
}

func TestBrokenRelayDoesNotStopPlaybackAndRecovers(t *testing.T) {
	r := newFakeRelay()
	a, clk, logs := start(t, testConfig(), r)
	r.setFail(errors.New("port gone"))

	res := acquire(a)
	r.next(t)
	testkit.WaitFor(t, "failure recorded", 10*time.Second, func() bool { return a.State().Failures == 1 })
	s := a.State()
	if s.Error == "" || s.Relay != "unknown" || s.ErrorSince.IsZero() {
		t.Fatalf("state after failure = %+v", s)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "port gone") {
		t.Fatalf("no actionable error logged:\n%s", logs)
	}
	// The warm-up still ends the wait: the play goes ahead. The 1 s retry fires on the way.
	clk.Advance(2 * time.Second)
	if err := waitResult(t, res); err != nil {
		t.Fatalf("Acquire failed the play: %v", err)
	}
	if !r.next(t) {
		t.Fatal("retry wrote off, want on")
	}
	testkit.WaitFor(t, "second failure", 10*time.Second, func() bool { return a.State().Failures == 2 })

	r.setFail(nil)
	clk.Advance(2 * time.Second) // backoff doubled to 2 s
	if !r.next(t) {
		t.Fatal("retry wrote off, want on")
	}
	testkit.WaitFor(t, "recovered", 10*time.Second, func() bool { s := a.State(); return s.Error == "" && s.Relay == "on" && s.Failures == 0 })
	if !strings.Contains(logs.String(), "works again") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
}

func TestBackoffIsCapped(t *testing.T) {
	r := newFakeRelay()
	a, clk, _ := start(t, testConfig(), r)
	r.setFail(errors.New("broken"))
	res := acquire(a)
	r.next(t)
	testkit.WaitFor(t, "failure counted", 10*time.Second, func() bool { return a.State().Failures == 1 })
	clk.Advance(2 * time.Second)
	waitResult(t, res)
	// Retries at +1 s (already due), +2 s, +4 s, then every 4 s (RetryMax).
	for i, step := range []time.Duration{0, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
		clk.Advance(step)
		r.next(t)
		want := i + 2
		testkit.WaitFor(t, "failure counted", 10*time.Second, func() bool { return a.State().Failures == want })
	}
}

func TestAcquireCancelledReleasesItsHold(t *testing.T) {
	r := newFakeRelay()
	a, clk, _ := start(t, testConfig(), r)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- a.Acquire(ctx) }()
	r.next(t)
	cancel()
	if err := waitResult(t, res); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s := a.State(); s.Users != 0 {
		t.Fatalf("users = %d after cancelled Acquire", s.Users)
	}
	clk.Advance(time.Minute)
	if on := r.next(t); on {
		t.Fatal("want the relay switched off after the cancelled play")
	}
}

func TestRefreshReassertsState(t *testing.T) {
	r := newFakeRelay()
	cfg := testConfig()
	cfg.Refresh = 10 * time.Second
	_, clk, _ := start(t, cfg, r)
	testkit.WaitFor(t, "refresh armed", 10*time.Second, func() bool {
		clk.mu.Lock()
		defer clk.mu.Unlock()
		n := 0
		for _, t := range clk.timers {
			if !t.stopped {
				n++
			}
		}
		return n == 1
	})
	for range 3 {
		clk.Advance(10 * time.Second)
		if on := r.next(t); on {
			t.Fatal("refresh while idle wrote on")
		}
	}
}

func TestReleaseWithoutAcquireIsIgnored(t *testing.T) {
	a, _, logs := start(t, testConfig(), newFakeRelay())
	a.Release()
	if s := a.State(); s.Users != 0 || s.Phase != PhaseOff {
		t.Fatalf("state = %+v", s)
	}
	if !strings.Contains(logs.String(), "released more often") {
		t.Fatal("misuse not logged")
	}
}

// blockingRelay's Set hangs until unblocked, like a write to a hung USB serial adapter.
type blockingRelay struct {
	*fakeRelay
	unblock chan struct{}
}

func (r blockingRelay) Set(on bool) error {
	err := r.fakeRelay.Set(on)
	<-r.unblock
	return err
}

func TestStuckRelayWriteDoesNotHoldBackThePlay(t *testing.T) {
	fr := newFakeRelay()
	r := blockingRelay{fakeRelay: fr, unblock: make(chan struct{})}
	clk := newFakeClock()
	a := New(testConfig(), r, clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() { close(r.unblock); cancel(); <-done }()

	if fr.next(t) { // the initial off write hangs
		t.Fatal("initial write was on")
	}
	res := acquire(a)
	testkit.WaitFor(t, "play waiting for warm-up", 10*time.Second, func() bool { return a.State().Users == 1 })
	clk.Advance(2 * time.Second)
	if err := waitResult(t, res); err != nil {
		t.Fatal(err)
	}
	if s := a.State(); s.Error != "" {
		t.Fatalf("stuck write reported too early: %+v", s)
	}
	clk.Advance(5 * time.Second)
	if s := a.State(); !strings.Contains(s.Error, "has not returned for 7s") {
		t.Fatalf("stuck write not reported: %+v", s)
	}
}
