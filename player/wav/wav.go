// Package wav reads RIFF/WAVE files (PCM 8/16/24/32-bit, IEEE float 32/64-bit, plain or
// WAVE_FORMAT_EXTENSIBLE) as float32 stereo, and writes 32-bit float stereo WAV files.
package wav

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

const (
	tagPCM        = 1
	tagFloat      = 3
	tagExtensible = 0xFFFE
	maxRate       = 768000
)

// Format describes the samples of a WAV file.
type Format struct {
	Rate     int
	Channels int
	Bits     int
	Float    bool
}

// Reader yields a WAV file's samples as interleaved float32 stereo: mono is duplicated, and
// of more channels the first two (front left and right) are kept.
type Reader struct {
	name      string
	r         *bufio.Reader
	f         Format
	remaining int64 // bytes of sample data left; -1: up to the end of the input
	frameSize int
	buf       []byte
	truncated bool
}

// NewReader parses the header of a WAV file. name is used in errors.
func NewReader(r io.Reader, name string) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [12]byte
	if n, err := io.ReadFull(br, hdr[:]); err != nil {
		if n == 0 {
			return nil, fmt.Errorf("%s: empty file", name)
		}
		return nil, fmt.Errorf("%s: not a WAV file: only %d bytes", name, n)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a WAV file (no RIFF/WAVE header)", name)
	}
	w := &Reader{name: name, r: br}
	off := int64(12)
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			if !haveFmt {
				return nil, fmt.Errorf("%s: no fmt chunk before the end of the file at byte %d", name, off)
			}
			return nil, fmt.Errorf("%s: no data chunk before the end of the file at byte %d", name, off)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		off += 8
		switch id {
		case "fmt ":
			if size < 16 || size > 1<<16 {
				return nil, fmt.Errorf("%s: fmt chunk at byte %d is %d bytes long, want 16 to 65536", name, off-8, size)
			}
			body := make([]byte, size)
			if _, err := io.ReadFull(br, body); err != nil {
				return nil, fmt.Errorf("%s: fmt chunk at byte %d is cut short", name, off-8)
			}
			if err := w.parseFmt(body, off-8); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%s: data chunk at byte %d comes before any fmt chunk", name, off-8)
			}
			w.remaining = size
			// Writers that stream (sox to a pipe, recorders cut by power loss) leave 0 or
			// 0xFFFFFFFF here: read to the end of the file instead.
			if size == 0 || size == 0xFFFFFFFF {
				w.remaining = -1
			}
			return w, nil
		default:
			if _, err := br.Discard(int(size + size&1)); err != nil {
				return nil, fmt.Errorf("%s: chunk %q at byte %d claims %d bytes, more than the file holds", name, printable(id), off-8, size)
			}
		}
		off += size + size&1
	}
}

func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 32 || c > 126 {
			b[i] = '?'
		}
	}
	return string(b)
}

func (w *Reader) parseFmt(b []byte, off int64) error {
	tag := binary.LittleEndian.Uint16(b[0:2])
	ch := int(binary.LittleEndian.Uint16(b[2:4]))
	rate := int(binary.LittleEndian.Uint32(b[4:8]))
	align := int(binary.LittleEndian.Uint16(b[12:14]))
	bits := int(binary.LittleEndian.Uint16(b[14:16]))
	if tag == tagExtensible {
		if len(b) < 40 {
			return fmt.Errorf("%s: extensible fmt chunk at byte %d is %d bytes, want 40", w.name, off, len(b))
		}
		tag = binary.LittleEndian.Uint16(b[24:26])
	}
	switch {
	case tag != tagPCM && tag != tagFloat:
		return fmt.Errorf("%s: WAV encoding 0x%04x is not supported (PCM or IEEE float only)", w.name, tag)
	case ch < 1 || ch > 32:
		return fmt.Errorf("%s: %d channels in fmt chunk at byte %d", w.name, ch, off)
	case rate < 1000 || rate > maxRate:
		return fmt.Errorf("%s: sample rate %d Hz in fmt chunk at byte %d is out of range", w.name, rate, off)
	case tag == tagPCM && bits != 8 && bits != 16 && bits != 24 && bits != 32:
		return fmt.Errorf("%s: %d-bit PCM is not supported (8, 16, 24 or 32)", w.name, bits)
	case tag == tagFloat && bits != 32 && bits != 64:
		return fmt.Errorf("%s: %d-bit float is not supported (32 or 64)", w.name, bits)
	}
	if want := ch * bits / 8; align != want {
		return fmt.Errorf("%s: block align %d in fmt chunk at byte %d, want %d for %d channels of %d bits", w.name, align, off, want, ch, bits)
	}
	w.f = Format{Rate: rate, Channels: ch, Bits: bits, Float: tag == tagFloat}
	w.frameSize = align
	return nil
}

// Frames is the number of frames the header announces, or -1 when it does not say
// (streamed files read to the end).
func (w *Reader) Frames() int64 {
	if w.remaining < 0 {
		return -1
	}
	return w.remaining / int64(w.frameSize)
}

