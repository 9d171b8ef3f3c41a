package livefeed

import "bytes"

// MPEG audio frame headers (ISO 11172-3, 13818-3, and the unofficial MPEG 2.5): enough to cut
// an upstream byte stream into frames and say how long each sounds, without decoding it.

type mpegHeader struct {
	rate, channels, samples, length int
	version, layer                  int // for the check that the next frame continues the stream
}

var (
	mpegRates = [4][3]int{ // [version][index]; version 1 is reserved
		{11025, 12000, 8000},  // MPEG 2.5
		{},                    // reserved
		{22050, 24000, 16000}, // MPEG 2
		{44100, 48000, 32000}, // MPEG 1
	}
	// kbit/s by [mpeg1?][layer 1..3][index]
	mpegBitrates = [2][4][16]int{
		{ // MPEG 2 and 2.5
			{},
			{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
			{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
			{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
		},
		{ // MPEG 1
			{},
			{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
			{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
			{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
		},
	}
)

// parseMPEGHeader reads the 4-byte header at b; false for anything that is not a usable one
// (free-format bit rates included: their length cannot be known from the header).
func parseMPEGHeader(b []byte) (mpegHeader, bool) {
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 {
		return mpegHeader{}, false
	}
	version := int(b[1]>>3) & 3
	layer := 4 - int(b[1]>>1)&3 // 1, 2, 3; 4 is reserved
	bri := int(b[2] >> 4)
	sri := int(b[2]>>2) & 3
	if version == 1 || layer == 4 || bri == 0 || bri == 15 || sri == 3 {
		return mpegHeader{}, false
	}
	pad := int(b[2]>>1) & 1
	rate := mpegRates[version][sri]
	v1 := 0
	if version == 3 {
		v1 = 1
	}
	br := mpegBitrates[v1][layer][bri] * 1000
	h := mpegHeader{rate: rate, channels: 2, version: version, layer: layer}
	if b[3]>>6 == 3 {
		h.channels = 1
	}
	switch {
	case layer == 1:
		h.samples, h.length = 384, (12*br/rate+pad)*4
	case layer == 3 && version != 3:
		h.samples, h.length = 576, 72*br/rate+pad
	default:
		h.samples, h.length = 1152, 144*br/rate+pad
	}
	return h, true
}

// frameScanner cuts a byte stream into MPEG audio frames. A frame is taken only when the
// bytes right after it begin a header of the same stream (or the next frame is still to
// come): a false sync inside junk or an ID3 tag rarely passes that twice.
type frameScanner struct {
	buf     []byte
	skipped int64 // bytes thrown away as not audio
}

// maxScanBuffer bounds what is held while looking for a frame.
const maxScanBuffer = 64 << 10

// add takes more bytes.
func (s *frameScanner) add(p []byte) { s.buf = append(s.buf, p...) }

// next returns the next whole frame (a copy) and its header, or false when more bytes are
// needed.
func (s *frameScanner) next() ([]byte, mpegHeader, bool) {
	for {
		i := 0
		for i+1 < len(s.buf) && (s.buf[i] != 0xff || s.buf[i+1]&0xe0 != 0xe0) {
			i++
		}
		s.drop(i)
		if len(s.buf) < 4 {
			s.bound()
			return nil, mpegHeader{}, false
		}
		h, ok := parseMPEGHeader(s.buf)
		if !ok {
			s.drop(1)
			continue
		}
		if len(s.buf) < h.length+4 {
			s.bound()
			return nil, mpegHeader{}, false
		}
		n, ok := parseMPEGHeader(s.buf[h.length:])
		if !ok || n.version != h.version || n.layer != h.layer || n.rate != h.rate {
			s.drop(1)
			continue
		}
		f := append([]byte(nil), s.buf[:h.length]...)
		s.buf = s.buf[h.length:]
		return f, h, true
	}
}

// infoFrame says a layer III frame is an encoder's Xing/Info/VBRI header, not sound: a decoder
// outputs nothing for it, and trims the encoder delay it states from what follows, so an agent
// joining after it would count samples differently from one that saw it. It is left out.
func infoFrame(f []byte, h mpegHeader) bool {
	if h.layer != 3 {
		return false
	}
	head := f[4:min(len(f), 48)]
	for _, tag := range []string{"Xing", "Info", "VBRI"} {
		if bytes.Contains(head, []byte(tag)) {
			return true
		}
	}
	return false
}

func (s *frameScanner) drop(n int) {
	s.skipped += int64(n)
	s.buf = s.buf[n:]
}

// bound drops the oldest bytes of a buffer that grew past maxScanBuffer without a frame.
func (s *frameScanner) bound() {
	if len(s.buf) > maxScanBuffer {
		s.drop(len(s.buf) - maxScanBuffer/2)
	}
	if cap(s.buf) > 2*maxScanBuffer && len(s.buf) < maxScanBuffer/4 {
		s.buf = append([]byte(nil), s.buf...)
	}
}

// reset forgets a partial frame (the connection it came from is gone).
func (s *frameScanner) reset() { s.buf = s.buf[:0] }
