package amplifier

import (
	"context"
	"log/slog"
	"runtime"
	"testing"

	"go.bug.st/serial"

	"github.com/loa-project/loa/internal/testkit"
)

// What a play pays when the amplifier is already on (the emergency-preempts-a-program path).
func BenchmarkAcquireReleaseWarm(b *testing.B) {
	clk := newFakeClock()
	a := New(testConfig(), NoRelay{}, clk, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	go a.Acquire(ctx) //nolint:errcheck // the holder that keeps it on
	for a.State().Users == 0 {
		runtime.Gosched()
	}
	clk.Advance(testConfig().WarmUp)
	for a.State().Phase != PhaseOn {
		runtime.Gosched()
	}
	b.ResetTimer()
	for b.Loop() {
		if err := a.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		a.Release()
	}
}

// One LCUS switch (write + drain) over a socat pty, and a bare 4-byte write on the same kind
// of port as the reference.
func BenchmarkLCUSSetPty(b *testing.B) {
	b.Run("lcus-set", func(b *testing.B) {
		p := benchPty(b)
		r := NewLCUS(p.Driver, 1)
		defer r.Close()
		drain := drainBoard(p)
		defer drain()
		on := false
		for b.Loop() {
			on = !on
			if err := r.Set(on); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference-raw-write", func(b *testing.B) {
		p := benchPty(b)
		port, err := serial.Open(p.Driver, &serial.Mode{BaudRate: 9600})
		if err != nil {
			b.Fatal(err)
		}
		defer port.Close()
		drain := drainBoard(p)
		defer drain()
		for b.Loop() {
			if _, err := port.Write(lcusOn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchPty(b *testing.B) *ptyPair {
	testkit.NeedSocat(b)
	return newPtyPair(b)
}

// drainBoard reads and discards what the board side receives until stopped.
func drainBoard(p *ptyPair) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for {
			if _, err := p.board.Read(buf); err != nil {
				return
			}
		}
	}()
	return func() {
		p.unplug()
		<-done
	}
}