// Format is the file's sample format.
func (w *Reader) Format() Format { return w.f }

// Truncated tells whether the data ended before the length its header claims (or mid-frame).
func (w *Reader) Truncated() bool { return w.truncated }

// Read fills dst with interleaved stereo frames and returns how many frames it wrote, or
// io.EOF at the end of the data.
func (w *Reader) Read(dst []float32) (int, error) {
	frames := len(dst) / 2
	if frames == 0 {
		return 0, nil
	}
	want := int64(frames * w.frameSize)
	if w.remaining >= 0 && want > w.remaining {
		want = w.remaining - w.remaining%int64(w.frameSize)
	}
	if want == 0 {
		if w.remaining > 0 {
			w.truncated = true
		}
		return 0, io.EOF
	}
	if cap(w.buf) < int(want) {
		w.buf = make([]byte, want)
	}
	buf := w.buf[:want]
	n, err := io.ReadFull(w.r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%s: %w", w.name, err)
	}
	if err != nil && w.remaining >= 0 {
		w.truncated = true
	}
	if n%w.frameSize != 0 && w.remaining >= 0 {
		w.truncated = true
	}
	got := n / w.frameSize
	if w.remaining >= 0 {
		w.remaining -= int64(n)
		if err != nil {
			w.remaining = 0
		}
	}
	w.decode(dst[:got*2], buf[:got*w.frameSize])
	if got == 0 {
		w.remaining = 0
		return 0, io.EOF
	}
	return got, nil
}

func (w *Reader) decode(dst []float32, src []byte) {
	ch, bps := w.f.Channels, w.f.Bits/8
	sample := func(b []byte) float32 {
		switch {
		case w.f.Float && bps == 4:
			return math.Float32frombits(binary.LittleEndian.Uint32(b))
		case w.f.Float:
			return float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		case bps == 1:
			return float32(int(b[0])-128) / 128
		case bps == 2:
			return float32(int16(binary.LittleEndian.Uint16(b))) / 32768
		case bps == 3:
			return float32(int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24)>>8) / 8388608
		default:
			return float32(int32(binary.LittleEndian.Uint32(b))) / 2147483648
		}
	}
	for i := 0; i < len(dst)/2; i++ {
		fr := src[i*w.frameSize:]
		l := sample(fr)
		r := l
		if ch > 1 {
			r = sample(fr[bps:])
		}
		dst[2*i], dst[2*i+1] = clean(l), clean(r)
	}
}

// clean keeps NaN and infinities of a damaged float file away from the output.
func clean(v float32) float32 {
	if v != v || v > 1e6 || v < -1e6 {
		return 0
	}
	return v
}

// Writer writes interleaved float32 audio as a WAV file (IEEE float, WAVE_FORMAT_EXTENSIBLE
// is not needed for 2 channels). The sizes in the header are fixed on Close if the file can
// seek; otherwise (a pipe, /dev/null) they say "unknown" (0xFFFFFFFF), which readers accept.
type Writer struct {
	w        io.Writer
	bw       *bufio.Writer
	rate     int
	channels int
	bytes    int64
	buf      []byte
}

// NewWriter writes the header at once.
func NewWriter(w io.Writer, rate, channels int) (*Writer, error) {
	wr := &Writer{w: w, bw: bufio.NewWriterSize(w, 64<<10), rate: rate, channels: channels}
	h := header(rate, channels, 0xFFFFFFFF)
	if _, err := wr.bw.Write(h); err != nil {
		return nil, err
	}
	return wr, nil
}

func header(rate, channels int, dataBytes uint32) []byte {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	riff := dataBytes
	if dataBytes != 0xFFFFFFFF {
		riff = dataBytes + 36
	}
	binary.LittleEndian.PutUint32(h[4:], riff)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], tagFloat)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*4))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*4))
	binary.LittleEndian.PutUint16(h[34:], 32)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

// Write appends interleaved samples.
func (w *Writer) Write(samples []float32) error {
	if cap(w.buf) < 4*len(samples) {
		w.buf = make([]byte, 4*len(samples))
	}
	b := w.buf[:4*len(samples)]
	for i, v := range samples {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	_, err := w.bw.Write(b)
	w.bytes += int64(len(b))
	return err
}

// Close flushes and, when possible, writes the final sizes into the header. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if err := w.bw.Flush(); err != nil {
		return err
	}
	ws, ok := w.w.(io.WriteSeeker)
	if !ok || w.bytes > math.MaxUint32-36 {
		return nil
	}
	if _, err := ws.Seek(0, io.SeekStart); err != nil {
		return nil // not seekable after all (a character device): the header says "unknown"
	}
	if _, err := ws.Write(header(w.rate, w.channels, uint32(w.bytes))); err != nil {
		return err
	}
	_, err := ws.Seek(0, io.SeekEnd)
	return err
}
