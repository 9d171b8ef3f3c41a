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
