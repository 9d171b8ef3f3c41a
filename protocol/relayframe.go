package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// A live relay through the hub (docs/protocol.md "Stamped relay"): the hub reads the upstream
// stream once and serves it to the agents as a sequence of frames, each one MPEG audio frame
// as it came from the upstream, with the hub's wall time at which its first sample is to be
// heard, less the delay every agent adds alike. The hub forwards compressed frames rather
// than decoded samples: a 3G link carries 32–64 kbit/s, not 1.5 Mbit/s of PCM, and the hub
// needs no audio decoder.

// RelayFrameHeaderLen is the length of a frame's header; its payload follows.
const RelayFrameHeaderLen = 24

// MaxRelayPayload bounds a frame's payload: the longest MPEG audio frame (layer II at
// 384 kbit/s and 8 kHz, or layer III free format) is under 8 KiB.
const MaxRelayPayload = 8 << 10

// relayMagic opens every frame, so that a reader joining a byte stream mid-way, or fed junk,
// fails at once rather than decoding lengths from audio.
var relayMagic = [3]byte{'L', 'R', 'F'}

const relayVersion = 1

// RelayGap flags a frame that does not follow the one before it on the time line (the
// upstream dropped and came back, or the hub started its feed again): the player bridges the
// gap rather than taking its stamp for a glitch.
const RelayGap = 1

// RelayFrame is one stamped frame of a relay.
type RelayFrame struct {
	// Stamp is the hub's wall time (UTC) at which the frame's first sample is to be heard,
	// minus the relay delay (agent config relay.delay).
	Stamp time.Time
	// Rate and Channels describe the decoded audio; Samples is how many samples per channel
	// the frame decodes to. Together they give the frame's length.
	Rate     int
	Channels int
	Samples  int
	Flags    byte
	// Payload is one MPEG audio frame (layer I, II or III), header included.
	Payload []byte
}

// Duration is how long the frame sounds.
func (f RelayFrame) Duration() time.Duration {
	if f.Rate <= 0 {
		return 0
	}
	return time.Duration(f.Samples) * time.Second / time.Duration(f.Rate)
}

// check says what is wrong with a frame, naming the field.
func (f RelayFrame) check() error {
	switch {
	case f.Rate < 8000 || f.Rate > 48000:
		return fmt.Errorf("relay frame: sample rate %d is not an MPEG audio rate (8000–48000)", f.Rate)
	case f.Channels != 1 && f.Channels != 2:
		return fmt.Errorf("relay frame: %d channels (1 or 2)", f.Channels)
	case f.Samples <= 0 || f.Samples > 1152:
		return fmt.Errorf("relay frame: %d samples per channel (an MPEG frame has 1 to 1152)", f.Samples)
	case len(f.Payload) == 0 || len(f.Payload) > MaxRelayPayload:
		return fmt.Errorf("relay frame: payload of %d bytes (1 to %d)", len(f.Payload), MaxRelayPayload)
	case f.Flags&^RelayGap != 0:
		return fmt.Errorf("relay frame: unknown flags %#x", f.Flags)
	}
	return nil
}

// AppendRelayFrame appends the frame's wire form to b:
//
//	0  3  "LRF"
//	3  1  version (1)
//	4  1  flags (bit 0: gap before this frame)
//	5  1  channels
//	6  2  samples per channel, big-endian
//	8  4  sample rate, big-endian
//	12 8  stamp, nanoseconds since 1970 UTC, big-endian signed
//	20 4  payload length, big-endian
//	24 …  payload
func AppendRelayFrame(b []byte, f RelayFrame) ([]byte, error) {
	if err := f.check(); err != nil {
		return b, err
	}
	b = append(b, relayMagic[:]...)
	b = append(b, relayVersion, f.Flags, byte(f.Channels))
	b = binary.BigEndian.AppendUint16(b, uint16(f.Samples))
	b = binary.BigEndian.AppendUint32(b, uint32(f.Rate))
	b = binary.BigEndian.AppendUint64(b, uint64(f.Stamp.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Payload)))
	return append(b, f.Payload...), nil
}

// ErrRelayFrame marks a stream that is not made of relay frames.
var ErrRelayFrame = errors.New("not a relay frame")

// ReadRelayFrame reads one frame from r, its payload into buf's storage when it fits. It
// returns io.EOF only at a clean end between frames; a frame cut short is
// io.ErrUnexpectedEOF, and a malformed one an error wrapping ErrRelayFrame that says which
// field is wrong.
func ReadRelayFrame(r io.Reader, buf []byte) (RelayFrame, error) {
	var h [RelayFrameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return RelayFrame{}, err
	}
	if [3]byte(h[0:3]) != relayMagic {
		return RelayFrame{}, fmt.Errorf("%w: starts with %q, not \"LRF\"", ErrRelayFrame, h[0:3])
	}
	if h[3] != relayVersion {
		return RelayFrame{}, fmt.Errorf("%w: version %d (this agent reads %d)", ErrRelayFrame, h[3], relayVersion)
	}
	n := binary.BigEndian.Uint32(h[20:24])
	if n == 0 || n > MaxRelayPayload {
		return RelayFrame{}, fmt.Errorf("%w: payload of %d bytes (1 to %d)", ErrRelayFrame, n, MaxRelayPayload)
	}
	f := RelayFrame{
		Flags:    h[4],
		Channels: int(h[5]),
		Samples:  int(binary.BigEndian.Uint16(h[6:8])),
		Rate:     int(binary.BigEndian.Uint32(h[8:12])),
		Stamp:    time.Unix(0, int64(binary.BigEndian.Uint64(h[12:20]))).UTC(),
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	f.Payload = buf[:n]
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return RelayFrame{}, err
	}
	if err := f.check(); err != nil {
		return RelayFrame{}, fmt.Errorf("%w: %v", ErrRelayFrame, err)
	}
	return f, nil
}
