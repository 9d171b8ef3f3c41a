package player_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-project/loa/player"
)

// TestDeadAirGoesOnWithTheNextItem: an item whose source stays silent past DeadAir.After ends
// as dead air (its proof says so and for how long), the program goes on with its next item,
// and OnDeadAir reports the dead air, then sound coming back. A quiet passage shorter than
// After, and a programme turned down to silence by its gain, are not dead air.
func TestDeadAirGoesOnWithTheNextItem(t *testing.T) {
	dir := t.TempDir()
	loud, pause, silent, quiet := filepath.Join(dir, "loud.wav"), filepath.Join(dir, "pause.wav"), filepath.Join(dir, "silent.wav"), filepath.Join(dir, "quiet.wav")
	writeWAV(t, loud, tone(1000, 0.4, 0, rate/2), rate)
	// 0.3 s of tone, 0.4 s of silence (shorter than After), 0.3 s of tone.
	writeWAV(t, pause, append(append(tone(700, 0.4, 0, rate*3/10), make([]float32, 2*rate*4/10)...), tone(700, 0.4, 0, rate*3/10)...), rate)
	writeWAV(t, silent, make([]float32, 2*rate*3), rate) // 3 s of nothing
	writeWAV(t, quiet, tone(500, 0.001, 0, rate), rate)  // -60 dBFS: below -50
	o := &memOutput{}
	p, err := player.New(player.Config{Output: o, DeadAir: player.DeadAir{After: 600 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	pb, err := p.Play(context.Background(), player.Program{
		Items: []player.Item{{Path: loud}, {Path: pause}, {Path: silent}, {Path: quiet}, {Path: loud}}, Gain: 1,
		OnDeadAir: func(i int, on bool) { events = append(events, fmt.Sprintf("%d:%v", i, on)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	want := []string{player.EndCompleted, player.EndCompleted, player.EndDeadAir, player.EndDeadAir, player.EndCompleted}
	for i, w := range want {
		if got := res.Items[i].Ended; got != w {
			t.Errorf("item %d ended %s, want %s (%s)", i, got, w, fmtProof(res.Items[i]))
		}
	}
	for _, i := range []int{2, 3} {
		pr := res.Items[i]
		if d := time.Duration(pr.PlayedS * float64(time.Second)); d < 550*time.Millisecond || d > 700*time.Millisecond {
			t.Errorf("item %d played %s before it was found dead, want about 600 ms", i, d)
		}
		if !strings.Contains(pr.Error, "dead air") {
			t.Errorf("item %d: error %q does not say dead air", i, pr.Error)
		}
	}
	if fmt.Sprint(events) != "[2:true 3:true 4:false]" {
		t.Errorf("OnDeadAir calls %v, want [2:true 3:true 4:false]", events)
	}
	if res.Ended != player.EndCompleted {
		t.Errorf("program ended %s", res.Ended)
	}

	// Turned down to nothing by staff: what the source gives is sound, so not dead air.
	o2 := &memOutput{}
	p2, _ := player.New(player.Config{Output: o2, DeadAir: player.DeadAir{After: 200 * time.Millisecond}})
	pb2, err := p2.Play(context.Background(), player.Program{Items: []player.Item{{Path: loud}}, Gain: 0})
	if err != nil {
		t.Fatal(err)
	}
	if r := pb2.Wait(); r.Items[0].Ended != player.EndCompleted {
		t.Errorf("a loud item at gain 0 ended %s, want completed", r.Items[0].Ended)
	}
	// Off by default.
	o3 := &memOutput{}
	pb3, err := newPlayer(t, o3, nil).Play(context.Background(), player.Program{Items: []player.Item{{Path: silent}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := pb3.Wait(); r.Items[0].Ended != player.EndCompleted {
		t.Errorf("without DeadAir a silent item ended %s, want completed", r.Items[0].Ended)
	}
}

// TestDeadAirPlaysTheFallback: a file found dead is replaced by its fallback (a station
// identification), then the program goes on; a relay whose station goes silent plays the
// fallback, goes back to its station, and when the station sounds again the dead air is
// reported over, while the fallback's own sound never counts as the station's.
func TestDeadAirPlaysTheFallback(t *testing.T) {
	dir := t.TempDir()
	ident, silent, loud := filepath.Join(dir, "ident.wav"), filepath.Join(dir, "silent.wav"), filepath.Join(dir, "loud.wav")
	writeWAV(t, ident, tone(300, 0.5, 0, rate/2), rate) // 0.5 s
	writeWAV(t, silent, make([]float32, 2*rate*3), rate)
	writeWAV(t, loud, tone(1000, 0.4, 0, rate/2), rate)

	o := &memOutput{}
	p, err := player.New(player.Config{Output: o, DeadAir: player.DeadAir{After: 600 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	pb, err := p.Play(context.Background(), player.Program{
		Items: []player.Item{{Path: silent, Fallback: &player.Item{Path: ident}}, {Path: loud}}, Gain: 1,
		OnDeadAir: func(i int, on bool) { events = append(events, fmt.Sprintf("%d:%v", i, on)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	pr := res.Items[0]
	if pr.Ended != player.EndDeadAir || !strings.Contains(pr.Error, "dead air") || !strings.Contains(pr.Error, "fallback "+ident) {
		t.Errorf("silent file with a fallback: %s; want dead_air naming its fallback", fmtProof(pr))
	}
	if d := time.Duration(pr.PlayedS * float64(time.Second)); d < 1050*time.Millisecond || d > 1200*time.Millisecond {
		t.Errorf("the silent item's slot played %s, want its 0.6 s found dead + the 0.5 s fallback", d)
	}
	if res.Items[1].Ended != player.EndCompleted {
		t.Errorf("the next item ended %s", res.Items[1].Ended)
	}
	if fmt.Sprint(events) != "[0:true 1:false]" {
		t.Errorf("OnDeadAir calls %v, want [0:true 1:false]: the fallback's sound is not the item's", events)
	}
	// The fallback is what was heard after the dead 0.6 s (its fade-in aside).
	got := left(o.get())
	at := rate * 6 / 10
	if c, lag := alignedCorrelation(left(tone(300, 0.5, 0, rate/2)), got[at:at+rate/2], rate/20); c < 0.9 {
		t.Errorf("after the dead 0.6 s the output does not hold the fallback's tone (correlation %.3f at lag %d)", c, lag)
	}

	// A relay: silence from the station, the fallback, the station again with sound.
	silentMP3, toneMP3 := filepath.Join(dir, "silent.mp3"), filepath.Join(dir, "tone.mp3")
	run(t, "sox", "-n", "-r", "44100", "-c", "2", "-b", "16", filepath.Join(dir, "s.wav"), "trim", "0", "3")
	run(t, "lame", "--quiet", "-b", "64", filepath.Join(dir, "s.wav"), silentMP3)
	run(t, "sox", "-n", "-r", "44100", "-c", "2", "-b", "16", filepath.Join(dir, "t.wav"), "synth", "1.5", "sine", "440", "vol", "0.5")
	run(t, "lame", "--quiet", "-b", "64", filepath.Join(dir, "t.wav"), toneMP3)
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		audio := silentMP3
		if conns.Add(1) > 1 {
			audio = toneMP3
		}
		b, _ := os.ReadFile(audio)
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Write(b)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a live station stays open
	}))
	defer srv.Close()
	o2 := &memOutput{}
	p2, err := player.New(player.Config{Output: o2, DeadAir: player.DeadAir{After: 600 * time.Millisecond},
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	events = nil
	pb2, err := p2.Play(context.Background(), player.Program{
		Items: []player.Item{{URL: srv.URL + "/live.mp3", Duration: 4 * time.Second, Fallback: &player.Item{Path: ident}}}, Gain: 1,
		OnDeadAir: func(i int, on bool) { events = append(events, fmt.Sprintf("%d:%v", i, on)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	res2 := pb2.Wait()
	pr2 := res2.Items[0]
	t.Logf("relay proof %s", fmtProof(pr2))
	if pr2.Ended != player.EndCompleted {
		t.Errorf("a relay whose station came back after its fallback ended %s, want completed", pr2.Ended)
	}
	if fmt.Sprint(events) != "[0:true 0:false]" {
		t.Errorf("OnDeadAir calls %v, want [0:true 0:false]", events)
	}
	if c := conns.Load(); c != 2 {
		t.Errorf("%d connections to the station, want 2 (the first, then back after the fallback)", c)
	}
	if secs := pr2.PlayedS; secs < 0.6+0.5+1.3 {
		t.Errorf("relay played %.2f s, want the dead 0.6 s, the 0.5 s fallback and the station's 1.5 s tone", secs)
	}
}
