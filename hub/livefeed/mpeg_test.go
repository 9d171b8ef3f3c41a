package livefeed

import (
	"bytes"
	"testing"

	"github.com/loa-project/loa/internal/testkit"
)

// Frames are cut out of junk around and between them, and each comes out whole.
func TestScannerFindsFramesInJunk(t *testing.T) {
	mp3 := testkit.MP3(t, "1", "sine", "440")
	var s frameScanner
	in := append(append([]byte("ID3\x03\x00\x00\x00\x00\x00\x10\xff\xfb junk junk"), mp3[:len(mp3)/2]...), "\xff\xe0garbage"...)
	in = append(in, mp3[len(mp3)/2:]...)
	var got [][]byte
	for off := 0; off < len(in); off += 333 {
		s.add(in[off:min(off+333, len(in))])
		for {
			f, h, ok := s.next()
			if !ok {
				break
			}
			if len(f) != h.length || h.rate != 48000 {
				t.Fatalf("frame of %d bytes, header says %d at %d Hz", len(f), h.length, h.rate)
			}
			got = append(got, f)
		}
	}
	// About 42 frames a second; the one cut by the garbage and the last (no header after it)
	// are lost.
	if len(got) < 38 || len(got) > 44 {
		t.Fatalf("%d frames from a second of MP3", len(got))
	}
	for i, f := range got {
		if !bytes.Contains(mp3, f) {
			t.Fatalf("frame %d is not from the MP3", i)
		}
	}
}

// FuzzScanner: any upstream bytes are cut without panic into frames whose headers say their
// own length, and the buffer stays bounded.
func FuzzScanner(f *testing.F) {
	f.Add([]byte{0xff, 0xfb, 0x90, 0x64, 0, 0, 0xff, 0xfb, 0x90, 0x64})
	f.Add([]byte("ID3\xff\xe0\xff\xf3\x44\xc4"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s frameScanner
		for i := 0; i < 3; i++ {
			s.add(b)
			for {
				fr, h, ok := s.next()
				if !ok {
					break
				}
				if len(fr) != h.length || h.samples == 0 || h.rate == 0 {
					t.Fatalf("frame %x with header %+v", fr, h)
				}
			}
			if len(s.buf) > maxScanBuffer {
				t.Fatalf("buffer grew to %d", len(s.buf))
			}
		}
	})
}
