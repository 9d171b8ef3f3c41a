package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// pcmFile builds a WAV file by hand.
func pcmFile(tag, ch, rate, bits int, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))
	binary.Write(&b, binary.LittleEndian, uint16(tag))
	binary.Write(&b, binary.LittleEndian, uint16(ch))
	binary.Write(&b, binary.LittleEndian, uint32(rate))
	binary.Write(&b, binary.LittleEndian, uint32(rate*ch*bits/8))
	binary.Write(&b, binary.LittleEndian, uint16(ch*bits/8))
	binary.Write(&b, binary.LittleEndian, uint16(bits))
	b.WriteString("LIST")
	binary.Write(&b, binary.LittleEndian, uint32(3))
	b.WriteString("abc\x00") // odd chunk, padded
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func readAll(t *testing.T, b []byte) []float32 {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), "x.wav")
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	buf := make([]float32, 6)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:2*n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFormats(t *testing.T) {
	cases := []struct {
		name string
		file []byte
		want []float32
	}{
		{"8-bit mono", pcmFile(1, 1, 8000, 8, []byte{128, 255, 0}), []float32{0, 0, 127.0 / 128, 127.0 / 128, -1, -1}},
		{"16-bit stereo", pcmFile(1, 2, 44100, 16, []byte{0, 0x40, 0, 0xC0}), []float32{0.5, -0.5}},
		{"24-bit mono", pcmFile(1, 1, 48000, 24, []byte{0, 0, 0x40, 0, 0, 0x80}), []float32{0.5, 0.5, -1, -1}},
		{"32-bit float, 3 channels keep the first two", pcmFile(3, 3, 48000, 32, f32(0.25, -0.25, 0.9)), []float32{0.25, -0.25}},
		{"64-bit float", pcmFile(3, 2, 16000, 64, f64(0.125, -1)), []float32{0.125, -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := readAll(t, c.file)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if math.Abs(float64(got[i]-c.want[i])) > 1e-6 {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}

func f32(v ...float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func f64(v ...float64) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func TestBadFilesNameWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		file []byte
		want string
	}{
		{nil, "empty"},
		{[]byte("ID3\x03\x00\x00\x00\x00\x00\x00"), "not a WAV"},
		{pcmFile(2, 2, 44100, 4, nil), "0x0002 is not supported"},
		{pcmFile(1, 2, 44100, 12, nil), "12-bit PCM"},
		{pcmFile(1, 0, 44100, 16, nil), "0 channels"},
		{pcmFile(1, 2, 5, 16, nil), "sample rate 5 Hz"},
		{pcmFile(1, 2, 44100, 16, nil)[:40], "no data chunk"},
	} {
		_, err := NewReader(bytes.NewReader(c.file), "bulletin.wav")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bulletin.wav") {
			t.Errorf("error %v, want one naming bulletin.wav and %q", err, c.want)
		}
	}
}

func TestWriterRoundTrip(t *testing.T) {
	var buf seekBuf
	w, err := NewWriter(&buf, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	in := []float32{0.1, -0.2, 0.3, -0.4}
	if err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.b), "rt.wav")
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Format(); f != (Format{Rate: 48000, Channels: 2, Bits: 32, Float: true}) {
		t.Errorf("format %+v", f)
	}
	got := readAll(t, buf.b)
	if len(got) != len(in) || got[3] != in[3] {
		t.Errorf("got %v, want %v", got, in)
	}
	if binary.LittleEndian.Uint32(buf.b[40:]) != 16 {
		t.Errorf("data size in header not fixed on Close")
	}
}

type seekBuf struct {
	b   []byte
	pos int
}

func (s *seekBuf) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuf) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.pos = int(off)
	case io.SeekEnd:
		s.pos = len(s.b) + int(off)
	default:
		return 0, errors.New("unsupported")
	}
	return int64(s.pos), nil
}

// FuzzReader: any input gives a header error or finite samples, never a panic or a hang.
func FuzzReader(f *testing.F) {
	f.Add(pcmFile(1, 2, 44100, 16, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(pcmFile(1, 1, 8000, 8, []byte{1, 2, 3}))
	f.Add(pcmFile(1, 1, 8000, 24, []byte{1, 2, 3, 4, 5}))
	f.Add(pcmFile(3, 2, 48000, 32, f32(1, 2, float32(math.NaN()), float32(math.Inf(1)))))
	f.Add(pcmFile(3, 1, 48000, 64, f64(0.5)))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), "fuzz.wav")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.wav") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		buf := make([]float32, 64)
		total := 0
		for i := 0; i < len(b)+2; i++ {
			n, err := r.Read(buf)
			for _, v := range buf[:2*n] {
				if v != v || math.IsInf(float64(v), 0) {
					t.Fatalf("non-finite sample %v", v)
				}
			}
			total += n
			if err != nil {
				return
			}
		}
		t.Fatalf("reader did not end after %d reads (%d frames from %d bytes)", len(b)+2, total, len(b))
	})
}
