package screen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/internal/testkit"
)

// TestScreenshotsFollowThePlayback shows a 3-colour video on a paced output and takes
// screenshots while it plays: each shows the colour of the second mpv says it is at.
func TestScreenshotsFollowThePlayback(t *testing.T) {
	dir := t.TempDir()
	v := filepath.Join(dir, "v.mp4")
	colours := []string{"red", "lime", "blue"}
	colourVideo(t, v, 1, colours...)
	s := openPaced(t, screen.Config{}, nil)
	ev := newEvents(1)
	sh, err := s.Show(context.Background(), ev.program(screen.Item{Path: v}))
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	seen := map[string]bool{}
	for k := 0; ; k++ {
		_, before := sh.Progress()
		p := filepath.Join(dir, "shot.png")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Screenshot(ctx, p)
		cancel()
		_, after := sh.Progress()
		if err != nil {
			select {
			case <-sh.Done(): // the video ended between two shots
			default:
				t.Fatal(err)
			}
			break
		}
		got := nameOf(centre(readImage(t, p)))
		// The shot was taken between the two positions read around it.
		ok := false
		for _, at := range []time.Duration{before, after} {
			if i := int(at / time.Second); i < len(colours) && colours[i] == got {
				ok = true
			}
		}
		if !ok {
			t.Errorf("shot %d between %v and %v shows %s", k, before, after, got)
		}
		seen[got] = true
		time.Sleep(150 * time.Millisecond)
	}
	res := sh.Wait()
	if res.Items[0].Ended != screen.EndCompleted || res.Items[0].PositionS < 2.9 {
		t.Errorf("proof: %+v", res.Items[0])
	}
	// Shown on a real-time output: the wall time on screen is at least the media length.
	if res.Items[0].ShownS < 2.9 {
		t.Errorf("a 3 s video was on screen %.2f s", res.Items[0].ShownS)
	}
	if len(seen) < 2 {
		t.Errorf("screenshots saw only %v over 3 s of video", seen)
	}
}

