package player

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/loa-project/loa/player/mpg123"
	"github.com/loa-project/loa/player/wav"
)

// Length returns how many frames a local file yields at rate when played whole: what the
// proof's frames will say for a complete play. It reads headers (WAV) or scans frame headers
// without decoding (MPEG), and decodes only files whose headers cannot be trusted.
func Length(path string, rate int) (int64, error) {
	if n, ok := quickLength(path, rate); ok {
		return n, nil
	}
	src, err := openFile(path, rate, 0)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	buf := make([]float32, 2*4096)
	var n int64
	for {
		k, err := src.Read(context.Background(), buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
	}
}

func quickLength(path string, rate int) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var head [12]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return 0, false
	}
	if string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE" {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, false
		}
		r, err := wav.NewReader(f, path)
		if err != nil {
			return 0, false
		}
		st, err := f.Stat()
		n := r.Frames()
		if n < 0 || err != nil {
			return 0, false
		}
		// A file cut short holds fewer frames than its header says: decode it instead.
		if need := int64(r.Format().Channels*r.Format().Bits/8) * n; need > st.Size() {
			return 0, false
		}
		return mpg123.ResampledLength(r.Format().Rate, rate, n), true
	}
	d, err := mpg123.Open(path)
	if err != nil {
		return 0, false
	}
	defer d.Close()
	n, in, err := d.ScanLength()
	if err != nil || n <= 0 || in == 0 {
		return 0, false
	}
	return mpg123.ResampledLength(in, rate, n), true
}
