package player_test

import (
	"math"
	"math/cmplx"
	"path/filepath"
	"testing"
)

// fft is an in-place radix-2 transform (len(x) a power of two).
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := 0; k < size/2; k++ {
				a, b := x[start+k], x[start+k+size/2]*wk
				x[start+k], x[start+k+size/2] = a+b, a-b
				wk *= w
			}
		}
	}
}

// spectrumDB is the Blackman-Harris windowed magnitude spectrum in dB of n samples.
func spectrumDB(s []float64) []float64 {
	n := len(s)
	x := make([]complex128, n)
	for i, v := range s {
		t := 2 * math.Pi * float64(i) / float64(n-1)
		w := 0.35875 - 0.48829*math.Cos(t) + 0.14128*math.Cos(2*t) - 0.01168*math.Cos(3*t)
		x[i] = complex(v*w, 0)
	}
	fft(x)
	out := make([]float64, n/2)
	for i := range out {
		out[i] = 20 * math.Log10(cmplx.Abs(x[i])+1e-300)
	}
	return out
}

// TestResampleNoAliasing: a 1 kHz tone at 22.05 kHz, resampled to 48 kHz, shows no
// spurious component within 60 dB of the tone.
func TestResampleNoAliasing(t *testing.T) {
	const in = 22050
	n := in * 2
	s := make([]float32, 2*n)
	for i := 0; i < n; i++ {
		v := float32(0.5 * math.Sin(2*math.Pi*1000*float64(i)/in))
		s[2*i], s[2*i+1] = v, v
	}
	p := filepath.Join(t.TempDir(), "tone22k.wav")
	writeWAV(t, p, s, in)
	proof, got := playFile(t, p)
	if want := int64(2 * rate); proof.Frames < want-2 || proof.Frames > want+2 {
		t.Fatalf("2 s at 22.05 kHz became %d frames at 48 kHz, want %d", proof.Frames, want)
	}
	const size = 1 << 15
	seg := left(got)[rate/2 : rate/2+size]
	spec := spectrumDB(seg)
	binHz := float64(rate) / size
	peak, peakBin := math.Inf(-1), 0
	for i, v := range spec {
		if v > peak {
			peak, peakBin = v, i
		}
	}
	if f := float64(peakBin) * binHz; math.Abs(f-1000) > 2*binHz {
		t.Fatalf("strongest component at %.1f Hz, want 1000", f)
	}
	worst, worstHz := math.Inf(-1), 0.0
	for i, v := range spec {
		if math.Abs(float64(i-peakBin)) <= 8 { // the tone's own window main lobe
			continue
		}
		if v-peak > worst {
			worst, worstHz = v-peak, float64(i)*binHz
		}
	}
	t.Logf("largest spurious component %.1f dB at %.0f Hz", worst, worstHz)
	if worst > -60 {
		t.Errorf("spurious component at %.0f Hz only %.1f dB below the tone, want below -60 dB", worstHz, -worst)
	}
}