// TestStillAndBulletinDurations shows a still image and a bulletin for their durations.
func TestStillAndBulletinDurations(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "still") // no extension: told apart by content, like the store
	stillImage(t, img+".png", "yellow")
	if err := os.Rename(img+".png", img); err != nil {
		t.Fatal(err)
	}
	s := openPaced(t, screen.Config{Width: 320, Height: 180, Background: "#00FFFF"}, nil)
	ev := newEvents(2)
	sh, err := s.Show(context.Background(), ev.program(
		screen.Item{Path: img, Duration: 1500 * time.Millisecond},
		screen.Item{Text: "Thông báo", Duration: 1500 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	if got := nameOf(centre(shot(t, s, dir, "still.png"))); got != "yellow" {
		t.Errorf("during the still: %s on screen", got)
	}
	ev.waitStart(t, 1)
	b := shot(t, s, dir, "text.png")
	if got := nameOf(meanAt(b, 10, 10, 3)); got != "cyan" {
		t.Errorf("bulletin background: %s, want the configured cyan", got)
	}
	if got := nameOf(centre(b)); got == "cyan" {
		t.Errorf("no letters in the middle of the bulletin")
	}
	res := waitDone(t, sh)
	for i, p := range res.Items {
		if p.Ended != screen.EndCompleted || p.ShownS < 1.4 {
			t.Errorf("item %d: %+v", i, p)
		}
	}
	if res.Items[0].Kind != "image" || res.Items[1].Kind != "text" {
		t.Errorf("kinds %q %q", res.Items[0].Kind, res.Items[1].Kind)
	}
}

// TestEmergencyTakesOverTheScreen: an emergency bulletin shown while a programme plays
// replaces it at once; the programme's proof says it was stopped; Stop then blanks the screen.
func TestEmergencyTakesOverTheScreen(t *testing.T) {
	dir := t.TempDir()
	v := filepath.Join(dir, "v.mp4")
	colourVideo(t, v, 20, "lime")
	s := openPaced(t, screen.Config{Width: 320, Height: 180}, nil)
	normal := newEvents(2)
	sh, err := s.Show(context.Background(), normal.program(screen.Item{Path: v}, screen.Item{Path: v}))
	if err != nil {
		t.Fatal(err)
	}
	normal.waitStart(t, 0)
	for _, at := sh.Progress(); at < 300*time.Millisecond; _, at = sh.Progress() {
		time.Sleep(20 * time.Millisecond)
	}
	alert := newEvents(1)
	asked := time.Now()
	em, err := s.Show(context.Background(), alert.program(
		screen.Item{Text: "KHẨN CẤP: bão số 13", Ticker: "Người dân không ra biển", Duration: time.Minute, Background: "#FF0000"}))
	if err != nil {
		t.Fatal(err)
	}
	alert.waitStart(t, 0)
	t.Logf("emergency first frame %v after Show was called", time.Since(asked).Round(time.Millisecond))
	old := waitDone(t, sh)
	if old.Ended != screen.EndStopped || old.Items[0].Ended != screen.EndStopped || old.Items[1].Ended != screen.EndSkipped {
		t.Errorf("preempted programme: %+v", old)
	}
	if old.Item != 0 || old.At <= 0 {
		t.Errorf("resume point of the preempted programme: item %d at %v", old.Item, old.At)
	}
	if got := nameOf(meanAt(shot(t, s, dir, "em.png"), 10, 10, 3)); got != "red" {
		t.Errorf("after the emergency took over: %s at the top left, want its red background", got)
	}
	if st := s.State(); !st.Running || !strings.HasPrefix(st.Showing, "text:KHẨN") {
		t.Errorf("state: %+v", st)
	}
	s.Stop()
	res := waitDone(t, em)
	if res.Items[0].Ended != screen.EndStopped || res.Items[0].ShownS <= 0 {
		t.Errorf("emergency proof after Stop: %+v", res.Items[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Screenshot(ctx, filepath.Join(dir, "idle.png")); err == nil {
		t.Errorf("a screenshot of a stopped screen worked: it should say nothing is on screen")
	}
}

// fakeClock is the real time, except that the test fires the waits it wants to.
type fakeClock struct {
	mu    sync.Mutex
	waits []wait
}

type wait struct {
	d  time.Duration
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time { return time.Now() }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waits = append(c.waits, wait{d, ch})
	return ch
}

// fire ends the waits longer than min; it reports how many there were.
func (c *fakeClock) fire(min time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waits {
		if w.d > min {
			w.ch <- time.Now()
			n++
		}
	}
	return n
}

// TestUntilAndCancel: the programme's hard end (on the injected clock) and its context end it.
func TestUntilAndCancel(t *testing.T) {
	dir := t.TempDir()
	v := filepath.Join(dir, "v.mp4")
	colourVideo(t, v, 20, "lime")
	clk := &fakeClock{}
	s := openPaced(t, screen.Config{}, clk)

	ev := newEvents(1)
	prog := ev.program(screen.Item{Path: v})
	prog.Until = time.Now().Add(time.Hour)
	sh, err := s.Show(context.Background(), prog)
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	if clk.fire(30*time.Minute) != 1 {
		t.Fatal("Show did not wait for the hour to its hard end on the clock")
	}
	if res := waitDone(t, sh); res.Ended != screen.EndUntil || res.Items[0].Ended != screen.EndUntil {
		t.Errorf("cut by until: %+v", res)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ev = newEvents(1)
	sh, err = s.Show(ctx, ev.program(screen.Item{Path: v}))
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	cancel()
	if res := waitDone(t, sh); res.Ended != screen.EndCancelled || res.Items[0].Ended != screen.EndCancelled {
		t.Errorf("context cancelled: %+v", res)
	}
}

// TestItemsThatCannotBeShown get failed proofs that say why, and the rest of the programme
// plays.
func TestItemsThatCannotBeShown(t *testing.T) {
	dir := t.TempDir()
	v := filepath.Join(dir, "v.mp4")
	colourVideo(t, v, 0.5, "lime")
	sound := filepath.Join(dir, "sound.wav")
	testkit.Run(t, nil, "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=0.5", sound)
	junk := filepath.Join(dir, "junk.mp4")
	if err := os.WriteFile(junk, []byte("this is not a video at all, just some text of a broken upload"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openPaced(t, screen.Config{}, nil)
	ev := newEvents(6)
	sh, err := s.Show(context.Background(), ev.program(
		screen.Item{Path: filepath.Join(dir, "missing.mp4")},
		screen.Item{Text: "no duration"},
		screen.Item{Path: junk},
		screen.Item{Path: sound},
		screen.Item{Text: "bad colour", Duration: time.Second, Background: "blue"},
		screen.Item{Path: v},
	))
	if err != nil {
		t.Fatal(err)
	}
	res := waitDone(t, sh)
	want := []struct{ ended, err string }{
		{screen.EndFailed, "file not found"},
		{screen.EndFailed, "has no duration"},
		{screen.EndFailed, ""},
		{screen.EndFailed, ""},
		{screen.EndFailed, "want #RRGGBB"},
		{screen.EndCompleted, ""},
	}
	for i, w := range want {
		p := res.Items[i]
		if p.Ended != w.ended || !strings.Contains(p.Error, w.err) || (w.ended == screen.EndFailed && p.Error == "") {
			t.Errorf("item %d: ended %q error %q, want %q with %q", i, p.Ended, p.Error, w.ended, w.err)
		}
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.ended) != 6 {
		t.Errorf("OnItemEnd called for %d items, want 6", len(ev.ended))
	}
	if st := s.State(); st.LastError == "" {
		t.Errorf("state has no last error after failed items")
	}
}

// TestMpvKilledIsRestarted: mpv killed mid-programme fails the programme with the reason,
// is started again, and the next Show plays.
func TestMpvKilledIsRestarted(t *testing.T) {
	dir := t.TempDir()
	v := filepath.Join(dir, "v.mp4")
	colourVideo(t, v, 10, "lime")
	s := openPaced(t, screen.Config{}, nil)
	ev := newEvents(1)
	sh, err := s.Show(context.Background(), ev.program(screen.Item{Path: v}))
	if err != nil {
		t.Fatal(err)
	}
	ev.waitStart(t, 0)
	pid := s.State().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	res := waitDone(t, sh)
	if res.Items[0].Ended != screen.EndFailed || !strings.Contains(res.Items[0].Error, "mpv exited") {
		t.Errorf("proof after mpv was killed: %+v", res.Items[0])
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.State()
		if st.Running && st.PID != pid {
			if st.Restarts != 1 || !strings.Contains(st.LastError, "mpv exited") {
				t.Errorf("state after restart: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mpv not restarted: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	colourVideo(t, v, 0.5, "lime")
	sh, err = s.Show(context.Background(), screen.Program{Items: []screen.Item{{Path: v}}})
	if err != nil {
		t.Fatal(err)
	}
	if res := waitDone(t, sh); res.Items[0].Ended != screen.EndCompleted {
		t.Errorf("after the restart: %+v", res.Items[0])
	}
}
