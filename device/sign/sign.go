// Package sign drives text LED signs (the "board" output): show a text
// bulletin, blank the sign, set its clock. The agent consumes the Sign
// interface; Alpha is the driver for the Alpha Sign Communications Protocol.
//
// Adding another sign protocol: write a type in this package (or its own
// package) that implements Sign, builds its frames with pure functions that
// are tested byte for byte against the protocol document, passes the text
// through Sanitize (or its own charset mapping) so a frame can never be
// broken by a control byte, and reports failures through State instead of
// blocking the caller. docs/signs.md walks through it.
package sign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Sign is a text sign on some line (serial, network…). Every method returns
// within the context's deadline (drivers apply a default when there is none);
// a sign that is away is reported in State and retried in the background.
type Sign interface {
	// Show replaces what the sign displays with t.
	Show(ctx context.Context, t Text) error
	// Clear blanks the display.
	Clear(ctx context.Context) error
	// SetClock sets the sign's own clock (date, weekday, time of day).
	SetClock(ctx context.Context, now time.Time) error
	// State reports whether the sign is reachable and the last failure.
	State() State
	// Close releases the line; the Sign is unusable afterwards.
	Close() error
}

// Text is one bulletin for a sign.
type Text struct {
	Message  string   // UTF-8; transliterated/sanitised for the sign's charset
	Position Position // where on the sign; "" means the driver's default (fill)
	Mode     Mode     // how it moves; "" means the driver's default (automode)
}

// Position names where the text goes on multi-line signs.
type Position string

// Positions every driver should understand (unknown ones are an error).
const (
	Middle Position = "middle"
	Top    Position = "top"
	Bottom Position = "bottom"
	Fill   Position = "fill"
	Left   Position = "left"
	Right  Position = "right"
)

// Mode names how the text is animated.
type Mode string

// Modes every driver should understand (unknown ones are an error).
const (
	Auto    Mode = "auto"
	Hold    Mode = "hold"
	Rotate  Mode = "rotate"  // runs right to left (the classic ticker)
	Scroll  Mode = "scroll"  // pushes lines up
	Flash   Mode = "flash"   // hold, blinking
	RollUp  Mode = "roll_up" // new text rolls in from below
	WipeIn  Mode = "wipe_in"
	Compact Mode = "compressed_rotate"
)

// State is what status reports for a sign.
type State struct {
	Port        string    // device path, e.g. /dev/ttyUSB0
	Connected   bool      // the port is open (and, if verified, the sign answered)
	LastError   string    // the most recent failure, "" if none since start
	LastErrorAt time.Time // when it happened (injected clock)
	DownSince   time.Time // start of the current outage; zero when connected
	Failures    int       // failures since start (writes, opens, missed replies)
}

// Clock is the time source (injected; tests use a fixed one).
type Clock interface{ Now() time.Time }

// ErrUnavailable wraps every error returned while the sign is away; the
// request has been remembered and is re-sent when the sign comes back.
var ErrUnavailable = errors.New("sign unavailable")

// Config selects a sign protocol and its settings. The agent maps its own
// configuration onto it; a new protocol adds a field and a case in Open.
type Config struct {
	Protocol string // "alpha" (the default)
	Alpha    AlphaConfig
}

// Open starts the driver for cfg.Protocol. A sign that is not plugged in yet
// is not an error here: it shows in State and is retried.
func Open(cfg Config, clk Clock, log *slog.Logger) (Sign, error) {
	switch cfg.Protocol {
	case "alpha", "":
		return OpenAlpha(cfg.Alpha, clk, log)
	}
	return nil, fmt.Errorf("sign: unknown protocol %q (known: alpha)", cfg.Protocol)
}
