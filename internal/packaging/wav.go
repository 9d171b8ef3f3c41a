package packaging

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Audio is decoded PCM: interleaved samples in [-1, 1].
type Audio struct {
	Rate, Channels int
	Samples        []float64
}

// ParseWAV reads a RIFF/WAVE file of 16-bit integer or 32-bit float PCM, the formats the
// player writes and the tests compare.
func ParseWAV(data []byte) (Audio, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return Audio{}, errors.New("wav: not a RIFF/WAVE file")
	}
	var a Audio
	var format, bits int
	haveFmt := false
	for off := 12; off+8 <= len(data); {
		id := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := data[off+8:]
		if size > len(body) || size < 0 {
			if id != "data" {
				return Audio{}, fmt.Errorf("wav: chunk %q at byte %d claims %d bytes, file has %d", id, off, size, len(body))
			}
			size = len(body) // a streamed file may leave the size unset
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return Audio{}, fmt.Errorf("wav: fmt chunk of %d bytes, want at least 16", size)
			}
			format = int(binary.LittleEndian.Uint16(body[0:2]))
			a.Channels = int(binary.LittleEndian.Uint16(body[2:4]))
			a.Rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
			haveFmt = true
		case "data":
			if !haveFmt {
				return Audio{}, errors.New("wav: data chunk before fmt chunk")
			}
			switch {
			case format == 1 && bits == 16:
				for i := 0; i+2 <= len(body); i += 2 {
					a.Samples = append(a.Samples, float64(int16(binary.LittleEndian.Uint16(body[i:])))/32768)
				}
			case format == 3 && bits == 32:
				for i := 0; i+4 <= len(body); i += 4 {
					a.Samples = append(a.Samples, float64(math.Float32frombits(binary.LittleEndian.Uint32(body[i:]))))
				}
			default:
				return Audio{}, fmt.Errorf("wav: format %d with %d bits is not 16-bit PCM or 32-bit float", format, bits)
			}
			if a.Channels < 1 || a.Rate < 1 {
				return Audio{}, fmt.Errorf("wav: %d channels at %d Hz", a.Channels, a.Rate)
			}
			return a, nil
		}
		off += 8 + size + size%2
	}
	return Audio{}, errors.New("wav: no data chunk")
}

// Correlation is the Pearson correlation of two equally long sample sequences; it is NaN when
// either is constant (silence correlates with nothing).
func Correlation(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return math.NaN()
	}
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return math.NaN()
	}
	return sab / math.Sqrt(saa*sbb)
}

// RMS is the root mean square level of the samples.
func RMS(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, v := range s {
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(s)))
}
