package amplifier

import (
	"fmt"
	"sync"

	"go.bug.st/serial"

	"github.com/loa-project/loa/device/serialio"
)

// LCUS drives an LCUS-type USB relay board (CH340 serial, 9600 8N1). The board takes four-byte
// commands A0 <channel> <state> <checksum> and sends nothing back, so a write that the port
// accepted is the only confirmation there is.
type LCUS struct {
	path    string
	channel int

	mu   sync.Mutex
	port serial.Port // nil until opened, and after a failure (reopened on the next Set)
}

// NewLCUS returns the driver for channel (1-based) of the board at path. Nothing is opened yet.
func NewLCUS(path string, channel int) *LCUS { return &LCUS{path: path, channel: channel} }

// lcusFrame is the command switching channel on or off: A0, channel, state, and the sum of
// those three bytes mod 256.
func lcusFrame(channel int, on bool) []byte {
	var st byte
	if on {
		st = 1
	}
	ch := byte(channel)
	return []byte{0xA0, ch, st, 0xA0 + ch + st}
}

// Set implements Relay. It opens the port if needed; after a failed write the port is closed,
// so the next Set reopens it (that is how a replugged board is picked up).
func (r *LCUS) Set(on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == nil {
		p, err := serial.Open(r.path, &serial.Mode{
			BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit,
		})
		if err != nil {
			return fmt.Errorf("LCUS relay %s: open: %w (is the USB relay board plugged in?)", r.path, err)
		}
		r.port = p
	}
	frame := lcusFrame(r.channel, on)
	err := serialio.WriteAll(r.port, frame)
	if err == nil {
		// The board acts on the whole frame only; make sure it has left the UART.
		err = serialio.Drain(r.port)
	}
	if err != nil {
		_ = r.port.Close()
		r.port = nil
		return fmt.Errorf("LCUS relay %s channel %d: write % X: %w (board unplugged?)", r.path, r.channel, frame, err)
	}
	return nil
}

// Close implements Relay.
func (r *LCUS) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == nil {
		return nil
	}
	err := r.port.Close()
	r.port = nil
	return err
}
