// Package serialio writes whole frames to serial ports. go.bug.st/serial (v1.8) passes EINTR
// up from its Write and Drain when a signal lands mid-call — and the Go runtime sends signals
// (SIGURG, for preemption) — and a write may be short. A relay or sign driver that took either
// for an unplugged device would report an outage and reopen the port for nothing.
package serialio

import (
	"errors"
	"io"
	"syscall"
)

// Writer is what WriteAll needs of a port.
type Writer interface {
	Write(p []byte) (int, error)
}

// Drainer is what Drain needs of a port.
type Drainer interface {
	Drain() error
}

// WriteAll writes all of b, going on after a short write or an interrupted call.
func WriteAll(w Writer, b []byte) error {
	for len(b) > 0 {
		n, err := w.Write(b)
		b = b[max(n, 0):]
		switch {
		case errors.Is(err, syscall.EINTR):
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
	}
	return nil
}

// Drain waits until what was written has left the UART, again after an interrupted call.
func Drain(d Drainer) error {
	for {
		if err := d.Drain(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
