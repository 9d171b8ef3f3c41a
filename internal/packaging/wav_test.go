package packaging

import (
	"encoding/binary"
	"math"
	"testing"
)

func makeWAV(format, bits, channels, rate int, samples []byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, uint16(format))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(samples)))
	return append(b, samples...)
}

func TestParseWAVFormats(t *testing.T) {
	var pcm []byte
	for _, v := range []int16{0, 16384, -32768} {
		pcm = binary.LittleEndian.AppendUint16(pcm, uint16(v))
	}
	a, err := ParseWAV(makeWAV(1, 16, 1, 8000, pcm))
	if err != nil {
		t.Fatal(err)
	}
	if a.Rate != 8000 || a.Channels != 1 || len(a.Samples) != 3 || a.Samples[1] != 0.5 || a.Samples[2] != -1 {
		t.Fatalf("16-bit: got %+v", a)
	}
	var fl []byte
	for _, v := range []float32{0.25, -0.75} {
		fl = binary.LittleEndian.AppendUint32(fl, math.Float32bits(v))
	}
	a, err = ParseWAV(makeWAV(3, 32, 2, 48000, fl))
	if err != nil {
		t.Fatal(err)
	}
	if a.Channels != 2 || len(a.Samples) != 2 || a.Samples[0] != 0.25 || a.Samples[1] != -0.75 {
		t.Fatalf("float: got %+v", a)
	}
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"not wave":  []byte("RIFF\x00\x00\x00\x00AVI "),
		"24-bit":    makeWAV(1, 24, 1, 8000, []byte{1, 2, 3}),
		"no data":   makeWAV(1, 16, 1, 8000, nil)[:36],
		"0 channel": makeWAV(1, 16, 0, 8000, []byte{1, 2}),
	} {
		if _, err := ParseWAV(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCorrelation(t *testing.T) {
	a := []float64{0, 1, 0, -1, 0, 1}
	if c := Correlation(a, a); math.Abs(c-1) > 1e-12 {
		t.Fatalf("self correlation %v", c)
	}
	neg := make([]float64, len(a))
	for i, v := range a {
		neg[i] = -v
	}
	if c := Correlation(a, neg); math.Abs(c+1) > 1e-12 {
		t.Fatalf("inverted correlation %v", c)
	}
	if c := Correlation(a, make([]float64, len(a))); !math.IsNaN(c) {
		t.Fatalf("correlation with silence %v, want NaN", c)
	}
	if c := Correlation(a, a[:3]); !math.IsNaN(c) {
		t.Fatalf("correlation of unequal lengths %v, want NaN", c)
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(makeWAV(1, 16, 2, 44100, []byte{1, 2, 3, 4}))
	f.Add(makeWAV(3, 32, 1, 48000, []byte{0, 0, 128, 63}))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseWAV(data)
		if err == nil && (a.Channels < 1 || a.Rate < 1) {
			t.Fatalf("accepted %d channels at %d Hz", a.Channels, a.Rate)
		}
	})
}
