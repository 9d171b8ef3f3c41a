package player_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
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
