package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func exampleRelayFrames() []RelayFrame {
	t0 := time.Date(2026, 12, 5, 3, 0, 0, 123456789, time.UTC)
	return []RelayFrame{
		{Stamp: t0, Rate: 44100, Channels: 2, Samples: 1152, Payload: bytes.Repeat([]byte{0xff, 0xfb, 0x90, 0x64}, 100)},
		{Stamp: t0.Add(26122448 * time.Nanosecond), Rate: 24000, Channels: 1, Samples: 576, Flags: RelayGap, Payload: []byte{0xff, 0xf3, 1}},
		{Stamp: time.Unix(0, -5).UTC(), Rate: 8000, Channels: 2, Samples: 1, Payload: make([]byte, MaxRelayPayload)},
	}
}

// A stream of frames reads back as written, field by field, and ends with io.EOF between
// frames.
func TestRelayFramesRoundTrip(t *testing.T) {
	var b []byte
	want := exampleRelayFrames()
	for _, f := range want {
		var err error
		if b, err = AppendRelayFrame(b, f); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(b)
	for i, w := range want {
		got, err := ReadRelayFrame(r, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !got.Stamp.Equal(w.Stamp) || got.Rate != w.Rate || got.Channels != w.Channels || got.Samples != w.Samples ||
			got.Flags != w.Flags || !bytes.Equal(got.Payload, w.Payload) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, err := ReadRelayFrame(r, nil); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if d := want[0].Duration(); d != 1152*time.Second/44100 {
		t.Fatalf("duration %v", d)
	}
}

// Bad frames are refused on writing, and on reading with an error naming the field.
func TestRelayFrameErrors(t *testing.T) {
	good := exampleRelayFrames()[0]
	for _, c := range []struct {
		edit func(*RelayFrame)
		want string
	}{
		{func(f *RelayFrame) { f.Rate = 96000 }, "sample rate 96000"},
		{func(f *RelayFrame) { f.Channels = 3 }, "3 channels"},
		{func(f *RelayFrame) { f.Samples = 0 }, "0 samples"},
		{func(f *RelayFrame) { f.Payload = nil }, "payload of 0 bytes"},
		{func(f *RelayFrame) { f.Flags = 4 }, "unknown flags"},
	} {
		f := good
		c.edit(&f)
		if _, err := AppendRelayFrame(nil, f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("append: %v, want %q", err, c.want)
		}
	}
	b, _ := AppendRelayFrame(nil, good)
	for _, c := range []struct {
		at   int
		to   byte
		want string
	}{{0, 'X', `starts with "XRF"`}, {3, 9, "version 9"}, {5, 7, "7 channels"}, {20, 0xff, "payload of"}} {
		bad := append([]byte(nil), b...)
		bad[c.at] = c.to
		_, err := ReadRelayFrame(bytes.NewReader(bad), nil)
		if !errors.Is(err, ErrRelayFrame) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("byte %d = %#x: %v, want ErrRelayFrame with %q", c.at, c.to, err, c.want)
		}
	}
	if _, err := ReadRelayFrame(bytes.NewReader(b[:len(b)-1]), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("cut payload: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := ReadRelayFrame(bytes.NewReader(b[:10]), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("cut header: %v, want io.ErrUnexpectedEOF", err)
	}
}

// FuzzReadRelayFrame: no input makes the reader panic or read a payload past its bound; what
// it accepts writes back to the same bytes.
func FuzzReadRelayFrame(f *testing.F) {
	for _, fr := range exampleRelayFrames() {
		b, _ := AppendRelayFrame(nil, fr)
		f.Add(b)
	}
	f.Add([]byte("LRF"))
	f.Add([]byte("ICY 200 OK\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			before := r.Len()
			fr, err := ReadRelayFrame(r, nil)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrRelayFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(fr.Payload) > MaxRelayPayload {
				t.Fatalf("payload of %d bytes accepted", len(fr.Payload))
			}
			out, err := AppendRelayFrame(nil, fr)
			if err != nil {
				t.Fatalf("accepted frame does not write back: %v", err)
			}
			used := b[len(b)-before : len(b)-r.Len()]
			if !bytes.Equal(out, used) {
				t.Fatalf("frame writes back as %x, read from %x", out, used)
			}
		}
	})
}
