package mpg123

import (
	"math"
	"testing"
)

func TestResamplerLength(t *testing.T) {
	r, err := NewResampler(44100, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := make([]float32, 2*44100)
	var out []float32
	for i := 0; i < len(in); i += 2 * 1000 {
		out = r.Process(out, in[i:min(len(in), i+2000)])
	}
	if n := len(out) / 2; n < 47999 || n > 48001 {
		t.Errorf("one second at 44.1 kHz gave %d frames at 48 kHz", n)
	}
	if _, err := NewResampler(0, 48000, 2); err == nil {
		t.Error("rate 0 accepted")
	}
}

// FuzzFeedDecoder: whatever bytes a stream sends, libmpg123 through the binding decodes
// finite samples or reports an error; no crash.
func FuzzFeedDecoder(f *testing.F) {
	f.Add([]byte("\xff\xfb\x90\x64" + string(make([]byte, 413))))
	f.Add([]byte("ID3\x03\x00\x00\x00\x00\x00\x10garbage\xff\xf3"))
	f.Add([]byte("\xff\xfd\xc4\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := NewFeed()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Feed(b); err != nil {
			return
		}
		for i := 0; i < 2000; i++ {
			s, err := d.Frame()
			for _, v := range s {
				if math.IsNaN(float64(v)) {
					t.Fatal("NaN sample")
				}
			}
			if err != nil {
				if d.Reset() != nil {
					t.Fatal("reset failed")
				}
				return
			}
		}
	})
}
