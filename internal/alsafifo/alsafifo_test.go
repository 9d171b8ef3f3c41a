package alsafifo

import (
	"context"
	"os"
	"testing"
	"time"
)

// A card opened after a writer was killed with samples still in the FIFO does not play them,
// and stays for the next writer: the restarted agent's samples are read, and it never blocks
// writing. (The old card read the leftover, saw no writer and ended; the next agent's ALSA
// write then blocked for good.)
func TestCardOutlivesAKilledWriter(t *testing.T) {
	_, fifo, err := Setup(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, oldDone, err := Drain(ctx, fifo, 48000, false, "")
	if err != nil {
		t.Fatal(err)
	}
	killed, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	killed.Write(make([]byte, 60000)) // read by the old card, at the pace of real time
	killed.Write(make([]byte, 60000)) // left behind
	killed.Close()
	// The harness starts the new card as the old one goes: while the old one still holds
	// the FIFO, what is left in it stays for the new one.
	cancel()
	c, done, err := Drain(context.Background(), fifo, 48000, true, "")
	if err != nil {
		t.Fatal(err)
	}
	<-oldDone
	time.Sleep(100 * time.Millisecond) // the agent restarting
	select {
	case err := <-done:
		t.Fatalf("the card ended before the next writer came: %v", err)
	default:
	}
	next, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks while no card reads: the test's timeout says so
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	frame := make([]byte, 8)                                // one stereo float32 frame of a known value
	copy(frame, []byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x3f}) // 1.0, 1.0
	for range 480 {
		if _, err := next.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := c.Samples()
		if len(s) >= 960 {
			for i, v := range s {
				if v != 1 {
					t.Fatalf("sample %d is %v: the killed writer's leftover was played", i, v)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the card read %d samples of the next writer's 960", len(s))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A stamping card says when each of its frames came out: every frame written is covered by a
// block's stamp, in order, and a frame not yet drained has no time.
func TestCardStampsWhatItDrains(t *testing.T) {
	if _, _, err := Open(context.Background(), "unused", Options{Rate: 0}); err == nil {
		t.Error("a card with no rate was opened")
	}
	_, fifo, err := Setup(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, done, err := Open(ctx, fifo, Options{Rate: 48000, SkewPPM: 2000, Stamp: true})
	if err != nil {
		t.Fatal(err)
	}
	// What a writer there before the card sends is a killed writer's leftover, thrown away:
	// come after the card, as an agent does, and write until it has played enough.
	time.Sleep(100 * time.Millisecond)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const frames = 4800
	for deadline := time.Now().Add(10 * time.Second); c.Frames() < frames; {
		if _, err := w.Write(make([]byte, 480*8)); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the card drained %d frames of %d", c.Frames(), frames)
		}
	}
	w.Close()
	time.Sleep(200 * time.Millisecond) // the FIFO's rest drains
	all := c.Frames()
	st := c.Stamps()
	if len(st) == 0 || st[0].Frame != 0 {
		t.Fatalf("stamps %v: want the first block at frame 0", st)
	}
	for i := 1; i < len(st); i++ {
		if st[i].Frame <= st[i-1].Frame || st[i].At.Before(st[i-1].At) {
			t.Fatalf("stamps %d and %d out of order: %v, %v", i-1, i, st[i-1], st[i])
		}
	}
	if at, ok := c.When(0, 48000); !ok || !at.Equal(st[0].At) {
		t.Errorf("When(0) = %v, %v; want the first stamp %v", at, ok, st[0].At)
	}
	last := st[len(st)-1]
	if at, ok := c.When(all-1, 48000); !ok || at.Before(last.At) {
		t.Errorf("When(last frame) = %v, %v; want at or after its block's stamp %v", at, ok, last.At)
	}
	if _, ok := c.When(all, 48000); ok {
		t.Error("a frame never written has a time")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
